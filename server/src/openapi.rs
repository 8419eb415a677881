//! The OpenAPI 3.1 description of the whole HTTP API, public and admin, generated from the
//! handlers' `#[utoipa::path]` attributes and the types they take and give, and served at
//! `/v1/openapi.json`. Every operation also answers errors as `{error: {code, message}}`
//! (added here once rather than on each handler), and says which credential it takes.

use crate::admin;
use crate::routes;
use axum::Json;
use serde::{Deserialize, Serialize};
use sotto_core::protocol::{ErrorBody, User};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, SecurityRequirement};
use utoipa::{OpenApi, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct SignedOut {
    pub signed_out: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub org: String,
    pub user: User,
    pub expires_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    pub removed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Published {
    pub published: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BlobStored {
    pub id: String,
    pub size: i64,
}

/// A link request's new status: `approved` or `declined`.
#[derive(Serialize, ToSchema)]
pub struct Approved {
    pub status: String,
}

/// A link request's new status: `declined`.
#[derive(Serialize, ToSchema)]
pub struct Declined {
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    pub status: String,
    pub database: String,
    /// `ok`, or `none` without a bus.
    pub bus: String,
}

#[derive(Deserialize, ToSchema)]
pub struct DemoMint {
    pub user: String,
    pub ttl: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DemoToken {
    pub jwt: String,
    pub org: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrgList {
    pub orgs: Vec<admin::orgs::OrgInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<admin::users::AdminUser>,
    /// Give it as `after` for the next page; absent on the last.
    pub next_after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserUpserted {
    pub user: admin::users::AdminUser,
    pub created: bool,
}

#[derive(Serialize, ToSchema)]
pub struct UserDeleted {
    pub deleted: admin::users::AdminUser,
}

#[derive(Serialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<admin::groups::Group>,
}

#[derive(Serialize, ToSchema)]
pub struct GroupChanged {
    /// The group now; absent once deleted.
    pub group: Option<admin::groups::Group>,
}

#[derive(Serialize, ToSchema)]
pub struct SigningKeyList {
    pub keys: Vec<admin::orgs::SigningKey>,
}

/// The kids an org's JWKS lists now, after a reload.
#[derive(Serialize, ToSchema)]
pub struct JwksReloaded {
    pub kids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VisitorTokenList {
    pub tokens: Vec<admin::orgs::VisitorToken>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<admin::api_keys::KeyInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<admin::webhooks::Webhook>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<admin::audit::Entry>,
}

/// A change that needs no more than "done".
#[derive(Serialize, ToSchema)]
pub struct Done {
    pub done: bool,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sotto server API",
        description = "The relay of an end-to-end encrypted messenger: sign-in, directory, device keys, \
            store-and-forward delivery of sealed envelopes, and the admin API for a site's backend \
            and operators. The server never sees a message's plaintext or a private key."
    ),
    paths(
        routes::auth::sign_in_jwt,
        routes::auth::sign_in_ephemeral,
        routes::auth::logout,
        routes::auth::me,
        routes::directory::resolve,
        routes::directory::user,
        routes::devices::register,
        routes::devices::list,
        routes::devices::remove,
        routes::keys::publish_identity,
        routes::keys::user_keys,
        routes::keys::upload_prekeys,
        routes::keys::claim_bundles,
        routes::envelopes::send,
        routes::blobs::upload,
        routes::blobs::download,
        routes::links::create,
        routes::links::get,
        routes::links::accept,
        routes::links::reveal,
        routes::links::approve,
        routes::links::decline,
        crate::delivery::socket::upgrade,
        routes::health::healthz,
        routes::health::readyz,
        routes::demo::mint,
        routes::demo::mint_script,
        openapi_json,
        routes::admin::list_orgs,
        routes::admin::create_org,
        routes::admin::get_org,
        routes::admin::configure_org,
        routes::admin::list_users,
        routes::admin::get_user,
        routes::admin::upsert_user,
        routes::admin::delete_user,
        routes::admin::disable_user,
        routes::admin::enable_user,
        routes::admin::export_user,
        routes::admin::list_groups,
        routes::admin::get_group,
        routes::admin::set_group,
        routes::admin::rename_group,
        routes::admin::delete_group,
        routes::admin::add_members,
        routes::admin::remove_member,
        routes::admin::list_signing_keys,
        routes::admin::add_signing_key,
        routes::admin::retire_signing_key,
        routes::admin::reload_jwks,
        routes::admin::list_visitor_tokens,
        routes::admin::add_visitor_token,
        routes::admin::revoke_visitor_token,
        routes::admin::list_org_api_keys,
        routes::admin::create_org_api_key,
        routes::admin::list_operator_api_keys,
        routes::admin::create_operator_api_key,
        routes::admin::revoke_api_key,
        routes::admin::list_webhooks,
        routes::admin::create_webhook,
        routes::admin::delete_webhook,
        routes::admin::org_audit,
        routes::admin::operator_audit,
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// Paths that take no credential.
const OPEN: &[&str] = &[
    "/v1/auth/jwt",
    "/v1/auth/ephemeral",
    "/healthz",
    "/readyz",
    "/demo/jwt",
    "/demo/jwt.js",
    "/v1/openapi.json",
    // The socket authenticates with its subprotocols, not a header.
    "/v1/ws",
];

/// The document, with the error answer and credentials added to every operation.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "session",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A session token from POST /v1/auth/jwt or /v1/auth/ephemeral",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An admin API key (sotto_ak_…), made with `sotto-server admin api-keys create`",
                ))
                .build(),
        ),
    );
    let error: RefOr<Response> = utoipa::openapi::ResponseBuilder::new()
        .description("An error: `{error: {code, message}}` with a stable code")
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorBody",
                ))))
                .build(),
        )
        .build()
        .into();
    for (path, item) in doc.paths.paths.iter_mut() {
        let credential = if path.starts_with("/v1/admin/") {
            Some("api_key")
        } else if OPEN.contains(&path.as_str()) {
            None
        } else {
            Some("session")
        };
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            op.responses
                .responses
                .entry("default".into())
                .or_insert_with(|| error.clone());
            if let Some(name) = credential {
                op.security = Some(vec![SecurityRequirement::new::<_, _, &str>(name, [])]);
            }
        }
    }
    doc
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This document", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    static DOC: std::sync::LazyLock<utoipa::openapi::OpenApi> = std::sync::LazyLock::new(document);
    Json(DOC.clone())
}
