//! `POST /v1/envelopes`: a device hands over one sealed envelope per recipient device. They
//! are stored durably (all or none) before the answer, and handed to the recipients.

use super::json::ApiJson;
use crate::auth::session::AuthUser;
use crate::delivery::queue;
use crate::devices::owns_device;
use crate::error::{ApiError, ApiResult};
use crate::keys::current_devices_in_org;
use crate::state::SharedState;
use axum::extract::State;
use axum::Json;
use sotto_core::protocol::{DevicesChanged, SendReceipt, SendRequest, SERVER_MADE_PREFIX};
use std::collections::BTreeSet;

/// Recipient devices one send may address.
pub const MAX_ENVELOPES: usize = 1000;
/// Largest sealed payload: a 64 KiB text, its JSON framing and the HPKE overhead.
pub const MAX_PAYLOAD: usize = 160 * 1024;
/// Body limit for this route (the others take far less).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

#[utoipa::path(post, path = "/v1/envelopes", tag = "envelopes", request_body = SendRequest,
    responses((status = 200, description = "Stored for every recipient device", body = SendReceipt)))]
pub async fn send(
    State(state): State<SharedState>,
    who: AuthUser,
    ApiJson(req): ApiJson<SendRequest>,
) -> ApiResult<Json<SendReceipt>> {
    store(&state, &who, req).await.map(Json)
}

/// Checks and stores one send for `who` (the group commit then hands the envelopes to the
/// recipients): what `POST /v1/envelopes` and a `send` frame on the delivery socket both do.
pub async fn store(
    state: &SharedState,
    who: &AuthUser,
    req: SendRequest,
) -> ApiResult<SendReceipt> {
    if req.live {
        return crate::delivery::live::relay(state, who, req).await;
    }
    // With several nodes, the session's budget is also counted in the database, in the
    // commit that stores the send.
    let budget = state
        .send_limiter
        .check_here(&who.limit_key(), state.config.bus.is_some())?;
    check_envelopes(&req, MAX_PAYLOAD)?;
    let stored = req.envelopes.len();
    // The checks only read; the writing joins others in one commit (see delivery::writer).
    let (org, user) = (who.org_id.clone(), who.user.id.clone());
    let who = who.clone();
    let inline = checked_inline(&req);
    let checks = move |conn: &crate::db::Conn| {
        check_sender_device(conn, &user, &req)?;
        match req.resend_of {
            Some(seq) => check_resend(conn, &req, seq)?,
            None => check_devices(conn, &org, &req)?,
        }
        Ok::<_, ApiError>(req)
    };
    let req = if inline {
        state.db.read_now(checks).await?
    } else {
        state.db.read(checks).await?
    };
    let (accepted_at, seqs) = state
        .writer
        .enqueue(
            who.org_id,
            who.user.id,
            req.sender_device,
            who.user.ephemeral,
            req.envelopes,
            budget,
        )
        .await?;
    Ok(SendReceipt {
        stored,
        accepted_at,
        seqs,
    })
}

/// [`check_envelopes`] with the payload limit of the send's kind (live or stored).
pub fn check_send(req: &SendRequest) -> Result<(), ApiError> {
    let limit = if req.live {
        crate::delivery::live::MAX_LIVE_PAYLOAD
    } else {
        MAX_PAYLOAD
    };
    check_envelopes(req, limit)
}

/// Recipients a send may name for its checks to run at once on the async thread (see
/// `Db::read_now`): a few indexed lookups each. Larger sends, and resends (whose check
/// compares payloads), go to the blocking pool.
const INLINE_RECIPIENTS: usize = 16;

/// Whether the checks of `req` are small enough to run at once (see [`INLINE_RECIPIENTS`]).
pub fn checked_inline(req: &SendRequest) -> bool {
    req.resend_of.is_none() && req.recipients.len() <= INLINE_RECIPIENTS
}

/// What every send must be, stored or live: 1 to [`MAX_ENVELOPES`] envelopes for distinct
/// devices, each 1 to `max_payload` bytes and none posing as one the server makes, for
/// 1 to [`MAX_ENVELOPES`] named users.
pub fn check_envelopes(req: &SendRequest, max_payload: usize) -> Result<(), ApiError> {
    if req.envelopes.is_empty() {
        return Err(ApiError::bad_request(
            "no_envelopes",
            "a send needs at least one envelope",
        ));
    }
    if req.envelopes.len() > MAX_ENVELOPES {
        return Err(ApiError::bad_request(
            "too_many_envelopes",
            format!("at most {MAX_ENVELOPES} envelopes per send"),
        ));
    }
    if req.recipients.is_empty() || req.recipients.len() > MAX_ENVELOPES {
        return Err(ApiError::bad_request(
            "no_recipients",
            "a send names the users it is for (1 to 1000)",
        ));
    }
    if let Some(e) = req
        .envelopes
        .iter()
        .find(|e| e.payload.len() > max_payload || e.payload.is_empty())
    {
        return Err(ApiError::bad_request(
            "bad_payload",
            format!(
                "the envelope for {:?} is empty or over {max_payload} bytes",
                e.device_id
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(e) = req
        .envelopes
        .iter()
        .find(|e| !seen.insert(e.device_id.as_str()))
    {
        return Err(ApiError::bad_request(
            "duplicate_device",
            format!("two envelopes for device {:?} in one send", e.device_id),
        ));
    }
    // Retry requests and expiry notices come from the server alone, never a client.
    if req
        .envelopes
        .iter()
        .any(|e| e.payload.starts_with(SERVER_MADE_PREFIX))
    {
        return Err(ApiError::bad_request(
            "bad_payload",
            "an envelope may not look like a retry request or an expiry notice",
        ));
    }
    Ok(())
}

/// Refuses a send from a device that is not the signed-in user's.
pub fn check_sender_device(
    conn: &crate::db::Conn,
    user: &str,
    req: &SendRequest,
) -> Result<(), ApiError> {
    if !owns_device(conn, user, &req.sender_device)? {
        return Err(ApiError::forbidden(
            "unknown_device",
            "the sending device is not registered to you",
        ));
    }
    Ok(())
}

/// A resend answers a retry request that is still queued for the sending device, from the
/// very device it goes to: so only a device that asked gets a message outside a full send.
fn check_resend(conn: &crate::db::Conn, req: &SendRequest, seq: i64) -> Result<(), ApiError> {
    let [envelope] = req.envelopes.as_slice() else {
        return Err(ApiError::bad_request(
            "bad_resend",
            "a resend carries one envelope, for the device that asked",
        ));
    };
    if !queue::retry_requested(conn, &req.sender_device, &envelope.device_id, seq)? {
        return Err(ApiError::bad_request(
            "no_retry_request",
            "that device has not asked for this envelope again",
        ));
    }
    Ok(())
}

/// Refuses a send that misses a current device of a recipient or names one that is not
/// current: the sender must fetch the new lists (and make sessions) and send again, so no
/// device of a member silently goes without a message.
fn check_devices(conn: &crate::db::Conn, org_id: &str, req: &SendRequest) -> Result<(), ApiError> {
    let mut current = BTreeSet::new();
    for user in &req.recipients {
        current.extend(current_devices_in_org(conn, user, org_id)?);
    }
    current.remove(&req.sender_device);
    let named: BTreeSet<String> = req.envelopes.iter().map(|e| e.device_id.clone()).collect();
    let changed = DevicesChanged {
        missing: current.difference(&named).cloned().collect(),
        stale: named.difference(&current).cloned().collect(),
    };
    if changed.missing.is_empty() && changed.stale.is_empty() {
        return Ok(());
    }
    Err(ApiError::conflict(
        "devices_changed",
        "the recipients' devices changed; fetch their keys and send again",
    )
    .with_details(changed))
}
