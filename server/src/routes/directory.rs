//! Directory look-ups: `POST /v1/resolve` and `GET /v1/users/{id}`.

use super::json::ApiJson;
use crate::auth::session::AuthUser;
use crate::directory;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::Json;
use sotto_core::protocol::{ResolveRequest, Resolved, User};

pub async fn resolve(
    State(state): State<SharedState>,
    who: AuthUser,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<Json<Resolved>> {
    let resolved = state
        .db
        .call(move |conn| directory::resolve(conn, &who.org_id, &req.expr))
        .await?;
    Ok(Json(resolved))
}

pub async fn user(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    let found = state
        .db
        .call(move |conn| directory::user_by_id(conn, &id))
        .await?;
    match found {
        Some((org, user)) if org == who.org_id => Ok(Json(user)),
        _ => Err(ApiError::not_found(
            "unknown_user",
            "no such user in your org",
        )),
    }
}
