//! Webhooks: the server tells a site's backend what happened, so it can email or push a
//! notification — never message content, which the server cannot read.
//!
//! Events are written to an outbox table in the same transaction as what they report, and
//! a worker on every node posts them: each delivery is claimed by one node with a lease
//! (a conditional UPDATE), signed with HMAC-SHA256 over `<timestamp>.<body>`
//! (`Sotto-Signature: t=…,v1=…`), retried with exponential backoff up to
//! [`MAX_ATTEMPTS`] times, and dropped past [`MAX_PENDING_PER_ORG`] waiting deliveries.
//! None of this runs on the delivery path: a failing webhook never slows a message.
//!
//! `message.queued_for_offline_user`: a scan finds messages that none of the recipient's
//! devices has taken for [`OFFLINE_AFTER`] (every device still holds its envelope), and
//! reports each (recipient, sender) pair at most once per [`OFFLINE_REPEAT`].

use crate::db::{new_id, now_millis, Conn, Db, OptionalExtension};
use crate::error::ApiError;
use crate::metrics::{count, metrics};
use crate::params;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

pub const USER_CREATED: &str = "user.created";
pub const DEVICE_ADDED: &str = "device.added";
pub const DEVICE_REMOVED: &str = "device.removed";
pub const QUEUED_FOR_OFFLINE_USER: &str = "message.queued_for_offline_user";
pub const EVENTS: &[&str] = &[
    QUEUED_FOR_OFFLINE_USER,
    USER_CREATED,
    DEVICE_ADDED,
    DEVICE_REMOVED,
];

/// Tries per delivery: about an hour and a half of backoff in all.
pub const MAX_ATTEMPTS: i64 = 12;
/// Deliveries waiting per org; past it, new events are dropped (and counted).
pub const MAX_PENDING_PER_ORG: i64 = 10_000;
/// How long a node holds a delivery it is posting before another may take it.
const LEASE_MS: i64 = 60_000;
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Posts in flight per node.
const CONCURRENT_POSTS: usize = 8;
/// A message untouched this long means the recipient is not online (by default; the
/// setting is `webhook_offline_after_secs`).
pub const OFFLINE_AFTER: Duration = Duration::from_secs(30);
/// One offline notice per (recipient, sender) per this.
pub const OFFLINE_REPEAT: Duration = Duration::from_secs(15 * 60);
/// How often each node looks for due deliveries and offline recipients.
const TICK: Duration = Duration::from_secs(1);

/// The signature header of a body sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={hex}")
}

/// Queues `event` with `data` for every webhook of `org` that wants it, in the caller's
/// transaction.
pub fn emit(conn: &Conn, org: &str, event: &str, data: Value) -> crate::db::Result<()> {
    let mut stmt = conn.prepare_cached("SELECT id, events FROM webhooks WHERE org_id = ?1")?;
    let hooks: Vec<(String, String)> = stmt
        .query_map(params![org], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let wanted: Vec<String> = hooks
        .into_iter()
        .filter(|(_, events)| {
            serde_json::from_str::<Vec<String>>(events).is_ok_and(|e| e.iter().any(|e| e == event))
        })
        .map(|(id, _)| id)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let pending: i64 = conn.query_row(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE org_id = ?1",
        params![org],
        |r| r.get(0),
    )?;
    if pending >= MAX_PENDING_PER_ORG {
        count(
            &metrics().webhooks,
            &[("event", event), ("outcome", "dropped")],
        );
        tracing::warn!(
            org,
            event,
            "webhook event dropped: too many deliveries waiting"
        );
        return Ok(());
    }
    let id = new_id("evt");
    let now = now_millis();
    let body =
        json!({ "id": id, "type": event, "created_at": now, "org": org, "data": data }).to_string();
    for hook in wanted {
        conn.execute(
            "INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_type, body, attempts, next_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
            params![new_id("wd"), hook, org, event, body, now],
        )?;
    }
    Ok(())
}

/// A user as events name them.
pub fn user_ref(conn: &Conn, user_id: &str) -> crate::db::Result<Option<(String, Value)>> {
    conn.query_row(
        "SELECT org_id, id, external_id, tag, ephemeral FROM users WHERE id = ?1",
        params![user_id],
        |r| {
            Ok((
                r.get(0)?,
                json!({
                    "id": r.get::<String>(1)?,
                    "external_id": r.get::<Option<String>>(2)?,
                    "tag": r.get::<String>(3)?,
                    "ephemeral": r.get::<bool>(4)?,
                }),
            ))
        },
    )
    .optional()
}

/// Queues a device event for `user_id`'s org.
pub fn emit_device(
    conn: &Conn,
    event: &str,
    user_id: &str,
    device_id: &str,
) -> crate::db::Result<()> {
    if let Some((org, user)) = user_ref(conn, user_id)? {
        emit(
            conn,
            &org,
            event,
            json!({ "user": user, "device_id": device_id }),
        )?;
    }
    Ok(())
}

/// Starts the offline scan at now for an org's first webhook, so it reports what is
/// queued from here on, not a backlog from before anyone asked.
pub fn start_offline_scan_now(conn: &Conn) -> crate::db::Result<()> {
    conn.execute(
        "INSERT INTO server_marks (name, value) VALUES ('offline_scan', ?1)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value WHERE server_marks.value < excluded.value",
        params![now_millis() - OFFLINE_AFTER.as_millis() as i64],
    )?;
    Ok(())
}

/// Starts this node's worker: posts due deliveries and scans for offline recipients.
pub fn start(db: Db, offline_after: Duration, allow_private: bool) {
    tokio::spawn(async move {
        // Addresses are checked again as names resolve (see `outbound.rs`).
        let client = match crate::outbound::client(allow_private, POST_TIMEOUT) {
            Ok(c) => c,
            Err(e) => return tracing::error!(error = %e, "webhooks are off: no HTTP client"),
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_POSTS));
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Reads first: a node with nothing to do takes no write lock.
            let now = now_millis();
            let (hooks, any_due) = match db
                .read(move |conn| {
                    conn.query_row(
                        "SELECT EXISTS (SELECT 1 FROM webhooks),
                                EXISTS (SELECT 1 FROM webhook_deliveries WHERE next_at <= ?1)",
                        params![now],
                        |r| Ok((r.get::<bool>(0)?, r.get::<bool>(1)?)),
                    )
                })
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook check failed");
                    continue;
                }
            };
            if hooks {
                if let Err(e) = db.call(move |conn| scan_offline(conn, offline_after)).await {
                    tracing::warn!(error = %e.message, "offline scan failed");
                }
            }
            // Claim only what free slots can post now: a slow endpoint never holds the
            // loop (nor the offline scan) while claimed deliveries wait for a slot.
            let free = slots.available_permits() as i64;
            if !any_due || free == 0 {
                continue;
            }
            let due = match db.call(move |conn| claim_due(conn, free)).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e.message, "webhook claim failed");
                    continue;
                }
            };
            for delivery in due {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (db, client) = (db.clone(), client.clone());
                tokio::spawn(async move {
                    post(&db, &client, delivery, allow_private).await;
                    drop(permit);
                });
            }
        }
    });
}

struct Due {
    id: String,
    url: String,
    secret: String,
    event: String,
    body: String,
    attempts: i64,
}

/// Takes up to `limit` due deliveries for this node (another node that read the same rows
/// loses the conditional update).
fn claim_due(conn: &mut Conn, limit: i64) -> Result<Vec<Due>, ApiError> {
    let now = now_millis();
    let tx = conn.transaction()?;
    let candidates: Vec<(String, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT id, next_at FROM webhook_deliveries WHERE next_at <= ?1 ORDER BY next_at LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut due = Vec::new();
    for (id, next_at) in candidates {
        let taken = tx.execute(
            "UPDATE webhook_deliveries SET next_at = ?1, attempts = attempts + 1
             WHERE id = ?2 AND next_at = ?3",
            params![now + LEASE_MS, id, next_at],
        )?;
        if taken == 0 {
            continue;
        }
        let row = tx
            .query_row(
                "SELECT w.url, w.secret, d.event_type, d.body, d.attempts
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        match row {
            Some((url, secret, event, body, attempts)) => due.push(Due {
                id,
                url,
                secret,
                event,
                body,
                attempts,
            }),
            // Its webhook was deleted.
            None => {
                tx.execute("DELETE FROM webhook_deliveries WHERE id = ?1", params![id])?;
            }
        }
    }
    tx.commit()?;
    Ok(due)
}

/// Seconds before try `attempts + 1`: 2, 4, 8… up to 20 minutes.
fn backoff(attempts: i64) -> i64 {
    2i64.saturating_pow(attempts.clamp(1, 20) as u32).min(1200)
}

async fn post(db: &Db, client: &reqwest::Client, d: Due, allow_private: bool) {
    let timestamp = now_millis() / 1000;
    // Checked again: the operator may have stopped allowing private addresses since the
    // webhook was made (an address in the URL itself is never resolved, so never filtered).
    let refused = crate::outbound::check_url(&d.url, allow_private).is_err();
    let result = if refused {
        None
    } else {
        Some(
            client
                .post(&d.url)
                .header("content-type", "application/json")
                .header("user-agent", "sotto-server webhooks")
                .header("sotto-event-id", event_id(&d.body))
                .header("sotto-event-type", &d.event)
                .header("sotto-signature", signature(&d.secret, timestamp, &d.body))
                .body(d.body.clone())
                .send()
                .await,
        )
    };
    let error = match result {
        None => Some("the URL is not allowed".to_owned()),
        Some(Ok(r)) if r.status().is_success() => None,
        Some(Ok(r)) => Some(format!("HTTP {}", r.status().as_u16())),
        // The error names the URL, which may hold a token in its query: say what failed only.
        Some(Err(e)) if e.is_timeout() => Some("timed out".to_owned()),
        Some(Err(e)) if e.is_connect() => Some("could not connect".to_owned()),
        Some(Err(_)) => Some("request failed".to_owned()),
    };
    let outcome = match &error {
        None => "delivered",
        Some(_) if d.attempts >= MAX_ATTEMPTS => "failed",
        Some(_) => "retried",
    };
    count(
        &metrics().webhooks,
        &[("event", d.event.as_str()), ("outcome", outcome)],
    );
    let (id, attempts) = (d.id.clone(), d.attempts);
    let stored = db
        .call(move |conn| {
            match (&error, outcome) {
                (None, _) | (_, "failed") => {
                    conn.execute("DELETE FROM webhook_deliveries WHERE id = ?1", params![id])?;
                }
                (Some(e), _) => {
                    conn.execute(
                        "UPDATE webhook_deliveries SET next_at = ?1, last_error = ?2 WHERE id = ?3",
                        params![now_millis() + backoff(attempts) * 1000, e, id],
                    )?;
                }
            }
            Ok::<_, ApiError>(())
        })
        .await;
    if outcome == "failed" {
        tracing::warn!(webhook_event = %d.event, "webhook delivery given up after {MAX_ATTEMPTS} tries");
    }
    if let Err(e) = stored {
        tracing::warn!(error = %e.message, "webhook outcome not stored; it will be tried again");
    }
}

fn event_id(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Finds messages accepted between the last scan and [`OFFLINE_AFTER`] ago that every
/// device of their recipient still holds, and queues one event per (recipient, sender)
/// not reported within [`OFFLINE_REPEAT`]. The scan's high-water mark moves by a
/// conditional update, so one node does each window.
fn scan_offline(conn: &mut Conn, offline_after: Duration) -> Result<(), ApiError> {
    let upto = now_millis() - offline_after.as_millis() as i64;
    let tx = conn.transaction()?;
    let mark: Option<i64> = tx
        .query_row(
            "SELECT value FROM server_marks WHERE name = 'offline_scan'",
            params![],
            |r| r.get(0),
        )
        .optional()?;
    let Some(from) = mark else {
        // The first scan starts now: older envelopes were never this server's to report.
        tx.execute(
            "INSERT INTO server_marks (name, value) VALUES ('offline_scan', ?1) ON CONFLICT (name) DO NOTHING",
            params![upto],
        )?;
        tx.commit()?;
        return Ok(());
    };
    if upto <= from {
        return Ok(());
    }
    if tx.execute(
        "UPDATE server_marks SET value = ?1 WHERE name = 'offline_scan' AND value = ?2",
        params![upto, from],
    )? == 0
    {
        return Ok(());
    }
    {
        let prefix = sotto_core::protocol::SERVER_MADE_PREFIX;
        let waiting: Vec<(String, String, i64, i64)> = {
            let mut stmt = tx.prepare(
                "SELECT d.user_id, e.sender_user, MIN(e.accepted_at), COUNT(DISTINCT e.sender_device || ':' || e.accepted_at)
                 FROM envelopes e JOIN devices d ON d.id = e.device_id
                 WHERE e.accepted_at > ?1 AND e.accepted_at <= ?2 AND substr(e.payload, 1, ?3) <> ?4
                   AND (SELECT COUNT(*) FROM envelopes e2 JOIN devices d2 ON d2.id = e2.device_id
                        WHERE d2.user_id = d.user_id AND e2.sender_device = e.sender_device
                          AND e2.accepted_at = e.accepted_at)
                       >= (SELECT COUNT(*) FROM devices d3 WHERE d3.user_id = d.user_id)
                 GROUP BY d.user_id, e.sender_user",
            )?;
            let rows = stmt.query_map(params![from, upto, prefix.len() as i64, prefix], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let now = now_millis();
        for (user, sender, since, messages) in waiting {
            let told = tx.execute(
                "INSERT INTO offline_notices (user_id, sender_user, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id, sender_user) DO UPDATE SET at = excluded.at
                 WHERE offline_notices.at <= ?4",
                params![user, sender, now, now - OFFLINE_REPEAT.as_millis() as i64],
            )?;
            if told == 0 {
                continue;
            }
            let (Some((org, recipient)), Some((_, from_user))) =
                (user_ref(&tx, &user)?, user_ref(&tx, &sender)?)
            else {
                continue;
            };
            emit(
                &tx,
                &org,
                QUEUED_FOR_OFFLINE_USER,
                json!({
                    "user": recipient,
                    "sender": from_user,
                    "queued_since": since,
                    "messages": messages,
                }),
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature is HMAC-SHA256 over "<t>.<body>", hex: checked against a value
    /// computed independently (Python's hmac module).
    #[test]
    fn signatures_match_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("whsec_test", 1_700_000_000, "{\"a\":1}"),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn backoff_grows_and_stops_growing() {
        assert_eq!(backoff(1), 2);
        assert_eq!(backoff(5), 32);
        assert_eq!(backoff(30), 1200);
    }
}
