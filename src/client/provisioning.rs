//! Provisioning: what a browser does when it has no key for the signed-in user. It fires
//! `provisioningrequired` and asks: "Generate a new key" or "Import from a running client".
//! Importing links this browser to one where the user is signed in: this browser posts an
//! ephemeral key, shows a check code derived from it, and the running browser — after the
//! user compares the codes — seals a bundle (the user's conversations) to that key and
//! sends it through the server's relay. `provisioningdone` or `provisioningerror` follows;
//! `loaded` comes only after provisioning.

use super::Inner;
use crate::dialog::DialogContent;
use crate::error::{ClientError, ClientResult};
use crate::history;
use crate::http;
use crate::keystore::StoredDevice;
use crate::model::Thread;
use crate::options::Provisioning;
use crate::util::sleep;
use serde::{Deserialize, Serialize};
use sotto_core::hpke;
use sotto_core::keys::{parse_public_key, DeviceKeys};
use sotto_core::linking::check_code;
use sotto_core::protocol::{Device, LinkApprove, LinkCreate, LinkRequest, Session};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

const BUNDLE_INFO: &[u8] = b"sotto/v1 link bundle";
/// Messages per thread that travel to a newly linked browser.
const BUNDLE_MESSAGES_PER_THREAD: usize = 100;
const POLL_MS: f64 = 1_500.0;

/// What a running browser hands to the browser it approves.
#[derive(Serialize, Deserialize)]
struct Bundle {
    v: u16,
    threads: Vec<Thread>,
}

fn detail(pairs: &[(&str, &str)]) -> JsValue {
    let obj = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&obj, &(*k).into(), &(*v).into());
    }
    obj.into()
}

fn new_device() -> ClientResult<StoredDevice> {
    Ok(StoredDevice {
        device_id: None,
        keys: DeviceKeys::generate()?,
    })
}

impl Inner {
    /// The device this browser uses for `session`'s user: the stored one, or a new one made
    /// after provisioning.
    pub(super) async fn provision(
        self: &Rc<Self>,
        session: &Session,
        store_key: &str,
    ) -> ClientResult<StoredDevice> {
        if let Some(device) = crate::keystore::load(store_key).await? {
            return Ok(device);
        }
        let ask = !session.user.ephemeral
            && match self.options.provisioning {
                Provisioning::Generate => false,
                Provisioning::Prompt => true,
                Provisioning::Auto => {
                    let devices: Vec<Device> = http::get(
                        &self.options.url,
                        &format!("/v1/users/{}/devices", session.user.id),
                        &session.token,
                    )
                    .await?;
                    !devices.is_empty()
                }
            };
        if !ask {
            return new_device();
        }
        self.emit("provisioningrequired", JsValue::UNDEFINED);
        let mut note: Option<String> = None;
        loop {
            match self.ask_choice(note.as_deref()).await.as_str() {
                "generate" => {
                    self.with_ui(|ui| ui.dialog.hide());
                    self.emit("provisioningdone", detail(&[("method", "generate")]));
                    return new_device();
                }
                _ => match self.import_from_running_client(session, store_key).await {
                    Ok(()) => {
                        self.with_ui(|ui| ui.dialog.hide());
                        self.emit("provisioningdone", detail(&[("method", "import")]));
                        return new_device();
                    }
                    Err(e) => {
                        self.emit(
                            "provisioningerror",
                            detail(&[("reason", &e.code), ("message", &e.message)]),
                        );
                        note = Some(e.message);
                    }
                },
            }
        }
    }

    /// Shows the two choices and waits for one (from the dialog, or `generateKey()` /
    /// `importKeyFromRunningClient()`).
    async fn ask_choice(self: &Rc<Self>, note: Option<&str>) -> String {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            *self.provisioning_choice.borrow_mut() = Some(resolve);
        });
        let mut lines = vec!["This browser has no key for you yet. You can make a new one, or bring your conversations over from a browser where you are signed in."];
        if let Some(n) = note {
            lines.insert(0, n);
        }
        let weak = Rc::downgrade(self);
        self.with_ui(|ui| {
            let _ = ui.dialog.show(
                &DialogContent {
                    title: "Set up this browser",
                    lines: &lines,
                    code: None,
                    buttons: &[
                        ("generate", "Generate a new key"),
                        ("import", "Import from a running client"),
                    ],
                },
                move |action| {
                    if let Some(inner) = weak.upgrade() {
                        inner.choose(action);
                    }
                },
            );
        });
        JsFuture::from(promise)
            .await
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    }

    /// Answers a pending provisioning question; false when none is pending.
    pub(super) fn choose(&self, choice: &str) -> bool {
        match self.provisioning_choice.borrow_mut().take() {
            Some(resolve) => {
                let _ = resolve.call1(&JsValue::NULL, &choice.into());
                true
            }
            None => false,
        }
    }

    async fn import_from_running_client(
        self: &Rc<Self>,
        session: &Session,
        store_key: &str,
    ) -> ClientResult<()> {
        let url = &self.options.url;
        let ephemeral = DeviceKeys::generate()?;
        let public = ephemeral.public_key();
        let request: LinkRequest = http::post(
            url,
            "/v1/links",
            Some(&session.token),
            &LinkCreate {
                ephemeral_public: public.to_vec(),
            },
        )
        .await?;
        let code = check_code(&public);
        self.link_cancelled.set(false);
        let weak = Rc::downgrade(self);
        self.with_ui(|ui| {
            let _ = ui.dialog.show(
                &DialogContent {
                    title: "Approve this browser",
                    lines: &[
                        "Open Sotto in a browser where you are signed in and approve this one there.",
                        "Approve only if it shows this code:",
                    ],
                    code: Some(&code),
                    buttons: &[("cancel", "Cancel")],
                },
                move |_| {
                    if let Some(inner) = weak.upgrade() {
                        inner.link_cancelled.set(true);
                    }
                },
            );
        });
        loop {
            sleep(POLL_MS).await;
            if self.link_cancelled.get() || self.destroyed.get() {
                return Err(ClientError::new("cancelled", "Linking was cancelled."));
            }
            let current: LinkRequest =
                http::get(url, &format!("/v1/links/{}", request.id), &session.token)
                    .await
                    .map_err(|e| match e.code.as_str() {
                        "link_expired" => ClientError::new(
                            "link_expired",
                            "Nobody approved this browser within ten minutes.",
                        ),
                        _ => e,
                    })?;
            match current.status.as_str() {
                "pending" => continue,
                "declined" => {
                    return Err(ClientError::new(
                        "link_declined",
                        "Your other browser declined the request.",
                    ))
                }
                "approved" | "consumed" => {
                    let sealed = current.sealed.ok_or_else(|| {
                        ClientError::new("link_used", "The approval was already taken.")
                    })?;
                    if sealed.len() < hpke::ENC_LEN {
                        return Err(ClientError::new("malformed", "The approval is damaged."));
                    }
                    let (enc, ct) = sealed.split_at(hpke::ENC_LEN);
                    let plaintext = hpke::open(
                        ephemeral.secret(),
                        enc,
                        BUNDLE_INFO,
                        request.id.as_bytes(),
                        ct,
                    )?;
                    let bundle: Bundle = serde_json::from_slice(&plaintext)
                        .map_err(|e| ClientError::new("malformed", e.to_string()))?;
                    for thread in &bundle.threads {
                        history::save(store_key, thread).await?;
                    }
                    return Ok(());
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

    /// A new browser of this user asks to be linked: ask the user here.
    pub(super) fn on_link_request(self: &Rc<Self>, request: LinkRequest) {
        let code = check_code(&request.ephemeral_public);
        {
            let mut state = self.state.borrow_mut();
            if state.link_requests.iter().any(|r| r.id == request.id) {
                return;
            }
            state.link_requests.push(request.clone());
        }
        let detail = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&detail, &"id".into(), &request.id.as_str().into());
        let _ = js_sys::Reflect::set(&detail, &"code".into(), &code.as_str().into());
        let _ = js_sys::Reflect::set(
            &detail,
            &"expiresAt".into(),
            &((request.expires_at * 1000) as f64).into(),
        );
        self.emit("linkrequest", detail.into());
        let weak = Rc::downgrade(self);
        let id = request.id.clone();
        self.with_ui(|ui| {
            let _ = ui.dialog.show(
                &DialogContent {
                    title: "Link a new browser?",
                    lines: &[
                        "A browser that is signing in as you asks for your conversations.",
                        "Approve only if it shows this same code:",
                    ],
                    code: Some(&code),
                    buttons: &[("approve", "Approve"), ("decline", "Decline")],
                },
                move |action| {
                    let (Some(inner), approve) = (weak.upgrade(), action == "approve") else {
                        return;
                    };
                    let id = id.clone();
                    spawn_local(async move {
                        if let Err(e) = inner.answer_link(&id, approve).await {
                            inner.show_notice(Some(&e.message));
                            inner.emit_error(&e);
                        }
                    });
                },
            );
        });
    }

    /// Approves (sealing the bundle to the request's key) or declines a link request.
    pub(super) async fn answer_link(self: &Rc<Self>, id: &str, approve: bool) -> ClientResult<()> {
        let (token, _) = self.session()?;
        let (device_id, _) = self.device()?;
        let request = {
            let mut state = self.state.borrow_mut();
            let pos = state
                .link_requests
                .iter()
                .position(|r| r.id == id)
                .ok_or_else(|| {
                    ClientError::new("unknown_link", "no such link request is waiting here")
                })?;
            state.link_requests.remove(pos)
        };
        self.with_ui(|ui| ui.dialog.hide());
        if !approve {
            let _: serde_json::Value = http::post(
                &self.options.url,
                &format!("/v1/links/{id}/decline"),
                Some(&token),
                &(),
            )
            .await?;
            return Ok(());
        }
        let threads: Vec<Thread> = self
            .state
            .borrow()
            .threads
            .iter()
            .map(|t| {
                let mut t = t.clone();
                let skip = t.messages.len().saturating_sub(BUNDLE_MESSAGES_PER_THREAD);
                t.messages.drain(..skip);
                t
            })
            .collect();
        let plaintext = serde_json::to_vec(&Bundle { v: 1, threads })
            .map_err(|e| ClientError::new("internal", e.to_string()))?;
        let pk = parse_public_key(&request.ephemeral_public)?;
        let (enc, ct) = hpke::seal(&pk, BUNDLE_INFO, request.id.as_bytes(), &plaintext)?;
        let mut sealed = enc.to_vec();
        sealed.extend_from_slice(&ct);
        let _: serde_json::Value = http::post(
            &self.options.url,
            &format!("/v1/links/{id}/approve"),
            Some(&token),
            &LinkApprove { device_id, sealed },
        )
        .await?;
        Ok(())
    }
}

/// A provisioning answer given when no question is waiting.
pub(super) fn no_provisioning() -> ClientError {
    ClientError::new("no_provisioning", "no provisioning question is waiting")
}
