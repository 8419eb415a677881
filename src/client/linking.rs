//! Linking a new browser to one where the user is signed in, through the server's relay,
//! by `sotto_core::linking`'s commit-then-reveal exchange:
//!
//! - the **new** browser posts a commitment to its key, waits for a running browser's key,
//!   then reveals its own and shows the code; it opens the bundle only once its person said
//!   both browsers show the same code (`linkApprove(id)` or "They match");
//! - every **running** browser of the user shows the request (`linkrequest`); the one where
//!   the person chooses "Compare codes" (`linkApprove(id)`) answers with its key, the others
//!   close it. That browser checks the revealed key against the commitment, shows the code
//!   (`linkcode`), and seals the bundle (the identity and recent conversations) only when its
//!   person approves. It keeps its own deadline and answers each request once, whatever the
//!   relay replays.

use super::provisioning::detail;
use super::Inner;
use crate::dialog::DialogContent;
use crate::error::{ClientError, ClientResult};
use crate::history;
use crate::model::Thread;
use crate::util::{now_millis, sleep};
use serde::{Deserialize, Serialize};
use sotto_core::identity::{Identity, IdentityPublic};
use sotto_core::linking::{Checked, NewBrowser, Revealed, RunningBrowser};
use sotto_core::protocol::{LinkAccept, LinkApprove, LinkCreate, LinkRequest, LinkReveal, Session};
use sotto_core::CoreError;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;
use zeroize::Zeroizing;

/// Messages per thread that travel to a newly linked browser, at most.
const BUNDLE_MESSAGES_PER_THREAD: usize = 100;
/// The bundle's size limit: the relay takes 4 MiB sealed (`MAX_SEALED`), with room to spare.
const MAX_BUNDLE_BYTES: usize = 3 * 1024 * 1024;
/// How often the new browser asks the relay how its request stands.
const POLL_MS: f64 = 1_500.0;
/// How often it looks at what its person answered meanwhile.
const TICK_MS: f64 = 200.0;
/// How long this browser lets a request live, whatever the relay says.
const LINK_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// What a running browser hands to the browser it approves.
#[derive(Serialize, Deserialize)]
struct Bundle {
    v: u16,
    user_id: String,
    /// The identity's 64 secret bytes.
    #[serde(with = "sotto_core::b64")]
    identity: Vec<u8>,
    threads: Vec<Thread>,
}

impl Drop for Bundle {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.identity);
    }
}

/// This browser's own request while it asks to be linked.
#[derive(Default)]
pub(super) struct OwnLink {
    id: Option<String>,
    /// A code is shown, so there is something to confirm.
    code_shown: bool,
    /// The person said both browsers show the same code.
    confirmed: bool,
    cancelled: bool,
}

/// A request from a new browser of this user, as this browser handles it.
pub(super) struct Answering {
    id: String,
    commitment: Vec<u8>,
    /// Unix milliseconds, by this browser's clock.
    deadline: i64,
    step: Step,
}

enum Step {
    /// Shown; the person has not said yet whether to compare codes.
    Asked,
    /// This browser answered with its key and waits for the new browser's.
    Answered(RunningBrowser),
    /// The revealed key checked out: the code is shown.
    Compare(Checked),
}

fn cancelled() -> ClientError {
    ClientError::new("cancelled", "Linking was cancelled.")
}

fn expires_at(ms: i64) -> JsValue {
    (ms as f64).into()
}

impl Inner {
    /// The new browser's side: resolves to the identity once a bundle from the browser
    /// whose code the person confirmed has arrived and checks out.
    pub(super) async fn import_from_running_client(
        self: &Rc<Self>,
        session: &Session,
        store_key: &str,
    ) -> ClientResult<Identity> {
        let expected = self.published_identity(session).await?.ok_or_else(|| {
            ClientError::new(
                "no_running_client",
                "No other browser has a key for you yet: generate one instead.",
            )
        })?;
        let link = NewBrowser::start(&expected.signing)?;
        let create = LinkCreate {
            commitment: link.commitment().to_vec(),
        };
        let request = self.post_link(&session.token, &create).await?;
        *self.own_link.borrow_mut() = OwnLink {
            id: Some(request.id.clone()),
            ..OwnLink::default()
        };
        let result = self.await_link(session, &expected, &link, &request).await;
        *self.own_link.borrow_mut() = OwnLink::default();
        match result {
            Ok((identity, mut threads)) => {
                // An ID holding `|` could name another thread's stored page.
                threads.retain(|t| sotto_core::sealing::valid_thread_id(&t.id));
                for thread in &mut threads {
                    // What the other browser sent, it follows itself.
                    thread.awaiting.clear();
                    history::save(store_key, thread).await?;
                }
                self.tell_views(store_key);
                Ok(identity)
            }
            Err(e) => {
                if !matches!(
                    e.code.as_str(),
                    "link_declined" | "link_expired" | "link_used"
                ) {
                    // Close the dialog on the other browser too (best effort).
                    let _ = self.post_link_decline(&session.token, &request.id).await;
                }
                Err(e)
            }
        }
    }

    async fn await_link(
        self: &Rc<Self>,
        session: &Session,
        expected: &IdentityPublic,
        link: &NewBrowser,
        request: &LinkRequest,
    ) -> ClientResult<(Identity, Vec<Thread>)> {
        let (_url, token, id) = (&self.options.url, &session.token, &request.id);
        let deadline = now_millis() + LINK_LIFETIME_MS;
        self.show_own_link(None, false);
        let mut revealed: Option<Revealed> = None;
        let mut sealed: Option<Vec<u8>> = None;
        let mut next_poll = 0i64;
        loop {
            sleep(TICK_MS).await;
            if self.own_link.borrow().cancelled || self.destroyed.get() {
                return Err(cancelled());
            }
            if let (Some(revealed), Some(sealed)) = (&revealed, &sealed) {
                if self.own_link.borrow().confirmed {
                    return open_bundle(revealed, sealed, &session.user.id, expected);
                }
                continue;
            }
            if now_millis() > deadline {
                return Err(link_expired());
            }
            if now_millis() < next_poll {
                continue;
            }
            next_poll = now_millis() + POLL_MS as i64;
            let current = self
                .get_link(token, id)
                .await
                .map_err(|e| match e.code.as_str() {
                    "link_expired" => link_expired(),
                    _ => e,
                })?;
            match current.status.as_str() {
                "pending" | "revealed" => {}
                "accepted" if revealed.is_none() => {
                    let running_public = current.running_public.ok_or_else(|| {
                        ClientError::new("malformed", "The answer carries no key.")
                    })?;
                    let r = link.reveal(id, &running_public)?;
                    let reveal = LinkReveal {
                        ephemeral_public: r.new_public.to_vec(),
                    };
                    self.post_link_reveal(token, id, &reveal).await?;
                    let event = js_sys::Object::from(detail(&[("id", id), ("code", &r.code)]));
                    let _ =
                        js_sys::Reflect::set(&event, &"expiresAt".into(), &expires_at(deadline));
                    self.emit("linkcode", event.into());
                    self.own_link.borrow_mut().code_shown = true;
                    self.show_own_link(Some(&r.code), false);
                    revealed = Some(r);
                }
                "declined" => {
                    return Err(ClientError::new(
                        "link_declined",
                        "Your other browser declined the request.",
                    ))
                }
                "approved" | "consumed" if revealed.is_some() => {
                    sealed = Some(current.sealed.ok_or_else(|| {
                        ClientError::new("link_used", "The approval was already taken.")
                    })?);
                }
                other => {
                    return Err(ClientError::new(
                        "link_failed",
                        format!("Unexpected link state {other}."),
                    ))
                }
            }
        }
    }

    /// The new browser's dialog: waiting for an answer, then the code to compare, then
    /// waiting for the approval.
    fn show_own_link(self: &Rc<Self>, code: Option<&str>, confirmed: bool) {
        let (lines, buttons): (&[&str], &[(&str, &str)]) = match (code, confirmed) {
            (None, _) => (
                &["Open Sotto in a browser where you are signed in. Both browsers will show a code to compare."],
                &[("cancel", "Cancel")],
            ),
            (Some(_), false) => (
                &[
                    "Your other browser shows a code too. Is it this one?",
                    "Say so only if the two codes are the same.",
                ],
                &[("confirm", "They match"), ("cancel", "They differ")],
            ),
            (Some(_), true) => (
                &["Now press Approve on your other browser."],
                &[("cancel", "Cancel")],
            ),
        };
        let code_owned = code.map(str::to_owned);
        self.show_dialog(
            &DialogContent {
                title: "Approve this browser",
                lines,
                code,
                fields: &[],
                buttons,
            },
            move |inner, action| {
                if action == "confirm" {
                    inner.own_link.borrow_mut().confirmed = true;
                    inner.show_own_link(code_owned.as_deref(), true);
                } else {
                    inner.own_link.borrow_mut().cancelled = true;
                }
            },
        );
    }

    /// `linkApprove`/`linkDecline` for this browser's own request; None when `id` is not it.
    fn answer_own_link(&self, id: &str, approve: bool) -> Option<ClientResult<()>> {
        let mut own = self.own_link.borrow_mut();
        if own.id.as_deref() != Some(id) {
            return None;
        }
        if !approve {
            own.cancelled = true;
        } else if !own.code_shown {
            return Some(Err(ClientError::new(
                "link_not_ready",
                "No code to compare yet: wait for the linkcode event.",
            )));
        } else {
            own.confirmed = true;
        }
        Some(Ok(()))
    }

    /// A `link_request` frame: a new browser of this user asks (`pending`), revealed its key
    /// to this browser (`revealed`), or the request was taken or closed elsewhere.
    pub(super) fn on_link_request(self: &Rc<Self>, request: LinkRequest) {
        match request.status.as_str() {
            "pending" => self.on_link_asked(request),
            "revealed" => self.on_link_revealed(&request),
            // Another browser answered, or someone declined: stop showing it.
            _ => {
                if self.take_answering(&request.id).is_some() {
                    self.with_ui(|ui| ui.dialog.hide());
                }
            }
        }
    }

    /// Takes request `id` out of those waiting here. It counts as answered from now on, so
    /// a replay of it is ignored — unless it is handed back with [`Inner::put_back`].
    fn take_answering(&self, id: &str) -> Option<Answering> {
        let mut state = self.state.borrow_mut();
        let pos = state.link_requests.iter().position(|a| a.id == id)?;
        state.answered_links.push(id.to_owned());
        Some(state.link_requests.remove(pos))
    }

    fn put_back(&self, answering: Answering) {
        let mut state = self.state.borrow_mut();
        state.answered_links.retain(|a| *a != answering.id);
        state.link_requests.push(answering);
    }

    fn on_link_asked(self: &Rc<Self>, request: LinkRequest) {
        let id = request.id;
        let now = now_millis();
        // This browser's own deadline: never later than ten minutes after it first heard.
        let deadline = (request.expires_at.saturating_mul(1000)).min(now + LINK_LIFETIME_MS);
        {
            let mut state = self.state.borrow_mut();
            if deadline <= now
                || request.commitment.len() != 32
                || state.answered_links.contains(&id)
                || state.link_requests.iter().any(|a| a.id == id)
            {
                return;
            }
            state.link_requests.push(Answering {
                id: id.clone(),
                commitment: request.commitment,
                deadline,
                step: Step::Asked,
            });
        }
        let event = js_sys::Object::from(detail(&[("id", &id)]));
        let _ = js_sys::Reflect::set(&event, &"expiresAt".into(), &expires_at(deadline));
        self.emit("linkrequest", event.into());
        self.show_link_dialog(
            &id,
            None,
            &[
                "A browser that is signing in as you asks for your key and conversations.",
                "If that is you, compare codes with it.",
            ],
            &[("approve", "Compare codes"), ("decline", "Decline")],
        );
    }

    /// The running browser's dialog for request `id`; its buttons answer as the API does.
    fn show_link_dialog(
        self: &Rc<Self>,
        id: &str,
        code: Option<&str>,
        lines: &[&str],
        buttons: &[(&str, &str)],
    ) {
        let id = id.to_owned();
        self.show_dialog(
            &DialogContent {
                title: "Link a new browser?",
                lines,
                code,
                fields: &[],
                buttons,
            },
            move |inner, action| {
                let (id, approve) = (id.clone(), action == "approve");
                spawn_local(async move {
                    if let Err(e) = inner.answer_link(&id, approve).await {
                        inner.show_notice(Some(&e.message));
                        inner.emit_error(&e);
                    }
                });
            },
        );
    }

    /// The person chose to compare codes: answer with this browser's key. Only one request
    /// at a time goes past that point, so a second one cannot take the first one's place
    /// on screen while the person decides.
    async fn accept_link(self: &Rc<Self>, mut answering: Answering) -> ClientResult<()> {
        let id = answering.id.clone();
        let busy = self
            .state
            .borrow()
            .link_requests
            .iter()
            .any(|a| !matches!(a.step, Step::Asked));
        if busy {
            self.put_back(answering);
            return Err(ClientError::new(
                "link_busy",
                "Another browser is being linked: finish that first.",
            ));
        }
        let (token, _) = self.session()?;
        let device_id = self.device_id()?;
        let running = RunningBrowser::accept(&id, &answering.commitment)?;
        let ephemeral_public = running.public().to_vec();
        answering.step = Step::Answered(running);
        // Kept before asking, so a reveal that comes at once finds it.
        self.put_back(answering);
        self.show_link_dialog(
            &id,
            None,
            &["Waiting for the new browser's code…"],
            &[("decline", "Decline")],
        );
        let accepted = self
            .post_link_accept(
                &token,
                &id,
                &LinkAccept {
                    device_id,
                    ephemeral_public,
                },
            )
            .await;
        if let Err(e) = accepted {
            // Most often another of the user's browsers answered first.
            self.take_answering(&id);
            self.with_ui(|ui| ui.dialog.hide());
            return Err(e);
        }
        Ok(())
    }

    fn on_link_revealed(self: &Rc<Self>, request: &LinkRequest) {
        let id = request.id.clone();
        let Some(answering) = self.take_answering(&id) else {
            // Not answered here (or this tab was reloaded since): nothing to compare.
            self.decline_quietly(&id);
            return;
        };
        let identity = self.with_account(|a| Ok(a.identity_public()));
        let deadline = answering.deadline;
        let checked = match (answering.step, &request.new_public, identity) {
            (Step::Answered(running), Some(new_public), Ok(identity))
                if deadline > now_millis() =>
            {
                running.check(&identity.signing, new_public)
            }
            _ => Err(CoreError::Malformed {
                what: "link request",
                detail: "not answered here, expired or without a key".into(),
            }),
        };
        let checked = match checked {
            Ok(checked) => checked,
            Err(e) => {
                self.with_ui(|ui| ui.dialog.hide());
                self.decline_quietly(&id);
                if e == CoreError::LinkTampered {
                    let e = ClientError::new(
                        "link_tampered",
                        "A request to link a new browser was altered on its way, so it was refused. Try again; if it happens again, someone may be interfering.",
                    );
                    self.show_notice(Some(&e.message));
                    self.emit_error(&e);
                }
                return;
            }
        };
        let code = checked.code.clone();
        self.put_back(Answering {
            id: id.clone(),
            commitment: answering.commitment,
            deadline,
            step: Step::Compare(checked),
        });
        let event = js_sys::Object::from(detail(&[("id", &id), ("code", &code)]));
        let _ = js_sys::Reflect::set(&event, &"expiresAt".into(), &expires_at(deadline));
        self.emit("linkcode", event.into());
        self.show_link_dialog(
            &id,
            Some(&code),
            &["Approve only if the new browser shows this same code:"],
            &[("approve", "Approve"), ("decline", "Decline")],
        );
    }

    fn decline_quietly(self: &Rc<Self>, id: &str) {
        let inner = self.clone();
        let id = id.to_owned();
        spawn_local(async move {
            if let Ok((token, _)) = inner.session() {
                let _ = inner.post_link_decline(&token, &id).await;
            }
        });
    }

    /// `linkApprove`/`linkDecline`. On a new browser: the codes match (or not). On a running
    /// browser: compare codes with the asking browser, then approve (sealing the bundle);
    /// or decline at any step.
    pub(super) async fn answer_link(self: &Rc<Self>, id: &str, approve: bool) -> ClientResult<()> {
        if let Some(answered) = self.answer_own_link(id, approve) {
            return answered;
        }
        let (token, own) = self.session()?;
        let device_id = self.device_id()?;
        let answering = self.take_answering(id).ok_or_else(|| {
            ClientError::new("unknown_link", "no such link request is waiting here")
        })?;
        if answering.deadline <= now_millis() {
            self.with_ui(|ui| ui.dialog.hide());
            self.decline_quietly(id);
            return Err(link_expired());
        }
        let checked = match (approve, answering.step) {
            (false, _) => {
                self.with_ui(|ui| ui.dialog.hide());
                self.post_link_decline(&token, id).await?;
                return Ok(());
            }
            (true, Step::Asked) => {
                let answering = Answering {
                    step: Step::Asked,
                    ..answering
                };
                return self.accept_link(answering).await;
            }
            (true, step @ Step::Answered(_)) => {
                self.put_back(Answering { step, ..answering });
                return Err(ClientError::new(
                    "link_not_ready",
                    "No code to compare yet: wait for the linkcode event.",
                ));
            }
            (true, Step::Compare(checked)) => checked,
        };
        self.with_ui(|ui| ui.dialog.hide());
        let identity = self.with_account(|a| Ok(a.identity().secret_bytes()))?;
        let plaintext = self.bundle_bytes(&own.id, &identity[..])?;
        let approved: ClientResult<serde_json::Value> = match checked.seal_bundle(&plaintext) {
            Ok(sealed) => {
                self.post_link_approve(&token, id, &LinkApprove { device_id, sealed })
                    .await
            }
            Err(e) => Err(e.into()),
        };
        if approved.is_err() {
            // The key is spent: tell the new browser now rather than let it wait.
            self.decline_quietly(id);
        }
        approved.map(|_| ())
    }

    /// The bundle's bytes: the identity and the recent conversations, as many of the most
    /// recent messages as fit the relay's limit (halving the messages per thread until so).
    fn bundle_bytes(&self, user_id: &str, identity: &[u8]) -> ClientResult<Zeroizing<Vec<u8>>> {
        let mut per_thread = BUNDLE_MESSAGES_PER_THREAD;
        loop {
            let threads: Vec<Thread> = self
                .state
                .borrow()
                .threads
                .iter()
                .map(|t| {
                    let mut t = t.clone();
                    let skip = t.messages.len().saturating_sub(per_thread);
                    t.messages.drain(..skip);
                    // This browser's envelopes are its own to follow, not the new one's.
                    t.awaiting.clear();
                    t
                })
                .collect();
            let bundle = Bundle {
                v: 3,
                user_id: user_id.to_owned(),
                identity: identity.to_vec(),
                threads,
            };
            let bytes = Zeroizing::new(
                serde_json::to_vec(&bundle).map_err(|e| crate::http::failed("internal", e))?,
            );
            if bytes.len() <= MAX_BUNDLE_BYTES || per_thread == 0 {
                return Ok(bytes);
            }
            per_thread /= 2;
        }
    }
}

fn link_expired() -> ClientError {
    ClientError::new(
        "link_expired",
        "Nobody approved this browser within ten minutes.",
    )
}

/// Opens the approved bundle: it must come from the browser whose code was confirmed and
/// hold the identity published for this user.
fn open_bundle(
    revealed: &Revealed,
    sealed: &[u8],
    user_id: &str,
    expected: &IdentityPublic,
) -> ClientResult<(Identity, Vec<Thread>)> {
    let mismatch = || {
        ClientError::new(
            "link_mismatch",
            "The approval did not come from the browser you compared codes with.",
        )
    };
    let plaintext = revealed.open_bundle(sealed).map_err(|_| mismatch())?;
    let mut bundle: Bundle =
        serde_json::from_slice(&plaintext).map_err(|e| crate::http::failed("malformed", e))?;
    let secret: [u8; 64] = bundle
        .identity
        .as_slice()
        .try_into()
        .map_err(|_| ClientError::new("malformed", "The approval is damaged."))?;
    let identity = Identity::from_secret_bytes(&Zeroizing::new(secret));
    if bundle.user_id != user_id || identity.public() != *expected {
        return Err(ClientError::new(
            "link_mismatch",
            "The approval holds another identity than the one published for you.",
        ));
    }
    Ok((identity, std::mem::take(&mut bundle.threads)))
}
