//! The audit log: who changed what, and when, written in the same transaction as the
//! change itself, so neither exists without the other.

use super::{Actor, Scope};
use crate::db::{new_id, now_millis, Conn};
use crate::error::ApiError;
use crate::params;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub id: String,
    pub org: Option<String>,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
}

pub fn record(
    conn: &Conn,
    actor: &Actor,
    org: Option<&str>,
    action: &str,
    target: Option<&str>,
    details: serde_json::Value,
) -> crate::db::Result<()> {
    // Not logged here: the change may yet roll back; the entry commits with it or not at all.
    let details = (!details.is_null()).then(|| details.to_string());
    conn.execute(
        "INSERT INTO audit_log (id, org_id, at_ms, actor, action, target, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            new_id("au"),
            org,
            now_millis(),
            actor.name,
            action,
            target,
            details
        ],
    )?;
    Ok(())
}

/// The newest entries of `org` first (older than `before_ms`, when given), at most `limit`.
/// An operator sees the entries of no org (orgs, operator keys) with `org` `None`.
pub fn list(
    conn: &Conn,
    actor: &Actor,
    org: Option<&str>,
    before_ms: Option<i64>,
    limit: u32,
) -> Result<Vec<Entry>, ApiError> {
    match org {
        Some(org) => actor.require(org, Scope::Admin)?,
        None => actor.require_operator()?,
    }
    // Two statements rather than IS NOT DISTINCT FROM, which PostgreSQL cannot use the
    // index for.
    let mut stmt = conn.prepare(&format!(
        "SELECT id, org_id, at_ms, actor, action, target, details FROM audit_log
         WHERE {} AND at_ms < ?2 ORDER BY at_ms DESC, id DESC LIMIT ?3",
        if org.is_some() {
            "org_id = ?1"
        } else {
            "org_id IS NULL AND CAST(?1 AS TEXT) IS NULL"
        }
    ))?;
    let entries = stmt
        .query_map(
            params![org, before_ms.unwrap_or(i64::MAX), limit.clamp(1, 1000)],
            |r| {
                let details: Option<String> = r.get(6)?;
                Ok(Entry {
                    id: r.get(0)?,
                    org: r.get(1)?,
                    at_ms: r.get(2)?,
                    actor: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    details: details
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or_default(),
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}
