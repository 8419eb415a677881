//! Live sends (a typing notice): envelopes handed to the recipient devices' open sockets at
//! once, on this node and through the bus on the others, and never written anywhere. A
//! device that is not connected simply never gets one — what it missed is a notice that
//! was only true for a few seconds.

use crate::auth::session::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::keys::current_devices_in_org;
use crate::routes::envelopes::{check_envelopes, check_sender_device};
use crate::state::SharedState;
use sotto_core::protocol::{
    DeliveredEnvelope, DevicesChanged, SendReceipt, SendRequest, ServerFrame,
};
use std::collections::HashSet;

/// Live sends one session may make per minute (a typing notice goes every few seconds at
/// most while someone types). Counted per node.
pub const LIVE_SENDS_PER_MINUTE: u32 = 60;
/// Largest live payload: a typing notice is a few hundred bytes, with a session's first
/// header or a sender key beside it well under this.
pub const MAX_LIVE_PAYLOAD: usize = 8 * 1024;

/// Checks a live send from `who` and pushes each envelope to its device's open sockets.
/// The receipt names no seqs: nothing was stored, and nothing will be reported delivered.
pub async fn relay(
    state: &SharedState,
    who: &AuthUser,
    req: SendRequest,
) -> ApiResult<SendReceipt> {
    state.live_limiter.check(&who.limit_key())?;
    check_envelopes(&req, MAX_LIVE_PAYLOAD)?;
    if req.resend_of.is_some() {
        return Err(ApiError::bad_request(
            "bad_resend",
            "a live send answers no retry request",
        ));
    }
    let (org, user) = (who.org_id.clone(), who.user.id.clone());
    let req = state
        .db
        .read(move |conn| {
            check_sender_device(conn, &user, &req)?;
            // Only current devices of the users named, in the sender's org: a live send
            // reaches no one a stored send could not.
            let mut current = HashSet::new();
            for u in &req.recipients {
                current.extend(current_devices_in_org(conn, u, &org)?);
            }
            current.remove(&req.sender_device);
            // A device no longer current: the sender's lists are old. 409 devices_changed,
            // as for a stored send, makes it fetch them again.
            let stale: Vec<String> = req
                .envelopes
                .iter()
                .filter(|e| !current.contains(&e.device_id))
                .map(|e| e.device_id.clone())
                .collect();
            if !stale.is_empty() {
                return Err(ApiError::conflict(
                    "devices_changed",
                    "a device named is not a current device of the users named",
                )
                .with_details(DevicesChanged {
                    missing: Vec::new(),
                    stale,
                }));
            }
            Ok::<_, ApiError>(req)
        })
        .await?;
    let accepted_at = crate::db::now_millis();
    for e in req.envelopes {
        let frame = ServerFrame::Live(DeliveredEnvelope {
            seq: 0,
            sender_user: who.user.id.clone(),
            sender_device: req.sender_device.clone(),
            accepted_at,
            payload: e.payload,
        });
        state.registry.push(&e.device_id, &frame);
    }
    Ok(SendReceipt {
        stored: 0,
        accepted_at,
        seqs: Vec::new(),
    })
}
