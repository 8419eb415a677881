//! Messages: sealing a body for every device of every member, opening what the delivery
//! socket brings (one envelope at a time, in order), the outbox for messages typed offline,
//! disappearing messages and read marks.

use super::attachments::OutgoingFile;
use super::retries::Awaiting;
use super::{to_js, unknown_thread, Inner};
use crate::error::{ClientError, ClientResult};
use crate::history;
use crate::http;
use crate::model::{display_name, Message, Status, Thread};
use crate::util::{clear_timeout, now_millis, random_id, set_timeout};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sotto_core::account::Recipient;
use sotto_core::inbox::{Inbound, Standing};
use sotto_core::protocol::{
    parse_retry_request, ClientFrame, DeliveredEnvelope, OutgoingEnvelope, ResolveRequest,
    Resolved, SendReceipt, SendRequest, ServerFrame, User, PROTOCOL_VERSION,
};
use sotto_core::sealing::{Kind, MessageBody, MAX_TEXT_BYTES};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;

/// Message IDs remembered to drop redeliveries (an envelope re-sent after a lost ack).
const SEEN_LIMIT: usize = 10_000;
/// How long a send over the socket may wait for its answer.
const SEND_TIMEOUT_MS: f64 = 15_000.0;

/// A send made over the delivery socket, waiting for the server's answer.
pub(super) struct PendingSend {
    slot: Rc<std::cell::RefCell<Option<ClientResult<SendReceipt>>>>,
    wake: js_sys::Function,
}

impl PendingSend {
    fn answer(self, result: ClientResult<SendReceipt>) {
        *self.slot.borrow_mut() = Some(result);
        let _ = self.wake.call0(&JsValue::NULL);
    }

    /// Ends the wait with `error` (the session or the connection went away).
    pub(super) fn fail(self, error: ClientError) {
        self.answer(Err(error));
    }
}

impl Inner {
    pub(super) async fn api_get<R: DeserializeOwned>(
        self: &Rc<Self>,
        path: &str,
        token: &str,
    ) -> ClientResult<R> {
        http::get(&self.options.url, path, token)
            .await
            .map_err(|e| self.failed(e))
    }

    pub(super) async fn api_post<B: Serialize, R: DeserializeOwned>(
        self: &Rc<Self>,
        path: &str,
        token: &str,
        body: &B,
    ) -> ClientResult<R> {
        http::post(&self.options.url, path, Some(token), body)
            .await
            .map_err(|e| self.failed(e))
    }

    pub(super) fn on_frame(self: &Rc<Self>, frame: ServerFrame) {
        match frame {
            ServerFrame::Ready { .. } => {
                self.state.borrow_mut().socket_ready = true;
                // Back online: what was typed meanwhile goes out now.
                spawn_local(self.clone().flush_outbox());
            }
            ServerFrame::Stored { id, receipt } => self.answer_send(id, Ok(receipt)),
            ServerFrame::Refused { id, error } => {
                self.answer_send(id, Err(ClientError::new(&error.code, error.message)))
            }
            ServerFrame::Envelope(env) => {
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
    async fn pump(self: Rc<Self>) {
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
                    }
                    self.emit_error(&e);
                }
            }
            if let Some(d) = self.state.borrow().delivery.as_ref() {
                d.send(&answer);
            }
        }
    }

    fn remember(&self, message_id: &str) -> bool {
        let mut state = self.state.borrow_mut();
        if !state.seen.insert(message_id.to_owned()) {
            return false;
        }
        state.seen_order.push_back(message_id.to_owned());
        if state.seen_order.len() > SEEN_LIMIT {
            if let Some(old) = state.seen_order.pop_front() {
                state.seen.remove(&old);
            }
        }
        true
    }

    async fn receive(self: &Rc<Self>, env: DeliveredEnvelope) -> ClientResult<()> {
        if let Some(seq) = parse_retry_request(&env.payload) {
            return self.on_retry_request(&env, seq).await;
        }
        let (token, own) = self.session()?;
        let device_id = self.device_id()?;
        // Whatever the relay's label says, the envelope opens only under the identity that
        // signs the labelled user's device list, and only if that list names the device.
        let identity = self
            .verified_sender(&env.sender_user, &env.sender_device, &token)
            .await?;
        let opened = {
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
            account.open(
                &Inbound {
                    payload: &env.payload,
                    sender_user: &env.sender_user,
                    sender_device: &env.sender_device,
                },
                &device_id,
                &identity,
                &standing,
            )
        };
        let opened = match opened {
            Ok(o) => o,
            // Already read once (an envelope delivered again): nothing to do.
            Err(sotto_core::CoreError::Replay) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // The session moved on: store it before the envelope is acknowledged.
        self.save_account().await?;
        let Some(body) = opened.body else {
            return Ok(());
        };
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
            Kind::Message | Kind::Update => {}
        }
        if !known {
            let resolved: Resolved = self
                .api_post(
                    "/v1/resolve",
                    &token,
                    &ResolveRequest {
                        expr: body.distribution.clone(),
                    },
                )
                .await?;
            // A thread is introduced only by one of its own members.
            if !resolved.users.iter().any(|u| u.id == body.sender_user) {
                return Err(sotto_core::CoreError::NotMember.into());
            }
            let mut thread =
                Thread::new(body.thread_id.clone(), resolved.canonical, resolved.users);
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
            None => match self
                .api_get::<User>(&format!("/v1/users/{}", env.sender_user), &token)
                .await
            {
                Ok(u) => display_name(&u),
                Err(_) => env.sender_user.clone(),
            },
        };
        let outgoing = body.sender_user == own.id;
        self.record(Message {
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
        })
        .await;
        Ok(())
    }

    /// Adopts the distribution, attributes and expiration a body carries, when newer.
    async fn apply_meta(
        self: &Rc<Self>,
        token: &str,
        own: &User,
        body: &MessageBody,
    ) -> ClientResult<()> {
        let (newer, distribution_changed) = {
            let state = self.state.borrow();
            let t = state
                .threads
                .iter()
                .find(|t| t.id == body.thread_id)
                .ok_or_else(|| unknown_thread(&body.thread_id))?;
            (
                sotto_core::membership::is_newer(t.meta_at, body.meta_at, now_millis())?,
                body.distribution != t.distribution,
            )
        };
        if !newer {
            return Ok(());
        }
        let members = if distribution_changed {
            let r: Resolved = self
                .api_post(
                    "/v1/resolve",
                    token,
                    &ResolveRequest {
                        expr: body.distribution.clone(),
                    },
                )
                .await?;
            Some(r)
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
                if let Some(r) = members {
                    someone_removed = t
                        .members
                        .iter()
                        .any(|m| !r.users.iter().any(|u| u.id == m.id));
                    t.distribution = r.canonical;
                    t.members = r.users;
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

    fn apply_readmark(self: &Rc<Self>, thread_id: &str, user_id: &str, until: i64) {
        let own_id = self
            .state
            .borrow()
            .session
            .as_ref()
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

    fn apply_leave(self: &Rc<Self>, thread_id: &str, user_id: &str) {
        {
            let mut state = self.state.borrow_mut();
            let Some(t) = state.threads.iter_mut().find(|t| t.id == thread_id) else {
                return;
            };
            t.members.retain(|m| m.id != user_id);
            t.distribution = sotto_core::expr::canonical(t.members.iter().map(|m| m.tag.as_str()));
        }
        self.rotate_sender_key(thread_id);
        self.persist(thread_id);
        self.render();
    }

    /// Someone left or was removed: this device's next group message uses a new sender
    /// key, handed only to the members who remain.
    pub(super) fn rotate_sender_key(self: &Rc<Self>, thread_id: &str) {
        if self
            .with_account(|a| {
                a.rotate_sender_key(thread_id);
                Ok(())
            })
            .is_ok()
        {
            let inner = self.clone();
            spawn_local(async move {
                if let Err(e) = inner.save_account().await {
                    inner.emit_error(&e);
                }
            });
        }
    }

    /// Saves a thread to this browser's history (in the background).
    pub(super) fn persist(self: &Rc<Self>, thread_id: &str) {
        let (inner, id) = (self.clone(), thread_id.to_owned());
        spawn_local(async move { inner.save_now(&id).await });
    }

    /// Saves a thread to this browser's history before going on: used where a lost write
    /// would lose a message (before an envelope is acknowledged, before a send resolves).
    /// Writes run one after another, each taking the thread as it is when its turn comes,
    /// so an older copy can never overwrite a newer one.
    pub(super) async fn save_now(&self, thread_id: &str) {
        let mut done = None;
        let turn = js_sys::Promise::new(&mut |resolve, _| done = Some(resolve));
        let previous = self.write_chain.replace(turn);
        let _ = wasm_bindgen_futures::JsFuture::from(previous).await;
        let snapshot = {
            let state = self.state.borrow();
            state
                .store_key
                .clone()
                .zip(state.threads.iter().find(|t| t.id == thread_id).cloned())
        };
        if let Some((key, t)) = snapshot {
            match history::save(&key, &t).await {
                Ok(()) => self.tell_views(&key),
                Err(e) => web_sys::console::warn_1(
                    &format!("sotto: history not saved: {}", e.message).into(),
                ),
            }
        }
        if let Some(resolve) = done {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }

    /// Adds a message to its thread (once), saves it, redraws, and tells the page.
    async fn record(self: &Rc<Self>, message: Message) {
        if !self.remember(&message.id) {
            return;
        }
        let is_open = {
            let mut state = self.state.borrow_mut();
            let open = state.open_thread.clone();
            let is_open = open.as_deref() == Some(message.thread_id.as_str());
            if let Some(pos) = state.threads.iter().position(|t| t.id == message.thread_id) {
                let mut t = state.threads.remove(pos);
                if !message.outgoing && !is_open {
                    t.unread += 1;
                }
                t.archived = false;
                t.messages.push(message.clone());
                state.threads.insert(0, t);
            }
            is_open
        };
        self.save_now(&message.thread_id).await;
        self.render();
        self.schedule_sweep();
        self.emit("thread-message", to_js(&message));
        if is_open && !message.outgoing {
            self.mark_read(&message.thread_id);
        }
    }

    pub(super) fn add_thread(self: &Rc<Self>, thread: Thread) {
        let id = thread.id.clone();
        self.state.borrow_mut().threads.insert(0, thread);
        self.persist(&id);
        self.render();
    }

    pub(super) fn thread_open(self: &Rc<Self>, id: &str) -> ClientResult<()> {
        if self.state.borrow().offline_user.is_none() {
            // Offline, saved history may still be read.
            self.session()?;
        }
        {
            let mut state = self.state.borrow_mut();
            let t = state.thread_mut(id)?;
            t.unread = 0;
            state.open_thread = Some(id.to_owned());
        }
        self.persist(id);
        self.show_notice(None);
        self.render();
        self.with_ui(|ui| ui.focus_composer());
        self.mark_read(id);
        Ok(())
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

    pub(super) fn thread(&self, id: &str) -> ClientResult<Thread> {
        self.state
            .borrow()
            .threads
            .iter()
            .find(|t| t.id == id)
            .cloned()
            .ok_or_else(|| unknown_thread(id))
    }

    /// A body for `thread_id` carrying its current distribution, attributes and expiration.
    pub(super) fn body_for(&self, thread_id: &str, text: String) -> ClientResult<MessageBody> {
        let (_, own) = self.session()?;
        let device_id = self.device_id()?;
        let t = self.thread(thread_id)?;
        Ok(MessageBody {
            v: PROTOCOL_VERSION,
            message_id: random_id()?,
            thread_id: thread_id.to_owned(),
            distribution: t.distribution,
            sender_user: own.id,
            sender_device: device_id,
            sent_at: now_millis(),
            text,
            attributes: t.attributes,
            expiration: t.expiration,
            meta_at: t.meta_at,
            ..Default::default()
        })
    }

    pub(super) async fn send_message(
        self: &Rc<Self>,
        thread_id: &str,
        text: String,
        html: Option<String>,
        attrs: serde_json::Map<String, serde_json::Value>,
        files: Vec<OutgoingFile>,
    ) -> ClientResult<String> {
        // A view's composer: the tab that holds the account sends.
        let args = [thread_id.into(), text.as_str().into()];
        if let Some(sent) = self.forwarded("threadSendMessage", &args).await {
            return sent.map(|id| id.as_string().unwrap_or_default());
        }
        let (_, own) = self.session()?;
        if text.trim().is_empty() && files.is_empty() {
            return Err(ClientError::new(
                "empty_message",
                "a message needs some text or an attachment",
            ));
        }
        if text.len() > MAX_TEXT_BYTES || html.as_ref().is_some_and(|h| h.len() > MAX_TEXT_BYTES) {
            return Err(ClientError::new(
                "message_too_long",
                format!("a message is limited to {MAX_TEXT_BYTES} bytes"),
            ));
        }
        let thread = self.thread(thread_id)?;
        if thread.left {
            return Err(ClientError::new(
                "not_a_member",
                "you are no longer a member of this thread",
            ));
        }
        if serde_json::to_string(&attrs).map_or(true, |j| j.len() > 16 * 1024) {
            return Err(ClientError::new(
                "attributes_too_large",
                "message attributes are limited to 16 KiB of JSON",
            ));
        }
        // Files go up first (encrypted); an upload that fails fails the send.
        let attachments = self.upload_files(files).await?;
        let body = MessageBody {
            html,
            attrs,
            attachments,
            ..self.body_for(thread_id, text)?
        };
        let message = Message {
            id: body.message_id.clone(),
            thread_id: thread_id.to_owned(),
            sender_id: own.id.clone(),
            sender_name: display_name(&own),
            sent_at: body.sent_at,
            expires_at: body.expiration.map(|s| body.sent_at + i64::from(s) * 1000),
            text: body.text.clone(),
            html: body.html.clone(),
            attrs: body.attrs.clone(),
            attachments: body.attachments.clone(),
            outgoing: true,
            status: Status::Sent,
        };
        match self.deliver(&body, &thread.members).await {
            Ok(()) => {}
            // Offline: keep it, marked pending; it goes out when the connection returns.
            Err(e) if e.code == "network" => {
                let id = message.id.clone();
                self.record(Message {
                    status: Status::Pending,
                    ..message
                })
                .await;
                self.show_notice(Some(
                    "Offline: the message will be sent when the connection returns.",
                ));
                return Ok(id);
            }
            Err(e) => return Err(e),
        }
        let id = message.id.clone();
        self.record(message).await;
        Ok(id)
    }

    /// Seals `body` for every device of `members` (this user's other devices included, not
    /// this one) and hands the envelopes to the server. Sending the same body again is
    /// harmless: recipients drop repeats by message ID.
    pub(super) async fn deliver(
        self: &Rc<Self>,
        body: &MessageBody,
        members: &[User],
    ) -> ClientResult<()> {
        self.deliver_to(body, members, None).await
    }

    /// [`Inner::deliver`], or, as the answer to the retry request for envelope `seq`, to
    /// the one device of those members that asked.
    pub(super) async fn deliver_to(
        self: &Rc<Self>,
        body: &MessageBody,
        members: &[User],
        resend: Option<(&Recipient, i64)>,
    ) -> ClientResult<()> {
        let only = resend.map(|(r, _)| r);
        let (token, own) = self.session()?;
        let device_id = self.device_id()?;
        let alone = members.iter().all(|m| m.id == own.id);
        // A group thread (more than two people) uses sender keys; two use pairwise sessions.
        let group = members.len() > 2;
        let mut recipient_users: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        if !recipient_users.contains(&own.id) {
            recipient_users.push(own.id.clone());
        }
        let mut attempt = 0;
        let (receipt, to_others, sent_to) = loop {
            attempt += 1;
            // With `only`, recipients_for already keeps that one device alone.
            let recipients = self.recipients_for(members, &own, &token, only).await?;
            let to_others: Vec<bool> = recipients.iter().map(|r| r.user_id != own.id).collect();
            if body.kind == Kind::Message && !to_others.contains(&true) && !alone && only.is_none()
            {
                return Err(ClientError::new(
                    "no_recipient_devices",
                    "no one else in this thread has opened Sotto yet, so there is no device to send to",
                ));
            }
            if recipients.is_empty() {
                return Ok(());
            }
            let sealed =
                self.with_account(|a| Ok(a.seal(body, &device_id, &recipients, group)?))?;
            // Every session and chain key used is on disk before any ciphertext leaves.
            self.save_account().await?;
            let request = SendRequest {
                sender_device: device_id.clone(),
                recipients: recipient_users.clone(),
                envelopes: sealed
                    .into_iter()
                    .map(|(device_id, payload)| OutgoingEnvelope { device_id, payload })
                    .collect(),
                resend_of: resend.map(|(_, seq)| seq),
            };
            match self.send_envelopes(&token, &request).await {
                Ok(receipt) => {
                    if group {
                        let devices: Vec<String> =
                            recipients.iter().map(|r| r.device_id.clone()).collect();
                        self.with_account(|a| {
                            a.mark_distributed(&body.thread_id, &devices);
                            Ok(())
                        })?;
                        self.save_account().await?;
                    }
                    break (receipt, to_others, recipients);
                }
                // A recipient linked or removed a device meanwhile: fetch the lists again.
                Err(e) if e.code == "devices_changed" && attempt < 3 => {
                    self.forget_device_lists(Some(&recipient_users));
                    continue;
                }
                Err(e) => return Err(e),
            }
        };
        if body.kind == Kind::Message {
            let early: Vec<i64> = {
                let mut state = self.state.borrow_mut();
                if state.awaiting_delivery.len() > 10_000 {
                    state.awaiting_delivery.clear();
                }
                for ((seq, recipient), _) in receipt
                    .seqs
                    .iter()
                    .zip(&sent_to)
                    .zip(&to_others)
                    .filter(|(_, other)| **other)
                {
                    state.awaiting_delivery.insert(
                        *seq,
                        Awaiting {
                            thread_id: body.thread_id.clone(),
                            message_id: body.message_id.clone(),
                            user_id: recipient.user_id.clone(),
                            device_id: recipient.device_id.clone(),
                        },
                    );
                }
                receipt
                    .seqs
                    .iter()
                    .copied()
                    .filter(|s| state.early_deliveries.remove(s))
                    .collect()
            };
            for seq in early {
                self.on_delivered(seq);
            }
        }
        Ok(())
    }

    /// Hands a send to the server: over the delivery socket when it is up — a browser's
    /// `fetch` costs milliseconds, a frame on the open socket far less — else over HTTP.
    async fn send_envelopes(
        self: &Rc<Self>,
        token: &str,
        request: &SendRequest,
    ) -> ClientResult<SendReceipt> {
        let id = {
            let mut state = self.state.borrow_mut();
            let open = state.socket_ready && state.delivery.as_ref().is_some_and(|d| d.is_open());
            if !open {
                None
            } else {
                state.next_send_id += 1;
                Some(state.next_send_id)
            }
        };
        let Some(id) = id else {
            return self.api_post("/v1/envelopes", token, request).await;
        };
        let slot: Rc<RefCell<Option<ClientResult<SendReceipt>>>> = Rc::default();
        let mut wake = None;
        let answered = js_sys::Promise::new(&mut |resolve, _| wake = Some(resolve));
        {
            let mut state = self.state.borrow_mut();
            state.pending_sends.insert(
                id,
                PendingSend {
                    slot: slot.clone(),
                    wake: wake.expect("the Promise executor runs at once"),
                },
            );
            if let Some(d) = state.delivery.as_ref() {
                d.send(&ClientFrame::Send {
                    id,
                    request: request.clone(),
                });
            }
        }
        // A socket that hangs counts as lost: the message stays pending and goes again.
        let weak = Rc::downgrade(self);
        let timer = set_timeout(SEND_TIMEOUT_MS, move || {
            if let Some(inner) = weak.upgrade() {
                inner.answer_send(
                    id,
                    Err(ClientError::new("network", "the server did not answer")),
                );
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(answered).await;
        clear_timeout(timer);
        let result = slot.borrow_mut().take();
        result.unwrap_or_else(|| Err(ClientError::new("network", "the send was not answered")))
    }

    /// The server's answer to a send made over the socket (or its loss).
    fn answer_send(&self, id: u64, result: ClientResult<SendReceipt>) {
        let pending = self.state.borrow_mut().pending_sends.remove(&id);
        if let Some(p) = pending {
            p.answer(result);
        }
    }

    /// The socket closed: sends still waiting on it fail as network failures (the messages
    /// stay pending and go again; recipients drop repeats by message ID).
    pub(super) fn socket_lost(&self) {
        let ids: Vec<u64> = {
            let mut state = self.state.borrow_mut();
            state.socket_ready = false;
            state.pending_sends.keys().copied().collect()
        };
        for id in ids {
            self.answer_send(
                id,
                Err(ClientError::new("network", "the connection was lost")),
            );
        }
    }

    /// A recipient device has one of this device's messages: show it as delivered.
    fn on_delivered(self: &Rc<Self>, seq: i64) {
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

    /// Sends what was typed offline as soon as the browser says it is online again (the
    /// socket's `ready` does the same when it reconnects).
    pub(super) fn listen_for_online(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let listener = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                spawn_local(inner.flush_outbox());
            }
        });
        if let Some(w) = web_sys::window() {
            let _ = w.add_event_listener_with_callback("online", listener.as_ref().unchecked_ref());
        }
        *self.online.borrow_mut() = Some(listener);
    }

    async fn flush_outbox(self: Rc<Self>) {
        if std::mem::replace(&mut self.state.borrow_mut().flushing, true) {
            return;
        }
        self.send_pending().await;
        self.state.borrow_mut().flushing = false;
    }

    /// Sends every pending message, oldest first, each once; stops at the first network
    /// failure (the next reconnection tries again).
    async fn send_pending(self: &Rc<Self>) {
        let pending: Vec<Message> = {
            let state = self.state.borrow();
            let mut p: Vec<Message> = state
                .threads
                .iter()
                .flat_map(|t| {
                    t.messages
                        .iter()
                        .filter(|m| m.status == Status::Pending)
                        .cloned()
                })
                .collect();
            p.sort_by_key(|m| m.sent_at);
            p
        };
        for message in pending {
            let outcome = async {
                let thread = self.thread(&message.thread_id)?;
                let body = MessageBody {
                    message_id: message.id.clone(),
                    sent_at: message.sent_at,
                    html: message.html.clone(),
                    attrs: message.attrs.clone(),
                    attachments: message.attachments.clone(),
                    ..self.body_for(&message.thread_id, message.text.clone())?
                };
                self.deliver(&body, &thread.members).await
            }
            .await;
            if matches!(&outcome, Err(e) if e.code == "network") {
                return;
            }
            let status = match &outcome {
                Ok(()) => Status::Sent,
                Err(e) => {
                    // It can never go (e.g. nobody to send to): say so, and stop retrying it.
                    self.emit_error(e);
                    Status::Failed
                }
            };
            {
                let mut state = self.state.borrow_mut();
                if let Some(m) = state
                    .threads
                    .iter_mut()
                    .find(|t| t.id == message.thread_id)
                    .and_then(|t| t.messages.iter_mut().find(|m| m.id == message.id))
                {
                    m.status = status;
                }
            }
            self.persist(&message.thread_id);
            self.show_notice(None);
            self.render();
        }
    }

    /// Deletes expired disappearing messages now, and sets a timer for the next one.
    pub(super) fn schedule_sweep(self: &Rc<Self>) {
        let now = now_millis();
        let mut changed = Vec::new();
        let next = {
            let mut state = self.state.borrow_mut();
            clear_timeout(state.sweep_timer.take());
            for t in state.threads.iter_mut() {
                let before = t.messages.len();
                t.messages
                    .retain(|m| m.expires_at.is_none_or(|at| at > now));
                if t.messages.len() != before {
                    changed.push(t.id.clone());
                }
            }
            state
                .threads
                .iter()
                .flat_map(|t| t.messages.iter().filter_map(|m| m.expires_at))
                .min()
        };
        for id in &changed {
            self.persist(id);
        }
        if !changed.is_empty() {
            self.render();
        }
        if let Some(at) = next {
            let weak = Rc::downgrade(self);
            let timer = set_timeout((at - now).max(0) as f64 + 10.0, move || {
                if let Some(inner) = weak.upgrade() {
                    inner.schedule_sweep();
                }
            });
            self.state.borrow_mut().sweep_timer = timer;
        }
    }
}
