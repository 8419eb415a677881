//! Users' devices as the server keeps them: each with its public registration key, at most
//! [`MAX_DEVICES_PER_USER`] per user. Removing a device takes its queue and prekeys with it.
//! The routes (`routes/devices.rs`) only speak HTTP.

use crate::db::{new_id, now_secs};
use crate::db::{Conn, OptionalExtension};
use crate::error::ApiError;
use crate::params;
use axum::http::StatusCode;
use sotto_core::protocol::Device;

/// A user may have this many devices at once.
pub const MAX_DEVICES_PER_USER: i64 = 50;

/// Whether `device_id` is one of `user_id`'s devices.
pub fn owns_device(conn: &Conn, user_id: &str, device_id: &str) -> crate::db::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1 AND user_id = ?2)",
        params![device_id, user_id],
        |r| r.get(0),
    )
}

/// The IDs of all of `user_id`'s devices (to tell each of them something).
pub fn ids_of(conn: &Conn, user_id: &str) -> crate::db::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM devices WHERE user_id = ?1")?;
    let rows = stmt.query_map(params![user_id], |r| r.get(0))?;
    rows.collect()
}

/// Registers `public_key` as a device of `user_id`; the same key registers once (its
/// device is returned again).
pub fn register(
    conn: &mut Conn,
    user_id: &str,
    public_key: Vec<u8>,
    name: Option<&str>,
) -> Result<Device, ApiError> {
    let tx = conn.transaction()?;
    // Registrations on other nodes wait here, so the same key is not registered twice and
    // the count holds until the insert.
    tx.lock_quota("devices", user_id)?;
    let existing: Option<String> = tx
        .query_row(
            "SELECT id FROM devices WHERE user_id = ?1 AND public_key = ?2",
            params![user_id, public_key],
            |r| r.get(0),
        )
        .optional()?;
    let id = match existing {
        Some(id) => id,
        None => {
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM devices WHERE user_id = ?1",
                params![user_id],
                |r| r.get(0),
            )?;
            if count >= MAX_DEVICES_PER_USER {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "too_many_devices",
                    "this user has too many devices",
                ));
            }
            let id = new_id("d");
            tx.execute(
                "INSERT INTO devices (id, user_id, public_key, name, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, user_id, public_key, name, now_secs()],
            )?;
            tracing::info!(user = %user_id, device = %id, "device registered");
            crate::webhooks::emit_device(&tx, crate::webhooks::DEVICE_ADDED, user_id, &id)?;
            id
        }
    };
    tx.commit()?;
    Ok(Device {
        id,
        user_id: user_id.to_owned(),
        public_key,
    })
}

/// `user_id`'s devices, oldest first, if that user is in `org_id`.
pub fn list(conn: &Conn, org_id: &str, user_id: &str) -> Result<Vec<Device>, ApiError> {
    crate::directory::require_user_in_org(conn, user_id, org_id)?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, public_key FROM devices WHERE user_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map(params![user_id], |r| {
        Ok(Device {
            id: r.get(0)?,
            user_id: user_id.to_owned(),
            public_key: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Removes one of `user_id`'s own devices with everything still queued for it and its
/// prekeys (and the record of who claimed them).
pub fn remove(conn: &mut Conn, user_id: &str, device_id: &str) -> Result<(), ApiError> {
    if !owns_device(conn, user_id, device_id)? {
        return Err(ApiError::not_found(
            "unknown_device",
            "no such device of yours",
        ));
    }
    let tx = conn.transaction()?;
    crate::webhooks::emit_device(&tx, crate::webhooks::DEVICE_REMOVED, user_id, device_id)?;
    for sql in [
        "DELETE FROM envelopes WHERE device_id = ?1",
        "DELETE FROM one_time_prekeys WHERE device_id = ?1",
        "DELETE FROM signed_prekeys WHERE device_id = ?1",
        "DELETE FROM prekey_claims WHERE device_id = ?1",
        "DELETE FROM devices WHERE id = ?1",
    ] {
        tx.execute(sql, params![device_id])?;
    }
    tx.commit()?;
    tracing::info!(user = %user_id, device = %device_id, "device removed");
    Ok(())
}
