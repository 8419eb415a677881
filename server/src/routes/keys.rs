//! Identities and prekeys. The server stores public keys only and checks what it can — that
//! a device list is signed by the identity it comes with, names only the caller's devices and
//! is newer than the last — so that senders, who verify everything again, are never handed a
//! list the user did not sign.
//!
//! - `PUT /v1/identity`: publish the user's identity and signed device list.
//! - `GET /v1/users/{id}/keys`: a user's identity, signed list and current devices.
//! - `POST /v1/devices/{id}/prekeys`: upload a signed prekey and one-time prekeys.
//! - `POST /v1/bundles`: claim one bundle per device; each one-time prekey goes out once,
//!   and a device whose stock runs low is told (a `prekeys_low` frame) to upload more.

use super::json::ApiJson;
use crate::auth::session::AuthUser;
use crate::db::now_secs;
use crate::devices::owns_device;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::Json;
use rusqlite::{params, Connection, OptionalExtension};
use sotto_core::identity::{IdentityPublic, SignedDeviceList};
use sotto_core::prekeys::{PreKeyBundle, PreKeyPublic, SignedPreKey};
use sotto_core::protocol::{
    ClaimBundles, PrekeyCount, PublishIdentity, ServerFrame, UploadPrekeys, UserKeys,
};

/// One-time prekeys a device may hold on the server.
pub const MAX_ONE_TIME_PREKEYS: i64 = 200;
/// Below this, the device is told to upload more.
pub const PREKEYS_LOW: i64 = 20;
/// Bundles one claim may take.
const MAX_CLAIM: usize = 200;
/// One-time prekeys one user may take of one device per hour; past that, bundles come
/// without one. A client claims a device's bundle once per session it starts.
pub const OTPK_CLAIMS_PER_HOUR: i64 = 5;

/// Counts a one-time prekey `claimer` takes of `device_id`; false when it has had its share
/// this hour.
fn may_take_one_time_prekey(
    conn: &Connection,
    claimer: &str,
    device_id: &str,
) -> rusqlite::Result<bool> {
    let now = now_secs();
    let row: Option<(i64, i64)> = conn
        .query_row(
            "SELECT window_start, count FROM prekey_claims WHERE claimer = ?1 AND device_id = ?2",
            params![claimer, device_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (start, count) = match row {
        Some((start, count)) if now - start < 3600 => (start, count),
        _ => (now, 0),
    };
    if count >= OTPK_CLAIMS_PER_HOUR {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO prekey_claims (claimer, device_id, window_start, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (claimer, device_id) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
        params![claimer, device_id, start, count + 1],
    )?;
    Ok(true)
}
/// Largest signed device list.
const MAX_LIST_BYTES: usize = 16 * 1024;

/// The user's current devices: those their signed list names that the server still holds.
pub fn current_devices(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<String>> {
    let listed: Option<String> = conn
        .query_row(
            "SELECT devices FROM identities WHERE user_id = ?1",
            params![user_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(listed) = listed else {
        return Ok(Vec::new());
    };
    let listed: Vec<String> = serde_json::from_str(&listed).unwrap_or_default();
    let mut stmt = conn.prepare_cached("SELECT 1 FROM devices WHERE id = ?1 AND user_id = ?2")?;
    let mut out = Vec::with_capacity(listed.len());
    for d in listed {
        if stmt.exists(params![d, user_id])? {
            out.push(d);
        }
    }
    Ok(out)
}

/// A stored 32-byte key; anything else is a damaged row.
fn key32(bytes: Vec<u8>) -> rusqlite::Result<[u8; 32]> {
    bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            32,
            rusqlite::types::Type::Blob,
            "a stored key is 32 bytes".into(),
        )
    })
}

pub async fn publish_identity(
    State(state): State<SharedState>,
    who: AuthUser,
    ApiJson(req): ApiJson<PublishIdentity>,
) -> ApiResult<Json<serde_json::Value>> {
    if req.device_list.list.len() > MAX_LIST_BYTES {
        return Err(ApiError::bad_request(
            "field_too_long",
            "the device list is too long",
        ));
    }
    let list = req
        .identity
        .verify_device_list(&req.device_list, &who.user.id)
        .map_err(|e| ApiError::bad_request("bad_signature", e.to_string()))?;
    let user_id = who.user.id.clone();
    let changed = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            for d in &list.devices {
                if !owns_device(&tx, &user_id, d)? {
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
                s.as_slice() == req.identity.signing && a.as_slice() == req.identity.agreement
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
                    req.identity.signing.as_slice(),
                    req.identity.agreement.as_slice(),
                    req.device_list.list,
                    req.device_list.signature,
                    list.version,
                    serde_json::to_string(&list.devices).expect("strings"),
                    now_secs()
                ],
            )?;
            let all: Vec<String> = {
                let mut stmt = tx.prepare_cached("SELECT id FROM devices WHERE user_id = ?1")?;
                let rows = stmt.query_map(params![user_id], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            tx.commit()?;
            Ok(all)
        })
        .await?;
    // Every device of the user hears of the change (a new one was linked, or one left).
    let frame = ServerFrame::DevicesChanged {
        user_id: who.user.id.clone(),
    };
    for d in &changed {
        state.registry.push(d, &frame);
    }
    Ok(Json(serde_json::json!({ "published": true })))
}

pub async fn user_keys(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(user_id): Path<String>,
) -> ApiResult<Json<UserKeys>> {
    let keys = state
        .db
        .call(move |conn| {
            crate::directory::require_user_in_org(conn, &user_id, &who.org_id)?;
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
            Ok::<_, ApiError>(UserKeys {
                devices: current_devices(conn, &user_id)?,
                user_id,
                identity,
                device_list,
            })
        })
        .await?;
    Ok(Json(keys))
}

/// How many one-time prekeys the server holds for a device.
pub fn prekey_count(conn: &Connection, device_id: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM one_time_prekeys WHERE device_id = ?1",
        params![device_id],
        |r| r.get(0),
    )
}

pub async fn upload_prekeys(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(device_id): Path<String>,
    ApiJson(req): ApiJson<UploadPrekeys>,
) -> ApiResult<Json<PrekeyCount>> {
    if req.one_time_prekeys.len() as i64 > MAX_ONE_TIME_PREKEYS {
        return Err(ApiError::bad_request(
            "too_many_prekeys",
            format!("at most {MAX_ONE_TIME_PREKEYS} one-time prekeys at a time"),
        ));
    }
    let count = state
        .db
        .call(move |conn| {
            if !owns_device(conn, &who.user.id, &device_id)? {
                return Err(ApiError::not_found("unknown_device", "no such device of yours"));
            }
            let tx = conn.transaction()?;
            if let Some(spk) = &req.signed_prekey {
                // Senders verify the signature against the identity they pinned; here only
                // its shape is checked, as the identity may be published after the prekeys.
                if spk.signature.len() != 64 {
                    return Err(ApiError::bad_request("bad_signature", "a signature is 64 bytes"));
                }
                tx.execute(
                    "INSERT INTO signed_prekeys (device_id, key_id, public_key, signature) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (device_id) DO UPDATE SET key_id = ?2, public_key = ?3, signature = ?4",
                    params![device_id, spk.key.id, spk.key.public.as_slice(), spk.signature],
                )?;
            }
            let have = prekey_count(&tx, &device_id)?;
            if have + req.one_time_prekeys.len() as i64 > MAX_ONE_TIME_PREKEYS {
                return Err(ApiError::conflict(
                    "too_many_prekeys",
                    format!("a device holds at most {MAX_ONE_TIME_PREKEYS} one-time prekeys"),
                ));
            }
            for k in &req.one_time_prekeys {
                tx.execute(
                    "INSERT OR REPLACE INTO one_time_prekeys (device_id, key_id, public_key) VALUES (?1, ?2, ?3)",
                    params![device_id, k.id, k.public.as_slice()],
                )?;
            }
            let count = prekey_count(&tx, &device_id)?;
            tx.commit()?;
            Ok(count)
        })
        .await?;
    Ok(Json(PrekeyCount {
        one_time_prekeys: count as u32,
    }))
}

pub async fn claim_bundles(
    State(state): State<SharedState>,
    who: AuthUser,
    ApiJson(req): ApiJson<ClaimBundles>,
) -> ApiResult<Json<Vec<PreKeyBundle>>> {
    state.claim_limiter.check(&who.limit_key())?;
    if req.devices.len() > MAX_CLAIM {
        return Err(ApiError::bad_request(
            "too_many_devices",
            format!("at most {MAX_CLAIM} bundles per claim"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = req.devices.iter().find(|d| !seen.insert(d.as_str())) {
        return Err(ApiError::bad_request(
            "duplicate_device",
            format!("device {d:?} is named twice"),
        ));
    }
    let (bundles, low) = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let mut bundles = Vec::with_capacity(req.devices.len());
            let mut low = Vec::new();
            for device_id in &req.devices {
                let bundle = tx
                    .query_row(
                        "SELECT i.signing, i.agreement, s.key_id, s.public_key, s.signature
                         FROM devices d JOIN users u ON u.id = d.user_id
                         JOIN identities i ON i.user_id = d.user_id
                         JOIN signed_prekeys s ON s.device_id = d.id
                         WHERE d.id = ?1 AND u.org_id = ?2",
                        params![device_id, who.org_id],
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
                // Visitors are free to make, so they share one allowance per device.
                let claimer = if who.user.ephemeral { "visitors" } else { who.user.id.as_str() };
                let one_time: Option<(u32, Vec<u8>)> = if may_take_one_time_prekey(&tx, claimer, device_id)? {
                    tx.query_row(
                        "SELECT key_id, public_key FROM one_time_prekeys WHERE device_id = ?1 ORDER BY key_id LIMIT 1",
                        params![device_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?
                } else {
                    None
                };
                if let Some((id, _)) = &one_time {
                    tx.execute(
                        "DELETE FROM one_time_prekeys WHERE device_id = ?1 AND key_id = ?2",
                        params![device_id, id],
                    )?;
                    // Told once, as the stock falls below the mark, not after every claim.
                    let remaining = prekey_count(&tx, device_id)?;
                    if remaining == PREKEYS_LOW - 1 || remaining == 0 {
                        low.push((device_id.clone(), remaining as u32));
                    }
                }
                if let Some((id, public)) = one_time {
                    bundle.one_time_prekey = Some(PreKeyPublic {
                        id,
                        public: key32(public)?,
                    });
                }
                bundles.push(bundle);
            }
            tx.commit()?;
            Ok((bundles, low))
        })
        .await?;
    for (device, remaining) in low {
        state
            .registry
            .push(&device, &ServerFrame::PrekeysLow { remaining });
    }
    Ok(Json(bundles))
}
