//! Rate limits that hold across nodes. Each node's in-memory limiter (`rate_limit.rs`)
//! answers first and cheaply; with several nodes (a bus configured) the limits that guard
//! against guessing and nuisance — sign-ins per address and per account, link requests
//! per session — are also counted in the database, in one-minute windows, so N nodes do
//! not give a client N times the budget. One upsert per counted event; keys are stored
//! hashed, so the table names no address or account.

use crate::db::{now_secs, Db};
use crate::error::{ApiError, ApiResult};
use crate::params;
use axum::http::StatusCode;

/// Counts one event for `key`; refuses with `429 rate_limited` past `per_minute` in the
/// current minute.
pub async fn check(db: &Db, key: &str, per_minute: u32, what: &'static str) -> ApiResult<()> {
    let now = now_secs();
    let window = now - now % 60;
    let hashed = crate::admin::api_keys::hash_hex(key);
    let count: i64 = db
        .call(move |conn| {
            conn.query_row(
                "INSERT INTO rate_windows (key, window_start, count) VALUES (?1, ?2, 1)
                 ON CONFLICT (key) DO UPDATE SET
                     count = CASE WHEN rate_windows.window_start = excluded.window_start
                                  THEN rate_windows.count + 1 ELSE 1 END,
                     window_start = excluded.window_start
                 RETURNING count",
                params![hashed, window],
                |r| r.get(0),
            )
        })
        .await?;
    if count > i64::from(per_minute) {
        crate::metrics::count(&crate::metrics::metrics().rate_limited, &[("limit", what)]);
        let wait = (window + 60 - now).max(1) as u64;
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many {what}; try again in {wait} s"),
        )
        .retry_after(wait));
    }
    Ok(())
}
