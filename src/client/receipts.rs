//! Receipts: "delivered" from the server for each recipient device, and read marks, both
//! the ones this device sends when a thread is read and the ones members send.

use super::Inner;
use crate::error::ClientResult;
use crate::model::Status;
use sotto_core::protocol::DeliveredEnvelope;
use sotto_core::sealing::{Kind, MessageBody};
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;

/// How far ahead of this device's clock another device's may be.
const CLOCK_SKEW_MS: i64 = 5 * 60_000;

impl Inner {
    /// A recipient device has one of this device's messages: show it as delivered.
    pub(super) fn on_delivered(self: &Rc<Self>, seq: i64) {
        if !self.settle(&[seq], None, Status::Delivered) {
            // Kept for a send whose receipt is still to come. Envelopes that nothing waits
            // for (read marks, reactions) land here too: when full, it starts again, so
            // they never crowd out the ones to come.
            let mut state = self.state.borrow_mut();
            let early = &mut state.early_deliveries;
            if early.len() >= 1_000 {
                early.clear();
            }
            early.push(seq);
        }
    }

    /// The server's notice that envelopes this device sent to `env`'s device waited past
    /// its maximum age and were deleted unread. A message that no other member's device
    /// took at all is shown as not delivered. Only envelopes this device sent to exactly
    /// that device count: a notice can say nothing of any other (and a relay that lies
    /// here could as well have dropped the envelopes).
    pub(super) fn on_expired(self: &Rc<Self>, env: &DeliveredEnvelope, seqs: &[i64]) {
        let to = (env.sender_user.as_str(), env.sender_device.as_str());
        self.settle(seqs, Some(to), Status::Expired);
    }

    /// Stops waiting for this device's envelopes `seqs` (sent to device `to`, when given)
    /// and moves their messages on: delivered at the first device that has one, expired
    /// when none is left waiting. Returns whether any envelope was this device's.
    fn settle(self: &Rc<Self>, seqs: &[i64], to: Option<(&str, &str)>, outcome: Status) -> bool {
        let mut found = false;
        let mut changed = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            for thread in state.threads.iter_mut() {
                let mut settled = Vec::new();
                thread.awaiting.retain(|a| {
                    let hit = seqs.contains(&a.seq)
                        && to.is_none_or(|(u, d)| a.user_id == u && a.device_id == d);
                    if hit {
                        settled.push(a.message_id.clone());
                    }
                    !hit
                });
                found |= !settled.is_empty();
                let mut moved = false;
                for m in thread.messages.iter_mut() {
                    if m.status != Status::Sent || !settled.contains(&m.id) {
                        continue;
                    }
                    // Expired only once no envelope of it is still on its way.
                    if outcome == Status::Delivered
                        || !thread.awaiting.iter().any(|a| a.message_id == m.id)
                    {
                        m.status = outcome;
                        moved = true;
                    }
                }
                // The shorter list is saved with the next change; a status change now.
                if moved {
                    changed.push(thread.id.clone());
                }
            }
        }
        for thread_id in &changed {
            self.persist(thread_id);
        }
        if !changed.is_empty() {
            self.render();
        }
        found
    }

    /// `threadMarkRead`: the person has seen the thread. In a view, the holder does it.
    pub(super) async fn mark_thread_read(self: &Rc<Self>, thread_id: &str) -> ClientResult<()> {
        if let Some(done) = self.forwarded("threadMarkRead", &[thread_id.into()]).await {
            return done.map(|_| ());
        }
        self.session()?;
        self.state.borrow_mut().thread_mut(thread_id)?.unread = 0;
        self.persist(thread_id);
        self.render();
        self.mark_read(thread_id);
        Ok(())
    }

    /// Tells the thread's members (and this user's other devices) that everything received
    /// so far is read, when there is something new to say. A view has the holder say it.
    pub(super) fn mark_read(self: &Rc<Self>, thread_id: &str) {
        // A view has no session of its own, but knows whose threads it shows.
        let Some(own) = self.state.borrow().life.user().cloned() else {
            return;
        };
        let until = {
            let state = self.state.borrow();
            let Some(t) = state.threads.iter().find(|t| t.id == thread_id) else {
                return;
            };
            // A message dated in the future (its sender chose the date) is not read yet:
            // counted, it would mark everyone's later messages read, for years.
            let soon = crate::util::now_millis() + CLOCK_SKEW_MS;
            let latest = t
                .messages
                .iter()
                .filter(|m| !m.outgoing && m.sent_at <= soon)
                .map(|m| m.sent_at)
                .max()
                .unwrap_or(0);
            if t.left || latest <= t.read_marks.get(&own.id).copied().unwrap_or(0) {
                return;
            }
            latest
        };
        if self.viewing().is_some() {
            let (inner, id) = (self.clone(), thread_id.to_owned());
            spawn_local(async move {
                let _ = inner.mark_thread_read(&id).await;
            });
            return;
        }
        // Without a session (offline history, still loading) it waits for the next read.
        if self.session().is_err() {
            return;
        }
        if let Ok(t) = self.state.borrow_mut().thread_mut(thread_id) {
            t.read_marks.insert(own.id.clone(), until);
        }
        self.persist(thread_id);
        let inner = self.clone();
        let thread_id = thread_id.to_owned();
        spawn_local(async move {
            let sent = async {
                let body = MessageBody {
                    kind: Kind::Readmark,
                    read_until: Some(until),
                    ..inner.body_for(&thread_id, String::new())?
                };
                let members = inner.thread(&thread_id)?.members;
                inner.deliver(&body, &members).await
            };
            if let Err(e) = sent.await {
                web_sys::console::warn_1(
                    &format!("sotto: read mark not sent: {}", e.message).into(),
                );
            }
        });
    }

    pub(super) fn apply_readmark(self: &Rc<Self>, thread_id: &str, user_id: &str, until: i64) {
        // Nobody has read what is not sent yet.
        let until = until.min(crate::util::now_millis() + CLOCK_SKEW_MS);
        let own_id = self
            .state
            .borrow()
            .life
            .session()
            .map(|s| s.user.id.clone())
            .unwrap_or_default();
        {
            let mut state = self.state.borrow_mut();
            let Some(t) = state.threads.iter_mut().find(|t| t.id == thread_id) else {
                return;
            };
            let mark = t.read_marks.entry_or_default(user_id.to_owned());
            if until <= *mark {
                return;
            }
            *mark = until;
            if user_id == own_id {
                // Read on another of this user's devices: nothing is unread here either.
                t.unread = t
                    .messages
                    .iter()
                    .filter(|m| !m.outgoing && m.sent_at > until)
                    .count() as u32;
            }
        }
        self.persist(thread_id);
        self.render();
        let detail = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&detail, &"threadId".into(), &thread_id.into());
        let _ = js_sys::Reflect::set(&detail, &"userId".into(), &user_id.into());
        let _ = js_sys::Reflect::set(&detail, &"readUntil".into(), &(until as f64).into());
        self.emit("thread-message-readmark", detail.into());
    }
}
