//! Retry receipts, as Signal has them. A device that cannot open an envelope (its session
//! or a sender key is lost, a chain broke) answers `retry` instead of `ack`: the server
//! drops the envelope, does not report it delivered, and queues a retry request for its
//! sender. The sender, if it sent that envelope to that very device, starts over with it
//! (`Account::restart_session`: a fresh bundle, its sender keys handed out again) and sends
//! the message once more — to that device only, and once per message and device, so two
//! devices that cannot understand each other do not loop.

use super::Inner;
use crate::error::{ClientError, ClientResult};
use crate::model::Awaiting;
use sotto_core::account::Recipient;
use sotto_core::protocol::DeliveredEnvelope;
use sotto_core::sealing::MessageBody;
use std::rc::Rc;

/// Whether a failure to open an envelope is worth a retry request: anything a fresh
/// session, a resent sender key or an unharmed copy can mend — a lost session or key, a
/// broken chain, bytes damaged on the way (`unverified_sender` is also what a group message
/// says when its sender's session is gone). A forged envelope asked for again costs
/// nothing: the sender acts only on envelopes it sent to that very device, once each.
/// What no resend can change (a non-member, a replay, a stale list) is simply dropped.
pub(super) fn asks_again(error: &ClientError) -> bool {
    matches!(
        error.code.as_str(),
        "decrypt_failed"
            | "no_session"
            | "too_many_skipped"
            | "unverified_sender"
            | "bad_signature"
            | "malformed"
    )
}

impl Inner {
    /// A retry request from `env`'s device for this device's envelope `seq`. Acted on only
    /// if this device sent `seq` to exactly that device, and once per message and device:
    /// a request the relay made up can neither redirect a message nor make this device
    /// start sessions over and over.
    pub(super) async fn on_retry_request(
        self: &Rc<Self>,
        env: &DeliveredEnvelope,
        seq: i64,
    ) -> ClientResult<()> {
        let awaiting = self.state.borrow().threads.iter().find_map(|t| {
            t.awaiting(seq)
                .filter(|a| a.user_id == env.sender_user && a.device_id == env.sender_device)
                .map(|a| (t.id.clone(), a.clone()))
        });
        // Once per message and device: an envelope that was itself a resend is not sent again.
        let Some((thread_id, awaiting)) = awaiting.filter(|(_, a)| !a.resend) else {
            return Ok(());
        };
        let Some((body, members)) = self.body_to_resend(&thread_id, &awaiting)? else {
            return Ok(());
        };
        self.with_account(|a| {
            a.restart_session(&awaiting.device_id);
            Ok(())
        })?;
        self.save_account().await?;
        let only = Recipient {
            user_id: awaiting.user_id.clone(),
            device_id: awaiting.device_id.clone(),
        };
        // A network failure leaves the request queued: it comes again and is answered then.
        self.deliver_to(&body, &members, Some((&only, seq))).await?;
        if let Ok(t) = self.state.borrow_mut().thread_mut(&thread_id) {
            t.take_awaiting(seq);
        }
        self.persist(&thread_id);
        Ok(())
    }

    /// The sent message again, as it was, if its thread still has that user in it.
    fn body_to_resend(
        &self,
        thread_id: &str,
        awaiting: &Awaiting,
    ) -> ClientResult<Option<(MessageBody, Vec<sotto_core::protocol::User>)>> {
        let (message, members) = {
            let state = self.state.borrow();
            let Some(thread) = state.threads.iter().find(|t| t.id == thread_id) else {
                return Ok(None);
            };
            if thread.left
                || thread.member(&awaiting.user_id).is_none() && !is_own(&state, awaiting)
            {
                return Ok(None);
            }
            // A message deleted for everyone is not sent again, not even blank.
            let Some(m) = thread
                .messages
                .iter()
                .find(|m| m.id == awaiting.message_id && !m.deleted)
            else {
                return Ok(None);
            };
            (m.clone(), thread.members.clone())
        };
        let body = MessageBody {
            message_id: message.id,
            sent_at: message.sent_at,
            html: message.html,
            attrs: message.attrs,
            attachments: message.attachments,
            target: message.reply_to,
            ..self.body_for(thread_id, message.text)?
        };
        Ok(Some((body, members)))
    }
}

fn is_own(state: &super::State, awaiting: &Awaiting) -> bool {
    state
        .life
        .session()
        .is_some_and(|s| s.user.id == awaiting.user_id)
}
