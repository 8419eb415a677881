//! Sign-in: `POST /v1/auth/jwt`, `POST /v1/auth/ephemeral`, and `GET /v1/me`.

use super::json::ApiJson;
use crate::auth::identity::Identity;
use crate::auth::rate_limit;
use crate::auth::session::{self, AuthUser};
use crate::db::now_secs;
use crate::directory;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::Json;
use sotto_core::protocol::{EphemeralSignIn, JwtSignIn, Session};
use std::net::SocketAddr;

/// How long an ephemeral visitor's session lasts.
const EPHEMERAL_SESSION_SECS: i64 = 24 * 3600;
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Sign-in attempts count per client address (behind `trusted_proxies`, the forwarded one;
/// IPv6 per /64) and per `kind`: visitors (whose token every embedding page holds) and
/// signed-in users have budgets of their own, so a flood of visitor sign-ins from a shared
/// address (an office, a mobile carrier's NAT) does not lock the staff there out.
async fn rate_limit(
    state: &SharedState,
    addr: SocketAddr,
    headers: &HeaderMap,
    kind: &str,
) -> ApiResult<()> {
    let ip = rate_limit::client_ip(addr.ip(), headers, &state.config.trusted_proxies);
    let key = format!("{kind} {}", rate_limit::address_key(ip));
    let across_nodes = state.config.bus.is_some();
    state
        .auth_limiter
        .check_everywhere(&key, &state.db, across_nodes)
        .await
}

/// Counts a sign-in's outcome for `/metrics`: `ok`, or the error code.
fn counted<T>(kind: &str, result: ApiResult<T>) -> ApiResult<T> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    crate::metrics::count(
        &crate::metrics::metrics().sign_ins,
        &[("kind", kind), ("result", outcome)],
    );
    result
}

#[utoipa::path(post, path = "/v1/auth/jwt", tag = "sign-in", request_body = JwtSignIn,
    responses((status = 200, description = "A session", body = Session)))]
pub async fn sign_in_jwt(
    State(state): State<SharedState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<JwtSignIn>,
) -> ApiResult<Json<Session>> {
    counted("jwt", jwt_session(state, addr, headers, req).await).map(Json)
}

async fn jwt_session(
    state: SharedState,
    addr: SocketAddr,
    headers: HeaderMap,
    req: JwtSignIn,
) -> ApiResult<Session> {
    rate_limit(&state, addr, &headers, "jwt").await?;
    if req.jwt.len() > MAX_TOKEN_LEN {
        return Err(ApiError::bad_request(
            "token_too_long",
            "the token is too long",
        ));
    }
    // Everything about the token is checked before the database is touched, so a refused
    // token creates nothing.
    let mut orgs = state.orgs.current();
    // A key this node has not heard of may have been added a moment ago, on any node.
    if orgs
        .for_jwt(req.org.as_deref(), &req.jwt)
        .is_ok_and(|org| org.lacks_kid(&req.jwt))
        && state.orgs.reload_for_unknown_kid(&state.db).await
    {
        orgs = state.orgs.current();
    }
    let org = orgs.for_jwt(req.org.as_deref(), &req.jwt)?;
    let published = state.orgs.published_keys(org, &req.jwt).await;
    let claims = org.verify_also_with(&req.jwt, &published)?;
    let identity = Identity::from_claims(&claims)?;
    // Per account too: many addresses signing in as one user is someone else's token.
    state
        .account_limiter
        .check_everywhere(
            &format!("{}/{}", org.id, identity.key()),
            &state.db,
            state.config.bus.is_some(),
        )
        .await?;
    let exp = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
    let expires_at = exp.min(now_secs() + state.config.session_max_secs);
    let session = open_session(&state, org.id.clone(), expires_at, move |tx, org_id| {
        directory::sign_in(tx, org_id, &identity)
    })
    .await?;
    tracing::info!(org = %session.org, user = %session.user.id, "signed in with a JWT");
    Ok(session)
}

#[utoipa::path(post, path = "/v1/auth/ephemeral", tag = "sign-in", request_body = EphemeralSignIn,
    responses((status = 200, description = "A visitor's session", body = Session)))]
pub async fn sign_in_ephemeral(
    State(state): State<SharedState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<EphemeralSignIn>,
) -> ApiResult<Json<Session>> {
    counted("visitor", visitor_session(state, addr, headers, req).await).map(Json)
}

async fn visitor_session(
    state: SharedState,
    addr: SocketAddr,
    headers: HeaderMap,
    req: EphemeralSignIn,
) -> ApiResult<Session> {
    rate_limit(&state, addr, &headers, "visitor").await?;
    let accepts = |org: &&crate::auth::jwt::OrgAuth| org.accepts_visitor_token(&req.token);
    let orgs = state.orgs.current();
    let org = match &req.org {
        Some(id) => Some(orgs.get(id)?).filter(accepts),
        None => orgs.0.values().find(accepts),
    }
    .ok_or_else(|| {
        ApiError::unauthorized(
            "ephemeral_token_invalid",
            "this ephemeral token is not valid",
        )
    })?;
    for (field, value) in [("name", &req.name), ("email", &req.email)] {
        if value.as_ref().is_some_and(|v| v.len() > 256) {
            return Err(ApiError::bad_request(
                "field_too_long",
                format!("{field} is limited to 256 bytes"),
            ));
        }
    }
    let expires_at = now_secs() + EPHEMERAL_SESSION_SECS.min(state.config.session_max_secs);
    let session = open_session(&state, org.id.clone(), expires_at, move |tx, org_id| {
        let seed = format!("visitor.{}", &crate::db::new_id("v")[2..8]);
        Ok(directory::create_user(
            tx,
            org_id,
            None,
            req.email.as_deref(),
            req.name.as_deref(),
            true,
            false,
            Some(&seed),
        )?)
    })
    .await?;
    Ok(session)
}

/// In one transaction: finds or creates the user with `user_for`, and opens a session for
/// them that ends at `expires_at`.
async fn open_session(
    state: &SharedState,
    org_id: String,
    expires_at: i64,
    user_for: impl FnOnce(&crate::db::Tx<'_>, &str) -> ApiResult<sotto_core::protocol::User>
        + Send
        + 'static,
) -> ApiResult<Session> {
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let user = user_for(&tx, &org_id)?;
            crate::directory::refuse_if_disabled(&tx, &user.id)?;
            let token = session::create(&tx, &user.id, expires_at)?;
            tx.commit()?;
            Ok(Session {
                token,
                expires_at,
                org: org_id,
                user,
            })
        })
        .await
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "sign-in",
    responses((status = 200, description = "Signed out", body = crate::openapi::SignedOut)))]
/// Ends the caller's session: its token stops working at once.
pub async fn logout(
    State(state): State<SharedState>,
    who: AuthUser,
    headers: axum::http::HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    state
        .db
        .call(move |conn| session::revoke(conn, &token))
        .await?;
    state.registry.end_session(
        &who.session_hash,
        "session_revoked",
        "this session was signed out",
    );
    tracing::info!(user = %who.user.id, "signed out");
    Ok(Json(serde_json::json!({ "signed_out": true })))
}

#[utoipa::path(get, path = "/v1/me", tag = "sign-in",
    responses((status = 200, description = "The caller's session", body = crate::openapi::Me)))]
/// The caller's own session, as the server sees it.
pub async fn me(who: AuthUser) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "org": who.org_id, "user": who.user, "expires_at": who.expires_at }))
}
