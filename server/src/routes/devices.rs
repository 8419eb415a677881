//! Devices and their public keys: `POST /v1/devices` registers the caller's device (the same
//! key registers once), `GET /v1/users/{id}/devices` lists anyone's in the same org.

use super::json::ApiJson;
use crate::auth::session::AuthUser;
use crate::db::{new_id, now_secs};
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::Json;
use rusqlite::{params, Connection, OptionalExtension};
use sotto_core::protocol::{Device, RegisterDevice};

/// A user may have this many devices at once.
pub const MAX_DEVICES_PER_USER: i64 = 50;

pub fn owns_device(conn: &Connection, user_id: &str, device_id: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1 AND user_id = ?2)",
        params![device_id, user_id],
        |r| r.get(0),
    )
}

pub async fn register(
    State(state): State<SharedState>,
    who: AuthUser,
    ApiJson(req): ApiJson<RegisterDevice>,
) -> ApiResult<Json<Device>> {
    sotto_core::keys::parse_public_key(&req.public_key)
        .map_err(|e| ApiError::bad_request("invalid_key", e.to_string()))?;
    if req.name.as_ref().is_some_and(|n| n.len() > 128) {
        return Err(ApiError::bad_request(
            "field_too_long",
            "a device name is limited to 128 bytes",
        ));
    }
    let device = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let existing: Option<String> = tx
                .query_row(
                    "SELECT id FROM devices WHERE user_id = ?1 AND public_key = ?2",
                    params![who.user.id, req.public_key],
                    |r| r.get(0),
                )
                .optional()?;
            let id = match existing {
                Some(id) => id,
                None => {
                    let count: i64 = tx.query_row("SELECT COUNT(*) FROM devices WHERE user_id = ?1", params![who.user.id], |r| r.get(0))?;
                    if count >= MAX_DEVICES_PER_USER {
                        return Err(ApiError::new(axum::http::StatusCode::CONFLICT, "too_many_devices", "this user has too many devices"));
                    }
                    let id = new_id("d");
                    tx.execute(
                        "INSERT INTO devices (id, user_id, public_key, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![id, who.user.id, req.public_key, req.name, now_secs()],
                    )?;
                    tracing::info!(user = %who.user.id, device = %id, "device registered");
                    id
                }
            };
            tx.commit()?;
            Ok(Device {
                id,
                user_id: who.user.id,
                public_key: req.public_key,
            })
        })
        .await?;
    Ok(Json(device))
}

pub async fn list(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Vec<Device>>> {
    let devices = state
        .db
        .call(move |conn| {
            crate::directory::require_user_in_org(conn, &user_id, &who.org_id)?;
            let mut stmt = conn.prepare_cached(
                "SELECT id, public_key FROM devices WHERE user_id = ?1 ORDER BY created_at, id",
            )?;
            let rows = stmt.query_map(params![user_id], |r| {
                Ok(Device {
                    id: r.get(0)?,
                    user_id: user_id.clone(),
                    public_key: r.get(1)?,
                })
            })?;
            Ok::<_, ApiError>(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(devices))
}

/// Removes one of the caller's own devices and everything still queued for it, e.g. when a
/// user clears Sotto from a browser.
pub async fn remove(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(device_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let removed = device_id.clone();
    state
        .db
        .call(move |conn| {
            if !owns_device(conn, &who.user.id, &device_id)? {
                return Err(ApiError::not_found(
                    "unknown_device",
                    "no such device of yours",
                ));
            }
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM envelopes WHERE device_id = ?1",
                params![device_id],
            )?;
            tx.execute(
                "DELETE FROM one_time_prekeys WHERE device_id = ?1",
                params![device_id],
            )?;
            tx.execute(
                "DELETE FROM signed_prekeys WHERE device_id = ?1",
                params![device_id],
            )?;
            tx.execute("DELETE FROM devices WHERE id = ?1", params![device_id])?;
            tx.commit()?;
            tracing::info!(user = %who.user.id, device = %device_id, "device removed");
            Ok(())
        })
        .await?;
    state.registry.end_device(
        &removed,
        "device_removed",
        "this device was removed from the account",
    );
    Ok(Json(serde_json::json!({ "removed": true })))
}
