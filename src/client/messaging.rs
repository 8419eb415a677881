//! Threads and messages: making and opening threads, sealing a message for every device of
//! every member, and opening what the delivery socket brings, one envelope at a time.

use super::{to_js, unknown_thread, Inner};
use crate::error::{ClientError, ClientResult};
use crate::history;
use crate::http;
use crate::model::{display_name, Message, Status, Thread};
use crate::util::{now_millis, random_id};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sotto_core::keys::parse_public_key;
use sotto_core::protocol::{
    ClientFrame, DeliveredEnvelope, Device, OutgoingEnvelope, ResolveRequest, Resolved,
    SendReceipt, SendRequest, ServerFrame, User, PROTOCOL_VERSION,
};
use sotto_core::sealing::{self, MessageBody, Route, MAX_TEXT_BYTES};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;

/// Message IDs remembered to drop redeliveries (an envelope re-sent after a lost ack).
const SEEN_LIMIT: usize = 10_000;

impl Inner {
    async fn api_get<R: DeserializeOwned>(
        self: &Rc<Self>,
        path: &str,
        token: &str,
    ) -> ClientResult<R> {
        http::get(&self.options.url, path, token)
            .await
            .map_err(|e| self.failed(e))
    }

    async fn api_post<B: Serialize, R: DeserializeOwned>(
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
                // Back online: what was typed meanwhile goes out now.
                spawn_local(self.clone().flush_outbox());
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
            ServerFrame::Error { code, message } => {
                let e = ClientError::new(&code, message);
                if code == "unknown_device" {
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
                // Anything else can never succeed (it does not decrypt, or is malformed):
                // report it and let the server drop it.
                Err(e) => self.emit_error(&e),
            }
            if let Some(d) = self.state.borrow().delivery.as_ref() {
                d.send(&ClientFrame::Ack { seq });
            }
        }
    }

    async fn receive(self: &Rc<Self>, env: DeliveredEnvelope) -> ClientResult<()> {
        let (token, own) = self.session()?;
        let (device_id, keys) = self.device()?;
        let route = Route {
            sender_user: &env.sender_user,
            sender_device: &env.sender_device,
            recipient_device: &device_id,
        };
        let body = sealing::open(&env.payload, &keys, &route)?;
        if self.state.borrow().seen.contains(&body.message_id) {
            return Ok(());
        }
        let known = self
            .state
            .borrow()
            .threads
            .iter()
            .any(|t| t.id == body.thread_id);
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
            self.add_thread(Thread {
                id: body.thread_id.clone(),
                distribution: resolved.canonical,
                members: resolved.users,
                messages: Vec::new(),
                unread: 0,
            });
        }
        let member_name = {
            let state = self.state.borrow();
            let t = state.threads.iter().find(|t| t.id == body.thread_id);
            t.and_then(|t| t.member(&env.sender_user))
                .map(|u| display_name(u).to_owned())
        };
        let sender_name = match member_name {
            Some(n) => n,
            // A sender outside the distribution as we know it: name them from the directory.
            None => match self
                .api_get::<User>(&format!("/v1/users/{}", env.sender_user), &token)
                .await
            {
                Ok(u) => display_name(&u).to_owned(),
                Err(_) => env.sender_user.clone(),
            },
        };
        self.record(Message {
            id: body.message_id.clone(),
            thread_id: body.thread_id.clone(),
            sender_id: body.sender_user.clone(),
            sender_name,
            sent_at: body.sent_at,
            outgoing: body.sender_user == own.id,
            status: if body.sender_user == own.id {
                Status::Sent
            } else {
                Status::Received
            },
            text: body.text,
        });
        Ok(())
    }

    /// Saves a thread to this browser's history (in the background).
    pub(super) fn persist(&self, thread_id: &str) {
        let state = self.state.borrow();
        let (Some(key), Some(t)) = (
            state.store_key.clone(),
            state.threads.iter().find(|t| t.id == thread_id).cloned(),
        ) else {
            return;
        };
        spawn_local(async move {
            if let Err(e) = history::save(&key, &t).await {
                web_sys::console::warn_1(
                    &format!("sotto: history not saved: {}", e.message).into(),
                );
            }
        });
    }

    /// Adds a message to its thread (once), saves and redraws, and tells the page.
    fn record(&self, message: Message) {
        {
            let mut state = self.state.borrow_mut();
            if !state.seen.insert(message.id.clone()) {
                return;
            }
            state.seen_order.push_back(message.id.clone());
            if state.seen_order.len() > SEEN_LIMIT {
                if let Some(old) = state.seen_order.pop_front() {
                    state.seen.remove(&old);
                }
            }
            let open = state.open_thread.clone();
            if let Some(pos) = state.threads.iter().position(|t| t.id == message.thread_id) {
                let mut t = state.threads.remove(pos);
                if !message.outgoing && open.as_deref() != Some(t.id.as_str()) {
                    t.unread += 1;
                }
                t.messages.push(message.clone());
                state.threads.insert(0, t);
            }
        }
        self.persist(&message.thread_id);
        self.render();
        self.emit("thread-message", to_js(&message));
    }

    fn add_thread(&self, thread: Thread) {
        let id = thread.id.clone();
        self.state.borrow_mut().threads.insert(0, thread);
        self.persist(&id);
        self.render();
    }

    pub(super) async fn thread_make(self: &Rc<Self>, expr: &str) -> ClientResult<String> {
        let (token, own) = self.session()?;
        sotto_core::expr::parse(expr)
            .map_err(|e| ClientError::new("expr_syntax", e.to_string()))?;
        // The maker is always a member of their own thread.
        let full = format!("({expr}) + @{}", own.tag);
        let resolved: Resolved = self
            .api_post("/v1/resolve", &token, &ResolveRequest { expr: full })
            .await?;
        let id = random_id()?;
        self.add_thread(Thread {
            id: id.clone(),
            distribution: resolved.canonical,
            members: resolved.users,
            messages: Vec::new(),
            unread: 0,
        });
        Ok(id)
    }

    pub(super) fn thread_open(&self, id: &str) -> ClientResult<()> {
        self.session()?;
        {
            let mut state = self.state.borrow_mut();
            let t = state
                .threads
                .iter_mut()
                .find(|t| t.id == id)
                .ok_or_else(|| unknown_thread(id))?;
            t.unread = 0;
            state.open_thread = Some(id.to_owned());
        }
        self.persist(id);
        self.show_notice(None);
        self.render();
        self.with_ui(|ui| ui.focus_composer());
        Ok(())
    }

    pub(super) async fn send_message(
        self: &Rc<Self>,
        thread_id: &str,
        text: String,
    ) -> ClientResult<String> {
        let (_, own) = self.session()?;
        self.device()?;
        if text.trim().is_empty() {
            return Err(ClientError::new(
                "empty_message",
                "a message needs some text",
            ));
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(ClientError::new(
                "message_too_long",
                format!("a message is limited to {MAX_TEXT_BYTES} bytes"),
            ));
        }
        if !self
            .state
            .borrow()
            .threads
            .iter()
            .any(|t| t.id == thread_id)
        {
            return Err(unknown_thread(thread_id));
        }
        let message = Message {
            id: random_id()?,
            thread_id: thread_id.to_owned(),
            sender_id: own.id.clone(),
            sender_name: display_name(&own).to_owned(),
            sent_at: now_millis(),
            text,
            outgoing: true,
            status: Status::Sent,
        };
        match self.deliver(&message).await {
            Ok(()) => {}
            // Offline: keep it, marked pending; it goes out when the connection returns.
            Err(e) if e.code == "network" => {
                let id = message.id.clone();
                self.record(Message {
                    status: Status::Pending,
                    ..message
                });
                self.show_notice(Some(
                    "Offline: the message will be sent when the connection returns.",
                ));
                return Ok(id);
            }
            Err(e) => return Err(e),
        }
        let id = message.id.clone();
        self.record(message);
        Ok(id)
    }

    /// Seals `message` for every device of every member of its thread (this user's other
    /// devices included, not this one) and hands the envelopes to the server. Sending the
    /// same message again is harmless: recipients drop repeats by message ID.
    async fn deliver(self: &Rc<Self>, message: &Message) -> ClientResult<()> {
        let (token, own) = self.session()?;
        let (device_id, _) = self.device()?;
        let (distribution, members) = {
            let state = self.state.borrow();
            let t = state
                .threads
                .iter()
                .find(|t| t.id == message.thread_id)
                .ok_or_else(|| unknown_thread(&message.thread_id))?;
            (t.distribution.clone(), t.members.clone())
        };
        let body = MessageBody {
            v: PROTOCOL_VERSION,
            message_id: message.id.clone(),
            thread_id: message.thread_id.clone(),
            distribution,
            sender_user: own.id.clone(),
            sender_device: device_id.clone(),
            sent_at: message.sent_at,
            text: message.text.clone(),
        };
        let mut envelopes = Vec::new();
        let mut others_reached = false;
        for member in &members {
            let devices: Vec<Device> = self
                .api_get(&format!("/v1/users/{}/devices", member.id), &token)
                .await?;
            for d in devices.iter().filter(|d| d.id != device_id) {
                let pk = parse_public_key(&d.public_key)?;
                let route = Route {
                    sender_user: &own.id,
                    sender_device: &device_id,
                    recipient_device: &d.id,
                };
                envelopes.push(OutgoingEnvelope {
                    device_id: d.id.clone(),
                    payload: sealing::seal(&body, &pk, &route)?,
                });
                others_reached |= member.id != own.id;
            }
        }
        let alone = members.iter().all(|m| m.id == own.id);
        if !others_reached && !alone {
            return Err(ClientError::new(
                "no_recipient_devices",
                "no one else in this thread has opened Sotto yet, so there is no device to send to",
            ));
        }
        if !envelopes.is_empty() {
            let _: SendReceipt = self
                .api_post(
                    "/v1/envelopes",
                    &token,
                    &SendRequest {
                        sender_device: device_id.clone(),
                        envelopes,
                    },
                )
                .await?;
        }
        Ok(())
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

    /// Sends every pending message, oldest first, each once; stops at the first network
    /// failure (the next reconnection tries again).
    async fn flush_outbox(self: Rc<Self>) {
        if std::mem::replace(&mut self.state.borrow_mut().flushing, true) {
            return;
        }
        self.send_pending().await;
        self.state.borrow_mut().flushing = false;
    }

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
            let outcome = self.deliver(&message).await;
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
}
