//! API keys: 256 random bits shown once at creation; only their SHA-256 is stored, so a
//! copy of the database makes no API call (it does hold run-time HS256 sign-in secrets
//! and webhook secrets, which must be kept as they are: protect it like the file). Each has a scope and belongs to one org, or (an
//! operator key) to none, and then reaches every org.

use super::{audit, check_text, Actor, Scope};
use crate::db::{new_id, now_secs, Conn, OptionalExtension};
use crate::error::ApiError;
use crate::params;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Every key starts so, which lets secret scanners and people recognise one.
pub const PREFIX: &str = "sotto_ak_";

/// SHA-256, hex: how keys and visitor tokens are stored.
pub fn hash_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A key as listed (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub org: Option<String>,
    pub scope: Scope,
    pub name: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// A new key: `key` is the secret, shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    pub key: String,
}

pub fn create(
    conn: &Conn,
    actor: &Actor,
    org: Option<&str>,
    scope: Scope,
    name: Option<&str>,
) -> Result<NewKey, ApiError> {
    match org {
        Some(org) => {
            actor.require(org, Scope::Admin)?;
            super::orgs::require_org(conn, org)?;
        }
        None => {
            actor.require_operator()?;
            if scope == Scope::Backend {
                return Err(ApiError::bad_request(
                    "bad_scope",
                    "a backend key belongs to one org: give the org (an operator key has the admin scope)",
                ));
            }
        }
    }
    if let Some(name) = name {
        check_text("name", name, 128)?;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    let key = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let info = KeyInfo {
        id: new_id("ak"),
        org: org.map(str::to_owned),
        scope,
        name: name.map(str::to_owned),
        created_at: now_secs(),
        revoked_at: None,
        last_used_at: None,
    };
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO api_keys (id, org_id, scope, name, secret_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            info.id,
            info.org,
            scope.as_str(),
            info.name,
            hash_hex(&key),
            info.created_at
        ],
    )?;
    audit::record(
        &tx,
        actor,
        org,
        "api_key.create",
        Some(&info.id),
        serde_json::json!({ "scope": scope, "name": info.name }),
    )?;
    tx.commit()?;
    Ok(NewKey { info, key })
}

fn key_from_row(r: &crate::db::Row<'_>) -> crate::db::Result<KeyInfo> {
    let scope: String = r.get(2)?;
    Ok(KeyInfo {
        id: r.get(0)?,
        org: r.get(1)?,
        scope: Scope::parse(&scope).unwrap_or(Scope::Backend),
        name: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
        last_used_at: r.get(6)?,
    })
}

const KEY_COLUMNS: &str = "id, org_id, scope, name, created_at, revoked_at, last_used_at";

/// The keys of `org` (or, with `None`, the operator keys).
pub fn list(conn: &Conn, actor: &Actor, org: Option<&str>) -> Result<Vec<KeyInfo>, ApiError> {
    match org {
        Some(org) => actor.require(org, Scope::Admin)?,
        None => actor.require_operator()?,
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id IS NOT DISTINCT FROM ?1 ORDER BY created_at, id"
    ))?;
    let keys = stmt
        .query_map(params![org], key_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(keys)
}

/// Revokes a key: it stops working at once, on every node.
pub fn revoke(conn: &Conn, actor: &Actor, id: &str) -> Result<KeyInfo, ApiError> {
    let tx = conn.transaction()?;
    let key = tx
        .query_row(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
            params![id],
            key_from_row,
        )
        .optional()?
        .filter(|k| actor.org.is_none() || k.org == actor.org)
        .ok_or_else(|| ApiError::not_found("unknown_api_key", "no such API key"))?;
    match &key.org {
        Some(org) => actor.require(org, Scope::Admin)?,
        None => actor.require_operator()?,
    }
    tx.execute(
        "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
        params![now_secs(), id],
    )?;
    audit::record(
        &tx,
        actor,
        key.org.as_deref(),
        "api_key.revoke",
        Some(id),
        serde_json::Value::Null,
    )?;
    tx.commit()?;
    Ok(key)
}

/// The caller that `presented` names, if it is a live key. Notes when it was last used (at
/// most once a minute, so calls do not each write).
pub fn authenticate(conn: &Conn, presented: &str) -> Result<Option<(Actor, i64)>, ApiError> {
    if !presented.starts_with(PREFIX) || presented.len() > 128 {
        return Ok(None);
    }
    let row = conn
        .query_row(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL"
            ),
            params![hash_hex(presented)],
            key_from_row,
        )
        .optional()?;
    Ok(row.map(|k| {
        (
            Actor {
                name: format!("api_key:{}", k.id),
                org: k.org,
                scope: k.scope,
            },
            k.last_used_at.unwrap_or(0),
        )
    }))
}

/// Records that the key `actor` names was used now.
pub fn touch(conn: &Conn, actor: &Actor) -> crate::db::Result<()> {
    if let Some(id) = actor.name.strip_prefix("api_key:") {
        conn.execute(
            "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2",
            params![now_secs(), id],
        )?;
    }
    Ok(())
}
