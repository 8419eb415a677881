//! `ClientCore`: what `sotto.Client` runs on. It signs in, loads or makes this browser's
//! device key, keeps the delivery socket open, seals outgoing messages for every recipient
//! device and opens incoming ones, and keeps the UI and the page's listeners informed.
//!
//! Every exported method returns a Promise; failures reject with an `Error` carrying `code`.
//! Events reach the page through the `emit(type, detail)` function given at construction.

use crate::error::{ClientError, ClientResult};
use crate::http;
use crate::keystore::{self, StoredDevice};
use crate::model::{display_name, Message, Thread};
use crate::options::{parse_auth, parse_options, Auth, Options};
use crate::socket::Delivery;
use crate::ui::{Ui, UiActions};
use crate::util::{now_millis, random_id};
use sotto_core::keys::{parse_public_key, DeviceKeys};
use sotto_core::protocol::{
    ClientFrame, DeliveredEnvelope, Device, EphemeralSignIn, JwtSignIn, OutgoingEnvelope,
    RegisterDevice, ResolveRequest, Resolved, SendReceipt, SendRequest, ServerFrame, Session, User,
    PROTOCOL_VERSION,
};
use sotto_core::sealing::{self, MessageBody, Route, MAX_TEXT_BYTES};
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};
use web_sys::Element;

/// Message IDs remembered to drop redeliveries (an envelope re-sent after a lost ack).
const SEEN_LIMIT: usize = 10_000;

struct State {
    session: Option<Session>,
    device_id: Option<String>,
    keys: Option<Rc<DeviceKeys>>,
    threads: Vec<Thread>,
    open_thread: Option<String>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    inbox: VecDeque<DeliveredEnvelope>,
    pumping: bool,
    delivery: Option<Delivery>,
    destroyed: bool,
}

struct Inner {
    host: Element,
    auth: Auth,
    options: Options,
    emit: js_sys::Function,
    ui: RefCell<Option<Ui>>,
    state: RefCell<State>,
}

#[wasm_bindgen]
pub struct ClientCore {
    inner: Rc<Inner>,
}

fn promise<F>(fut: F) -> js_sys::Promise
where
    F: std::future::Future<Output = ClientResult<JsValue>> + 'static,
{
    future_to_promise(async move { fut.await.map_err(|e| e.to_js()) })
}

fn to_js<T: serde::Serialize>(value: &T) -> JsValue {
    serde_json::to_string(value)
        .ok()
        .and_then(|s| js_sys::JSON::parse(&s).ok())
        .unwrap_or(JsValue::NULL)
}

#[wasm_bindgen]
impl ClientCore {
    /// `emit(type, detail)` dispatches an event on the page's `Client`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        host: Element,
        auth: JsValue,
        options: JsValue,
        emit: js_sys::Function,
    ) -> Result<ClientCore, JsValue> {
        let auth = parse_auth(&auth, &options)?;
        let options = parse_options(&options)?;
        Ok(ClientCore {
            inner: Rc::new(Inner {
                host,
                auth,
                options,
                emit,
                ui: RefCell::new(None),
                state: RefCell::new(State {
                    session: None,
                    device_id: None,
                    keys: None,
                    threads: Vec::new(),
                    open_thread: None,
                    seen: HashSet::new(),
                    seen_order: VecDeque::new(),
                    inbox: VecDeque::new(),
                    pumping: false,
                    delivery: None,
                    destroyed: false,
                }),
            }),
        })
    }

    /// Mounts the UI, signs in, readies the device and connects; resolves when loaded.
    pub fn start(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.start().await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Resolves `expr` and makes a new thread with those users and this user; resolves to
    /// the thread's ID.
    #[wasm_bindgen(js_name = threadMake)]
    pub fn thread_make(&self, expr: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { Ok(inner.thread_make(&expr).await?.into()) })
    }

    /// Shows the thread in the UI.
    #[wasm_bindgen(js_name = threadOpen)]
    pub fn thread_open(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.thread_open(&id)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Sends `text` to every member's devices; resolves to the message's ID.
    #[wasm_bindgen(js_name = threadSendMessage)]
    pub fn thread_send_message(&self, id: String, text: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { Ok(inner.send_message(&id, text).await?.into()) })
    }

    /// The threads this client knows, newest activity first.
    #[wasm_bindgen(js_name = threadList)]
    pub fn thread_list(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let state = inner.state.borrow();
            let list: Vec<serde_json::Value> = state
                .threads
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "id": t.id, "distribution": t.distribution, "members": t.members,
                        "unread": t.unread, "messageCount": t.messages.len(),
                    })
                })
                .collect();
            Ok(to_js(&list))
        })
    }

    /// The messages of a thread, oldest first.
    #[wasm_bindgen(js_name = threadMessages)]
    pub fn thread_messages(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let state = inner.state.borrow();
            let t = state
                .threads
                .iter()
                .find(|t| t.id == id)
                .ok_or_else(|| unknown_thread(&id))?;
            Ok(to_js(&t.messages))
        })
    }

    /// Unmounts the UI and closes the connection; the client cannot be used afterwards.
    pub fn destroy(&self) {
        let mut state = self.inner.state.borrow_mut();
        state.destroyed = true;
        if let Some(d) = state.delivery.take() {
            d.stop();
        }
        if let Some(ui) = self.inner.ui.borrow_mut().take() {
            ui.unmount();
        }
    }
}

fn unknown_thread(id: &str) -> ClientError {
    ClientError::new("unknown_thread", format!("no thread {id:?} on this device"))
}

impl Inner {
    fn emit(&self, kind: &str, detail: JsValue) {
        let _ = self.emit.call2(&JsValue::NULL, &kind.into(), &detail);
    }

    fn emit_error(&self, e: &ClientError) {
        self.emit("error", e.to_js());
    }

    fn session(&self) -> ClientResult<(String, User)> {
        let state = self.state.borrow();
        if state.destroyed {
            return Err(ClientError::new(
                "destroyed",
                "this client has been destroyed",
            ));
        }
        let s = state
            .session
            .as_ref()
            .ok_or_else(|| ClientError::new("not_signed_in", "the client has not signed in yet"))?;
        Ok((s.token.clone(), s.user.clone()))
    }

    fn device(&self) -> ClientResult<(String, Rc<DeviceKeys>)> {
        let state = self.state.borrow();
        match (&state.device_id, &state.keys) {
            (Some(id), Some(keys)) => Ok((id.clone(), keys.clone())),
            _ => Err(ClientError::new(
                "not_signed_in",
                "this device is not ready yet",
            )),
        }
    }

    async fn start(self: &Rc<Self>) -> ClientResult<()> {
        self.mount_ui()?;
        let url = self.options.url.clone();
        let session: Session = match &self.auth {
            Auth::Jwt(jwt) => {
                http::post(
                    &url,
                    "/v1/auth/jwt",
                    None,
                    &JwtSignIn {
                        org: self.options.org.clone(),
                        jwt: jwt.clone(),
                    },
                )
                .await
            }
            Auth::Ephemeral { token, name, email } => {
                let req = EphemeralSignIn {
                    org: self.options.org.clone(),
                    token: token.clone(),
                    name: name.clone(),
                    email: email.clone(),
                };
                http::post(&url, "/v1/auth/ephemeral", None, &req).await
            }
        }
        .inspect_err(|e| self.show_notice(Some(&format!("Sign-in failed: {}", e.message))))?;

        // One device key per server, org and user in this browser.
        let store_key = format!("{url}|{}|{}", session.org, session.user.id);
        let mut device = match keystore::load(&store_key).await? {
            Some(d) => d,
            None => StoredDevice {
                device_id: None,
                keys: DeviceKeys::generate()?,
            },
        };
        let registered: Device = http::post(
            &url,
            "/v1/devices",
            Some(&session.token),
            &RegisterDevice {
                public_key: device.keys.public_key().to_vec(),
                name: None,
            },
        )
        .await?;
        if device.device_id.as_deref() != Some(registered.id.as_str()) {
            device.device_id = Some(registered.id.clone());
            keystore::save(&store_key, &device).await?;
        }

        if let Some(ui) = self.ui.borrow().as_ref() {
            ui.set_user(display_name(&session.user));
        }
        let token = session.token.clone();
        {
            let mut state = self.state.borrow_mut();
            if state.destroyed {
                return Err(ClientError::new(
                    "destroyed",
                    "this client was destroyed while loading",
                ));
            }
            state.session = Some(session);
            state.device_id = Some(registered.id.clone());
            state.keys = Some(Rc::new(device.keys));
        }
        self.connect(&token, &registered.id);
        self.emit("loaded", JsValue::UNDEFINED);
        Ok(())
    }

    fn mount_ui(self: &Rc<Self>) -> ClientResult<()> {
        let weak = Rc::downgrade(self);
        let act = |f: fn(Rc<Inner>, String)| -> Rc<dyn Fn(String)> {
            let weak = weak.clone();
            Rc::new(move |arg: String| {
                if let Some(inner) = weak.upgrade() {
                    f(inner, arg)
                }
            })
        };
        let actions = UiActions {
            send: act(|inner, text| {
                spawn_local(async move {
                    let Some(id) = inner.state.borrow().open_thread.clone() else {
                        inner.show_notice(Some("Open or start a thread first."));
                        return;
                    };
                    if let Err(e) = inner.send_message(&id, text).await {
                        inner.show_notice(Some(&e.message));
                        inner.emit_error(&e);
                    }
                })
            }),
            open: act(|inner, id| {
                if let Err(e) = inner.thread_open(&id) {
                    inner.show_notice(Some(&e.message));
                }
            }),
            new_thread: act(|inner, expr| {
                spawn_local(async move {
                    match inner.thread_make(&expr).await {
                        Ok(id) => {
                            let _ = inner.thread_open(&id);
                        }
                        Err(e) => inner.show_notice(Some(&e.message)),
                    }
                })
            }),
        };
        let ui = Ui::mount(
            &self.host,
            self.options.show_nav,
            self.options.show_header,
            actions,
        )?;
        *self.ui.borrow_mut() = Some(ui);
        Ok(())
    }

    fn show_notice(&self, message: Option<&str>) {
        if let Some(ui) = self.ui.borrow().as_ref() {
            ui.notice(message);
        }
    }

    fn render(&self) {
        let ui = self.ui.borrow();
        let Some(ui) = ui.as_ref() else { return };
        let state = self.state.borrow();
        let own = state
            .session
            .as_ref()
            .map(|s| s.user.id.as_str())
            .unwrap_or("");
        let _ = ui.render_threads(&state.threads, state.open_thread.as_deref(), own);
        let open = state
            .open_thread
            .as_ref()
            .and_then(|id| state.threads.iter().find(|t| &t.id == id));
        let _ = ui.render_thread(open, own);
    }

    fn connect(self: &Rc<Self>, token: &str, device_id: &str) {
        let on_frame = {
            let weak: Weak<Inner> = Rc::downgrade(self);
            Rc::new(move |frame: ServerFrame| {
                if let Some(inner) = weak.upgrade() {
                    inner.on_frame(frame);
                }
            })
        };
        let on_status = {
            let weak: Weak<Inner> = Rc::downgrade(self);
            Rc::new(move |connected: bool| {
                if let Some(inner) = weak.upgrade() {
                    if let Some(ui) = inner.ui.borrow().as_ref() {
                        ui.set_connected(connected);
                    }
                    let detail = js_sys::Object::new();
                    let _ = js_sys::Reflect::set(&detail, &"connected".into(), &connected.into());
                    inner.emit("connectionchange", detail.into());
                }
            })
        };
        let delivery = Delivery::start(&self.options.url, token, device_id, on_frame, on_status);
        self.state.borrow_mut().delivery = Some(delivery);
    }

    fn on_frame(self: &Rc<Self>, frame: ServerFrame) {
        match frame {
            ServerFrame::Ready { .. } => {}
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
            ServerFrame::Error { code, message } => {
                let e = ClientError::new(&code, message);
                self.show_notice(Some(&e.message));
                self.emit_error(&e);
                if matches!(
                    code.as_str(),
                    "session_expired" | "session_invalid" | "unknown_device"
                ) {
                    // Deferred: this runs inside the socket's own message handler.
                    let inner = self.clone();
                    spawn_local(async move {
                        if let Some(d) = inner.state.borrow_mut().delivery.take() {
                            d.stop();
                        }
                    });
                }
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
                // A network failure may pass: keep the envelope queued on the server and
                // let the next connection deliver it again.
                Err(e) if e.code == "network" => {
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
            let resolved: Resolved = http::post(
                &self.options.url,
                "/v1/resolve",
                Some(&token),
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
        let mut sender_name = env.sender_user.clone();
        let not_member = {
            let state = self.state.borrow();
            let t = state.threads.iter().find(|t| t.id == body.thread_id);
            match t.and_then(|t| t.member(&env.sender_user)) {
                Some(u) => {
                    sender_name = display_name(u).to_owned();
                    false
                }
                None => true,
            }
        };
        if not_member {
            // A sender outside the distribution as we know it: name them from the directory.
            if let Ok(u) = http::get::<User>(
                &self.options.url,
                &format!("/v1/users/{}", env.sender_user),
                &token,
            )
            .await
            {
                sender_name = display_name(&u).to_owned();
            }
        }
        let message = Message {
            id: body.message_id.clone(),
            thread_id: body.thread_id.clone(),
            sender_id: body.sender_user.clone(),
            sender_name,
            sent_at: body.sent_at,
            text: body.text,
            outgoing: body.sender_user == own.id,
        };
        self.record(message);
        Ok(())
    }

    /// Adds a message to its thread (once), redraws, and tells the page.
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
        self.render();
        self.emit("thread-message", to_js(&message));
    }

    fn add_thread(&self, thread: Thread) {
        self.state.borrow_mut().threads.insert(0, thread);
        self.render();
    }

    async fn thread_make(self: &Rc<Self>, expr: &str) -> ClientResult<String> {
        let (token, own) = self.session()?;
        sotto_core::expr::parse(expr)
            .map_err(|e| ClientError::new("expr_syntax", e.to_string()))?;
        // The maker is always a member of their own thread.
        let full = format!("({expr}) + @{}", own.tag);
        let resolved: Resolved = http::post(
            &self.options.url,
            "/v1/resolve",
            Some(&token),
            &ResolveRequest { expr: full },
        )
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

    fn thread_open(&self, id: &str) -> ClientResult<()> {
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
        self.show_notice(None);
        self.render();
        if let Some(ui) = self.ui.borrow().as_ref() {
            ui.focus_composer();
        }
        Ok(())
    }

    async fn send_message(self: &Rc<Self>, thread_id: &str, text: String) -> ClientResult<String> {
        let (token, own) = self.session()?;
        let (device_id, _) = self.device()?;
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
        let (distribution, members) = {
            let state = self.state.borrow();
            let t = state
                .threads
                .iter()
                .find(|t| t.id == thread_id)
                .ok_or_else(|| unknown_thread(thread_id))?;
            (t.distribution.clone(), t.members.clone())
        };
        let body = MessageBody {
            v: PROTOCOL_VERSION,
            message_id: random_id()?,
            thread_id: thread_id.to_owned(),
            distribution,
            sender_user: own.id.clone(),
            sender_device: device_id.clone(),
            sent_at: now_millis(),
            text,
        };
        // Every device of every member, this user's other devices included, but not this one.
        let mut envelopes = Vec::new();
        let mut others_reached = false;
        for member in &members {
            let devices: Vec<Device> = http::get(
                &self.options.url,
                &format!("/v1/users/{}/devices", member.id),
                &token,
            )
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
            let _: SendReceipt = http::post(
                &self.options.url,
                "/v1/envelopes",
                Some(&token),
                &SendRequest {
                    sender_device: device_id.clone(),
                    envelopes,
                },
            )
            .await?;
        }
        let message_id = body.message_id.clone();
        self.record(Message {
            id: body.message_id,
            thread_id: body.thread_id,
            sender_id: own.id.clone(),
            sender_name: display_name(&own).to_owned(),
            sent_at: body.sent_at,
            text: body.text,
            outgoing: true,
        });
        Ok(message_id)
    }
}
