//! Signing in and staying signed in: the `ready` event, `setIdentityToken`, token providers
//! with backoff, session expiry with its grace window (`identitytokenexpired`), and
//! `clearSession`, which signs out every tab of the origin over a `BroadcastChannel`.

use super::{Inner, State};
use crate::error::{js_failure, ClientError, ClientResult};
use crate::keystore;
use crate::options::Auth;
use crate::socket::Delivery;
use crate::util::{backoff_ms, clear_timeout, now_millis, set_timeout, sleep};
use sotto_core::protocol::{
    EphemeralSignIn, JwtSignIn, RegisterDevice, ServerFrame, Session, User,
};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{BroadcastChannel, MessageEvent};

/// The BroadcastChannel that every Sotto client of an origin listens on.
const CHANNEL: &str = "sotto";
/// A token provider is asked for a new token this long before the session ends (at most;
/// never later than four fifths of the way through a short session).
const REFRESH_LEAD_MS: f64 = 60_000.0;
const PROVIDER_RETRY_BASE_MS: f64 = 1_000.0;
const PROVIDER_RETRY_MAX_MS: f64 = 60_000.0;

/// Where this tab's session is in its life: one state at a time, rather than flags that
/// could disagree. Every state but `SignedOut` has a user whose threads are on screen.
#[derive(Default)]
pub(super) enum Lifecycle {
    #[default]
    SignedOut,
    /// Not signed in here (yet): this user's saved history is shown, read-only. The server
    /// was unreachable at the first sign-in, or the tab is loading after being a view.
    SavedHistory(User),
    /// Signed in while another tab holds the account (its store key): this tab is a view
    /// over that one (`tab_view.rs`). The session is the newest this tab was given: the one
    /// it carries on with when it takes over.
    Viewing { store_key: String, session: Session },
    /// Signed in, holding the account's lock, and loading it (keys, device, history); the
    /// session is the newest given meanwhile, which `Active` then carries.
    Loading { store_key: String, session: Session },
    /// Signed in, and this tab holds the account.
    Active(Session),
    /// `identitytokenexpired` has fired and the grace window is running.
    Expiring(Session),
}

impl Lifecycle {
    /// The session, also while it expires.
    pub(super) fn session(&self) -> Option<&Session> {
        match self {
            Lifecycle::Active(s) | Lifecycle::Expiring(s) => Some(s),
            _ => None,
        }
    }

    /// Whose threads are on screen.
    pub(super) fn user(&self) -> Option<&User> {
        match self {
            Lifecycle::SignedOut => None,
            Lifecycle::SavedHistory(user) => Some(user),
            Lifecycle::Active(s)
            | Lifecycle::Expiring(s)
            | Lifecycle::Viewing { session: s, .. }
            | Lifecycle::Loading { session: s, .. } => Some(&s.user),
        }
    }

    /// The session a view or a loading tab will carry on with.
    fn waiting_session(&mut self) -> Option<&mut Session> {
        match self {
            Lifecycle::Viewing { session, .. } | Lifecycle::Loading { session, .. } => {
                Some(session)
            }
            _ => None,
        }
    }

    /// The store key of the account this tab views, if it is a view.
    pub(super) fn viewing(&self) -> Option<&str> {
        match self {
            Lifecycle::Viewing { store_key, .. } => Some(store_key),
            _ => None,
        }
    }
}

/// What signs this client in once.
enum Credential {
    Jwt(String),
    Ephemeral {
        token: String,
        name: Option<String>,
        email: Option<String>,
    },
}

/// The cross-tab channel and its listener, closed when the client goes.
pub(super) struct Channel {
    channel: BroadcastChannel,
    _listener: Closure<dyn FnMut(MessageEvent)>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

fn is_auth_failure(e: &ClientError) -> bool {
    matches!(e.code.as_str(), "session_expired" | "session_invalid")
}

impl Inner {
    pub(super) async fn start(self: &Rc<Self>) -> ClientResult<()> {
        if !self.options.headless {
            self.mount_ui()?;
        }
        self.listen_for_other_tabs();
        self.listen_for_online();
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            // Back on screen: the open thread is read now, not while it was hidden.
            self.listen(doc.into(), "visibilitychange", |inner| {
                if inner.on_screen() {
                    inner.read_open_thread();
                }
            });
        }
        self.emit("ready", JsValue::UNDEFINED);
        let auth = self.auth.borrow().clone();
        match auth {
            Auth::Later => {
                self.with_ui(|ui| ui.set_status("Waiting for sign-in"));
                Ok(())
            }
            Auth::Provider(_) => {
                let epoch = self.state.borrow().epoch;
                // A failed first attempt is reported as an `error` event; the retries go on.
                if let Err(e) = self.sign_in_from_provider().await {
                    self.emit_error(&e);
                    self.show_notice(Some(&format!("Sign-in failed: {}; retrying", e.message)));
                    spawn_local(self.clone().provider_retry_loop(epoch, 1));
                }
                Ok(())
            }
            Auth::Jwt(jwt) => self.sign_in(Credential::Jwt(jwt)).await,
            Auth::Ephemeral { token, name, email } => {
                self.sign_in(Credential::Ephemeral { token, name, email })
                    .await
            }
        }
        .inspect_err(|e| self.show_notice(Some(&format!("Sign-in failed: {}", e.message))))
    }

    pub(super) async fn set_identity_token(self: &Rc<Self>, jwt: String) -> ClientResult<()> {
        if self.destroyed.get() {
            return Err(ClientError::new(
                "destroyed",
                "this client has been destroyed",
            ));
        }
        *self.auth.borrow_mut() = Auth::Jwt(jwt.clone());
        self.sign_in(Credential::Jwt(jwt)).await
    }

    async fn obtain_session(self: &Rc<Self>, credential: &Credential) -> ClientResult<Session> {
        match credential {
            Credential::Jwt(jwt) => {
                let req = JwtSignIn {
                    org: self.options.org.clone(),
                    jwt: jwt.clone(),
                };
                self.sign_in_with_jwt(&req).await
            }
            Credential::Ephemeral { token, name, email } => {
                let req = EphemeralSignIn {
                    org: self.options.org.clone(),
                    token: token.clone(),
                    name: name.clone(),
                    email: email.clone(),
                };
                self.sign_in_as_visitor(&req).await
            }
        }
    }

    /// Signs in. The same user again (a refresh, perhaps within the grace window) keeps the
    /// session's device, threads and messages and only swaps the token; another user
    /// replaces the session entirely.
    async fn sign_in(self: &Rc<Self>, credential: Credential) -> ClientResult<()> {
        let session = match self.obtain_session(&credential).await {
            Ok(s) => s,
            Err(e) if e.code == "network" => {
                // Unreachable server on a first sign-in: show what this browser has saved
                // for the user, and keep trying in the background.
                let first = matches!(self.state.borrow().life, Lifecycle::SignedOut);
                if let (true, Credential::Jwt(jwt)) = (first, &credential) {
                    if self.show_offline(jwt).await {
                        let epoch = self.state.borrow().epoch;
                        spawn_local(self.clone().retry_sign_in(jwt.clone(), epoch));
                        return Ok(());
                    }
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let waiting = {
            // A view, or a tab still loading the account, keeps the newest session for when
            // it carries on (one sign-in at a time per tab); another user ends it first.
            let mut state = self.state.borrow_mut();
            match state.life.waiting_session() {
                Some(s) if s.user.id == session.user.id && s.org == session.org => {
                    *s = session;
                    return Ok(());
                }
                other => other.is_some(),
            }
        };
        if waiting {
            self.sign_out_locally();
        }
        let same_user = {
            let state = self.state.borrow();
            state.device_id.is_some()
                && state
                    .life
                    .session()
                    .is_some_and(|s| s.user.id == session.user.id && s.org == session.org)
        };
        if same_user {
            self.adopt(session);
            return Ok(());
        }
        if self.state.borrow().life.session().is_some() {
            self.sign_out_locally();
        }
        self.load_device(session).await?;
        if let Credential::Jwt(jwt) = &credential {
            self.remember_identity(jwt).await;
        }
        Ok(())
    }

    pub(super) async fn sign_in_jwt(self: &Rc<Self>, jwt: String) -> ClientResult<()> {
        self.sign_in(Credential::Jwt(jwt)).await
    }

    /// Takes a refreshed session for the same user: new token, new connection, new timers.
    fn adopt(self: &Rc<Self>, session: Session) {
        let token = session.token.clone();
        let device_id = {
            let mut state = self.state.borrow_mut();
            cancel_timers(&mut state);
            state.epoch += 1;
            state.life = Lifecycle::Active(session);
            if let Some(d) = state.delivery.take() {
                d.stop();
            }
            state.device_id.clone().unwrap_or_default()
        };
        self.show_notice(None);
        self.connect(&token, &device_id);
        self.schedule_expiry();
    }

    /// First sign-in of a user here: this browser's device key for them (made and
    /// registered on first use), then the connection, then `loaded`.
    async fn load_device(self: &Rc<Self>, session: Session) -> ClientResult<()> {
        let url = self.options.url.clone();
        let store_key = format!("{url}|{}|{}", session.org, session.user.id);
        self.take_account_lock(&store_key, session.clone()).await?;
        let session = match &self.state.borrow().life {
            Lifecycle::Loading { session, .. } => session.clone(),
            _ => session,
        };
        let loaded = self.load_account(session, store_key).await;
        if loaded.is_err() {
            // Nothing of the half-loaded account stays, and the lock goes with it: another
            // tab, or a later sign-in here, takes the account instead.
            self.end_session();
            self.emit("_released", JsValue::UNDEFINED);
        }
        loaded
    }

    /// The rest of `load_device`, once this tab holds the account.
    async fn load_account(
        self: &Rc<Self>,
        session: Session,
        store_key: String,
    ) -> ClientResult<()> {
        let mut retried = false;
        let registered = loop {
            let stored = self.provision(&session, &store_key).await?;
            let new_identity = stored.new_identity;
            let device = RegisterDevice {
                public_key: stored.account.device_public_key().to_vec(),
                name: None,
            };
            let registered = self.register_device(&session.token, &device).await?;
            let fresh = stored.device_id.as_deref() != Some(registered.id.as_str());
            if fresh {
                // A device of Sotto 0.1 whose keys this browser could not read: off the list
                // before the new one is published, so nobody keeps sending to it.
                if let Some(old) = keystore::device_set_aside(&store_key).await {
                    if old != registered.id {
                        let _ = self.remove_device(&session.token, &old).await;
                    }
                }
            }
            {
                // The account goes into the state now, so every save below writes it.
                let mut state = self.state.borrow_mut();
                state.store_key = Some(store_key.clone());
                state.device_id = Some(registered.id.clone());
                state.account = Some(stored.account);
            }
            self.save_account().await?;
            match self
                .publish_device(&session, &registered.id, fresh, new_identity)
                .await
            {
                Ok(()) => break registered,
                // This browser's identity was replaced elsewhere: forget it and set up again.
                Err(e) if e.code == "identity_replaced" && !retried => {
                    retried = true;
                    self.state.borrow_mut().account = None;
                    keystore::remove(&store_key).await?;
                    self.show_notice(Some(&e.message));
                }
                Err(e) => return Err(e),
            }
        };
        // History first, so it is on screen at once, before the connection is up.
        let threads = crate::history::load(&store_key).await.unwrap_or_else(|e| {
            self.emit_error(&e);
            Vec::new()
        });
        if self.destroyed.get() {
            return Err(ClientError::new(
                "destroyed",
                "this client was destroyed while loading",
            ));
        }
        let token = {
            let mut state = self.state.borrow_mut();
            // The newest session given while loading; none if this tab was signed out meanwhile.
            let session = match std::mem::take(&mut state.life) {
                Lifecycle::Loading {
                    store_key: k,
                    session,
                } if k == store_key => session,
                other => {
                    state.life = other;
                    return Err(ClientError::new(
                        "not_signed_in",
                        "signed out while the account was loading",
                    ));
                }
            };
            let token = session.token.clone();
            state.epoch += 1;
            state.life = Lifecycle::Active(session);
            state.store_key = Some(store_key);
            // As many IDs as are remembered after, of the threads active last (they come
            // newest first): a long history must not make every message scan all of it.
            for m in threads.iter().rev().flat_map(|t| &t.messages) {
                state.seen.push_back(m.id.clone());
            }
            while state.seen.len() > super::inbox::SEEN_LIMIT {
                state.seen.pop_front();
            }
            state.threads = threads;
            token
        };
        self.show_notice(None);
        self.render();
        self.connect(&token, &registered.id);
        self.schedule_expiry();
        self.schedule_sweep();
        if let Some(id) = self.options.open_thread_id.clone() {
            if let Err(e) = self.thread_open(&id, false) {
                self.emit_error(&e);
            }
        }
        self.emit("loaded", JsValue::UNDEFINED);
        Ok(())
    }

    /// Becomes the one tab that holds this account (`tab_lock.rs`). While another tab of
    /// this browser holds it, this tab is a view over that one (`tab_view.rs`); the page
    /// gets `tabwaiting`. The JS shell learns the account's name from `_view` and `_leader`
    /// and forwards the page's calls to the holder meanwhile.
    /// Then the tab is `Loading`, with the newest session it was given.
    async fn take_account_lock(
        self: &Rc<Self>,
        store_key: &str,
        session: Session,
    ) -> ClientResult<()> {
        let name = format!("sotto-account|{store_key}");
        let lock = match crate::tab_lock::try_acquire(&name).await? {
            Some(lock) => lock,
            None => {
                let epoch = {
                    let mut state = self.state.borrow_mut();
                    state.life = Lifecycle::Viewing {
                        store_key: store_key.to_owned(),
                        session: session.clone(),
                    };
                    state.epoch
                };
                self.with_ui(|ui| ui.set_status("Open in another tab"));
                // The holder answers with what its UI shows beside the threads.
                self.post_to_tabs(&format!("hello {store_key}"));
                self.emit("_view", name.as_str().into());
                self.reload_view().await;
                let lock = crate::tab_lock::acquire(&name).await?;
                // The holder may have let go because it cleared the session for every tab:
                // let its BroadcastChannel message (sent before it let go) arrive first.
                crate::util::sleep(100.0).await;
                if self.destroyed.get() || self.state.borrow().epoch != epoch {
                    return Err(ClientError::new(
                        "destroyed",
                        "this client stopped while waiting for the other tab",
                    ));
                }
                lock
            }
        };
        {
            let mut state = self.state.borrow_mut();
            state.tab_lock = Some(lock);
            // A view carries on with the newest session it was given (for this account).
            let session = match std::mem::take(&mut state.life) {
                Lifecycle::Viewing {
                    store_key: k,
                    session: newest,
                } if k == store_key => newest,
                _ => session,
            };
            state.life = Lifecycle::Loading {
                store_key: store_key.to_owned(),
                session,
            };
        }
        self.emit("_leader", name.as_str().into());
        Ok(())
    }

    pub(super) fn connect(self: &Rc<Self>, token: &str, device_id: &str) {
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
                    if !connected {
                        inner.socket_lost();
                    }
                    inner.with_ui(|ui| ui.set_connected(connected));
                    let detail = js_sys::Object::new();
                    let _ = js_sys::Reflect::set(&detail, &"connected".into(), &connected.into());
                    inner.emit("connectionchange", detail.into());
                }
            })
        };
        let delivery = Delivery::start(&self.options.url, token, device_id, on_frame, on_status);
        self.state.borrow_mut().delivery = Some(delivery);
    }

    /// Sets the timers of the current session: a token provider is asked for a new token a
    /// little before the end; at the end itself the session expires.
    fn schedule_expiry(self: &Rc<Self>) {
        let (expires_at, epoch) = {
            let state = self.state.borrow();
            let Some(s) = state.life.session() else {
                return;
            };
            (s.expires_at, state.epoch)
        };
        let left = (expires_at as f64) * 1000.0 - now_millis() as f64;
        let mut timers = Vec::new();
        if matches!(*self.auth.borrow(), Auth::Provider(_)) {
            let lead = REFRESH_LEAD_MS.min(left / 5.0);
            let weak = Rc::downgrade(self);
            timers.push(set_timeout(left - lead, move || {
                if let Some(inner) = weak.upgrade() {
                    spawn_local(inner.provider_retry_loop(epoch, 0));
                }
            }));
        }
        let weak = Rc::downgrade(self);
        timers.push(set_timeout(left, move || {
            if let Some(inner) = weak.upgrade() {
                if inner.state.borrow().epoch == epoch {
                    inner.expire();
                }
            }
        }));
        self.state.borrow_mut().timers.extend(timers);
    }

    /// The session has ended (its time is up, or the server refused it): tell the page,
    /// and give it `identityTokenGraceMs` to hand over a new token before clearing.
    pub(super) fn expire(self: &Rc<Self>) {
        let epoch = {
            let mut state = self.state.borrow_mut();
            match std::mem::take(&mut state.life) {
                Lifecycle::Active(s) => state.life = Lifecycle::Expiring(s),
                other => {
                    state.life = other;
                    return;
                }
            }
            state.epoch += 1;
            cancel_timers(&mut state);
            if let Some(d) = state.delivery.take() {
                // Deferred: this may run inside the socket's own message handler.
                spawn_local(async move { d.stop() });
            }
            state.epoch
        };
        self.with_ui(|ui| ui.set_status("Session expired"));
        self.emit("identitytokenexpired", JsValue::UNDEFINED);
        let weak = Rc::downgrade(self);
        let grace = set_timeout(self.options.grace_ms, move || {
            if let Some(inner) = weak.upgrade() {
                let state = inner.state.borrow();
                let still = state.epoch == epoch && matches!(state.life, Lifecycle::Expiring(_));
                drop(state);
                if still {
                    inner.sign_out_locally();
                }
            }
        });
        self.state.borrow_mut().timers.push(grace);
        if matches!(*self.auth.borrow(), Auth::Provider(_)) {
            spawn_local(self.clone().provider_retry_loop(epoch, 0));
        }
    }

    /// Reports a failure of the current session (its socket); a refused session starts
    /// the expiry path.
    pub(super) fn failed(self: &Rc<Self>, e: ClientError) -> ClientError {
        if is_auth_failure(&e) {
            self.expire();
        }
        e
    }

    /// Reports a failed API call made with `token`: a refusal expires the session only if
    /// `token` is still the current one (not a sign-in still provisioning, nor one replaced).
    pub(super) fn failed_for(self: &Rc<Self>, e: ClientError, token: &str) -> ClientError {
        let current = matches!(&self.state.borrow().life, Lifecycle::Active(s) if s.token == token);
        if current {
            self.failed(e)
        } else {
            e
        }
    }

    async fn sign_in_from_provider(self: &Rc<Self>) -> ClientResult<()> {
        let provider = match &*self.auth.borrow() {
            Auth::Provider(f) => f.clone(),
            _ => return Ok(()),
        };
        let returned = provider
            .call0(&JsValue::NULL)
            .map_err(|e| js_failure("token_provider_failed", e))?;
        let value = JsFuture::from(js_sys::Promise::resolve(&returned))
            .await
            .map_err(|e| js_failure("token_provider_failed", e))?;
        let jwt = value.as_string().filter(|s| !s.is_empty()).ok_or_else(|| {
            ClientError::new(
                "token_provider_failed",
                "tokenProvider must resolve to a JWT string",
            )
        })?;
        self.sign_in(Credential::Jwt(jwt)).await
    }

    /// Asks the token provider until it gives a token that signs in, waiting longer after
    /// each failure (1 s doubling to 60 s, with jitter); stops when another sign-in or a
    /// sign-out has happened meanwhile.
    async fn provider_retry_loop(self: Rc<Self>, epoch: u32, mut attempt: u32) {
        loop {
            if attempt > 0 {
                sleep(backoff_ms(
                    attempt - 1,
                    PROVIDER_RETRY_BASE_MS,
                    PROVIDER_RETRY_MAX_MS,
                    js_sys::Math::random(),
                ))
                .await;
            }
            if self.destroyed.get() || self.state.borrow().epoch != epoch {
                return;
            }
            match self.sign_in_from_provider().await {
                Ok(()) => return,
                Err(e) => self.emit_error(&e),
            }
            attempt += 1;
        }
    }

    /// Ends the session in this tab: connection, timers and everything in memory.
    pub(super) fn end_session(&self) {
        let mut state = self.state.borrow_mut();
        cancel_timers(&mut state);
        clear_timeout(state.sweep_timer.take());
        if let Some(d) = state.delivery.take() {
            spawn_local(async move { d.stop() });
        }
        let epoch = state.epoch + 1;
        // Sends still waiting on the socket end with the session.
        for (_, p) in state.pending_sends.drain(..) {
            p.fail(ClientError::new(
                "not_signed_in",
                "signed out before the server answered",
            ));
        }
        *state = State {
            epoch,
            ..State::default()
        };
    }

    /// Signs this tab out, leaves nothing of the user on screen, and is ready for the next.
    pub(super) fn sign_out_locally(self: &Rc<Self>) {
        self.end_session();
        self.with_ui(|ui| ui.forget_drafts());
        self.render();
        self.show_notice(None);
        self.with_ui(|ui| ui.set_status("Signed out"));
        self.emit("sessioncleared", JsValue::UNDEFINED);
        if !self.destroyed.get() {
            self.emit("ready", JsValue::UNDEFINED);
        }
    }

    /// `clearSession()`: tells the server to forget this session and device, deletes the
    /// user's key from this browser, and signs out every tab of the origin.
    pub(super) async fn clear_session(self: &Rc<Self>) {
        let (session, device_id, store_key) = {
            let state = self.state.borrow();
            (
                state.life.session().cloned(),
                state.device_id.clone(),
                state.store_key.clone(),
            )
        };
        if let Some(s) = &session {
            // Best effort: the local wipe below happens whatever the server says.
            if let Some(d) = &device_id {
                let _ = self.remove_device(&s.token, d).await;
            }
            let _ = self.logout(&s.token).await;
        }
        if let Some(key) = store_key {
            for result in [
                keystore::remove(&key).await,
                crate::history::remove_all(&key).await,
                // Which tokens named which users here: gone too, for every user.
                crate::idb::delete_prefixed(crate::idb::IDENTITIES, &self.options.url).await,
            ] {
                if let Err(e) = result {
                    self.emit_error(&e);
                }
            }
        }
        self.post_to_tabs(&format!("sessioncleared {}", self.options.url));
        self.sign_out_locally();
    }

    /// Posts `message` to every other Sotto client of the origin.
    pub(super) fn post_to_tabs(&self, message: &str) {
        if let Some(c) = self.channel.borrow().as_ref() {
            let _ = c.channel.post_message(&JsValue::from_str(message));
        }
    }

    /// Signs this tab out when another tab of the origin clears the session of the same
    /// server; a view reads the history again when the holder saved it.
    fn listen_for_other_tabs(self: &Rc<Self>) {
        let Ok(channel) = BroadcastChannel::new(CHANNEL) else {
            return;
        };
        let weak = Rc::downgrade(self);
        let cleared = format!("sessioncleared {}", self.options.url);
        let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let (Some(message), Some(inner)) = (e.data().as_string(), weak.upgrade()) else {
                return;
            };
            let viewing = inner.viewing();
            if message == cleared {
                spawn_local(async move {
                    if inner.state.borrow().life.session().is_some() || viewing.is_some() {
                        inner.sign_out_locally();
                    }
                });
            } else if viewing
                .is_some_and(|key| message.strip_prefix("saved ") == Some(key.as_str()))
            {
                spawn_local(async move { inner.reload_view().await });
            } else {
                inner.hear_about_account(&message);
            }
        });
        channel.set_onmessage(Some(listener.as_ref().unchecked_ref()));
        *self.channel.borrow_mut() = Some(Channel {
            channel,
            _listener: listener,
        });
    }
}

fn cancel_timers(state: &mut State) {
    for t in state.timers.drain(..) {
        clear_timeout(t);
    }
}
