//! Encrypted attachments: `POST /v1/blobs` stores ciphertext that a client encrypted with a
//! fresh key (the key travels only inside the sealed message), `GET /v1/blobs/{id}` hands it
//! to anyone signed in to the same org. The server cannot read them.

use crate::auth::session::AuthUser;
use crate::blobs;
use crate::db::new_id;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

#[utoipa::path(post, path = "/v1/blobs", tag = "attachments",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "An encrypted attachment"),
    responses((status = 200, description = "Stored", body = crate::openapi::BlobStored)))]
pub async fn upload(
    State(state): State<SharedState>,
    who: AuthUser,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    state
        .upload_limiter
        .check_everywhere(&who.limit_key(), &state.db, state.config.bus.is_some())
        .await?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_blob",
            "an attachment needs some bytes",
        ));
    }
    let size = body.len() as i64;
    let org_quota = state.config.org_blob_quota_mib.saturating_mul(1024 * 1024);
    // Checked before the bytes are written, and again with the row.
    let (org, user) = (who.org_id.clone(), who.user.clone());
    state
        .db
        .read(move |conn| blobs::check_quota(conn, &org, &user, size, org_quota))
        .await?;
    let id = new_id("b");
    // Bytes, then row, then (if the row is refused) the bytes away again, as one task that
    // a client hanging up cannot cut short and leave bytes without a row.
    let store = state.blobs.clone();
    let db = state.db.clone();
    let stored = {
        let id = id.clone();
        tokio::spawn(async move {
            store.put(&id, body).await?;
            let row = {
                let id = id.clone();
                db.call(move |conn| {
                    blobs::record(conn, &id, &who.org_id, &who.user, size, org_quota)
                })
                .await
            };
            if row.is_err() {
                if let Err(e) = store.delete(&id).await {
                    tracing::warn!(blob = %id, error = %e.message, "refused upload's bytes not deleted");
                }
            }
            row
        })
    };
    stored.await.map_err(ApiError::internal)??;
    Ok(Json(serde_json::json!({ "id": id, "size": size })))
}

#[utoipa::path(get, path = "/v1/blobs/{id}", tag = "attachments", params(("id" = String, Path, description = "A blob ID")),
    responses((status = 200, description = "The encrypted bytes", body = Vec<u8>, content_type = "application/octet-stream")))]
pub async fn download(
    State(state): State<SharedState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let data = {
        let id = id.clone();
        state
            .db
            .read(move |conn| blobs::locate(conn, &id, &who.org_id))
            .await?
    };
    let data = match data {
        Some(here) => axum::body::Bytes::from(here),
        None => state.blobs.get(&id).await?,
    };
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
