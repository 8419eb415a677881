//! Demo mode only: an org "demo" with users alice, bob and carol and a group @support, and
//! `POST /demo/jwt`, which signs a sign-in token for any of them. It stands in for a site's
//! own backend, and the route does not exist unless the server runs with `--demo`.

use super::json::ApiJson;
use crate::auth::jwt::{OrgAuth, VerifyingKey};
use crate::db::Conn;
use crate::directory;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;

pub const DEMO_ORG: &str = "demo";
pub const DEMO_EPHEMERAL_TOKEN: &str = "demo-visitor-token";
pub const DEMO_USERS: &[(&str, &str)] = &[
    ("alice", "Alice Adams"),
    ("bob", "Bob Brown"),
    ("carol", "Carol Chen"),
];

/// The demo org's sign-in rules, with a fresh random secret per run.
pub fn org(secret: &[u8]) -> OrgAuth {
    OrgAuth {
        id: DEMO_ORG.into(),
        name: Some("Sotto demo".into()),
        keys: vec![VerifyingKey::hs256(Some("demo".into()), secret)],
        audience: vec![],
        issuer: None,
        leeway: 30,
        ephemeral_tokens: vec![DEMO_EPHEMERAL_TOKEN.into()],
        visitor_token_hashes: vec![],
        in_file: true,
        jwks_url: None,
        visitor_tags: vec!["support".into()],
    }
}

/// Creates the demo users and @support (bob and carol) unless they exist.
pub fn seed(conn: &mut Conn) -> Result<(), ApiError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO orgs (id, name) VALUES (?1, 'Sotto demo') ON CONFLICT DO NOTHING",
        crate::params![DEMO_ORG],
    )?;
    for (id, name) in DEMO_USERS {
        let identity = crate::auth::identity::Identity::Upsert {
            external_id: (*id).into(),
            email: Some(format!("{id}@demo.sotto.invalid")),
            name: Some((*name).into()),
            email_verified: true,
        };
        directory::sign_in(&tx, DEMO_ORG, &identity)?;
    }
    directory::add_group(&tx, DEMO_ORG, "support", &["bob".into(), "carol".into()])?;
    tx.commit()?;
    Ok(())
}

#[derive(Deserialize)]
pub struct MintRequest {
    user: String,
    /// Lifetime of the token in seconds (5 to 3600, default 3600): short ones let the
    /// examples show what happens when a token expires.
    ttl: Option<i64>,
}

#[utoipa::path(post, path = "/demo/jwt", tag = "demo", description = "Only with --demo: a sign-in token for a demo user.",
    request_body = crate::openapi::DemoMint,
    responses((status = 200, description = "A token", body = crate::openapi::DemoToken)))]
pub async fn mint(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<MintRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let jwt = sign(&state, &req)?;
    Ok(Json(json!({ "jwt": jwt, "org": DEMO_ORG })))
}

#[utoipa::path(get, path = "/demo/jwt.js", tag = "demo", description = "Only with --demo: a script that sets SERVER_GENERATED_JWT.",
    params(("user" = String, Query, description = "alice, bob or carol"), ("ttl" = Option<i64>, Query, description = "Lifetime in seconds")),
    responses((status = 200, description = "The script", body = String, content_type = "text/javascript")))]
/// `GET /demo/jwt.js?user=alice`: the token as a script that sets `SERVER_GENERATED_JWT`,
/// as a site's server would render it into a page (the Forsta tutorial example uses it).
pub async fn mint_script(
    State(state): State<SharedState>,
    Query(req): Query<MintRequest>,
) -> ApiResult<impl IntoResponse> {
    let jwt = sign(&state, &req)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "window.SERVER_GENERATED_JWT = {};\n",
            serde_json::Value::String(jwt)
        ),
    ))
}

fn sign(state: &SharedState, req: &MintRequest) -> ApiResult<String> {
    let secret = state
        .demo_secret
        .as_ref()
        .ok_or_else(|| ApiError::not_found("not_found", "no such route"))?;
    let Some((id, name)) = DEMO_USERS.iter().find(|(id, _)| *id == req.user) else {
        return Err(ApiError::bad_request(
            "unknown_demo_user",
            "choose alice, bob or carol",
        ));
    };
    let now = crate::db::now_secs();
    let claims = json!({
        "user": { "id": id, "name": name, "email": format!("{id}@demo.sotto.invalid") },
        "iat": now,
        "exp": now + req.ttl.unwrap_or(3600).clamp(5, 3600),
    });
    let header = Header {
        kid: Some("demo".into()),
        ..Header::default()
    };
    encode(&header, &claims, &EncodingKey::from_secret(secret)).map_err(ApiError::internal)
}
