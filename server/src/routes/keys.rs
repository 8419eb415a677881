//! Identities and prekeys over HTTP (what is stored and checked is in `crate::keys`):
//!
//! - `PUT /v1/identity`: publish the user's identity and signed device list.
//! - `GET /v1/users/{id}/keys`: a user's identity, signed list and current devices.
//! - `POST /v1/devices/{id}/prekeys`: upload a signed prekey and one-time prekeys.
//! - `POST /v1/bundles`: claim one bundle per device; each one-time prekey goes out once,
//!   and a device whose stock runs low is told (a `prekeys_low` frame) to upload more.

use super::json::ApiJson;
use crate::auth::session::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::keys::{self, MAX_CLAIM, MAX_LIST_BYTES, MAX_ONE_TIME_PREKEYS};
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::Json;
use sotto_core::prekeys::PreKeyBundle;
use sotto_core::protocol::{
    ClaimBundles, PrekeyCount, PublishIdentity, ServerFrame, UploadPrekeys, UserKeys,
};

#[utoipa::path(put, path = "/v1/identity", tag = "keys", request_body = PublishIdentity,
    responses((status = 200, description = "Published", body = crate::openapi::Published)))]
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
        .call(move |conn| keys::publish(conn, &user_id, &req.identity, &req.device_list, &list))
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

#[utoipa::path(get, path = "/v1/users/{id}/keys", tag = "keys", params(("id" = String, Path, description = "A user ID")),
    responses((status = 200, description = "The user's identity and signed device list", body = UserKeys)))]
pub async fn user_keys(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(user_id): Path<String>,
) -> ApiResult<Json<UserKeys>> {
    let keys = state
        .db
        .read(move |conn| keys::user_keys(conn, &who.org_id, &user_id))
        .await?;
    Ok(Json(keys))
}

#[utoipa::path(post, path = "/v1/devices/{id}/prekeys", tag = "keys", params(("id" = String, Path, description = "One of the caller's devices")),
    request_body = UploadPrekeys,
    responses((status = 200, description = "One-time prekeys now held", body = PrekeyCount)))]
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
        .call(move |conn| keys::upload_prekeys(conn, &who.user.id, &device_id, &req))
        .await?;
    Ok(Json(PrekeyCount {
        one_time_prekeys: count as u32,
    }))
}

#[utoipa::path(post, path = "/v1/bundles", tag = "keys", request_body = ClaimBundles,
    responses((status = 200, description = "One prekey bundle per device", body = [Object])))]
pub async fn claim_bundles(
    State(state): State<SharedState>,
    who: AuthUser,
    ApiJson(req): ApiJson<ClaimBundles>,
) -> ApiResult<Json<Vec<PreKeyBundle>>> {
    state
        .claim_limiter
        .check_everywhere(&who.limit_key(), &state.db, state.config.bus.is_some())
        .await?;
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
        .call(move |conn| keys::claim_bundles(conn, &who.org_id, &who.user, &req.devices))
        .await?;
    for (device, remaining) in low {
        state
            .registry
            .push(&device, &ServerFrame::PrekeysLow { remaining });
    }
    Ok(Json(bundles))
}
