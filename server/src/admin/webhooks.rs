//! An org's webhooks: the URLs its backend is told things at (see `crate::webhooks`), each
//! with the events it wants and a signing secret shown once.

use super::{audit, Actor, Scope};
use crate::db::{new_id, now_secs, Conn, OptionalExtension};
use crate::error::ApiError;
use crate::params;
use crate::webhooks::EVENTS;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Webhooks per org.
pub const MAX_PER_ORG: i64 = 10;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: i64,
    /// Deliveries waiting (being retried, or not yet made).
    pub pending: i64,
    /// Why the oldest waiting delivery failed last, if it did.
    pub last_error: Option<String>,
    /// Shown once, when the webhook is made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
}

/// Checks a webhook URL (see `outbound.rs`): https to a public host, unless the operator
/// allows private ones (`allow_private_webhook_urls`, for a backend on their network).
pub fn check_url(url: &str, allow_private: bool) -> Result<(), ApiError> {
    crate::outbound::check_url(url, allow_private)
        .map_err(|e| ApiError::bad_request("bad_webhook_url", e))
}

pub fn create(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    hook: &NewWebhook,
    allow_private: bool,
) -> Result<Webhook, ApiError> {
    actor.require(org, Scope::Admin)?;
    check_url(&hook.url, allow_private)?;
    let mut events = hook.events.clone();
    events.sort();
    events.dedup();
    if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        return Err(ApiError::bad_request(
            "bad_events",
            format!("events are one or more of {}", EVENTS.join(", ")),
        ));
    }
    let tx = conn.transaction()?;
    super::orgs::require_org(&tx, org)?;
    let existing: i64 = tx.query_row(
        "SELECT COUNT(*) FROM webhooks WHERE org_id = ?1",
        params![org],
        |r| r.get(0),
    )?;
    if existing >= MAX_PER_ORG {
        return Err(ApiError::conflict(
            "too_many_webhooks",
            format!("an org has at most {MAX_PER_ORG} webhooks"),
        ));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    let secret = format!("whsec_{}", URL_SAFE_NO_PAD.encode(bytes));
    let made = Webhook {
        id: new_id("wh"),
        url: hook.url.clone(),
        events,
        created_at: now_secs(),
        pending: 0,
        last_error: None,
        secret: Some(secret),
    };
    tx.execute(
        "INSERT INTO webhooks (id, org_id, url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            made.id,
            org,
            made.url,
            serde_json::to_string(&made.events).map_err(ApiError::internal)?,
            made.secret,
            made.created_at
        ],
    )?;
    crate::webhooks::start_offline_scan_now(&tx)?;
    audit::record(
        &tx,
        actor,
        Some(org),
        "webhook.create",
        Some(&made.id),
        serde_json::json!({ "events": made.events }),
    )?;
    tx.commit()?;
    Ok(made)
}

pub fn list(conn: &Conn, actor: &Actor, org: &str) -> Result<Vec<Webhook>, ApiError> {
    actor.require(org, Scope::Admin)?;
    super::orgs::require_org(conn, org)?;
    let mut stmt = conn.prepare(
        "SELECT id, url, events, created_at,
             (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id),
             (SELECT last_error FROM webhook_deliveries d WHERE d.webhook_id = w.id
              AND last_error IS NOT NULL ORDER BY created_at LIMIT 1)
         FROM webhooks w WHERE org_id = ?1 ORDER BY created_at, id",
    )?;
    let hooks = stmt
        .query_map(params![org], |r| {
            let events: String = r.get(2)?;
            Ok(Webhook {
                id: r.get(0)?,
                url: r.get(1)?,
                events: serde_json::from_str(&events).unwrap_or_default(),
                created_at: r.get(3)?,
                pending: r.get(4)?,
                last_error: r.get(5)?,
                secret: None,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(hooks)
}

/// Deletes a webhook and what it still had to deliver.
pub fn delete(conn: &Conn, actor: &Actor, org: &str, id: &str) -> Result<(), ApiError> {
    actor.require(org, Scope::Admin)?;
    let tx = conn.transaction()?;
    let found: Option<String> = tx
        .query_row(
            "SELECT id FROM webhooks WHERE id = ?1 AND org_id = ?2",
            params![id, org],
            |r| r.get(0),
        )
        .optional()?;
    if found.is_none() {
        return Err(ApiError::not_found(
            "unknown_webhook",
            "no such webhook in this org",
        ));
    }
    tx.execute(
        "DELETE FROM webhook_deliveries WHERE webhook_id = ?1",
        params![id],
    )?;
    tx.execute("DELETE FROM webhooks WHERE id = ?1", params![id])?;
    audit::record(
        &tx,
        actor,
        Some(org),
        "webhook.delete",
        Some(id),
        serde_json::Value::Null,
    )?;
    tx.commit()?;
    Ok(())
}
