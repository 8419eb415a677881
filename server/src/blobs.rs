//! Encrypted attachments as the server keeps them: opaque ciphertext with its org, uploader
//! and size, bounded by quotas per user, per visitor, for all visitors and per org. The
//! routes (`routes/blobs.rs`) only speak HTTP; what is stored and what is allowed is here.

use crate::db::{new_id, now_secs};
use crate::error::ApiError;
use axum::http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension};
use sotto_core::protocol::User;

/// Largest attachment, encrypted.
pub const MAX_BLOB: usize = 10 * 1024 * 1024;
/// Stored bytes one user may have (the oldest are not removed: uploads stop).
const MAX_BYTES_PER_USER: i64 = 200 * 1024 * 1024;
/// Stored bytes one visitor may have: visitor accounts are free to make.
const MAX_BYTES_PER_VISITOR: i64 = 20 * 1024 * 1024;

fn quota_exceeded(whose: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "quota_exceeded",
        format!("{whose} attachment space is full"),
    )
}

fn used(conn: &Connection, sql: &str, key: &str) -> rusqlite::Result<i64> {
    conn.query_row(sql, params![key], |r| r.get(0))
}

/// Stores `data` uploaded by `uploader` in `org_id`, within every quota (`org_quota` bytes
/// for the whole org); returns the new blob's ID.
pub fn store(
    conn: &Connection,
    org_id: &str,
    uploader: &User,
    data: &[u8],
    org_quota: i64,
) -> Result<String, ApiError> {
    let size = data.len() as i64;
    let own = used(
        conn,
        "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE uploader = ?1",
        &uploader.id,
    )?;
    let (own_quota, whose) = if uploader.ephemeral {
        (MAX_BYTES_PER_VISITOR, "this visitor's")
    } else {
        (MAX_BYTES_PER_USER, "this user's")
    };
    if own + size > own_quota {
        return Err(quota_exceeded(whose));
    }
    let org = used(
        conn,
        "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE org_id = ?1",
        org_id,
    )?;
    if org + size > org_quota {
        return Err(quota_exceeded("this organisation's"));
    }
    // Visitors together get a tenth of the org's space, so free accounts cannot fill it.
    if uploader.ephemeral {
        let visitors = used(
            conn,
            "SELECT COALESCE(SUM(b.size), 0) FROM blobs b JOIN users u ON u.id = b.uploader
             WHERE b.org_id = ?1 AND u.ephemeral = 1",
            org_id,
        )?;
        if visitors + size > org_quota / 10 {
            return Err(quota_exceeded("visitors'"));
        }
    }
    let id = new_id("b");
    conn.execute(
        "INSERT INTO blobs (id, org_id, uploader, size, created_at, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, org_id, uploader.id, size, now_secs(), data],
    )?;
    Ok(id)
}

/// The ciphertext of blob `id`, to anyone of the same org.
pub fn load(conn: &Connection, id: &str, org_id: &str) -> Result<Vec<u8>, ApiError> {
    conn.query_row(
        "SELECT data FROM blobs WHERE id = ?1 AND org_id = ?2",
        params![id, org_id],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found("unknown_blob", "no such attachment"))
}
