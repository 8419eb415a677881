//! Device linking relay: a new browser of a user posts its ephemeral public key
//! (`POST /v1/links`); the user's connected browsers are shown the request (a `link_request`
//! frame) and one approves it with a bundle sealed to that key (`POST /v1/links/{id}/approve`)
//! or declines it; the new browser polls `GET /v1/links/{id}` and takes the approval once.
//! Requests are single-use and live ten minutes. The server relays; it cannot open the bundle.

use super::json::ApiJson;
use crate::auth::session::AuthUser;
use crate::db::{new_id, now_secs};
use crate::error::{ApiError, ApiResult};
use crate::routes::devices::owns_device;
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rusqlite::{params, Connection, OptionalExtension, Row};
use sotto_core::protocol::{LinkApprove, LinkCreate, LinkRequest, ServerFrame};

/// How long a request may wait for an answer.
pub const LINK_TTL_SECS: i64 = 600;
/// Open requests one user may have at once.
const MAX_PENDING: i64 = 5;
/// Largest sealed bundle (recent history travels in it).
pub const MAX_SEALED: usize = 4 * 1024 * 1024;

fn from_row(r: &Row<'_>) -> rusqlite::Result<LinkRequest> {
    Ok(LinkRequest {
        id: r.get(0)?,
        ephemeral_public: r.get(1)?,
        status: r.get(2)?,
        expires_at: r.get(3)?,
        sealed: r.get(4)?,
    })
}

const COLUMNS: &str = "id, ephemeral_public, status, expires_at, sealed";

/// The user's requests still waiting for an answer (without their bundles).
pub fn pending_for_user(conn: &Connection, user_id: &str) -> Result<Vec<LinkRequest>, ApiError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM link_requests WHERE user_id = ?1 AND status = 'pending' AND expires_at > ?2 ORDER BY created_at"
    ))?;
    let rows = stmt.query_map(params![user_id, now_secs()], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The caller's request `id`, refusing unknown and expired ones.
fn own_request(conn: &Connection, user_id: &str, id: &str) -> Result<LinkRequest, ApiError> {
    let request = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM link_requests WHERE id = ?1 AND user_id = ?2"),
            params![id, user_id],
            from_row,
        )
        .optional()?
        .ok_or_else(|| ApiError::not_found("unknown_link", "no such link request"))?;
    if request.expires_at <= now_secs() && request.status != "consumed" {
        return Err(ApiError::new(
            StatusCode::GONE,
            "link_expired",
            "the link request has expired; start again",
        ));
    }
    Ok(request)
}

pub async fn create(
    State(state): State<SharedState>,
    who: AuthUser,
    ApiJson(req): ApiJson<LinkCreate>,
) -> ApiResult<Json<LinkRequest>> {
    sotto_core::keys::parse_public_key(&req.ephemeral_public)
        .map_err(|e| ApiError::bad_request("invalid_key", e.to_string()))?;
    let user_id = who.user.id.clone();
    let (request, devices) = state
        .db
        .call(move |conn| {
            let open: i64 = conn.query_row(
                "SELECT COUNT(*) FROM link_requests WHERE user_id = ?1 AND status = 'pending' AND expires_at > ?2",
                params![user_id, now_secs()],
                |r| r.get(0),
            )?;
            if open >= MAX_PENDING {
                return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_links", "too many link requests are open"));
            }
            let request = LinkRequest {
                id: new_id("l"),
                ephemeral_public: req.ephemeral_public,
                status: "pending".into(),
                expires_at: now_secs() + LINK_TTL_SECS,
                sealed: None,
            };
            conn.execute(
                "INSERT INTO link_requests (id, user_id, ephemeral_public, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![request.id, user_id, request.ephemeral_public, now_secs(), request.expires_at],
            )?;
            let mut stmt = conn.prepare_cached("SELECT id FROM devices WHERE user_id = ?1")?;
            let devices = stmt.query_map(params![user_id], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
            Ok((request, devices))
        })
        .await?;
    let frame = ServerFrame::LinkRequest(request.clone());
    for d in &devices {
        state.registry.push(d, &frame);
    }
    tracing::info!(user = %who.user.id, link = %request.id, "link requested");
    Ok(Json(request))
}

/// The new browser's view of its request; an approval is handed over once, then consumed.
pub async fn get(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<LinkRequest>> {
    let request = state
        .db
        .call(move |conn| {
            let mut request = own_request(conn, &who.user.id, &id)?;
            match request.status.as_str() {
                "approved" => {
                    conn.execute(
                        "UPDATE link_requests SET status = 'consumed', sealed = NULL WHERE id = ?1",
                        params![id],
                    )?;
                }
                "consumed" => {
                    return Err(ApiError::new(
                        StatusCode::GONE,
                        "link_used",
                        "this link request has already been used",
                    ));
                }
                _ => request.sealed = None,
            }
            Ok(request)
        })
        .await?;
    Ok(Json(request))
}

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
    let status = state
        .db
        .call(move |conn| {
            let request = own_request(conn, &who.user.id, &id)?;
            if request.status != "pending" {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "link_answered",
                    "this link request has already been answered",
                ));
            }
            let status = match approval {
                Some(a) => {
                    if !owns_device(conn, &who.user.id, &a.device_id)? {
                        return Err(ApiError::forbidden(
                            "unknown_device",
                            "the approving device is not registered to you",
                        ));
                    }
                    conn.execute(
                        "UPDATE link_requests SET status = 'approved', sealed = ?1 WHERE id = ?2",
                        params![a.sealed, id],
                    )?;
                    "approved"
                }
                None => {
                    conn.execute(
                        "UPDATE link_requests SET status = 'declined' WHERE id = ?1",
                        params![id],
                    )?;
                    "declined"
                }
            };
            tracing::info!(user = %who.user.id, link = %id, status, "link answered");
            Ok(status)
        })
        .await?;
    Ok(Json(serde_json::json!({ "status": status })))
}
