//! Device linking relay over HTTP (protocol v3, commit-then-reveal; see
//! `sotto_core::linking`; what is stored and who may act is in `crate::links`):
//!
//! 1. a new browser posts a commitment to its ephemeral key (`POST /v1/links`); the user's
//!    connected browsers are told (a `link_request` frame, status `pending`);
//! 2. one running browser answers with its own key (`POST /v1/links/{id}/accept`);
//! 3. the new browser, polling `GET /v1/links/{id}`, sees it and reveals its key
//!    (`POST /v1/links/{id}/reveal`), which is pushed to the answering browser;
//! 4. both show a code; the answering browser approves with a sealed bundle
//!    (`POST /v1/links/{id}/approve`) or any of the user's browsers declines; the new browser
//!    takes the approval once.
//!
//! Each step happens once, in order, and only by the party it belongs to: the session that
//! asked reveals and takes the approval, the device that answered approves. Requests live
//! ten minutes. The server relays; it can neither open the bundle nor pick keys that pass
//! the people's comparison of the codes.

use super::json::ApiJson;
use crate::auth::session::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::links::{self, MAX_SEALED};
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::Json;
use sotto_core::protocol::{
    LinkAccept, LinkApprove, LinkCreate, LinkRequest, LinkReveal, ServerFrame,
};

fn check_key(key: &[u8]) -> Result<(), ApiError> {
    sotto_core::keys::parse_public_key(key)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("invalid_key", e.to_string()))
}

fn push(state: &SharedState, devices: &[String], request: &LinkRequest) {
    let frame = ServerFrame::LinkRequest(LinkRequest {
        sealed: None,
        ..request.clone()
    });
    for d in devices {
        state.registry.push(d, &frame);
    }
}

#[utoipa::path(post, path = "/v1/links", tag = "linking", request_body = LinkCreate,
    responses((status = 200, description = "The new request", body = LinkRequest)))]
pub async fn create(
    State(state): State<SharedState>,
    who: AuthUser,
    ApiJson(req): ApiJson<LinkCreate>,
) -> ApiResult<Json<LinkRequest>> {
    state
        .link_limiter
        .check_everywhere(&who.limit_key(), &state.db, state.config.bus.is_some())
        .await?;
    if req.commitment.len() != 32 {
        return Err(ApiError::bad_request(
            "bad_payload",
            "a commitment is 32 bytes (SHA-256)",
        ));
    }
    let user_id = who.user.id.clone();
    let (request, devices) = state
        .db
        .call(move |conn| links::create(conn, &user_id, &who.session_hash, req.commitment))
        .await?;
    push(&state, &devices, &request);
    tracing::info!(user = %who.user.id, link = %request.id, "link requested");
    Ok(Json(request))
}

#[utoipa::path(get, path = "/v1/links/{id}", tag = "linking", params(("id" = String, Path, description = "A link request ID")),
    responses((status = 200, description = "The request", body = LinkRequest)))]
/// The new browser's view of its request; an approval is handed over once, then consumed.
pub async fn get(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<LinkRequest>> {
    let request = state
        .db
        .call(move |conn| links::take(conn, &who.user.id, &who.session_hash, &id))
        .await?;
    Ok(Json(request))
}

#[utoipa::path(post, path = "/v1/links/{id}/accept", tag = "linking", params(("id" = String, Path, description = "A link request ID")), request_body = LinkAccept,
    responses((status = 200, description = "Accepted", body = LinkRequest)))]
/// A running browser answers a pending request with its key; the first one wins.
pub async fn accept(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LinkAccept>,
) -> ApiResult<Json<LinkRequest>> {
    check_key(&req.ephemeral_public)?;
    let (request, others) = state
        .db
        .call(move |conn| {
            links::accept(
                conn,
                &who.user.id,
                &id,
                &req.device_id,
                req.ephemeral_public,
            )
        })
        .await?;
    // The user's other browsers drop the request: one of them is handling it.
    push(&state, &others, &request);
    Ok(Json(request))
}

#[utoipa::path(post, path = "/v1/links/{id}/reveal", tag = "linking", params(("id" = String, Path, description = "A link request ID")), request_body = LinkReveal,
    responses((status = 200, description = "Revealed", body = LinkRequest)))]
/// The asking browser reveals its key once a running browser has answered.
pub async fn reveal(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LinkReveal>,
) -> ApiResult<Json<LinkRequest>> {
    check_key(&req.ephemeral_public)?;
    let (request, running) = state
        .db
        .call(move |conn| {
            links::reveal(
                conn,
                &who.user.id,
                &who.session_hash,
                &id,
                req.ephemeral_public,
            )
        })
        .await?;
    push(&state, &running, &request);
    Ok(Json(request))
}

#[utoipa::path(post, path = "/v1/links/{id}/approve", tag = "linking", params(("id" = String, Path, description = "A link request ID")), request_body = LinkApprove,
    responses((status = 200, description = "Approved", body = crate::openapi::Approved)))]
pub async fn approve(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LinkApprove>,
) -> ApiResult<Json<serde_json::Value>> {
    if req.sealed.is_empty() || req.sealed.len() > MAX_SEALED {
        return Err(ApiError::bad_request(
            "bad_payload",
            "the sealed bundle is empty or too large",
        ));
    }
    answer(&state, who, id, Some(req)).await
}

#[utoipa::path(post, path = "/v1/links/{id}/decline", tag = "linking", params(("id" = String, Path, description = "A link request ID")),
    responses((status = 200, description = "Declined", body = crate::openapi::Declined)))]
pub async fn decline(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    answer(&state, who, id, None).await
}

async fn answer(
    state: &SharedState,
    who: AuthUser,
    id: String,
    approval: Option<LinkApprove>,
) -> ApiResult<Json<serde_json::Value>> {
    let (status, request, devices) = state
        .db
        .call(move |conn| links::answer(conn, &who.user.id, &id, approval.as_ref()))
        .await?;
    if status == "declined" {
        // Every browser showing the request closes it.
        push(state, &devices, &request);
    }
    Ok(Json(serde_json::json!({ "status": status })))
}
