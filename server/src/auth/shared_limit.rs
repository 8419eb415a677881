//! Rate limits that hold across nodes. Each node's in-memory limiter (`rate_limit.rs`)
//! answers first and cheaply; with several nodes (a bus configured) the budgets that a
//! client could otherwise multiply by spreading its requests over the nodes — sign-ins per
//! address and per account, link requests, sends, bundle claims and uploads per session —
//! are also counted in the database, in one-minute windows, so N nodes do not give a
//! client N times the budget. One upsert per counted event (a send's rides in the group
//! commit that stores it); keys are stored hashed, so the table names no address, account
//! or session.

use crate::db::{now_secs, Conn, Db};
use crate::error::{ApiError, ApiResult};
use crate::params;
use axum::http::StatusCode;

/// One budget in the database: `per_minute` events a minute for one key.
pub struct Budget {
    hashed_key: String,
    per_minute: u32,
    what: &'static str,
}

impl Budget {
    /// The budget of `key` (a session's or an address's) for `what` ("sends").
    pub fn new(what: &'static str, key: &str, per_minute: u32) -> Budget {
        Budget {
            hashed_key: crate::admin::api_keys::hash_hex(&format!("{what} {key}")),
            per_minute,
            what,
        }
    }

    /// What orders budgets (and so the locks on their counters): the hashed key.
    pub fn key(&self) -> &str {
        &self.hashed_key
    }

    /// Counts one event in `conn`'s transaction: the refusal (the inner error) if that
    /// goes past the budget, with when to try again.
    pub fn take(&self, conn: &Conn) -> crate::db::Result<Result<(), ApiError>> {
        let now = now_secs();
        let window = now - now % 60;
        let count: i64 = conn.query_row(
            "INSERT INTO rate_windows (key, window_start, count) VALUES (?1, ?2, 1)
             ON CONFLICT (key) DO UPDATE SET
                 count = CASE WHEN rate_windows.window_start = excluded.window_start
                              THEN rate_windows.count + 1 ELSE 1 END,
                 window_start = excluded.window_start
             RETURNING count",
            params![self.hashed_key, window],
            |r| r.get(0),
        )?;
        if count <= i64::from(self.per_minute) {
            return Ok(Ok(()));
        }
        crate::metrics::count(
            &crate::metrics::metrics().rate_limited,
            &[("limit", self.what)],
        );
        let wait = (window + 60 - now).max(1) as u64;
        Ok(Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many {}; try again in {wait} s", self.what),
        )
        .retry_after(wait)))
    }
}

/// Counts one event for `what` by `key` on its own; refuses with `429 rate_limited` past
/// `per_minute` in the current minute.
pub async fn check(db: &Db, key: &str, per_minute: u32, what: &'static str) -> ApiResult<()> {
    let budget = Budget::new(what, key, per_minute);
    db.call(move |conn| Ok::<_, ApiError>(budget.take(conn)?))
        .await?
}
