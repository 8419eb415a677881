//! `/healthz` (the process answers), `/readyz` (it can do its work: the database answers,
//! the bus is connected when one is configured, and it is not stopping), and the
//! `/metrics` listener's router.

use crate::error::ApiError;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::time::Duration;

/// How long a readiness check waits for the database.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process answers", body = crate::openapi::Health)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready: the database answers, the bus (if any) is connected", body = crate::openapi::Ready),
        (status = 503, description = "Not ready", body = sotto_core::protocol::ErrorBody)))]
pub async fn readyz(State(state): State<SharedState>) -> Result<Json<serde_json::Value>, ApiError> {
    let not_ready = |what: &str| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("not ready: {what}"),
        )
    };
    if *state.draining.borrow() {
        return Err(not_ready("the server is stopping"));
    }
    let check = state
        .db
        .read(|conn| conn.query_row("SELECT 1", crate::params![], |r| r.get::<i64>(0)));
    match tokio::time::timeout(DATABASE_TIMEOUT, check).await {
        Ok(Ok(1)) => {}
        Ok(Ok(_)) | Ok(Err(_)) => return Err(not_ready("the database does not answer")),
        Err(_) => return Err(not_ready("the database is too slow to answer")),
    }
    let bus = state.registry.bus_connected();
    if bus == Some(false) {
        return Err(not_ready("the bus is not connected"));
    }
    Ok(Json(json!({
        "status": "ready",
        "database": "ok",
        "bus": match bus { Some(_) => "ok", None => "none" },
    })))
}

async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&state).await,
    )
}

/// What the metrics listener serves.
pub fn metrics_app(state: SharedState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}
