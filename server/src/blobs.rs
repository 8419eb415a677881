//! Encrypted attachments as the server keeps them: opaque ciphertext in the blob store
//! ([`crate::blob_store`]: a directory or an S3 bucket), and in the database who uploaded what,
//! of which size, in which org — bounded by quotas per user, per visitor, for all visitors
//! and per org. The routes (`routes/blobs.rs`) only speak HTTP.
//!
//! An upload writes its bytes first and its row second, so a row always has its bytes; a
//! refused or failed row takes the bytes away again. Rows of an earlier version kept their
//! bytes in the database: they are served from there until [`move_to_store`] moves them.

use crate::db::{now_secs, Db};
use crate::db::{Conn, OptionalExtension};
use crate::error::ApiError;
use crate::params;
use axum::http::StatusCode;
use bytes::Bytes;
use sotto_core::protocol::User;

pub use crate::blob_store::{BlobStore, StoreLocation};

/// What a row holds in `data` once its bytes are in the store.
const NO_BYTES: &[u8] = &[];

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

fn used(conn: &Conn, sql: &str, key: &str) -> crate::db::Result<i64> {
    conn.query_row(sql, params![key], |r| r.get(0))
}

/// Refuses an upload of `size` bytes by `uploader` in `org_id` that would pass a quota
/// (`org_quota` bytes for the whole org).
pub fn check_quota(
    conn: &Conn,
    org_id: &str,
    uploader: &User,
    size: i64,
    org_quota: i64,
) -> Result<(), ApiError> {
    let own = used(
        conn,
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs WHERE uploader = ?1",
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
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs WHERE org_id = ?1",
        org_id,
    )?;
    if org + size > org_quota {
        return Err(quota_exceeded("this organisation's"));
    }
    // Visitors together get a tenth of the org's space, so free accounts cannot fill it.
    if uploader.ephemeral {
        let visitors = used(
            conn,
            "SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b JOIN users u ON u.id = b.uploader
             WHERE b.org_id = ?1 AND u.ephemeral = 1",
            org_id,
        )?;
        if visitors + size > org_quota / 10 {
            return Err(quota_exceeded("visitors'"));
        }
    }
    Ok(())
}

/// Records blob `id` (its `size` bytes already in the store) for `uploader` in `org_id`,
/// checking every quota again in the same transaction as the row.
pub fn record(
    conn: &mut Conn,
    id: &str,
    org_id: &str,
    uploader: &User,
    size: i64,
    org_quota: i64,
) -> Result<(), ApiError> {
    let tx = conn.transaction()?;
    // Uploads on other nodes wait here, so two cannot both fit in the last of the space.
    tx.lock_quota("org attachment space", org_id)?;
    check_quota(&tx, org_id, uploader, size, org_quota)?;
    tx.execute(
        "INSERT INTO blobs (id, org_id, uploader, size, created_at, data, in_store)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)",
        params![id, org_id, uploader.id, size, now_secs(), NO_BYTES],
    )?;
    tx.commit()?;
    Ok(())
}

/// Where blob `id`'s bytes are, for anyone of the same org: in the store, or (a blob of an
/// earlier version not yet moved) here.
pub fn locate(conn: &Conn, id: &str, org_id: &str) -> Result<Option<Vec<u8>>, ApiError> {
    let (in_store, data): (bool, Vec<u8>) = conn
        .query_row(
            "SELECT in_store, data FROM blobs WHERE id = ?1 AND org_id = ?2",
            params![id, org_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| ApiError::not_found("unknown_blob", "no such attachment"))?;
    Ok((!in_store).then_some(data))
}

/// Deletes bytes in the store that no row names and that are older than `min_age_secs`
/// (an upload's row follows its bytes within seconds): what a crash between the two, or a
/// delete that failed, left behind. At most 10,000 a sweep. Returns how many went.
pub async fn sweep_orphans(
    db: &Db,
    store: &BlobStore,
    min_age_secs: i64,
) -> Result<usize, ApiError> {
    let old = store
        .written_before(now_secs() - min_age_secs, 10_000)
        .await?;
    let orphans = db
        .read(move |conn| {
            let mut named =
                conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM blobs WHERE id = ?1)")?;
            let mut out = Vec::new();
            for id in old {
                if !named.query_row(params![id], |r| r.get::<bool>(0))? {
                    out.push(id);
                }
            }
            Ok::<_, ApiError>(out)
        })
        .await?;
    for id in &orphans {
        store.delete(id).await?;
    }
    Ok(orphans.len())
}

/// Moves the bytes that an earlier version kept in the database into the store, one blob at
/// a time; returns how many it moved. Runs at start, in the background: downloads find a
/// blob's bytes either way meanwhile. A blob that fails is logged and left for the next
/// start; one that clean-up deleted meanwhile leaves no file behind.
pub async fn move_to_store(db: &Db, store: &BlobStore) -> Result<usize, ApiError> {
    let mut moved = 0;
    let mut after = String::new();
    loop {
        let from = after.clone();
        let next: Option<(String, Vec<u8>)> = db
            .read(move |conn| {
                conn.query_row(
                    "SELECT id, data FROM blobs WHERE in_store = 0 AND id > ?1 ORDER BY id LIMIT 1",
                    params![from],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(ApiError::from)
            })
            .await?;
        let Some((id, data)) = next else {
            return Ok(moved);
        };
        after = id.clone();
        if let Err(e) = store.put(&id, Bytes::from(data)).await {
            tracing::error!(blob = %id, error = %e.message, "attachment not moved to the blob store");
            continue;
        }
        let marked = {
            let id = id.clone();
            db.call(move |conn| {
                conn.execute(
                    "UPDATE blobs SET in_store = 1, data = ?2 WHERE id = ?1 AND in_store = 0",
                    params![id, NO_BYTES],
                )
                .map_err(ApiError::from)
            })
            .await?
        };
        if marked == 0 {
            // Clean-up took the row meanwhile: nothing may keep these bytes.
            store.delete(&id).await?;
        } else {
            moved += 1;
        }
    }
}
