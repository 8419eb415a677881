//! Directory look-ups: `POST /v1/resolve` and `GET /v1/users/{id}`.

use super::json::ApiJson;
use crate::auth::session::AuthUser;
use crate::directory;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::Json;
use sotto_core::protocol::{ResolveRequest, Resolved, User};

#[utoipa::path(post, path = "/v1/resolve", tag = "directory", request_body = ResolveRequest,
    responses((status = 200, description = "The users the expression names", body = Resolved)))]
pub async fn resolve(
    State(state): State<SharedState>,
    who: AuthUser,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<Json<Resolved>> {
    let visitor_tags = if who.user.ephemeral {
        Some(state.orgs.current().get(&who.org_id)?.visitor_tags.clone())
    } else {
        None
    };
    let (org, user) = (who.org_id.clone(), who.user.id.clone());
    let resolved = state
        .db
        .read(move |conn| match visitor_tags {
            Some(tags) => {
                directory::resolve_for_visitor(conn, &who.org_id, &tags, &who.user.tag, &req.expr)
            }
            None => directory::resolve(conn, &who.org_id, &req.expr),
        })
        .await?;
    if !resolved.groups.is_empty() {
        // The caller's threads made from this follow its groups: it hears of their changes.
        // Best effort: a missed record costs a missed notice, never the answer.
        let groups = resolved.groups.clone();
        let recorded = state
            .db
            .call(move |conn| directory::follow(conn, &org, &user, &groups))
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "who follows a group was not recorded");
        }
    }
    Ok(Json(resolved))
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = "directory", params(("id" = String, Path, description = "A user ID")),
    responses((status = 200, description = "The user", body = User)))]
pub async fn user(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    let visitor_tags = if who.user.ephemeral {
        Some(state.orgs.current().get(&who.org_id)?.visitor_tags.clone())
    } else {
        None
    };
    let found = state
        .db
        .read(move |conn| {
            let found = directory::user_by_id(conn, &id)?;
            Ok::<_, ApiError>(match (found, visitor_tags) {
                (Some((org, _)), _) if org != who.org_id => None,
                (Some((_, user)), None) => Some(user),
                // A visitor sees itself and the people it may write to, by name only.
                (Some((_, user)), Some(tags)) => {
                    directory::visitor_may_name(conn, &who.org_id, &tags, &who.user.tag, &user.tag)?
                        .then(|| directory::for_visitor(user))
                }
                (None, _) => None,
            })
        })
        .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found("unknown_user", "no such user in your org"))
}
