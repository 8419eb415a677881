//! Encrypted attachments: `POST /v1/blobs` stores ciphertext that a client encrypted with a
//! fresh key (the key travels only inside the sealed message), `GET /v1/blobs/{id}` hands it
//! to anyone signed in to the same org. The server cannot read them.

use crate::auth::session::AuthUser;
use crate::db::{new_id, now_secs};
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use rusqlite::{params, OptionalExtension};

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

pub async fn upload(
    State(state): State<SharedState>,
    who: AuthUser,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    state.upload_limiter.check(&who.limit_key())?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_blob",
            "an attachment needs some bytes",
        ));
    }
    let size = body.len() as i64;
    let org_quota = state.config.org_blob_quota_mib.saturating_mul(1024 * 1024);
    let id = state
        .db
        .call(move |conn| {
            let used: i64 =
                conn.query_row("SELECT COALESCE(SUM(size), 0) FROM blobs WHERE uploader = ?1", params![who.user.id], |r| r.get(0))?;
            let own_quota = if who.user.ephemeral { MAX_BYTES_PER_VISITOR } else { MAX_BYTES_PER_USER };
            if used + size > own_quota {
                return Err(quota_exceeded(if who.user.ephemeral { "this visitor's" } else { "this user's" }));
            }
            let org_used: i64 =
                conn.query_row("SELECT COALESCE(SUM(size), 0) FROM blobs WHERE org_id = ?1", params![who.org_id], |r| r.get(0))?;
            if org_used + size > org_quota {
                return Err(quota_exceeded("this organisation's"));
            }
            // Visitors together get a tenth of the org's space, so free accounts cannot fill it.
            if who.user.ephemeral {
                let visitors_used: i64 = conn.query_row(
                    "SELECT COALESCE(SUM(b.size), 0) FROM blobs b JOIN users u ON u.id = b.uploader WHERE b.org_id = ?1 AND u.ephemeral = 1",
                    params![who.org_id],
                    |r| r.get(0),
                )?;
                if visitors_used + size > org_quota / 10 {
                    return Err(quota_exceeded("visitors'"));
                }
            }
            let id = new_id("b");
            conn.execute(
                "INSERT INTO blobs (id, org_id, uploader, size, created_at, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, who.org_id, who.user.id, size, now_secs(), body.as_ref()],
            )?;
            Ok(id)
        })
        .await?;
    Ok(Json(serde_json::json!({ "id": id, "size": size })))
}

pub async fn download(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let data: Vec<u8> = state
        .db
        .call(move |conn| {
            conn.query_row(
                "SELECT data FROM blobs WHERE id = ?1 AND org_id = ?2",
                params![id, who.org_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| ApiError::not_found("unknown_blob", "no such attachment"))
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable",
            ),
        ],
        data,
    ))
}
