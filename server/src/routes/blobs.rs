//! Encrypted attachments: `POST /v1/blobs` stores ciphertext that a client encrypted with a
//! fresh key (the key travels only inside the sealed message), `GET /v1/blobs/{id}` hands it
//! to anyone signed in to the same org. The server cannot read them.

use crate::auth::session::AuthUser;
use crate::blobs;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

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
    let size = body.len();
    let org_quota = state.config.org_blob_quota_mib.saturating_mul(1024 * 1024);
    let id = state
        .db
        .call(move |conn| blobs::store(conn, &who.org_id, &who.user, &body, org_quota))
        .await?;
    Ok(Json(serde_json::json!({ "id": id, "size": size })))
}

pub async fn download(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let data = state
        .db
        .read(move |conn| blobs::load(conn, &id, &who.org_id))
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
