//! Outgoing: a message body sealed for every device of every member, sent over the socket
//! (or over HTTP before it is ready), and the outbox of messages typed offline, sent in
//! order once the connection is back.

use super::attachments::OutgoingFile;
use super::Inner;
use crate::error::{ClientError, ClientResult};
use crate::model::{display_name, Awaiting, Message, Status, MAX_AWAITING_PER_THREAD};
use crate::util::{clear_timeout, now_millis, random_id, set_timeout};
use sotto_core::account::Recipient;
use sotto_core::protocol::{
    ClientFrame, OutgoingEnvelope, SendReceipt, SendRequest, User, PROTOCOL_VERSION,
};
use sotto_core::sealing::{Kind, MessageBody, MAX_TEXT_BYTES};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;

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
        reply_to: Option<String>,
    ) -> ClientResult<String> {
        // A view's composer: the tab that holds the account sends.
        let options = js_sys::Object::new();
        if let Some(r) = &reply_to {
            let _ = js_sys::Reflect::set(&options, &"replyTo".into(), &r.into());
        }
        let none = JsValue::UNDEFINED;
        let args = [
            thread_id.into(),
            text.as_str().into(),
            none.clone(),
            none.clone(),
            none,
            options.into(),
        ];
        if let Some(sent) = self.forwarded("threadSendMessage", &args).await {
            return sent.map(|id| id.as_string().unwrap_or_default());
        }
        let (_, own) = self.session()?;
        // The message ends the typing; the next keystroke says so again at once.
        self.state.borrow_mut().typing_sent = None;
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
        if let Some(r) = &reply_to {
            if !thread.messages.iter().any(|m| &m.id == r) {
                return Err(ClientError::new(
                    "unknown_message",
                    "no such message to reply to in this thread on this device",
                ));
            }
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
            target: reply_to,
            ..self.body_for(thread_id, text)?
        };
        let mut message = Message {
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
            reply_to: body.target.clone(),
            ..Default::default()
        };
        message.set_mentions(&thread.members, &own.id);
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
                // A typing notice is for whoever is connected now, and stored nowhere.
                live: body.kind == Kind::Typing,
            };
            match self.send_envelopes(&token, &request).await {
                Ok(receipt) => {
                    // A live envelope may never arrive: the key goes again with a message.
                    if group && body.kind != Kind::Typing {
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
                let state = &mut *state;
                if let Some(thread) = state.threads.iter_mut().find(|t| t.id == body.thread_id) {
                    for ((seq, recipient), _) in receipt
                        .seqs
                        .iter()
                        .zip(&sent_to)
                        .zip(&to_others)
                        .filter(|(_, other)| **other)
                    {
                        thread.awaiting.push(Awaiting {
                            seq: *seq,
                            message_id: body.message_id.clone(),
                            user_id: recipient.user_id.clone(),
                            device_id: recipient.device_id.clone(),
                            resend: resend.is_some(),
                        });
                    }
                    let over = thread
                        .awaiting
                        .len()
                        .saturating_sub(MAX_AWAITING_PER_THREAD);
                    thread.awaiting.drain(..over);
                }
                receipt
                    .seqs
                    .iter()
                    .copied()
                    .filter(|s| {
                        let early = &mut state.early_deliveries;
                        let at = early.iter().position(|e| e == s);
                        at.map(|i| early.swap_remove(i)).is_some()
                    })
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
    pub(super) async fn send_envelopes(
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
            return self.post_envelopes(token, request).await;
        };
        let slot: Rc<RefCell<Option<ClientResult<SendReceipt>>>> = Rc::default();
        let mut wake = None;
        let answered = js_sys::Promise::new(&mut |resolve, _| wake = Some(resolve));
        {
            let mut state = self.state.borrow_mut();
            state.pending_sends.push((
                id,
                PendingSend {
                    slot: slot.clone(),
                    wake: wake.expect("the Promise executor runs at once"),
                },
            ));
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
    pub(super) fn answer_send(&self, id: u64, result: ClientResult<SendReceipt>) {
        let pending = {
            let mut state = self.state.borrow_mut();
            let at = state.pending_sends.iter().position(|(i, _)| *i == id);
            at.map(|i| state.pending_sends.swap_remove(i).1)
        };
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
            state.pending_sends.iter().map(|(id, _)| *id).collect()
        };
        for id in ids {
            self.answer_send(
                id,
                Err(ClientError::new("network", "the connection was lost")),
            );
        }
    }

    /// Sends what was typed offline as soon as the browser says it is online again (the
    /// socket's `ready` does the same when it reconnects).
    pub(super) fn listen_for_online(self: &Rc<Self>) {
        if let Some(w) = web_sys::window() {
            self.listen(w.into(), "online", |inner| {
                spawn_local(inner.flush_outbox())
            });
        }
    }

    /// Calls `f` on every `event` of `target` while this client lives.
    pub(super) fn listen(
        self: &Rc<Self>,
        target: web_sys::EventTarget,
        event: &'static str,
        f: fn(Rc<Self>),
    ) {
        let weak = Rc::downgrade(self);
        let listener = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                f(inner);
            }
        });
        let _ = target.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
        self.page_listeners
            .borrow_mut()
            .push((target, event, listener));
    }

    pub(super) async fn flush_outbox(self: Rc<Self>) {
        if std::mem::replace(&mut self.state.borrow_mut().flushing, true) {
            return;
        }
        self.send_pending().await;
        self.state.borrow_mut().flushing = false;
    }

    /// Sends every pending message, oldest first, each once; stops at the first network
    /// failure (the next reconnection tries again).
    pub(super) async fn send_pending(self: &Rc<Self>) {
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
            crate::util::sort_by_number(&mut p, |m| m.sent_at);
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
                    target: message.reply_to.clone(),
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
}
