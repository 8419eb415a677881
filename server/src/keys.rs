//! Identities and prekeys as the server keeps them: public keys only. What it can check it
//! does — a device list is signed by the identity it comes with, names only the user's own
//! devices and is newer than the last; a one-time prekey goes out once, a few per claimer
//! and device an hour — so that senders, who verify everything again, are never handed a
//! list the user did not sign. The routes (`routes/keys.rs`) only speak HTTP.

use crate::db::now_secs;
use crate::db::{Conn, OptionalExtension};
use crate::devices::owns_device;
use crate::error::ApiError;
use crate::params;
use sotto_core::identity::{DeviceList, IdentityPublic, SignedDeviceList};
use sotto_core::prekeys::{PreKeyBundle, PreKeyPublic, SignedPreKey};
use sotto_core::protocol::{UploadPrekeys, User, UserKeys};

/// One-time prekeys a device may hold on the server.
pub const MAX_ONE_TIME_PREKEYS: i64 = 200;
/// Below this, the device is told to upload more.
pub const PREKEYS_LOW: i64 = 20;
/// Bundles one claim may take.
pub const MAX_CLAIM: usize = 200;
/// One-time prekeys one user may take of one device per hour; past that, bundles come
/// without one. A client claims a device's bundle once per session it starts.
pub const OTPK_CLAIMS_PER_HOUR: i64 = 5;

/// Largest signed device list.
pub const MAX_LIST_BYTES: usize = 16 * 1024;

/// Counts a one-time prekey `claimer` takes of `device_id`; false when it has had its share
/// this hour.
fn may_take_one_time_prekey(
    conn: &Conn,
    claimer: &str,
    device_id: &str,
) -> crate::db::Result<bool> {
    // Counted and read back in one statement, so claims on several nodes at once cannot
    // each see room for one more. Past the share the count goes on rising (harmlessly)
    // until the hour is up.
    let count: i64 = conn.query_row(
        "INSERT INTO prekey_claims (claimer, device_id, window_start, count) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (claimer, device_id) DO UPDATE SET
           window_start = CASE WHEN prekey_claims.window_start <= ?3 - 3600
                          THEN ?3 ELSE prekey_claims.window_start END,
           count = CASE WHEN prekey_claims.window_start <= ?3 - 3600
                   THEN 1 ELSE prekey_claims.count + 1 END
         RETURNING count",
        params![claimer, device_id, now_secs()],
        |r| r.get(0),
    )?;
    Ok(count <= OTPK_CLAIMS_PER_HOUR)
}
/// The user's current devices: those their signed list names that the server still holds.
pub fn current_devices(conn: &Conn, user_id: &str) -> crate::db::Result<Vec<String>> {
    let listed: Option<String> = conn
        .query_row(
            "SELECT devices FROM identities WHERE user_id = ?1",
            params![user_id],
            |r| r.get(0),
        )
        .optional()?;
    still_held(conn, user_id, listed)
}

/// [`current_devices`] of a user who must be in `org_id` (else 404 `unknown_user`), in one
/// read for both: each send checks this for every user it names.
pub fn current_devices_in_org(
    conn: &Conn,
    user_id: &str,
    org_id: &str,
) -> Result<Vec<String>, ApiError> {
    let listed: Option<Option<String>> = conn
        .query_row(
            "SELECT i.devices FROM users u LEFT JOIN identities i ON i.user_id = u.id
             WHERE u.id = ?1 AND u.org_id = ?2",
            params![user_id, org_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(listed) = listed else {
        return Err(ApiError::not_found(
            "unknown_user",
            "no such user in your org",
        ));
    };
    Ok(still_held(conn, user_id, listed)?)
}

/// The devices of a signed list (JSON, if the user has one) that the server still holds
/// for the user, in the list's order.
fn still_held(
    conn: &Conn,
    user_id: &str,
    listed: Option<String>,
) -> crate::db::Result<Vec<String>> {
    let Some(listed) = listed else {
        return Ok(Vec::new());
    };
    let listed: Vec<String> = serde_json::from_str(&listed).unwrap_or_default();
    let held: Vec<String> = conn
        .query_map(
            "SELECT id FROM devices WHERE user_id = ?1",
            params![user_id],
            |r| r.get(0),
        )?
        .collect::<crate::db::Result<_>>()?;
    Ok(listed.into_iter().filter(|d| held.contains(d)).collect())
}

/// A stored 32-byte key; anything else is a damaged row.
fn key32(bytes: Vec<u8>) -> crate::db::Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| crate::db::Error::Type("a stored key is 32 bytes".into()))
}

/// How many one-time prekeys the server holds for a device.
pub fn prekey_count(conn: &Conn, device_id: &str) -> crate::db::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM one_time_prekeys WHERE device_id = ?1",
        params![device_id],
        |r| r.get(0),
    )
}

/// Publishes `identity` and its signed `device_list` (already verified as `list`) for
/// `user_id`; returns every device of the user, to be told of the change.
pub fn publish(
    conn: &mut Conn,
    user_id: &str,
    identity: &IdentityPublic,
    device_list: &SignedDeviceList,
    list: &DeviceList,
) -> Result<Vec<String>, ApiError> {
    let tx = conn.transaction()?;
    for d in &list.devices {
        if !owns_device(&tx, user_id, d)? {
            return Err(ApiError::bad_request(
                "unknown_device",
                format!("the list names {d:?}, which is not your device"),
            ));
        }
    }
    let old: Option<(Vec<u8>, Vec<u8>, i64)> = tx
        .query_row(
            "SELECT signing, agreement, version FROM identities WHERE user_id = ?1",
            params![user_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let same_identity = old.as_ref().is_some_and(|(s, a, _)| {
        s.as_slice() == identity.signing && a.as_slice() == identity.agreement
    });
    if let Some((_, _, version)) = &old {
        if same_identity && list.version <= *version {
            return Err(ApiError::conflict(
                "stale_device_list",
                "a newer device list is already published; fetch it and sign again",
            ));
        }
    }
    if old.is_some() && !same_identity {
        tracing::warn!(user = %user_id, "identity replaced");
    }
    tx.execute(
        "INSERT INTO identities (user_id, signing, agreement, device_list, signature, version, devices, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (user_id) DO UPDATE SET signing = ?2, agreement = ?3, device_list = ?4,
           signature = ?5, version = ?6, devices = ?7, updated_at = ?8",
        params![
            user_id,
            identity.signing.as_slice(),
            identity.agreement.as_slice(),
            device_list.list,
            device_list.signature,
            list.version,
            serde_json::to_string(&list.devices).expect("strings"),
            now_secs()
        ],
    )?;
    let all = crate::devices::ids_of(&tx, user_id)?;
    tx.commit()?;
    Ok(all)
}

/// `user_id`'s identity, signed device list and current devices, if that user is in
/// `org_id`.
pub fn user_keys(conn: &Conn, org_id: &str, user_id: &str) -> Result<UserKeys, ApiError> {
    crate::directory::require_user_in_org(conn, user_id, org_id)?;
    let stored = conn
        .query_row(
            "SELECT signing, agreement, device_list, signature FROM identities WHERE user_id = ?1",
            params![user_id],
            |r| {
                Ok((
                    IdentityPublic {
                        signing: key32(r.get(0)?)?,
                        agreement: key32(r.get(1)?)?,
                    },
                    SignedDeviceList {
                        list: r.get(2)?,
                        signature: r.get(3)?,
                    },
                ))
            },
        )
        .optional()?;
    let (identity, device_list) = stored.unzip();
    let disabled = conn.query_row(
        "SELECT disabled FROM users WHERE id = ?1",
        params![user_id],
        |r| r.get(0),
    )?;
    Ok(UserKeys {
        devices: current_devices(conn, user_id)?,
        user_id: user_id.to_owned(),
        identity,
        device_list,
        disabled,
    })
}

/// Stores the prekeys `user_id` uploads for its device `device_id`; returns how many
/// one-time prekeys the device now has here.
pub fn upload_prekeys(
    conn: &mut Conn,
    user_id: &str,
    device_id: &str,
    req: &UploadPrekeys,
) -> Result<i64, ApiError> {
    if !owns_device(conn, user_id, device_id)? {
        return Err(ApiError::not_found(
            "unknown_device",
            "no such device of yours",
        ));
    }
    let tx = conn.transaction()?;
    if let Some(spk) = &req.signed_prekey {
        // Senders verify the signature against the identity they pinned; here only its
        // shape is checked, as the identity may be published after the prekeys.
        if spk.signature.len() != 64 {
            return Err(ApiError::bad_request(
                "bad_signature",
                "a signature is 64 bytes",
            ));
        }
        tx.execute(
            "INSERT INTO signed_prekeys (device_id, key_id, public_key, signature) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id) DO UPDATE SET key_id = ?2, public_key = ?3, signature = ?4",
            params![device_id, spk.key.id, spk.key.public.as_slice(), spk.signature],
        )?;
    }
    // Uploads for this device on other nodes wait here: the count holds until the inserts.
    tx.lock_quota("one-time prekeys", device_id)?;
    let have = prekey_count(&tx, device_id)?;
    if have + req.one_time_prekeys.len() as i64 > MAX_ONE_TIME_PREKEYS {
        return Err(ApiError::conflict(
            "too_many_prekeys",
            format!("a device holds at most {MAX_ONE_TIME_PREKEYS} one-time prekeys"),
        ));
    }
    for k in &req.one_time_prekeys {
        tx.execute(
            "INSERT INTO one_time_prekeys (device_id, key_id, public_key) VALUES (?1, ?2, ?3)
             ON CONFLICT (device_id, key_id) DO UPDATE SET public_key = excluded.public_key",
            params![device_id, k.id, k.public.as_slice()],
        )?;
    }
    let count = prekey_count(&tx, device_id)?;
    tx.commit()?;
    Ok(count)
}

/// One bundle per device of `devices` (all in `org_id`) for `claimer`, each with a
/// one-time prekey while the claimer has its share of them this hour (visitors share one
/// allowance per device: they are free to make). Also returns the devices whose stock just
/// fell below the mark, with what they have left, to be told once.
#[allow(clippy::type_complexity)]
pub fn claim_bundles(
    conn: &mut Conn,
    org_id: &str,
    claimer: &User,
    devices: &[String],
) -> Result<(Vec<PreKeyBundle>, Vec<(String, u32)>), ApiError> {
    let tx = conn.transaction()?;
    let mut bundles = Vec::with_capacity(devices.len());
    let mut low = Vec::new();
    let claimer = if claimer.ephemeral {
        "visitors"
    } else {
        claimer.id.as_str()
    };
    // In one order whatever order the claim named them in, so that two claims of the same
    // devices (visitors share one claimer row) never wait on each other's locks.
    let mut sorted: Vec<&String> = devices.iter().collect();
    sorted.sort();
    let mut taken = std::collections::HashMap::with_capacity(devices.len());
    for device_id in sorted {
        let bundle = tx
            .query_row(
                "SELECT i.signing, i.agreement, s.key_id, s.public_key, s.signature
                 FROM devices d JOIN users u ON u.id = d.user_id
                 JOIN identities i ON i.user_id = d.user_id
                 JOIN signed_prekeys s ON s.device_id = d.id
                 WHERE d.id = ?1 AND u.org_id = ?2",
                params![device_id, org_id],
                |r| {
                    Ok(PreKeyBundle {
                        device_id: device_id.clone(),
                        identity: IdentityPublic {
                            signing: key32(r.get(0)?)?,
                            agreement: key32(r.get(1)?)?,
                        },
                        signed_prekey: SignedPreKey {
                            key: PreKeyPublic {
                                id: r.get(2)?,
                                public: key32(r.get(3)?)?,
                            },
                            signature: r.get(4)?,
                        },
                        one_time_prekey: None,
                    })
                },
            )
            .optional()?;
        let Some(mut bundle) = bundle else {
            return Err(ApiError::not_found(
                "no_bundle",
                format!("device {device_id:?} has no published keys"),
            ));
        };
        let one_time: Option<(u32, Vec<u8>)> = if may_take_one_time_prekey(&tx, claimer, device_id)?
        {
            // Taken by the statement that picks it, so each key goes out once even when
            // nodes claim from one device at the same moment (PostgreSQL's claimers skip a
            // key another has locked rather than both taking it).
            let lock = if tx.is_postgres() {
                "FOR UPDATE SKIP LOCKED"
            } else {
                ""
            };
            tx.query_row(
                &format!(
                    "DELETE FROM one_time_prekeys WHERE device_id = ?1 AND key_id =
                       (SELECT key_id FROM one_time_prekeys WHERE device_id = ?1
                        ORDER BY key_id LIMIT 1 {lock})
                     RETURNING key_id, public_key"
                ),
                params![device_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
        } else {
            None
        };
        if let Some((id, public)) = one_time {
            // Told once, as the stock falls below the mark, not after every claim.
            let remaining = prekey_count(&tx, device_id)?;
            if remaining == PREKEYS_LOW - 1 || remaining == 0 {
                low.push((device_id.clone(), remaining as u32));
            }
            bundle.one_time_prekey = Some(PreKeyPublic {
                id,
                public: key32(public)?,
            });
        }
        taken.insert(device_id, bundle);
    }
    tx.commit()?;
    // Back in the order asked for.
    bundles.extend(devices.iter().filter_map(|d| taken.remove(d)));
    Ok((bundles, low))
}
