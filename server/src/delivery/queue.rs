//! The durable queue of envelopes per device, in SQLite.

use crate::db::now_millis;
use crate::db::{Conn, OptionalExtension};
use crate::error::ApiError;
use crate::params;
use axum::http::StatusCode;
use sotto_core::protocol::{
    retry_request, DeliveredEnvelope, OutgoingEnvelope, SERVER_MADE_PREFIX,
};

/// Envelopes one device may have waiting; past it, sends to that device are refused.
pub const MAX_QUEUED_PER_DEVICE: i64 = 10_000;
/// Envelopes one sending user (all their devices) may have waiting for one recipient
/// device: their share (a quarter), so no one sender can fill a queue and lock everyone
/// else out, while a busy thread can still reach someone away for a while.
pub const MAX_QUEUED_PER_SENDER: i64 = 2_500;
/// Envelopes all visitors together may have waiting for one device: visitor accounts are
/// free, so many of them must not add up to a full queue.
pub const MAX_QUEUED_FROM_VISITORS: i64 = 2_000;

/// Stores every envelope of one send in the caller's transaction, which the caller
/// commits, after checking each recipient device and its queue's limits. Every check comes
/// before the first insert, so a refused send (the inner error) has written nothing and
/// needs no savepoint of its own: a savepoint per send cost the group commit as much as the
/// send itself, and a round trip each on PostgreSQL. The outer error is the database
/// failing, which must fail the whole transaction. The caller has locked the recipients'
/// queues ([`lock_queues`]). Returns the acceptance time and each envelope's sequence
/// number, in the order given.
pub fn enqueue(
    tx: &Conn,
    org: &str,
    sender_user: &str,
    sender_device: &str,
    visitor: bool,
    envelopes: &[OutgoingEnvelope],
) -> crate::db::Result<Result<(i64, Vec<i64>), ApiError>> {
    for env in envelopes {
        if let Err(refused) = check_room(tx, org, sender_user, visitor, &env.device_id)? {
            return Ok(Err(refused));
        }
    }
    let accepted_at = now_millis();
    let mut insert = tx.prepare_cached(
        "INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING seq",
    )?;
    let mut seqs = Vec::with_capacity(envelopes.len());
    for env in envelopes {
        let seq: i64 = insert.query_row(
            params![
                env.device_id,
                sender_user,
                sender_device,
                accepted_at,
                env.payload
            ],
            |r| r.get(0),
        )?;
        seqs.push(seq);
    }
    Ok(Ok((accepted_at, seqs)))
}

/// Whether `device` (in `org`) may take one more envelope from `sender_user`: one round
/// trip for every check — the device is in the org (else no row), its queue's length, this
/// sender's share of it, and (for visitors) all visitors' share.
fn check_room(
    tx: &Conn,
    org: &str,
    sender_user: &str,
    visitor: bool,
    device: &str,
) -> crate::db::Result<Result<(), ApiError>> {
    let mut room = tx.prepare_cached(
        "SELECT (SELECT COUNT(*) FROM envelopes e WHERE e.device_id = d.id),
                (SELECT COUNT(*) FROM envelopes e WHERE e.device_id = d.id AND e.sender_user = ?3),
                CASE WHEN ?4 THEN (SELECT COUNT(*) FROM envelopes e JOIN users s ON s.id = e.sender_user
                                   WHERE e.device_id = d.id AND s.ephemeral = 1)
                     ELSE 0 END
         FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?1 AND u.org_id = ?2",
    )?;
    let counts: Option<(i64, i64, i64)> = room
        .query_row(params![device, org, sender_user, visitor], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((queued, from_sender, from_visitors)) = counts else {
        return Ok(Err(ApiError::not_found(
            "unknown_device",
            format!("no device {device:?} in this org"),
        )));
    };
    if queued >= MAX_QUEUED_PER_DEVICE {
        return Ok(Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "recipient_queue_full",
            format!("device {device:?} has too many undelivered messages"),
        )));
    }
    if from_sender >= MAX_QUEUED_PER_SENDER || from_visitors >= MAX_QUEUED_FROM_VISITORS {
        return Ok(Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "sender_queue_share_full",
            format!(
                "device {device:?} already has as many undelivered messages from you as it takes"
            ),
        )));
    }
    Ok(Ok(()))
}

/// Locks the queues of `devices` (their device rows, in sorted order, so that two
/// transactions never wait for each other) until the transaction ends. With several nodes
/// on one PostgreSQL database this makes envelopes for one device commit in the order of
/// their seqs, so a socket that has read seq n has seen every seq below it and reads on
/// after n without missing one. SQLite has one writer at a time, so there it does nothing.
pub fn lock_queues<'a>(
    tx: &Conn,
    devices: impl IntoIterator<Item = &'a str>,
) -> crate::db::Result<()> {
    if !tx.is_postgres() {
        return Ok(());
    }
    let sorted: std::collections::BTreeSet<&str> = devices.into_iter().collect();
    for device in sorted {
        tx.query_map(
            "SELECT 1 FROM devices WHERE id = ?1 FOR NO KEY UPDATE",
            params![device],
            |_| Ok(()),
        )?
        .for_each(drop);
    }
    Ok(())
}

/// The device that sent envelope `seq` to `device_id`, if it is still queued.
pub fn sender_of(conn: &Conn, device_id: &str, seq: i64) -> crate::db::Result<Option<String>> {
    conn.query_row(
        "SELECT sender_device FROM envelopes WHERE seq = ?1 AND device_id = ?2",
        params![seq, device_id],
        |r| r.get(0),
    )
    .optional()
}

/// Envelopes a socket reads at a time.
pub const PENDING_BATCH: usize = 100;

/// The limit is written into the statement: SQLite compiles a statement again whenever the
/// value bound to its LIMIT changes, and this is the hottest read there is.
pub(crate) const PENDING_SQL: &str =
    "SELECT seq, sender_user, sender_device, accepted_at, payload FROM envelopes
     WHERE device_id = ?1 AND seq > ?2 ORDER BY seq LIMIT 100";

/// Up to [`PENDING_BATCH`] envelopes for `device_id` after `after_seq`, oldest first.
pub fn pending(
    conn: &Conn,
    device_id: &str,
    after_seq: i64,
) -> crate::db::Result<Vec<DeliveredEnvelope>> {
    let mut stmt = conn.prepare_cached(PENDING_SQL)?;
    let rows = stmt.query_map(params![device_id, after_seq], |r| {
        Ok(DeliveredEnvelope {
            seq: r.get(0)?,
            sender_user: r.get(1)?,
            sender_device: r.get(2)?,
            accepted_at: r.get(3)?,
            payload: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Deletes an acknowledged envelope — only the device it was for can do so — and returns
/// the device that sent it, to be told of the delivery.
pub fn acknowledge(conn: &Conn, device_id: &str, seq: i64) -> crate::db::Result<Option<String>> {
    conn.query_row(
        "DELETE FROM envelopes WHERE seq = ?1 AND device_id = ?2 RETURNING sender_device",
        params![seq, device_id],
        |r| r.get(0),
    )
    .optional()
}

/// Whether the retry request for envelope `seq` that `asking_device` made is still queued
/// for `sender_device` (a resend answers only such a request).
pub fn retry_requested(
    conn: &Conn,
    sender_device: &str,
    asking_device: &str,
    seq: i64,
) -> crate::db::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM envelopes WHERE device_id = ?1 AND sender_device = ?2 AND payload = ?3)",
        params![sender_device, asking_device, retry_request(seq)],
        |r| r.get(0),
    )
}

/// Deletes envelope `seq`, which `device_id` could not open, and queues a retry request
/// for the device that sent it (labelled with the asking device, as the sender of any
/// envelope is). Returns that device, to be woken. A retry request is never answered with
/// another, so two devices cannot keep asking each other.
pub fn ask_again(
    conn: &Conn,
    user_id: &str,
    device_id: &str,
    seq: i64,
) -> crate::db::Result<Option<String>> {
    let deleted: Option<(String, Vec<u8>)> = conn
        .query_row(
            "DELETE FROM envelopes WHERE seq = ?1 AND device_id = ?2 RETURNING sender_device, payload",
            params![seq, device_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((sender, payload)) = deleted else {
        return Ok(None);
    };
    // Nothing the server made is answered with a retry request.
    if payload.starts_with(SERVER_MADE_PREFIX) {
        return Ok(None);
    }
    // A sender that is gone, or whose queue is full, gets no request (the limit holds for
    // these as for any envelope).
    let queued: Option<i64> = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM envelopes WHERE device_id = ?1) FROM devices WHERE id = ?1",
            params![sender],
            |r| r.get(0),
        )
        .optional()?;
    if queued.is_none_or(|n| n >= MAX_QUEUED_PER_DEVICE) {
        return Ok(None);
    }
    // Usually locked already by the writer, which looked the sender up first.
    lock_queues(conn, [sender.as_str()])?;
    conn.execute(
        "INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![sender, user_id, device_id, now_millis(), retry_request(seq)],
    )?;
    Ok(Some(sender))
}
