//! Server session tokens: 256 random bits handed to the client once; only their SHA-256 is
//! stored. [`AuthUser`] is the extractor that every authenticated route takes.

use crate::db::now_secs;
use crate::db::{Conn, OptionalExtension};
use crate::directory;
use crate::error::ApiError;
use crate::params;
use crate::state::SharedState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use sotto_core::protocol::User;

/// The signed-in caller of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub org_id: String,
    pub user: User,
    pub expires_at: i64,
    /// The SHA-256 of the session token: names this session without holding the token.
    pub session_hash: Vec<u8>,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a session for `user_id` that ends at `expires_at`, returning its token.
pub fn create(conn: &Conn, user_id: &str, expires_at: i64) -> crate::db::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("no random source");
    let token = URL_SAFE_NO_PAD.encode(bytes);
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![hash(&token), user_id, expires_at],
    )?;
    // Expired sessions are of no use to anyone; drop them as new ones arrive.
    conn.execute(
        "DELETE FROM sessions WHERE expires_at < ?1",
        params![now_secs()],
    )?;
    Ok(token)
}

/// Deletes the session that `token` belongs to.
pub fn revoke(conn: &Conn, token: &str) -> crate::db::Result<()> {
    conn.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        params![hash(token)],
    )?;
    Ok(())
}

/// A session's user and expiry. A disabled user's sessions are deleted when they are
/// disabled; checking here too closes the race with a sign-in that read the user just before.
pub(crate) const LOOKUP_SQL: &str =
    "SELECT s.user_id, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_hash = ?1 AND u.disabled = 0";

/// The live session that `token` belongs to.
pub fn lookup(conn: &Conn, token: &str) -> Result<AuthUser, ApiError> {
    let session_hash = hash(token);
    let row: Option<(String, i64)> = conn
        .query_row(LOOKUP_SQL, params![session_hash], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (user_id, expires_at) = row.ok_or_else(|| {
        ApiError::unauthorized("session_invalid", "sign in again: the session is unknown")
    })?;
    if expires_at <= now_secs() {
        return Err(ApiError::unauthorized(
            "session_expired",
            "sign in again: the session has expired",
        ));
    }
    let (org_id, user) = directory::user_by_id(conn, &user_id)?.ok_or_else(|| {
        ApiError::unauthorized("session_invalid", "sign in again: the user is gone")
    })?;
    Ok(AuthUser {
        org_id,
        user,
        expires_at,
        session_hash,
    })
}

impl AuthUser {
    /// The key this session's per-session limits count under.
    pub fn limit_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.session_hash)
    }
}

impl FromRequestParts<SharedState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "session_missing",
                    "send Authorization: Bearer <session token>",
                )
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "session_missing",
                    "send Authorization: Bearer <session token>",
                )
            })?
            .trim()
            .to_owned();
        state.db.read_now(move |conn| lookup(conn, &token)).await
    }
}
