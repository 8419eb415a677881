//! The admin API, `/v1/admin/...`: thin handlers over [`crate::admin`], authenticated by
//! org API keys (`Authorization: Bearer sotto_ak_…`), never by a user's session. What a
//! change must do beyond the database (end sessions on every node, delete blob bytes,
//! re-read the orgs' keys) happens here, after it commits.

use super::json::{ApiJson, ApiQuery};
use crate::admin::users::{By, Cut, UserFields};
use crate::admin::{api_keys, audit, groups, orgs, users, webhooks, Actor, Scope};
use crate::auth::rate_limit;
use crate::error::{ApiError, ApiResult};
use crate::openapi::{
    ApiKeyList, AuditPage, Done, GroupChanged, GroupList, OrgList, SigningKeyList, UserDeleted,
    UserPage, UserUpserted, VisitorTokenList, WebhookList,
};
use crate::state::SharedState;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use sotto_core::protocol::ServerFrame;
use std::net::SocketAddr;

/// The admin routes, to be nested in the app (without the browser CORS layer: nothing
/// in a browser should hold an API key).
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/v1/admin/orgs", get(list_orgs).post(create_org))
        .route("/v1/admin/orgs/{org}", get(get_org).patch(configure_org))
        .route("/v1/admin/orgs/{org}/users", get(list_users))
        .route(
            "/v1/admin/orgs/{org}/users/{user}",
            get(get_user).put(upsert_user).delete(delete_user),
        )
        .route(
            "/v1/admin/orgs/{org}/users/{user}/disable",
            post(disable_user),
        )
        .route(
            "/v1/admin/orgs/{org}/users/{user}/enable",
            post(enable_user),
        )
        .route("/v1/admin/orgs/{org}/users/{user}/export", get(export_user))
        .route("/v1/admin/orgs/{org}/groups", get(list_groups))
        .route(
            "/v1/admin/orgs/{org}/groups/{name}",
            get(get_group)
                .put(set_group)
                .patch(rename_group)
                .delete(delete_group),
        )
        .route(
            "/v1/admin/orgs/{org}/groups/{name}/members",
            post(add_members),
        )
        .route(
            "/v1/admin/orgs/{org}/groups/{name}/members/{tag}",
            axum::routing::delete(remove_member),
        )
        .route(
            "/v1/admin/orgs/{org}/signing-keys",
            get(list_signing_keys).post(add_signing_key),
        )
        .route(
            "/v1/admin/orgs/{org}/signing-keys/{kid}",
            axum::routing::delete(retire_signing_key),
        )
        .route("/v1/admin/orgs/{org}/jwks/reload", post(reload_jwks))
        .route(
            "/v1/admin/orgs/{org}/visitor-tokens",
            get(list_visitor_tokens).post(add_visitor_token),
        )
        .route(
            "/v1/admin/orgs/{org}/visitor-tokens/{id}",
            axum::routing::delete(revoke_visitor_token),
        )
        .route(
            "/v1/admin/orgs/{org}/api-keys",
            get(list_org_api_keys).post(create_org_api_key),
        )
        .route(
            "/v1/admin/api-keys",
            get(list_operator_api_keys).post(create_operator_api_key),
        )
        .route(
            "/v1/admin/api-keys/{id}",
            axum::routing::delete(revoke_api_key),
        )
        .route(
            "/v1/admin/orgs/{org}/webhooks",
            get(list_webhooks).post(create_webhook),
        )
        .route(
            "/v1/admin/orgs/{org}/webhooks/{id}",
            axum::routing::delete(delete_webhook),
        )
        .route("/v1/admin/orgs/{org}/audit", get(org_audit))
        .route("/v1/admin/audit", get(operator_audit))
}

/// The caller of an admin route: a live API key.
pub struct Admin(pub Actor);

impl FromRequestParts<SharedState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        if parts
            .extensions
            .get::<crate::cli::LocalOperator>()
            .is_some()
        {
            return Ok(Admin(Actor::cli()));
        }
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| {
                ApiError::unauthorized("api_key_missing", "send Authorization: Bearer <API key>")
            })?;
        let found = state
            .db
            .read(move |conn| api_keys::authenticate(conn, &presented))
            .await?;
        let Some((actor, last_used)) = found else {
            // Guessing keys is hopeless (256 bits), but each guess costs a query: failures
            // count against the address's sign-in budget.
            let peer = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
            let ip = rate_limit::client_ip(peer, &parts.headers, &state.config.trusted_proxies);
            state
                .auth_limiter
                .check(&format!("admin {}", rate_limit::address_key(ip)))?;
            return Err(ApiError::unauthorized(
                "api_key_invalid",
                "this API key is unknown or revoked",
            ));
        };
        if crate::db::now_secs() - last_used >= 60 {
            let (db, touched) = (state.db.clone(), actor.clone());
            tokio::spawn(async move {
                let _ = db.call(move |conn| api_keys::touch(conn, &touched)).await;
            });
        }
        Ok(Admin(actor))
    }
}

async fn read<T: Send + 'static>(
    state: &SharedState,
    f: impl FnOnce(&crate::db::Conn) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    state.db.read(f).await
}

async fn write<T: Send + 'static>(
    state: &SharedState,
    f: impl FnOnce(&crate::db::Conn) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    state.db.call(move |conn| f(conn)).await
}

/// After a change to keys, tokens or settings: this node uses it at once, others within
/// seconds (see `auth::orgs`).
async fn reload_orgs(state: &SharedState) {
    if let Err(e) = state.orgs.reload(&state.db).await {
        tracing::warn!(error = %e.message, "re-reading the orgs failed");
    }
}

// ---- orgs

#[utoipa::path(get, path = "/v1/admin/orgs", tag = "admin: orgs", responses((status = 200, description = "The orgs the key reaches", body = crate::openapi::OrgList)))]
pub async fn list_orgs(
    State(state): State<SharedState>,
    Admin(a): Admin,
) -> ApiResult<Json<OrgList>> {
    let s = state.clone();
    let list = read(&state, move |c| orgs::list(c, &a, |id| s.orgs.in_file(id))).await?;
    Ok(Json(OrgList { orgs: list }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    id: String,
    name: Option<String>,
    settings: Option<crate::auth::orgs::OrgSettings>,
}

#[utoipa::path(post, path = "/v1/admin/orgs", tag = "admin: orgs", request_body = NewOrg, responses((status = 201, description = "Created (201)", body = orgs::OrgInfo)))]
pub async fn create_org(
    State(state): State<SharedState>,
    Admin(a): Admin,
    ApiJson(req): ApiJson<NewOrg>,
) -> ApiResult<impl IntoResponse> {
    if state.orgs.in_file(&req.id) {
        return Err(ApiError::conflict(
            "org_exists",
            "this org is defined in the configuration file",
        ));
    }
    let change = orgs::OrgChange {
        name: req.name,
        settings: req.settings,
    };
    issuer_free(&state, &req.id, &change)?;
    let org = write(&state, move |c| orgs::create(c, &a, &req.id, &change)).await?;
    reload_orgs(&state).await;
    Ok((StatusCode::CREATED, Json(org)))
}

#[utoipa::path(get, path = "/v1/admin/orgs/{org}", tag = "admin: orgs", params(("org" = String, Path, description = "An org ID")), responses((status = 200, description = "The org", body = orgs::OrgInfo)))]
pub async fn get_org(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
) -> ApiResult<Json<orgs::OrgInfo>> {
    let in_file = state.orgs.in_file(&org);
    Ok(Json(
        read(&state, move |c| orgs::get(c, &a, &org, in_file)).await?,
    ))
}

#[utoipa::path(patch, path = "/v1/admin/orgs/{org}", tag = "admin: orgs", params(("org" = String, Path, description = "An org ID")), request_body = orgs::OrgChange, responses((status = 200, description = "The org now", body = orgs::OrgInfo)))]
pub async fn configure_org(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
    ApiJson(change): ApiJson<orgs::OrgChange>,
) -> ApiResult<Json<orgs::OrgInfo>> {
    issuer_free(&state, &org, &change)?;
    let in_file = state.orgs.in_file(&org);
    let info = write(&state, move |c| {
        orgs::configure(c, &a, &org, in_file, &change)
    })
    .await?;
    reload_orgs(&state).await;
    Ok(Json(info))
}

/// Refuses an issuer another org has: a token naming only its issuer must lead to one
/// org, or one tenant could set another's issuer and take its sign-ins.
fn issuer_free(state: &SharedState, org: &str, change: &orgs::OrgChange) -> ApiResult<()> {
    let Some(issuer) = change.settings.as_ref().and_then(|s| s.issuer.as_deref()) else {
        return Ok(());
    };
    let orgs = state.orgs.current();
    if orgs
        .0
        .values()
        .any(|o| o.id != org && o.issuer.as_deref() == Some(issuer))
    {
        return Err(ApiError::conflict(
            "issuer_taken",
            "another org has this issuer",
        ));
    }
    Ok(())
}

// ---- users

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    #[serde(default)]
    by: By,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/users", tag = "admin: users", params(("org" = String, Path, description = "An org ID"), ListQuery), responses((status = 200, description = "A page of users, by tag", body = crate::openapi::UserPage)))]
pub async fn list_users(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<UserPage>> {
    let limit = q.limit.unwrap_or(100);
    let list = read(&state, move |c| {
        users::list(c, &a, &org, q.q.as_deref(), q.after.as_deref(), limit)
    })
    .await?;
    // The next page starts after the last tag of this one.
    let next = (list.len() as u32 >= limit.clamp(1, users::MAX_LIST))
        .then(|| list.last().map(|u| u.tag.clone()))
        .flatten();
    Ok(Json(UserPage {
        users: list,
        next_after: next,
    }))
}

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/users/{user}", tag = "admin: users", params(("org" = String, Path, description = "An org ID"), ("user" = String, Path, description = "The site's external ID (or, with by=id, Sotto's user ID)"), UserQuery), responses((status = 200, description = "The user", body = users::AdminUser)))]
pub async fn get_user(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, user)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<users::AdminUser>> {
    Ok(Json(
        read(&state, move |c| users::get(c, &a, &org, &user, q.by)).await?,
    ))
}

#[utoipa::path(put, path = "/v1/admin/orgs/{org}/users/{user}", tag = "admin: users", params(("org" = String, Path, description = "An org ID"), ("user" = String, Path, description = "The site's external ID (or, with by=id, Sotto's user ID)")), request_body = UserFields, responses((status = 201, description = "Updated (200) or created (201)", body = crate::openapi::UserUpserted)))]
pub async fn upsert_user(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, user)): Path<(String, String)>,
    ApiJson(fields): ApiJson<UserFields>,
) -> ApiResult<impl IntoResponse> {
    let (user, created) =
        write(&state, move |c| users::upsert(c, &a, &org, &user, &fields)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(UserUpserted { user, created })))
}

/// Ends, on every node, what a disabled or deleted user still had open.
async fn cut_off(state: &SharedState, cut: &Cut, code: &str, message: &str) {
    for session in &cut.sessions {
        state.registry.end_session(session, code, message);
    }
    for device in &cut.devices {
        state.registry.end_device(device, code, message);
    }
    for blob in &cut.stored_blobs {
        if let Err(e) = state.blobs.delete(blob).await {
            tracing::warn!(blob = %blob, error = %e.message, "blob bytes not deleted; the orphan sweep will");
        }
    }
}

#[utoipa::path(post, path = "/v1/admin/orgs/{org}/users/{user}/disable", tag = "admin: users", params(("org" = String, Path, description = "An org ID"), ("user" = String, Path, description = "The site's external ID (or, with by=id, Sotto's user ID)"), UserQuery), responses((status = 200, description = "Disabled: sessions ended, sign-in refused", body = users::AdminUser)))]
pub async fn disable_user(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, user)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<users::AdminUser>> {
    let cut = write(&state, move |c| {
        users::set_disabled(c, &a, &org, &user, q.by, true)
    })
    .await?;
    cut_off(&state, &cut, "user_disabled", "this account was disabled").await;
    Ok(Json(cut.user.expect("set_disabled returns the user")))
}

#[utoipa::path(post, path = "/v1/admin/orgs/{org}/users/{user}/enable", tag = "admin: users", params(("org" = String, Path, description = "An org ID"), ("user" = String, Path, description = "The site's external ID (or, with by=id, Sotto's user ID)"), UserQuery), responses((status = 200, description = "Enabled", body = users::AdminUser)))]
pub async fn enable_user(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, user)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<users::AdminUser>> {
    let cut = write(&state, move |c| {
        users::set_disabled(c, &a, &org, &user, q.by, false)
    })
    .await?;
    Ok(Json(cut.user.expect("set_disabled returns the user")))
}

#[utoipa::path(delete, path = "/v1/admin/orgs/{org}/users/{user}", tag = "admin: users", params(("org" = String, Path, description = "An org ID"), ("user" = String, Path, description = "The site's external ID (or, with by=id, Sotto's user ID)"), UserQuery), responses((status = 200, description = "Deleted, with everything the server held for them", body = crate::openapi::UserDeleted)))]
pub async fn delete_user(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, user)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<UserDeleted>> {
    let cut = write(&state, move |c| users::delete(c, &a, &org, &user, q.by)).await?;
    cut_off(&state, &cut, "user_deleted", "this account was deleted").await;
    Ok(Json(UserDeleted {
        deleted: cut.user.expect("delete returns the user"),
    }))
}

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/users/{user}/export", tag = "admin: users", params(("org" = String, Path, description = "An org ID"), ("user" = String, Path, description = "The site's external ID (or, with by=id, Sotto's user ID)"), UserQuery), responses((status = 200, description = "Everything the server holds about the user", body = Object)))]
pub async fn export_user(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, user)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        read(&state, move |c| users::export(c, &a, &org, &user, q.by)).await?,
    ))
}

// ---- groups

fn group_in_file(state: &SharedState, org: &str, name: &str) -> bool {
    let name = name.trim_start_matches('@').to_ascii_lowercase();
    state
        .config
        .orgs
        .iter()
        .any(|o| o.id == org && o.groups.iter().any(|g| g.name.to_ascii_lowercase() == name))
}

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/groups", tag = "admin: groups", params(("org" = String, Path, description = "An org ID")), responses((status = 200, description = "The groups", body = crate::openapi::GroupList)))]
pub async fn list_groups(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
) -> ApiResult<Json<GroupList>> {
    let list = read(&state, move |c| groups::list(c, &a, &org)).await?;
    Ok(Json(GroupList { groups: list }))
}

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/groups/{name}", tag = "admin: groups", params(("org" = String, Path, description = "An org ID"), ("name" = String, Path, description = "A group name, without @")), responses((status = 200, description = "The group", body = groups::Group)))]
pub async fn get_group(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Json<groups::Group>> {
    Ok(Json(
        read(&state, move |c| groups::get(c, &a, &org, &name)).await?,
    ))
}

async fn change_group(
    state: &SharedState,
    a: Actor,
    org: String,
    name: String,
    change: groups::Change,
) -> ApiResult<Json<GroupChanged>> {
    let in_file = group_in_file(state, &org, &name);
    let group = name.trim_start_matches('@').to_ascii_lowercase();
    let changed = write(state, move |c| {
        groups::change(c, &a, &org, &name, in_file, change)
    })
    .await?;
    let frame = ServerFrame::GroupChanged { group };
    state.registry.push_many(&changed.devices, &frame);
    Ok(Json(GroupChanged {
        group: changed.group,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Members {
    members: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    name: String,
}

#[utoipa::path(put, path = "/v1/admin/orgs/{org}/groups/{name}", tag = "admin: groups", params(("org" = String, Path, description = "An org ID"), ("name" = String, Path, description = "A group name, without @")), request_body = Members, responses((status = 200, description = "The group, made or set", body = crate::openapi::GroupChanged)))]
pub async fn set_group(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, name)): Path<(String, String)>,
    ApiJson(req): ApiJson<Members>,
) -> ApiResult<Json<GroupChanged>> {
    change_group(&state, a, org, name, groups::Change::Set(req.members)).await
}

#[utoipa::path(patch, path = "/v1/admin/orgs/{org}/groups/{name}", tag = "admin: groups", params(("org" = String, Path, description = "An org ID"), ("name" = String, Path, description = "A group name, without @")), request_body = Rename, responses((status = 200, description = "Renamed", body = crate::openapi::GroupChanged)))]
pub async fn rename_group(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, name)): Path<(String, String)>,
    ApiJson(req): ApiJson<Rename>,
) -> ApiResult<Json<GroupChanged>> {
    if group_in_file(&state, &org, &req.name) {
        return Err(ApiError::conflict(
            "tag_taken",
            "the configuration file defines a group of that name",
        ));
    }
    change_group(&state, a, org, name, groups::Change::Rename(req.name)).await
}

#[utoipa::path(delete, path = "/v1/admin/orgs/{org}/groups/{name}", tag = "admin: groups", params(("org" = String, Path, description = "An org ID"), ("name" = String, Path, description = "A group name, without @")), responses((status = 200, description = "Deleted", body = crate::openapi::GroupChanged)))]
pub async fn delete_group(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Json<GroupChanged>> {
    change_group(&state, a, org, name, groups::Change::Delete).await
}

#[utoipa::path(post, path = "/v1/admin/orgs/{org}/groups/{name}/members", tag = "admin: groups", params(("org" = String, Path, description = "An org ID"), ("name" = String, Path, description = "A group name, without @")), request_body = Members, responses((status = 200, description = "Members added", body = crate::openapi::GroupChanged)))]
pub async fn add_members(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, name)): Path<(String, String)>,
    ApiJson(req): ApiJson<Members>,
) -> ApiResult<Json<GroupChanged>> {
    change_group(&state, a, org, name, groups::Change::Add(req.members)).await
}

#[utoipa::path(delete, path = "/v1/admin/orgs/{org}/groups/{name}/members/{tag}", tag = "admin: groups", params(("org" = String, Path, description = "An org ID"), ("name" = String, Path, description = "A group name, without @"), ("tag" = String, Path, description = "A member tag")), responses((status = 200, description = "Member removed", body = crate::openapi::GroupChanged)))]
pub async fn remove_member(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, name, tag)): Path<(String, String, String)>,
) -> ApiResult<Json<GroupChanged>> {
    change_group(&state, a, org, name, groups::Change::Remove(vec![tag])).await
}

// ---- sign-in keys and visitor tokens

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/signing-keys", tag = "admin: sign-in keys", params(("org" = String, Path, description = "An org ID")), responses((status = 200, description = "Keys added at run time", body = crate::openapi::SigningKeyList)))]
pub async fn list_signing_keys(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
) -> ApiResult<Json<SigningKeyList>> {
    let keys = read(&state, move |c| orgs::list_signing_keys(c, &a, &org)).await?;
    Ok(Json(SigningKeyList { keys }))
}

#[utoipa::path(post, path = "/v1/admin/orgs/{org}/signing-keys", tag = "admin: sign-in keys", params(("org" = String, Path, description = "An org ID")), request_body = orgs::NewSigningKey, responses((status = 201, description = "Added (201)", body = orgs::SigningKey)))]
pub async fn add_signing_key(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
    ApiJson(key): ApiJson<orgs::NewSigningKey>,
) -> ApiResult<impl IntoResponse> {
    let added = write(&state, move |c| orgs::add_signing_key(c, &a, &org, &key)).await?;
    reload_orgs(&state).await;
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(delete, path = "/v1/admin/orgs/{org}/signing-keys/{kid}", tag = "admin: sign-in keys", params(("org" = String, Path, description = "An org ID"), ("kid" = String, Path, description = "The key's kid")), responses((status = 200, description = "Retired", body = crate::openapi::Done)))]
pub async fn retire_signing_key(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, kid)): Path<(String, String)>,
) -> ApiResult<Json<Done>> {
    write(&state, move |c| orgs::retire_signing_key(c, &a, &org, &kid)).await?;
    reload_orgs(&state).await;
    Ok(Json(Done { done: true }))
}

#[utoipa::path(post, path = "/v1/admin/orgs/{org}/jwks/reload", tag = "admin: sign-in keys", params(("org" = String, Path, description = "An org ID")), responses((status = 200, description = "The JWKS as fetched now; keys it no longer lists stop signing anyone in, on every node", body = crate::openapi::JwksReloaded), (status = 409, description = "The org has no jwks_url"), (status = 429, description = "Reloaded a moment ago (at most once per 10 s per org)"), (status = 502, description = "The JWKS could not be fetched; nothing changed")))]
pub async fn reload_jwks(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
) -> ApiResult<Json<crate::openapi::JwksReloaded>> {
    a.require(&org, Scope::Admin)?;
    let kids = state.orgs.reload_jwks(&state.db, &a, &org).await?;
    Ok(Json(crate::openapi::JwksReloaded { kids }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Named {
    name: Option<String>,
}

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/visitor-tokens", tag = "admin: visitor tokens", params(("org" = String, Path, description = "An org ID")), responses((status = 200, description = "Tokens, without their secrets", body = crate::openapi::VisitorTokenList)))]
pub async fn list_visitor_tokens(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
) -> ApiResult<Json<VisitorTokenList>> {
    let tokens = read(&state, move |c| orgs::list_visitor_tokens(c, &a, &org)).await?;
    Ok(Json(VisitorTokenList { tokens }))
}

#[utoipa::path(post, path = "/v1/admin/orgs/{org}/visitor-tokens", tag = "admin: visitor tokens", params(("org" = String, Path, description = "An org ID")), request_body = Named, responses((status = 201, description = "Made (201); the token is shown this once", body = orgs::VisitorToken)))]
pub async fn add_visitor_token(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<Named>,
) -> ApiResult<impl IntoResponse> {
    let made = write(&state, move |c| {
        orgs::add_visitor_token(c, &a, &org, req.name.as_deref())
    })
    .await?;
    reload_orgs(&state).await;
    Ok((StatusCode::CREATED, Json(made)))
}

#[utoipa::path(delete, path = "/v1/admin/orgs/{org}/visitor-tokens/{id}", tag = "admin: visitor tokens", params(("org" = String, Path, description = "An org ID"), ("id" = String, Path, description = "A visitor token ID")), responses((status = 200, description = "Revoked", body = crate::openapi::Done)))]
pub async fn revoke_visitor_token(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Json<Done>> {
    write(&state, move |c| {
        orgs::revoke_visitor_token(c, &a, &org, &id)
    })
    .await?;
    reload_orgs(&state).await;
    Ok(Json(Done { done: true }))
}

// ---- API keys

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    scope: String,
    name: Option<String>,
}

async fn create_api_key(
    state: &SharedState,
    a: Actor,
    org: Option<String>,
    req: NewApiKey,
) -> ApiResult<(StatusCode, Json<api_keys::NewKey>)> {
    let scope = Scope::parse(&req.scope)?;
    let key = write(state, move |c| {
        api_keys::create(c, &a, org.as_deref(), scope, req.name.as_deref())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(post, path = "/v1/admin/orgs/{org}/api-keys", tag = "admin: api keys", params(("org" = String, Path, description = "An org ID")), request_body = NewApiKey, responses((status = 201, description = "Made (201); the key is shown this once", body = api_keys::NewKey)))]
pub async fn create_org_api_key(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<NewApiKey>,
) -> ApiResult<impl IntoResponse> {
    create_api_key(&state, a, Some(org), req).await
}

#[utoipa::path(post, path = "/v1/admin/api-keys", tag = "admin: api keys", request_body = NewApiKey, responses((status = 201, description = "Made (201); the key is shown this once", body = api_keys::NewKey)))]
pub async fn create_operator_api_key(
    State(state): State<SharedState>,
    Admin(a): Admin,
    ApiJson(req): ApiJson<NewApiKey>,
) -> ApiResult<impl IntoResponse> {
    create_api_key(&state, a, None, req).await
}

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/api-keys", tag = "admin: api keys", params(("org" = String, Path, description = "An org ID")), responses((status = 200, description = "The org's keys, without secrets", body = crate::openapi::ApiKeyList)))]
pub async fn list_org_api_keys(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
) -> ApiResult<Json<ApiKeyList>> {
    let keys = read(&state, move |c| api_keys::list(c, &a, Some(&org))).await?;
    Ok(Json(ApiKeyList { api_keys: keys }))
}

#[utoipa::path(get, path = "/v1/admin/api-keys", tag = "admin: api keys", responses((status = 200, description = "Operator keys, without secrets", body = crate::openapi::ApiKeyList)))]
pub async fn list_operator_api_keys(
    State(state): State<SharedState>,
    Admin(a): Admin,
) -> ApiResult<Json<ApiKeyList>> {
    let keys = read(&state, move |c| api_keys::list(c, &a, None)).await?;
    Ok(Json(ApiKeyList { api_keys: keys }))
}

#[utoipa::path(delete, path = "/v1/admin/api-keys/{id}", tag = "admin: api keys", params(("id" = String, Path, description = "An API key ID (ak_…)")), responses((status = 200, description = "Revoked", body = crate::openapi::Done)))]
pub async fn revoke_api_key(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Done>> {
    write(&state, move |c| api_keys::revoke(c, &a, &id)).await?;
    Ok(Json(Done { done: true }))
}

// ---- webhooks

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/webhooks", tag = "admin: webhooks", params(("org" = String, Path, description = "An org ID")), responses((status = 200, description = "Webhooks, without secrets", body = crate::openapi::WebhookList)))]
pub async fn list_webhooks(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
) -> ApiResult<Json<WebhookList>> {
    let hooks = read(&state, move |c| webhooks::list(c, &a, &org)).await?;
    Ok(Json(WebhookList { webhooks: hooks }))
}

#[utoipa::path(post, path = "/v1/admin/orgs/{org}/webhooks", tag = "admin: webhooks", params(("org" = String, Path, description = "An org ID")), request_body = webhooks::NewWebhook, responses((status = 201, description = "Made (201); the signing secret is shown this once", body = webhooks::Webhook)))]
pub async fn create_webhook(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
    ApiJson(hook): ApiJson<webhooks::NewWebhook>,
) -> ApiResult<impl IntoResponse> {
    let allow_private = state.config.allow_private_webhook_urls;
    let made = write(&state, move |c| {
        webhooks::create(c, &a, &org, &hook, allow_private)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(made)))
}

#[utoipa::path(delete, path = "/v1/admin/orgs/{org}/webhooks/{id}", tag = "admin: webhooks", params(("org" = String, Path, description = "An org ID"), ("id" = String, Path, description = "A webhook ID")), responses((status = 200, description = "Deleted", body = crate::openapi::Done)))]
pub async fn delete_webhook(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Json<Done>> {
    write(&state, move |c| webhooks::delete(c, &a, &org, &id)).await?;
    Ok(Json(Done { done: true }))
}

// ---- audit

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    before_ms: Option<i64>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/admin/orgs/{org}/audit", tag = "admin: audit", params(("org" = String, Path, description = "An org ID"), AuditQuery), responses((status = 200, description = "Newest first", body = crate::openapi::AuditPage)))]
pub async fn org_audit(
    State(state): State<SharedState>,
    Admin(a): Admin,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let entries = read(&state, move |c| {
        audit::list(c, &a, Some(&org), q.before_ms, q.limit.unwrap_or(100))
    })
    .await?;
    Ok(Json(AuditPage { entries }))
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin: audit", params(AuditQuery), responses((status = 200, description = "Newest first: orgs and operator keys", body = crate::openapi::AuditPage)))]
pub async fn operator_audit(
    State(state): State<SharedState>,
    Admin(a): Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let entries = read(&state, move |c| {
        audit::list(c, &a, None, q.before_ms, q.limit.unwrap_or(100))
    })
    .await?;
    Ok(Json(AuditPage { entries }))
}
