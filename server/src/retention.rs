//! Clean-up: a background task that, every `retention_interval_secs`, deletes what no one
//! can use any more — expired sessions, link requests an hour past their end, envelopes
//! older than `envelope_max_age_days` (a device away that long has lost them), blobs older
//! than `blob_max_age_days` (the server cannot see which messages still name them), and
//! visitor accounts whose every session has ended, `visitor_max_idle_days` after they
//! were made (a visitor never signs in as the same user twice) — with their devices,
//! keys and queues. Each sweep says in the log what it removed.

use crate::db::{now_millis, now_secs, Db};
use rusqlite::{params, Connection};
use std::time::Duration;

/// How long things are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub interval_secs: u64,
    pub envelope_max_age_days: i64,
    pub blob_max_age_days: i64,
    pub visitor_max_idle_days: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            interval_secs: 3600,
            envelope_max_age_days: 30,
            blob_max_age_days: 30,
            visitor_max_idle_days: 7,
        }
    }
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sessions: usize,
    pub link_requests: usize,
    pub envelopes: usize,
    pub blobs: usize,
    pub visitors: usize,
}

const DAY: i64 = 24 * 3600;

/// One sweep, in one transaction.
pub fn sweep(conn: &mut Connection, r: &Retention) -> rusqlite::Result<Swept> {
    let now = now_secs();
    let tx = conn.transaction()?;
    let mut swept = Swept {
        sessions: tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?,
        link_requests: tx.execute(
            "DELETE FROM link_requests WHERE expires_at <= ?1",
            params![now - 3600],
        )?,
        envelopes: tx.execute(
            "DELETE FROM envelopes WHERE accepted_at <= ?1",
            params![now_millis() - r.envelope_max_age_days * DAY * 1000],
        )?,
        blobs: tx.execute(
            "DELETE FROM blobs WHERE created_at <= ?1",
            params![now - r.blob_max_age_days * DAY],
        )?,
        visitors: 0,
    };
    // Visitors with no session left, old enough, with no blob still stored under their
    // name and no envelope of theirs still waiting (their identity must stay for those to
    // be opened): such visitors go at a later sweep.
    let dead: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT id FROM users u WHERE ephemeral = 1 AND created_at <= ?1
             AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id)
             AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.uploader = u.id)
             AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.sender_user = u.id)",
        )?;
        let ids = stmt.query_map(params![now - r.visitor_max_idle_days * DAY], |row| {
            row.get(0)
        })?;
        ids.collect::<Result<_, _>>()?
    };
    for user in &dead {
        delete_user(&tx, user)?;
    }
    swept.visitors = dead.len();
    tx.commit()?;
    Ok(swept)
}

/// Deletes a user and everything the server holds for them.
fn delete_user(tx: &Connection, user: &str) -> rusqlite::Result<()> {
    let devices = "(SELECT id FROM devices WHERE user_id = ?1)";
    for sql in [
        format!("DELETE FROM envelopes WHERE device_id IN {devices}"),
        format!("DELETE FROM one_time_prekeys WHERE device_id IN {devices}"),
        format!("DELETE FROM signed_prekeys WHERE device_id IN {devices}"),
        format!("DELETE FROM prekey_claims WHERE device_id IN {devices}"),
        "DELETE FROM prekey_claims WHERE claimer = ?1".into(),
        "DELETE FROM devices WHERE user_id = ?1".into(),
        "DELETE FROM identities WHERE user_id = ?1".into(),
        "DELETE FROM link_requests WHERE user_id = ?1".into(),
        "DELETE FROM sessions WHERE user_id = ?1".into(),
        "DELETE FROM users WHERE id = ?1".into(),
    ] {
        tx.execute(&sql, params![user])?;
    }
    Ok(())
}

/// Runs [`sweep`] now and then every `interval_secs`, for as long as the server runs.
pub fn start(db: Db, r: Retention) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(r.interval_secs.max(1)));
        loop {
            every.tick().await;
            match db.call(move |conn| sweep(conn, &r)).await {
                Ok(s) if s == Swept::default() => tracing::debug!("clean-up: nothing to remove"),
                Ok(s) => tracing::info!(
                    sessions = s.sessions,
                    link_requests = s.link_requests,
                    envelopes = s.envelopes,
                    blobs = s.blobs,
                    visitors = s.visitors,
                    "clean-up removed what no one can use any more"
                ),
                Err(e) => tracing::error!(error = %e, "clean-up failed"),
            }
        }
    });
}
