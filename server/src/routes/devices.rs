//! Devices and their public keys: `POST /v1/devices` registers the caller's device (the same
//! key registers once), `GET /v1/users/{id}/devices` lists anyone's in the same org.

use super::json::ApiJson;
use crate::auth::session::AuthUser;
use crate::devices;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::Json;
use sotto_core::protocol::{Device, RegisterDevice};

#[utoipa::path(post, path = "/v1/devices", tag = "devices", request_body = RegisterDevice,
    responses((status = 200, description = "The device (the same one again for the same key)", body = Device)))]
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
            devices::register(conn, &who.user.id, req.public_key, req.name.as_deref())
        })
        .await?;
    Ok(Json(device))
}

#[utoipa::path(get, path = "/v1/users/{id}/devices", tag = "devices", params(("id" = String, Path, description = "A user ID")),
    responses((status = 200, description = "The user's devices", body = [Device])))]
pub async fn list(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Vec<Device>>> {
    let devices = state
        .db
        .read(move |conn| devices::list(conn, &who.org_id, &user_id))
        .await?;
    Ok(Json(devices))
}

#[utoipa::path(delete, path = "/v1/devices/{id}", tag = "devices", params(("id" = String, Path, description = "One of the caller's devices")),
    responses((status = 200, description = "Removed", body = crate::openapi::Removed)))]
/// Removes one of the caller's own devices and everything still queued for it, e.g. when a
/// user clears Sotto from a browser; its socket closes at once.
pub async fn remove(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(device_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let removed = device_id.clone();
    state
        .db
        .call(move |conn| devices::remove(conn, &who.user.id, &device_id))
        .await?;
    state.registry.end_device(
        &removed,
        "device_removed",
        "this device was removed from the account",
    );
    Ok(Json(serde_json::json!({ "removed": true })))
}
