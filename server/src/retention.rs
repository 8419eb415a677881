//! Clean-up: a background task that, every `retention_interval_secs`, deletes what no one
//! can use any more — expired sessions, link requests an hour past their end, envelopes
//! older than `envelope_max_age_days` (a device away that long has lost them; each sending
//! device that is still registered gets an expiry notice naming them), blobs older
//! than `blob_max_age_days` (the server cannot see which messages still name them), and
//! visitor accounts whose every session has ended, `visitor_max_idle_days` after they
//! were made (a visitor never signs in as the same user twice) — with their devices,
//! keys and queues. Each sweep says in the log what it removed.

use crate::blobs::BlobStore;
use crate::db::Conn;
use crate::db::{now_millis, now_secs, Db};
use crate::delivery::queue::{MAX_QUEUED_PER_DEVICE, MAX_QUEUED_PER_SENDER};
use crate::delivery::registry::Registry;
use crate::params;
use sotto_core::protocol::{expired_notice, MAX_SEQS_PER_EXPIRED_NOTICE, SERVER_MADE_PREFIX};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Bytes in the blob store that no row names are deleted once this old: an upload's row
/// follows its bytes within seconds.
const ORPHAN_MIN_AGE_SECS: i64 = 3600;

/// Expired envelopes handled per transaction, so a sweep after a long outage neither holds
/// one huge transaction nor reads every row at once.
const ENVELOPE_BATCH: usize = 5_000;

/// How long things are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub interval_secs: u64,
    pub envelope_max_age_days: i64,
    pub blob_max_age_days: i64,
    pub visitor_max_idle_days: i64,
    /// How long the admin audit log keeps an entry.
    pub audit_max_age_days: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            interval_secs: 3600,
            envelope_max_age_days: 30,
            blob_max_age_days: 30,
            visitor_max_idle_days: 7,
            audit_max_age_days: 365,
        }
    }
}

/// What one sweep removed, and the sending devices it queued expiry notices for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub sessions: usize,
    pub link_requests: usize,
    pub envelopes: usize,
    pub blobs: usize,
    /// The deleted blobs whose bytes are in the blob store, to be deleted there after the
    /// rows are gone.
    pub stored_blobs: Vec<String>,
    pub visitors: usize,
    pub notified: BTreeSet<String>,
}

const DAY: i64 = 24 * 3600;

/// One batch of old envelopes ([`expire_envelopes`]) in a transaction of its own: returns
/// how many went and the senders told. [`start`] runs batches, each its own database call,
/// until one comes back short, so sends and acknowledgements go on between them.
pub fn sweep_envelopes(
    conn: &mut Conn,
    r: &Retention,
) -> crate::db::Result<(usize, BTreeSet<String>)> {
    let cutoff = now_millis() - r.envelope_max_age_days * DAY * 1000;
    let mut notified = BTreeSet::new();
    let tx = conn.transaction()?;
    let n = expire_envelopes(&tx, cutoff, &mut notified)?;
    tx.commit()?;
    Ok((n, notified))
}

/// The rest of a sweep, in one transaction: sessions, link requests, blobs, visitors.
pub fn sweep(conn: &mut Conn, r: &Retention) -> crate::db::Result<Swept> {
    let now = now_secs();
    let tx = conn.transaction()?;
    let mut swept = Swept {
        sessions: tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?,
        link_requests: tx.execute(
            "DELETE FROM link_requests WHERE expires_at <= ?1",
            params![now - 3600],
        )?,
        envelopes: 0,
        notified: BTreeSet::new(),
        blobs: 0,
        stored_blobs: Vec::new(),
        visitors: 0,
    };
    {
        let mut stmt =
            tx.prepare("DELETE FROM blobs WHERE created_at <= ?1 RETURNING id, in_store")?;
        let rows = stmt.query_map(params![now - r.blob_max_age_days * DAY], |row| {
            Ok((row.get::<String>(0)?, row.get::<bool>(1)?))
        })?;
        for row in rows {
            let (id, in_store) = row?;
            swept.blobs += 1;
            if in_store {
                swept.stored_blobs.push(id);
            }
        }
    }
    // Visitors with no session left, old enough, with no blob still stored under their
    // name and no envelope of theirs still waiting (their identity must stay for those to
    // be opened; what the server made in their name, such as an expiry notice, needs no
    // identity): such visitors go at a later sweep.
    let dead: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT id FROM users u WHERE ephemeral = 1 AND created_at <= ?1
             AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id)
             AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.uploader = u.id)
             AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.sender_user = u.id
                             AND substr(e.payload, 1, ?2) <> ?3)",
        )?;
        let ids = stmt.query_map(
            params![
                now - r.visitor_max_idle_days * DAY,
                SERVER_MADE_PREFIX.len() as i64,
                SERVER_MADE_PREFIX
            ],
            |row| row.get(0),
        )?;
        ids.collect::<Result<_, _>>()?
    };
    for user in &dead {
        // Such a visitor has no blob left (see above), so no bytes to delete.
        crate::directory::delete_user(&tx, user)?;
    }
    swept.visitors = dead.len();
    tx.execute(
        "DELETE FROM audit_log WHERE at_ms < ?1",
        params![(now - r.audit_max_age_days * DAY) * 1000],
    )?;
    // Counters a writer holds now are skipped, not waited for: the writer locks several
    // in one transaction, and this sweep must never be the other half of a deadlock.
    let stale = if tx.is_postgres() {
        "DELETE FROM rate_windows WHERE key IN
         (SELECT key FROM rate_windows WHERE window_start < ?1 FOR UPDATE SKIP LOCKED)"
    } else {
        "DELETE FROM rate_windows WHERE window_start < ?1"
    };
    tx.execute(stale, params![now - 120])?;
    tx.execute(
        "DELETE FROM group_followers WHERE followed_at < ?1",
        params![now - crate::directory::FOLLOW_LAPSES_AFTER_SECS],
    )?;
    // A repeat guard older than its window guards nothing.
    tx.execute(
        "DELETE FROM offline_notices WHERE at < ?1",
        params![(now - 86_400) * 1000],
    )?;
    tx.commit()?;
    Ok(swept)
}

/// Deletes up to [`ENVELOPE_BATCH`] envelopes accepted at or before `cutoff` (Unix ms), and
/// tells each of their senders which of its envelopes went: one expiry notice per sending
/// device and recipient device (labelled with the recipient, as a retry request is), when
/// the sender is still registered and its queue has room. Notices are never noticed in
/// turn: what the server made expires silently. Returns how many envelopes went, and adds
/// the devices it queued notices for to `notified`.
fn expire_envelopes(
    tx: &Conn,
    cutoff: i64,
    notified: &mut BTreeSet<String>,
) -> crate::db::Result<usize> {
    let mut notices: BTreeMap<(String, String, String), Vec<i64>> = BTreeMap::new();
    let mut seqs = Vec::new();
    {
        let mut stmt = tx.prepare(
            "SELECT e.seq, e.sender_device, d.user_id, e.device_id,
                    substr(e.payload, 1, ?3) = ?4,
                    EXISTS (SELECT 1 FROM devices s WHERE s.id = e.sender_device),
                    e.sender_user
             FROM envelopes e JOIN devices d ON d.id = e.device_id
             WHERE e.accepted_at <= ?1 ORDER BY e.seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![
                cutoff,
                ENVELOPE_BATCH as i64,
                SERVER_MADE_PREFIX.len() as i64,
                SERVER_MADE_PREFIX
            ],
            |row| {
                let seq: i64 = row.get(0)?;
                let (server_made, sender_known): (bool, bool) = (row.get(4)?, row.get(5)?);
                // A device's own user's other devices are not told: the client follows only
                // what it sent to other people.
                let own = row.get::<String>(6)? == row.get::<String>(2)?;
                let notice = (!server_made && sender_known && !own)
                    .then(|| Ok::<_, crate::db::Error>((row.get(1)?, row.get(2)?, row.get(3)?)))
                    .transpose()?;
                Ok((seq, notice))
            },
        )?;
        for row in rows {
            let (seq, notice) = row?;
            seqs.push(seq);
            if let Some(key) = notice {
                notices.entry(key).or_default().push(seq);
            }
        }
    }
    // Envelopes whose device row is gone cannot be joined above; they go too.
    let orphans = tx.execute(
        "DELETE FROM envelopes WHERE accepted_at <= ?1
         AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = envelopes.device_id)",
        params![cutoff],
    )?;
    // Only what this transaction deleted is told: another node's clean-up may have taken
    // some of these rows first, and told of them itself.
    let mut delete = tx.prepare("DELETE FROM envelopes WHERE seq = ?1")?;
    let mut deleted = std::collections::HashSet::new();
    for seq in &seqs {
        if delete.execute(params![seq])? == 1 {
            deleted.insert(*seq);
        }
    }
    notices.retain(|_, seqs| {
        seqs.retain(|s| deleted.contains(s));
        !seqs.is_empty()
    });
    // A notice takes room in the sender's queue like any envelope, within the limits any
    // envelope meets: the queue's, and the labelled user's share of it.
    let mut room = tx.prepare(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE sender_user = ?2)
         FROM envelopes WHERE device_id = ?1",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    // The notices' queues in one order, before any is written (see `queue::lock_queues`).
    crate::delivery::queue::lock_queues(tx, notices.keys().map(|(s, _, _)| s.as_str()))?;
    for ((sender_device, recipient_user, recipient_device), seqs) in &notices {
        for chunk in seqs.chunks(MAX_SEQS_PER_EXPIRED_NOTICE) {
            let (queued, from_them): (i64, i64) = room
                .query_row(params![sender_device, recipient_user], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            if queued >= MAX_QUEUED_PER_DEVICE || from_them >= MAX_QUEUED_PER_SENDER {
                break;
            }
            insert.execute(params![
                sender_device,
                recipient_user,
                recipient_device,
                now_millis(),
                expired_notice(chunk)
            ])?;
            notified.insert(sender_device.clone());
        }
    }
    Ok(deleted.len() + orphans)
}

/// Runs [`sweep`] now and then every `interval_secs`, for as long as the server runs, and
/// wakes the connected senders it queued expiry notices for.
pub fn start(db: Db, registry: Arc<Registry>, blobs: BlobStore, r: Retention) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(r.interval_secs.max(1)));
        loop {
            every.tick().await;
            let mut envelopes = 0;
            let mut notified = BTreeSet::new();
            loop {
                match db.call(move |conn| sweep_envelopes(conn, &r)).await {
                    Ok((n, told)) => {
                        envelopes += n;
                        notified.extend(told);
                        if n < ENVELOPE_BATCH {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "clean-up of old envelopes failed");
                        break;
                    }
                }
            }
            let rest = db.call(move |conn| sweep(conn, &r)).await.map(|s| Swept {
                envelopes,
                notified,
                ..s
            });
            match rest {
                Ok(s) if s == Swept::default() => tracing::debug!("clean-up: nothing to remove"),
                Ok(s) => {
                    tracing::info!(
                        sessions = s.sessions,
                        link_requests = s.link_requests,
                        envelopes = s.envelopes,
                        senders_told = s.notified.len(),
                        blobs = s.blobs,
                        visitors = s.visitors,
                        "clean-up removed what no one can use any more"
                    );
                    for device in &s.notified {
                        registry.wake(device);
                    }
                    // The rows are gone: no download can reach these bytes any more.
                    for id in &s.stored_blobs {
                        if let Err(e) = blobs.delete(id).await {
                            tracing::warn!(blob = %id, error = %e.message, "blob bytes not deleted");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "clean-up failed"),
            }
            match crate::blobs::sweep_orphans(&db, &blobs, ORPHAN_MIN_AGE_SECS).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(blobs = n, "clean-up removed bytes that no attachment names")
                }
                Err(e) => tracing::error!(error = %e.message, "clean-up of the blob store failed"),
            }
        }
    });
}
