//! Incoming: what the delivery socket brings, opened one envelope at a time and in order
//! (the checks are the core's `Account::open`), recorded once, and acknowledged only after
//! it is saved; thread changes and leaves from members.

use super::{to_js, unknown_thread, Inner};
use crate::error::{ClientError, ClientResult};
use crate::model::{apply_held, display_name, Message, Status, Thread};
use crate::util::now_millis;
use sotto_core::inbox::{Inbound, Standing};
use sotto_core::protocol::{
    parse_expired_notice, parse_retry_request, ClientFrame, DeliveredEnvelope, ServerFrame, User,
};
use sotto_core::sealing::{Kind, MessageBody};
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;

/// Message IDs remembered to drop redeliveries (an envelope re-sent after a lost ack).
pub(super) const SEEN_LIMIT: usize = 10_000;

/// Senders remembered as asked to send again (the oldest is forgotten past it).
const MAX_ASKED_AGAIN: usize = 16;
/// How far back, by its sender's clock, a message sent again may take its place.
const RESEND_WINDOW_MS: i64 = 10 * 60 * 1000;

impl Inner {
    pub(super) fn on_frame(self: &Rc<Self>, frame: ServerFrame) {
        match frame {
            ServerFrame::Ready { .. } => {
                self.state.borrow_mut().socket_ready = true;
                // Back online: what was typed meanwhile goes out now.
                spawn_local(self.clone().flush_outbox());
                // Groups may have changed while this device was away.
                self.spawn_follow_groups();
            }
            ServerFrame::GroupChanged { .. } => self.spawn_follow_groups(),
            ServerFrame::Stored { id, receipt } => self.answer_send(id, Ok(receipt)),
            ServerFrame::Refused { id, error } => {
                self.answer_send(id, Err(ClientError::new(&error.code, error.message)))
            }
            // A live envelope (a typing notice) waits its turn like any other: the account
            // opens one envelope at a time.
            ServerFrame::Envelope(env) | ServerFrame::Live(env) => {
                let start_pump = {
                    let mut state = self.state.borrow_mut();
                    state.inbox.push_back(env);
                    !std::mem::replace(&mut state.pumping, true)
                };
                if start_pump {
                    let inner = self.clone();
                    spawn_local(async move { inner.pump().await });
                }
            }
            ServerFrame::LinkRequest(request) => self.on_link_request(request),
            ServerFrame::Delivered { seq } => self.on_delivered(seq),
            ServerFrame::PrekeysLow { remaining } => {
                let inner = self.clone();
                spawn_local(async move {
                    if let Err(e) = inner.replenish_prekeys(remaining).await {
                        inner.emit_error(&e);
                    }
                });
            }
            ServerFrame::DevicesChanged { user_id } => {
                self.forget_device_lists(Some(std::slice::from_ref(&user_id)));
                let detail = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&detail, &"userId".into(), &user_id.into());
                self.emit("devicechange", detail.into());
            }
            ServerFrame::Error { code, message } => {
                let e = ClientError::new(&code, message);
                if code == "unknown_device" || code == "device_removed" {
                    // The server forgot this device; nothing sent to it can arrive.
                    self.show_notice(Some(&e.message));
                    if let Some(d) = self.state.borrow_mut().delivery.take() {
                        spawn_local(async move { d.stop() });
                    }
                }
                self.emit_error(&self.failed(e));
            }
        }
    }

    /// Handles received envelopes one at a time, in the order the server sent them.
    pub(super) async fn pump(self: Rc<Self>) {
        loop {
            let next = {
                let mut state = self.state.borrow_mut();
                let next = state.inbox.pop_front();
                if next.is_none() {
                    state.pumping = false;
                }
                next
            };
            let Some(env) = next else { return };
            let seq = env.seq;
            let sender = env.sender_user.clone();
            // Live (seq 0): never acknowledged nor asked for again, and a notice that does
            // not open is not worth reporting.
            if seq == 0 {
                let _ = self.receive(env).await;
                continue;
            }
            let mut answer = ClientFrame::Ack { seq };
            match self.receive(env).await {
                Ok(()) => {}
                // A passing failure (network, session): leave the envelope queued on the
                // server; the next connection delivers it again.
                Err(e)
                    if matches!(
                        e.code.as_str(),
                        "network" | "session_expired" | "session_invalid" | "not_signed_in"
                    ) =>
                {
                    self.emit_error(&e);
                    continue;
                }
                // Anything else can never succeed as it is: report it; the server drops it,
                // and if a fresh session could mend it, asks the sender to send it again.
                Err(e) => {
                    if super::retries::asks_again(&e) {
                        answer = ClientFrame::Retry { seq };
                        let mut state = self.state.borrow_mut();
                        state.asked_again.push(sender);
                        if state.asked_again.len() > MAX_ASKED_AGAIN {
                            state.asked_again.remove(0);
                        }
                    }
                    self.emit_error(&e);
                }
            }
            if let Some(d) = self.state.borrow().delivery.as_ref() {
                d.send(&answer);
            }
        }
    }

    pub(super) fn remember(&self, message_id: &str) -> bool {
        let mut state = self.state.borrow_mut();
        if state.seen.iter().any(|s| s == message_id) {
            return false;
        }
        state.seen.push_back(message_id.to_owned());
        if state.seen.len() > SEEN_LIMIT {
            state.seen.pop_front();
        }
        true
    }

    /// Opens `env` with the account, as its threads' members stand now.
    fn open_envelope(
        &self,
        env: &DeliveredEnvelope,
        device_id: &str,
        identity: &sotto_core::identity::IdentityPublic,
    ) -> ClientResult<Result<sotto_core::inbox::Opened, sotto_core::CoreError>> {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let account = state
            .account
            .as_mut()
            .ok_or_else(|| ClientError::new("not_signed_in", "this device is not ready yet"))?;
        let threads = &state.threads;
        let standing =
            |thread_id: &str, user_id: &str| match threads.iter().find(|t| t.id == thread_id) {
                None => Standing::Unknown,
                Some(t) if t.member(user_id).is_some() => Standing::Member,
                Some(_) => Standing::NotMember,
            };
        Ok(account.open(
            &Inbound {
                payload: &env.payload,
                sender_user: &env.sender_user,
                sender_device: &env.sender_device,
                live: env.seq == 0,
            },
            device_id,
            identity,
            &standing,
        ))
    }

    pub(super) async fn receive(self: &Rc<Self>, env: DeliveredEnvelope) -> ClientResult<()> {
        if let Some(seq) = parse_retry_request(&env.payload) {
            return self.on_retry_request(&env, seq).await;
        }
        if let Some(seqs) = parse_expired_notice(&env.payload) {
            self.on_expired(&env, &seqs);
            return Ok(());
        }
        let (token, own) = self.session()?;
        let device_id = self.device_id()?;
        // Whatever the relay's label says, the envelope opens only under the identity that
        // signs the labelled user's device list, and only if that list names the device.
        let identity = self
            .verified_sender(&env.sender_user, &env.sender_device, &token)
            .await?;
        let opened = match self.open_envelope(&env, &device_id, &identity)? {
            Ok(o) => o,
            // Already read once (an envelope delivered again): nothing to do.
            Err(sotto_core::CoreError::Replay) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let live = env.seq == 0;
        // The session moved on: store it before the envelope is acknowledged. A live one
        // is never acknowledged; the next save stores it.
        if !live {
            self.save_account().await?;
        }
        let Some(body) = opened.body else {
            return Ok(());
        };
        // Typing notices come live and only live: the server cannot store one to show it
        // later, nor can a member send a message only to those online. One written more
        // than a minute from now (by this device's clock) is stale: a relay that held it
        // back, or replays it after a reload, shows nothing.
        if live || body.kind == Kind::Typing {
            let fresh = (now_millis() - body.sent_at).abs() < 60_000;
            if live && fresh && body.kind == Kind::Typing && body.sender_user != own.id {
                self.on_typing(&body.thread_id, &body.sender_user, !body.text.is_empty());
            }
            return Ok(());
        }
        if self.state.borrow().seen.contains(&body.message_id) {
            return Ok(());
        }
        let known = self
            .state
            .borrow()
            .threads
            .iter()
            .any(|t| t.id == body.thread_id);
        match body.kind {
            Kind::Readmark | Kind::Leave if !known => {
                self.remember(&body.message_id);
                return Ok(());
            }
            Kind::Readmark => {
                self.remember(&body.message_id);
                self.apply_readmark(
                    &body.thread_id,
                    &body.sender_user,
                    body.read_until.unwrap_or(0),
                );
                return Ok(());
            }
            Kind::Leave => {
                self.remember(&body.message_id);
                self.apply_leave(&body.thread_id, &body.sender_user);
                return Ok(());
            }
            // A kind a later version made: nothing this version can do with it.
            Kind::Unknown => {
                self.remember(&body.message_id);
                return Ok(());
            }
            // An edit, deletion or reaction changes a message this device has, or nothing.
            Kind::Edit | Kind::Delete | Kind::React => {
                self.remember(&body.message_id);
                self.apply_change(&body, &own.id).await;
                return Ok(());
            }
            Kind::Message | Kind::Update => {}
            Kind::Typing => return Ok(()),
        }
        if !known {
            let resolved = self.post_resolve(&token, &body.distribution).await?;
            // A thread is introduced only by one of its own members.
            if !resolved.users.iter().any(|u| u.id == body.sender_user) {
                return Err(sotto_core::CoreError::NotMember.into());
            }
            let mut thread = Thread::resolved(body.thread_id.clone(), &body.distribution, resolved);
            thread.left = !thread.members.iter().any(|m| m.id == own.id);
            self.add_thread(thread);
        }
        self.apply_meta(&token, &own, &body).await?;
        if body.kind == Kind::Update {
            self.remember(&body.message_id);
            return Ok(());
        }
        let member_name = {
            let state = self.state.borrow();
            let t = state.threads.iter().find(|t| t.id == body.thread_id);
            t.and_then(|t| t.member(&env.sender_user)).map(display_name)
        };
        let sender_name = match member_name {
            Some(n) => n,
            // A sender outside the distribution as we know it: name them from the directory.
            None => match self.get_user(&token, &env.sender_user).await {
                Ok(u) => display_name(&u),
                Err(_) => env.sender_user.clone(),
            },
        };
        let outgoing = body.sender_user == own.id;
        let mut message = Message {
            id: body.message_id.clone(),
            thread_id: body.thread_id.clone(),
            sender_id: body.sender_user.clone(),
            sender_name,
            sent_at: body.sent_at,
            expires_at: body.expiration.map(|s| body.sent_at + i64::from(s) * 1000),
            text: body.text,
            html: body.html,
            attrs: body.attrs,
            attachments: body.attachments,
            outgoing,
            status: if outgoing {
                Status::Sent
            } else {
                Status::Received
            },
            reply_to: body.target,
            ..Default::default()
        };
        if let Some(t) = self
            .state
            .borrow()
            .threads
            .iter()
            .find(|t| t.id == body.thread_id)
        {
            message.set_mentions(&t.members, &own.id);
        }
        self.record(message).await;
        Ok(())
    }

    /// Adopts the distribution, attributes and expiration a body carries, when newer.
    pub(super) async fn apply_meta(
        self: &Rc<Self>,
        token: &str,
        own: &User,
        body: &MessageBody,
    ) -> ClientResult<()> {
        let (newer, before) = {
            let state = self.state.borrow();
            let t = state
                .threads
                .iter()
                .find(|t| t.id == body.thread_id)
                .ok_or_else(|| unknown_thread(&body.thread_id))?;
            (
                sotto_core::membership::is_newer(t.meta_at, body.meta_at, now_millis())?,
                t.distribution.clone(),
            )
        };
        if !newer {
            return Ok(());
        }
        let members = if body.distribution != before {
            match self.post_resolve(token, &body.distribution).await {
                Ok(r) => {
                    let chosen = self
                        .newly_chosen(token, &before, &body.distribution, &r)
                        .await?;
                    Some((r, chosen))
                }
                // A distribution that no longer resolves (someone named in it was deleted):
                // the members stay as they are, and the message is still read.
                Err(e) if e.code.starts_with("expr_") => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let mut someone_removed = false;
        {
            let mut state = self.state.borrow_mut();
            if let Some(t) = state.threads.iter_mut().find(|t| t.id == body.thread_id) {
                t.attributes = body.attributes.clone();
                t.expiration = body.expiration;
                t.meta_at = body.meta_at;
                if let Some((r, chosen)) = members {
                    someone_removed = t.set_distribution(&body.distribution, r, &chosen);
                    t.left = !t.members.iter().any(|m| m.id == own.id);
                }
            }
        }
        if someone_removed {
            self.rotate_sender_key(&body.thread_id);
        }
        self.persist(&body.thread_id);
        self.render();
        Ok(())
    }

    pub(super) fn apply_leave(self: &Rc<Self>, thread_id: &str, user_id: &str) {
        {
            let mut state = self.state.borrow_mut();
            let Some(t) = state.threads.iter_mut().find(|t| t.id == thread_id) else {
                return;
            };
            t.remove_member(user_id);
        }
        self.rotate_sender_key(thread_id);
        self.persist(thread_id);
        self.render();
    }

    /// Adds a message to its thread (once), saves it, redraws, and tells the page.
    pub(super) async fn record(self: &Rc<Self>, message: Message) {
        if !self.remember(&message.id) {
            return;
        }
        // Read only if its thread is open on a page that is on screen.
        let mut message = message;
        let is_open = {
            let mut state = self.state.borrow_mut();
            let own = state.life.user().map(|u| u.id.clone()).unwrap_or_default();
            let open = state.open_thread.clone();
            let is_open = open.as_deref() == Some(message.thread_id.as_str()) && self.on_screen();
            if let Some(pos) = state.threads.iter().position(|t| t.id == message.thread_id) {
                let mut t = state.threads.remove(pos);
                t.archived = false;
                // Changes that came first apply now, in the order they came.
                apply_held(&mut t.held, &mut message, &t.members, &own);
                apply_held(&mut state.held, &mut message, &t.members, &own);
                // One that comes already deleted is nothing to read.
                if !message.outgoing && !is_open && !message.deleted {
                    t.unread += 1;
                }
                // A message sent again after this device asked for it comes after its
                // sender's later ones: it goes back before them, by that sender's own
                // clock, at most RESEND_WINDOW_MS back. Anything else is appended, so no
                // member can place a message back in the history by dating it earlier.
                let asked = state
                    .asked_again
                    .iter()
                    .position(|u| *u == message.sender_id);
                let at = asked.and_then(|_| {
                    t.messages.iter().position(|m| {
                        m.sender_id == message.sender_id
                            && m.sent_at > message.sent_at
                            && m.sent_at - message.sent_at <= RESEND_WINDOW_MS
                    })
                });
                if let (Some(i), Some(_)) = (asked, at) {
                    state.asked_again.swap_remove(i);
                }
                t.messages
                    .insert(at.unwrap_or(t.messages.len()), message.clone());
                state.threads.insert(0, t);
            }
            is_open
        };
        // Their message is what they were typing.
        self.on_typing(&message.thread_id, &message.sender_id, false);
        self.save_now(&message.thread_id).await;
        self.render();
        self.schedule_sweep();
        self.emit("thread-message", to_js(&message));
        if is_open && !message.outgoing {
            self.mark_read(&message.thread_id);
        }
    }
}
