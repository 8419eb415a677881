//! Device linking as the server keeps it (protocol v3, commit-then-reveal; see
//! `sotto_core::linking` and `routes/links.rs` for the exchange): each request's state and
//! who may act on it. Each step happens once, in order, and only by the party it belongs
//! to: the session that asked reveals and takes the approval, the device that answered
//! approves, any of the user's browsers declines while it is open. Requests live ten
//! minutes. The server can neither open the bundle nor pick keys that pass the comparison.

use crate::db::{new_id, now_secs};
use crate::db::{Conn, OptionalExtension, Row};
use crate::devices::{ids_of, owns_device};
use crate::error::ApiError;
use crate::params;
use axum::http::StatusCode;
use sotto_core::protocol::{LinkApprove, LinkRequest};

/// How long a request may wait for an answer.
pub const LINK_TTL_SECS: i64 = 600;
/// Open requests one user may have at once.
const MAX_PENDING: i64 = 5;
/// Largest sealed bundle (recent history travels in it).
pub const MAX_SEALED: usize = 4 * 1024 * 1024;
/// Statuses of a request that still waits for something.
const OPEN: &str = "status IN ('pending', 'accepted', 'revealed')";

/// A request with who may act on it.
struct Stored {
    request: LinkRequest,
    session_hash: Vec<u8>,
    running_device: Option<String>,
}

fn from_row(r: &Row<'_>) -> crate::db::Result<Stored> {
    Ok(Stored {
        request: LinkRequest {
            id: r.get(0)?,
            commitment: r.get(1)?,
            status: r.get(2)?,
            expires_at: r.get(3)?,
            running_public: r.get(4)?,
            new_public: r.get(5)?,
            sealed: r.get(6)?,
        },
        session_hash: r.get(7)?,
        running_device: r.get(8)?,
    })
}

const COLUMNS: &str = "id, commitment, status, expires_at, running_public, new_public, sealed, session_hash, running_device";

/// What `device_id` should hear about on connecting: requests still waiting for a running
/// browser, and those this device answered whose key has since been revealed.
pub fn pending_for_device(
    conn: &Conn,
    user_id: &str,
    device_id: &str,
) -> Result<Vec<LinkRequest>, ApiError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM link_requests WHERE user_id = ?1 AND expires_at > ?2
         AND (status = 'pending' OR (status = 'revealed' AND running_device = ?3)) ORDER BY created_at"
    ))?;
    let rows = stmt.query_map(params![user_id, now_secs(), device_id], from_row)?;
    rows.map(|r| {
        r.map(|s| LinkRequest {
            sealed: None,
            ..s.request
        })
        .map_err(ApiError::from)
    })
    .collect()
}

fn unknown() -> ApiError {
    ApiError::not_found("unknown_link", "no such link request")
}

/// The user's request `id`, refusing unknown and expired ones.
fn own_request(conn: &Conn, user_id: &str, id: &str) -> Result<Stored, ApiError> {
    let stored = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM link_requests WHERE id = ?1 AND user_id = ?2"),
            params![id, user_id],
            from_row,
        )
        .optional()?
        .ok_or_else(unknown)?;
    if stored.request.expires_at <= now_secs() && stored.request.status != "consumed" {
        return Err(ApiError::new(
            StatusCode::GONE,
            "link_expired",
            "the link request has expired; start again",
        ));
    }
    Ok(stored)
}

/// The request `id` as its asking session (`session_hash`) sees it; other sessions are told
/// it does not exist, so a stolen token of the same user cannot take another browser's
/// approval.
fn asked_by(conn: &Conn, user_id: &str, session_hash: &[u8], id: &str) -> Result<Stored, ApiError> {
    let stored = own_request(conn, user_id, id)?;
    if stored.session_hash != session_hash {
        return Err(unknown());
    }
    Ok(stored)
}

fn out_of_order(expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "link_answered",
        format!("this link request is not {expected} (it was answered, or is further along)"),
    )
}

/// A new request of `user_id`'s session `session_hash` with the new browser's
/// `commitment`; returns it and the user's devices, to be told.
pub fn create(
    conn: &Conn,
    user_id: &str,
    session_hash: &[u8],
    commitment: Vec<u8>,
) -> Result<(LinkRequest, Vec<String>), ApiError> {
    // Requests on other nodes wait here: the count holds until the insert.
    let tx = conn.transaction()?;
    let conn: &Conn = &tx;
    conn.lock_quota("link requests", user_id)?;
    let open: i64 = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM link_requests WHERE user_id = ?1 AND {OPEN} AND expires_at > ?2"
        ),
        params![user_id, now_secs()],
        |r| r.get(0),
    )?;
    if open >= MAX_PENDING {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_links",
            "too many link requests are open",
        ));
    }
    let request = LinkRequest {
        id: new_id("l"),
        commitment,
        status: "pending".into(),
        expires_at: now_secs() + LINK_TTL_SECS,
        running_public: None,
        new_public: None,
        sealed: None,
    };
    conn.execute(
        "INSERT INTO link_requests (id, user_id, session_hash, commitment, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            request.id,
            user_id,
            session_hash,
            request.commitment,
            now_secs(),
            request.expires_at
        ],
    )?;
    let devices = ids_of(conn, user_id)?;
    tx.commit()?;
    Ok((request, devices))
}

/// The asking session's view of its request; an approval is handed over once, then
/// consumed.
pub fn take(
    conn: &Conn,
    user_id: &str,
    session_hash: &[u8],
    id: &str,
) -> Result<LinkRequest, ApiError> {
    let mut request = asked_by(conn, user_id, session_hash, id)?.request;
    match request.status.as_str() {
        // Consumed by the statement that checks it, so that two takes at once (on two
        // nodes) cannot both receive the approval.
        "approved"
            if conn.execute(
                "UPDATE link_requests SET status = 'consumed', sealed = NULL
                 WHERE id = ?1 AND status = 'approved'",
                params![id],
            )? == 1 => {}
        "approved" | "consumed" => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "link_used",
                "this link request has already been used",
            ));
        }
        _ => request.sealed = None,
    }
    Ok(request)
}

/// `user_id`'s running browser `device_id` answers a pending request with its key; the
/// first one wins. Returns the request and the user's other devices, to drop it.
pub fn accept(
    conn: &Conn,
    user_id: &str,
    id: &str,
    device_id: &str,
    running_public: Vec<u8>,
) -> Result<(LinkRequest, Vec<String>), ApiError> {
    let mut request = own_request(conn, user_id, id)?.request;
    if !owns_device(conn, user_id, device_id)? {
        return Err(ApiError::forbidden(
            "unknown_device",
            "the answering device is not registered to you",
        ));
    }
    let changed = conn.execute(
        "UPDATE link_requests SET status = 'accepted', running_device = ?1, running_public = ?2
         WHERE id = ?3 AND status = 'pending'",
        params![device_id, running_public, id],
    )?;
    if changed == 0 {
        return Err(out_of_order("pending"));
    }
    request.status = "accepted".into();
    request.running_public = Some(running_public);
    let others: Vec<String> = ids_of(conn, user_id)?
        .into_iter()
        .filter(|d| d != device_id)
        .collect();
    Ok((request, others))
}

/// The asking session reveals the new browser's key once a running browser has answered.
/// Returns the request and the answering device, to be told.
pub fn reveal(
    conn: &Conn,
    user_id: &str,
    session_hash: &[u8],
    id: &str,
    new_public: Vec<u8>,
) -> Result<(LinkRequest, Vec<String>), ApiError> {
    let stored = asked_by(conn, user_id, session_hash, id)?;
    let changed = conn.execute(
        "UPDATE link_requests SET status = 'revealed', new_public = ?1 WHERE id = ?2 AND status = 'accepted'",
        params![new_public, id],
    )?;
    if changed == 0 {
        return Err(out_of_order("accepted"));
    }
    let mut request = stored.request;
    request.status = "revealed".into();
    request.new_public = Some(new_public);
    Ok((request, stored.running_device.into_iter().collect()))
}

/// Approves (only the device that answered, once the key is revealed) or declines (any of
/// the user's browsers, while the request is open). Returns the new status, the request
/// and the user's devices.
pub fn answer(
    conn: &Conn,
    user_id: &str,
    id: &str,
    approval: Option<&LinkApprove>,
) -> Result<(&'static str, LinkRequest, Vec<String>), ApiError> {
    let stored = own_request(conn, user_id, id)?;
    let status = match approval {
        Some(a) => {
            if !owns_device(conn, user_id, &a.device_id)? {
                return Err(ApiError::forbidden(
                    "unknown_device",
                    "the approving device is not registered to you",
                ));
            }
            if stored.request.status != "revealed" {
                return Err(out_of_order("revealed"));
            }
            if stored.running_device.as_deref() != Some(a.device_id.as_str()) {
                return Err(ApiError::forbidden(
                    "not_the_answering_device",
                    "only the browser that answered this request may approve it",
                ));
            }
            let changed = conn.execute(
                "UPDATE link_requests SET status = 'approved', sealed = ?1 WHERE id = ?2 AND status = 'revealed'",
                params![a.sealed, id],
            )?;
            if changed == 0 {
                return Err(out_of_order("revealed"));
            }
            "approved"
        }
        None => {
            let changed = conn.execute(
                &format!("UPDATE link_requests SET status = 'declined' WHERE id = ?1 AND {OPEN}"),
                params![id],
            )?;
            if changed == 0 {
                return Err(out_of_order("open"));
            }
            "declined"
        }
    };
    tracing::info!(user = %user_id, link = %id, status, "link answered");
    let request = LinkRequest {
        status: status.into(),
        sealed: None,
        ..stored.request
    };
    Ok((status, request, ids_of(conn, user_id)?))
}
