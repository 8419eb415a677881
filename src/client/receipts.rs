//! Receipts: "delivered" from the server for each recipient device, and read marks, both
//! the ones this device sends when a thread is read and the ones members send.

use super::retries::Awaiting;
use super::Inner;
use crate::model::Status;
use sotto_core::sealing::{Kind, MessageBody};
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;

impl Inner {
    /// A recipient device has one of this device's messages: show it as delivered.
    pub(super) fn on_delivered(self: &Rc<Self>, seq: i64) {
        let thread_id = {
            let mut state = self.state.borrow_mut();
            let Some(Awaiting {
                thread_id,
                message_id,
                ..
            }) = state.awaiting_delivery.remove(&seq)
            else {
                if state.early_deliveries.len() < 1_000 {
                    state.early_deliveries.insert(seq);
                }
                return;
            };
            let message = state
                .threads
                .iter_mut()
                .find(|t| t.id == thread_id)
                .and_then(|t| t.messages.iter_mut().find(|m| m.id == message_id));
            match message {
                Some(m) if m.status == Status::Sent => m.status = Status::Delivered,
                _ => return,
            }
            thread_id
        };
        self.persist(&thread_id);
        self.render();
    }

    /// Tells the thread's members (and this user's other devices) that everything received
    /// so far is read, when there is something new to say.
    pub(super) fn mark_read(self: &Rc<Self>, thread_id: &str) {
        let Ok((_, own)) = self.session() else { return };
        let until = {
            let state = self.state.borrow();
            let Some(t) = state.threads.iter().find(|t| t.id == thread_id) else {
                return;
            };
            let latest = t
                .messages
                .iter()
                .filter(|m| !m.outgoing)
                .map(|m| m.sent_at)
                .max()
                .unwrap_or(0);
            if t.left || latest <= t.read_marks.get(&own.id).copied().unwrap_or(0) {
                return;
            }
            latest
        };
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
            let mark = t.read_marks.entry(user_id.to_owned()).or_insert(0);
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
