//! Tenants and how people sign in to them: orgs created at run time (beside the
//! configuration file's), their sign-in settings, the sign-in keys they accept (added and
//! retired by `kid` without a restart) and their visitor tokens.

use super::api_keys::hash_hex;
use super::{audit, check_text, Actor, Scope};
use crate::auth::orgs::{key_from_row, OrgSettings};
use crate::db::{new_id, now_secs, Conn, OptionalExtension};
use crate::error::ApiError;
use crate::params;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Sign-in keys one org may add at run time (each is parsed on every node at each change).
pub const MAX_KEYS_PER_ORG: i64 = 50;
/// Live visitor tokens per org (a visitor's sign-in compares against each).
pub const MAX_VISITOR_TOKENS_PER_ORG: i64 = 50;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgInfo {
    pub id: String,
    pub name: Option<String>,
    /// Whether the configuration file defines it (its settings are then the file's).
    pub in_file: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<OrgSettings>,
    pub users: i64,
}

/// Refuses an org that does not exist (`404 unknown_org`).
pub fn require_org(conn: &Conn, org: &str) -> Result<(), ApiError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM orgs WHERE id = ?1)",
        params![org],
        |r| r.get(0),
    )?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "unknown_org",
            format!("no org {org:?} on this server"),
        ))
    }
}

fn org_ids_ok(id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(ApiError::bad_request(
            "bad_org_id",
            "an org ID is 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgChange {
    pub name: Option<String>,
    pub settings: Option<OrgSettings>,
}

/// Creates an org (operators only).
pub fn create(
    conn: &Conn,
    actor: &Actor,
    id: &str,
    change: &OrgChange,
) -> Result<OrgInfo, ApiError> {
    actor.require_operator()?;
    org_ids_ok(id)?;
    if let Some(name) = &change.name {
        check_text("name", name, 256)?;
    }
    let settings = change.settings.clone().unwrap_or_default();
    settings.check()?;
    let tx = conn.transaction()?;
    let inserted = tx.execute(
        "INSERT INTO orgs (id, name, settings, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO NOTHING",
        params![
            id,
            change.name,
            serde_json::to_string(&settings).map_err(ApiError::internal)?,
            now_secs()
        ],
    )?;
    if inserted == 0 {
        return Err(ApiError::conflict(
            "org_exists",
            format!("org {id:?} exists already"),
        ));
    }
    audit::record(
        &tx,
        actor,
        // An operator's act: in the operator's log, not the new tenant's.
        None,
        "org.create",
        Some(id),
        serde_json::json!({ "name": change.name }),
    )?;
    crate::auth::orgs::changed(&tx)?;
    tx.commit()?;
    get(conn, actor, id, false)
}

/// Changes an org's name or settings. An org of the configuration file is changed there.
pub fn configure(
    conn: &Conn,
    actor: &Actor,
    id: &str,
    in_file: bool,
    change: &OrgChange,
) -> Result<OrgInfo, ApiError> {
    actor.require(id, Scope::Admin)?;
    require_org(conn, id)?;
    if in_file {
        return Err(ApiError::conflict(
            "org_in_config",
            "this org is defined in the server's configuration file: change it there",
        ));
    }
    if let Some(name) = &change.name {
        check_text("name", name, 256)?;
    }
    if let Some(settings) = &change.settings {
        settings.check()?;
    }
    let tx = conn.transaction()?;
    if let Some(name) = &change.name {
        tx.execute("UPDATE orgs SET name = ?1 WHERE id = ?2", params![name, id])?;
    }
    if let Some(settings) = &change.settings {
        tx.execute(
            "UPDATE orgs SET settings = ?1 WHERE id = ?2",
            params![
                serde_json::to_string(settings).map_err(ApiError::internal)?,
                id
            ],
        )?;
    }
    audit::record(
        &tx,
        actor,
        Some(id),
        "org.configure",
        Some(id),
        serde_json::json!({ "name": change.name, "settings": change.settings }),
    )?;
    crate::auth::orgs::changed(&tx)?;
    tx.commit()?;
    get(conn, actor, id, false)
}

pub fn get(conn: &Conn, actor: &Actor, id: &str, in_file: bool) -> Result<OrgInfo, ApiError> {
    actor.require(id, Scope::Backend)?;
    conn.query_row(
        "SELECT id, name, settings, (SELECT COUNT(*) FROM users u WHERE u.org_id = o.id)
         FROM orgs o WHERE id = ?1",
        params![id],
        |r| org_from_row(r, in_file),
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found("unknown_org", format!("no org {id:?} on this server")))
}

fn org_from_row(r: &crate::db::Row<'_>, in_file: bool) -> crate::db::Result<OrgInfo> {
    let settings: Option<String> = r.get(2)?;
    Ok(OrgInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        in_file,
        settings: settings.and_then(|s| serde_json::from_str(&s).ok()),
        users: r.get(3)?,
    })
}

/// Every org (operators), or the caller's own.
pub fn list(
    conn: &Conn,
    actor: &Actor,
    in_file: impl Fn(&str) -> bool,
) -> Result<Vec<OrgInfo>, ApiError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, settings, (SELECT COUNT(*) FROM users u WHERE u.org_id = o.id)
         FROM orgs o WHERE CAST(?1 AS TEXT) IS NULL OR id = ?1 ORDER BY id",
    )?;
    let orgs: Vec<OrgInfo> = stmt
        .query_map(params![actor.org], |r| org_from_row(r, false))?
        .collect::<Result<_, _>>()?;
    Ok(orgs
        .into_iter()
        .map(|o| OrgInfo {
            in_file: in_file(&o.id),
            ..o
        })
        .collect())
}

/// A sign-in key as listed: its public half (or, for HS256, no secret at all).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_pem: Option<String>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSigningKey {
    pub kid: String,
    /// `HS256`, `RS256`, `ES256` or `EdDSA`: the only algorithm this key accepts.
    pub alg: String,
    /// PEM public key (RS256, ES256, EdDSA).
    pub public_key_pem: Option<String>,
    /// HS256 shared secret (at least 32 bytes).
    pub secret: Option<String>,
}

/// Adds a sign-in key; every node accepts it within seconds (at once on this one).
pub fn add_signing_key(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    key: &NewSigningKey,
) -> Result<SigningKey, ApiError> {
    actor.require(org, Scope::Admin)?;
    require_org(conn, org)?;
    check_text("kid", &key.kid, 128)?;
    let material = match (key.alg.as_str(), &key.secret, &key.public_key_pem) {
        ("HS256", Some(secret), None) => secret.clone(),
        ("HS256", _, _) => {
            return Err(ApiError::bad_request(
                "bad_key",
                "an HS256 key needs secret (and no public_key_pem)",
            ))
        }
        (_, None, Some(pem)) if pem.len() <= 16 * 1024 => pem.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "bad_key",
                "this key needs public_key_pem (at most 16 KiB) and no secret",
            ))
        }
    };
    let held: i64 = conn.query_row(
        "SELECT COUNT(*) FROM signing_keys WHERE org_id = ?1",
        params![org],
        |r| r.get(0),
    )?;
    if held >= MAX_KEYS_PER_ORG {
        return Err(ApiError::conflict(
            "too_many_keys",
            format!("an org has at most {MAX_KEYS_PER_ORG} sign-in keys added at run time (retired ones count)"),
        ));
    }
    // Checked as the server will use it: the algorithm, the PEM, the secret's length.
    key_from_row(org, &key.kid, &key.alg, &material)
        .map_err(|e| ApiError::bad_request("bad_key", e))?;
    let tx = conn.transaction()?;
    let added = tx.execute(
        "INSERT INTO signing_keys (org_id, kid, alg, material, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (org_id, kid) DO NOTHING",
        params![org, key.kid, key.alg, material, now_secs()],
    )?;
    if added == 0 {
        return Err(ApiError::conflict(
            "kid_exists",
            "this org has (or had) a key with this kid: kids are not reused",
        ));
    }
    audit::record(
        &tx,
        actor,
        Some(org),
        "signing_key.add",
        Some(&key.kid),
        serde_json::json!({ "alg": key.alg }),
    )?;
    crate::auth::orgs::changed(&tx)?;
    tx.commit()?;
    Ok(SigningKey {
        kid: key.kid.clone(),
        alg: key.alg.clone(),
        public_key_pem: key.public_key_pem.clone(),
        created_at: now_secs(),
        retired_at: None,
    })
}

pub fn list_signing_keys(
    conn: &Conn,
    actor: &Actor,
    org: &str,
) -> Result<Vec<SigningKey>, ApiError> {
    actor.require(org, Scope::Admin)?;
    require_org(conn, org)?;
    let mut stmt = conn.prepare(
        "SELECT kid, alg, material, created_at, retired_at FROM signing_keys WHERE org_id = ?1
         ORDER BY created_at, kid",
    )?;
    let keys = stmt
        .query_map(params![org], |r| {
            let alg: String = r.get(1)?;
            let material: String = r.get(2)?;
            Ok(SigningKey {
                kid: r.get(0)?,
                public_key_pem: (alg != "HS256").then_some(material),
                alg,
                created_at: r.get(3)?,
                retired_at: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(keys)
}

/// Retires a key: tokens signed with it stop signing anyone in (sessions they opened run
/// on to their end; revoke those by disabling the user).
pub fn retire_signing_key(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    kid: &str,
) -> Result<(), ApiError> {
    actor.require(org, Scope::Admin)?;
    let tx = conn.transaction()?;
    let retired = tx.execute(
        "UPDATE signing_keys SET retired_at = ?1 WHERE org_id = ?2 AND kid = ?3 AND retired_at IS NULL",
        params![now_secs(), org, kid],
    )?;
    if retired == 0 {
        return Err(ApiError::not_found(
            "unknown_key",
            "no live key with this kid was added to this org (keys of the configuration file are changed there)",
        ));
    }
    audit::record(
        &tx,
        actor,
        Some(org),
        "signing_key.retire",
        Some(kid),
        serde_json::Value::Null,
    )?;
    crate::auth::orgs::changed(&tx)?;
    tx.commit()?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VisitorToken {
    pub id: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// Shown once, when the token is made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Makes a visitor token: what a site puts in its public pages so anonymous visitors can
/// sign in as temporary users.
pub fn add_visitor_token(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    name: Option<&str>,
) -> Result<VisitorToken, ApiError> {
    actor.require(org, Scope::Admin)?;
    require_org(conn, org)?;
    if let Some(name) = name {
        check_text("name", name, 128)?;
    }
    let live: i64 = conn.query_row(
        "SELECT COUNT(*) FROM visitor_tokens WHERE org_id = ?1 AND revoked_at IS NULL",
        params![org],
        |r| r.get(0),
    )?;
    if live >= MAX_VISITOR_TOKENS_PER_ORG {
        return Err(ApiError::conflict(
            "too_many_tokens",
            format!("an org has at most {MAX_VISITOR_TOKENS_PER_ORG} live visitor tokens"),
        ));
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    let token = format!("sotto_vt_{}", URL_SAFE_NO_PAD.encode(bytes));
    let made = VisitorToken {
        id: new_id("vt"),
        name: name.map(str::to_owned),
        created_at: now_secs(),
        revoked_at: None,
        token: Some(token.clone()),
    };
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO visitor_tokens (id, org_id, token_hash, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![made.id, org, hash_hex(&token), made.name, made.created_at],
    )?;
    audit::record(
        &tx,
        actor,
        Some(org),
        "visitor_token.add",
        Some(&made.id),
        serde_json::Value::Null,
    )?;
    crate::auth::orgs::changed(&tx)?;
    tx.commit()?;
    Ok(made)
}

pub fn list_visitor_tokens(
    conn: &Conn,
    actor: &Actor,
    org: &str,
) -> Result<Vec<VisitorToken>, ApiError> {
    actor.require(org, Scope::Admin)?;
    require_org(conn, org)?;
    let mut stmt = conn.prepare(
        "SELECT id, name, created_at, revoked_at FROM visitor_tokens WHERE org_id = ?1 ORDER BY created_at, id",
    )?;
    let tokens = stmt
        .query_map(params![org], |r| {
            Ok(VisitorToken {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                revoked_at: r.get(3)?,
                token: None,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(tokens)
}

/// Revokes a visitor token: no new visitor signs in with it (visitors signed in already
/// keep their session to its end).
pub fn revoke_visitor_token(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    id: &str,
) -> Result<(), ApiError> {
    actor.require(org, Scope::Admin)?;
    let tx = conn.transaction()?;
    let revoked = tx.execute(
        "UPDATE visitor_tokens SET revoked_at = ?1 WHERE org_id = ?2 AND id = ?3 AND revoked_at IS NULL",
        params![now_secs(), org, id],
    )?;
    if revoked == 0 {
        return Err(ApiError::not_found(
            "unknown_token",
            "no live visitor token with this id",
        ));
    }
    audit::record(
        &tx,
        actor,
        Some(org),
        "visitor_token.revoke",
        Some(id),
        serde_json::Value::Null,
    )?;
    crate::auth::orgs::changed(&tx)?;
    tx.commit()?;
    Ok(())
}
