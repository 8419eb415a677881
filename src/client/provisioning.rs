//! Provisioning: what a browser does when it has no key for the signed-in user. It fires
//! `provisioningrequired` and asks: "Generate a new key" (a new identity: contacts are told
//! it changed), "Import from a running client", or — through `keyBackupImport` — restore the
//! identity from an encrypted backup.
//! Importing links this browser to one where the user is signed in: this browser posts an
//! ephemeral key, shows a check code derived from it and the user's identity key, and the
//! running browser — after the user compares the codes — seals a bundle (the identity and
//! the user's recent conversations) to that key with HPKE and sends it through the server's
//! relay. `provisioningdone` or `provisioningerror` follows; `loaded` comes only after.

use super::Inner;
use crate::dialog::{DialogContent, Field};
use crate::error::{ClientError, ClientResult};
use crate::history;
use crate::http;
use crate::keystore::StoredAccount;
use crate::model::Thread;
use crate::options::Provisioning;
use crate::util::{now_millis, sleep};
use serde::{Deserialize, Serialize};
use sotto_core::account::Account;
use sotto_core::hpke;
use sotto_core::identity::Identity;
use sotto_core::keys::{parse_public_key, DeviceKeys};
use sotto_core::linking::check_code;
use sotto_core::protocol::{LinkApprove, LinkCreate, LinkRequest, Session, UserKeys};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use zeroize::Zeroizing;

const BUNDLE_INFO: &[u8] = b"sotto/v2 link bundle";
/// Messages per thread that travel to a newly linked browser.
const BUNDLE_MESSAGES_PER_THREAD: usize = 100;
const POLL_MS: f64 = 1_500.0;

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

fn detail(pairs: &[(&str, &str)]) -> JsValue {
    let obj = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&obj, &(*k).into(), &(*v).into());
    }
    obj.into()
}

/// A dialog's lines, with a note (an error to correct, say) first when there is one.
pub(super) fn with_note<'a>(note: Option<&'a str>, lines: &[&'a str]) -> Vec<&'a str> {
    note.into_iter().chain(lines.iter().copied()).collect()
}

fn fresh(account: Account, new_identity: bool) -> StoredAccount {
    StoredAccount {
        device_id: None,
        account,
        new_identity,
    }
}

impl Inner {
    /// The user's identity as the server publishes it, if they have one yet.
    async fn published_identity(
        &self,
        session: &Session,
    ) -> ClientResult<Option<sotto_core::identity::IdentityPublic>> {
        let keys: UserKeys = http::get(
            &self.options.url,
            &format!("/v1/users/{}/keys", session.user.id),
            &session.token,
        )
        .await?;
        Ok(keys.identity)
    }

    /// The account this browser uses for `session`'s user: the stored one, or a new one
    /// made after provisioning.
    pub(super) async fn provision(
        self: &Rc<Self>,
        session: &Session,
        store_key: &str,
    ) -> ClientResult<StoredAccount> {
        if let Some(stored) = crate::keystore::load(store_key).await? {
            if stored.account.user_id == session.user.id {
                return Ok(stored);
            }
        }
        let user = &session.user.id;
        *self.pending_user.borrow_mut() = Some(user.clone());
        let ask = !session.user.ephemeral
            && match self.options.provisioning {
                Provisioning::Generate => false,
                Provisioning::Prompt => true,
                // Ask only when the user already has a key on another browser.
                Provisioning::Auto => self.published_identity(session).await?.is_some(),
            };
        if !ask {
            return Ok(fresh(Account::generate(user, now_millis())?, true));
        }
        self.emit("provisioningrequired", JsValue::UNDEFINED);
        let mut note: Option<String> = None;
        loop {
            let choice = self.ask_choice(note.as_deref()).await;
            let made = match choice.as_str() {
                "generate" => Account::generate(user, now_millis()).map_err(ClientError::from),
                "backup" => match self.restored_identity.borrow_mut().take() {
                    Some(identity) => Account::with_identity(user, identity, now_millis())
                        .map_err(ClientError::from),
                    None => Err(ClientError::new("no_backup", "no backup was given")),
                },
                _ => match self.import_from_running_client(session, store_key).await {
                    Ok(identity) => Account::with_identity(user, identity, now_millis())
                        .map_err(ClientError::from),
                    Err(e) => Err(e),
                },
            };
            match made {
                Ok(account) => {
                    self.with_ui(|ui| ui.dialog.hide());
                    let method = match choice.as_str() {
                        "generate" | "backup" => choice.as_str(),
                        _ => "import",
                    };
                    self.emit("provisioningdone", detail(&[("method", method)]));
                    return Ok(fresh(account, choice == "generate"));
                }
                Err(e) => {
                    self.emit(
                        "provisioningerror",
                        detail(&[("reason", &e.code), ("message", &e.message)]),
                    );
                    note = Some(e.message);
                }
            }
        }
    }

    /// `keyBackupImport`: opens the backup (a wrong passphrase rejects here, at once) and
    /// answers the waiting provisioning question with its identity.
    pub(super) fn import_backup(&self, backup: &str, passphrase: &str) -> ClientResult<()> {
        if self.provisioning_choice.borrow().is_none() {
            return Err(no_provisioning());
        }
        let restored = sotto_core::backup::import(backup, passphrase).map_err(|e| match e {
            sotto_core::CoreError::WrongPassphrase => ClientError::new(
                "wrong_passphrase",
                "The passphrase is wrong, or the backup was altered.",
            ),
            sotto_core::CoreError::Malformed { .. } => ClientError::new(
                "malformed",
                "This is not a Sotto key backup, or it is damaged.",
            ),
            other => other.into(),
        })?;
        if Some(&restored.user_id) != self.pending_user.borrow().as_ref() {
            return Err(ClientError::new(
                "backup_of_another_user",
                "this backup belongs to another user",
            ));
        }
        *self.restored_identity.borrow_mut() = Some(restored.identity);
        self.choose("backup");
        Ok(())
    }

    /// Shows the choices and waits for one (from the dialog, or `generateKey()`,
    /// `importKeyFromRunningClient()` or `keyBackupImport()`).
    async fn ask_choice(self: &Rc<Self>, note: Option<&str>) -> String {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            *self.provisioning_choice.borrow_mut() = Some(resolve);
        });
        self.show_choices(note);
        JsFuture::from(promise)
            .await
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    }

    fn show_choices(self: &Rc<Self>, note: Option<&str>) {
        let lines = with_note(note, &["This browser has no key for you yet. You can make a new one, bring your key and conversations over from a browser where you are signed in, or restore your key from a backup."]);
        self.show_dialog(
            &DialogContent {
                title: "Set up this browser",
                lines: &lines,
                code: None,
                fields: &[],
                buttons: &[
                    ("generate", "Generate a new key"),
                    ("import", "Import from a running client"),
                    ("restore", "Restore from a backup"),
                ],
            },
            |inner, action| {
                if action == "restore" {
                    inner.show_restore(None, "");
                } else {
                    inner.choose(action);
                }
            },
        );
    }

    /// The backup form: the text `keyBackupExport` made and its passphrase.
    fn show_restore(self: &Rc<Self>, note: Option<&str>, backup: &str) {
        let lines = with_note(note, &["Paste your key backup and type its passphrase."]);
        self.show_dialog(
            &DialogContent {
                title: "Restore from a backup",
                lines: &lines,
                code: None,
                fields: &[
                    Field {
                        name: "backup",
                        label: "Backup",
                        kind: "textarea",
                    },
                    Field {
                        name: "passphrase",
                        label: "Passphrase",
                        kind: "password",
                    },
                ],
                buttons: &[("restore-go", "Restore"), ("back", "Back")],
            },
            |inner, action| {
                if action == "back" {
                    inner.show_choices(None);
                    return;
                }
                let values = inner.ui_values(&["backup", "passphrase"]);
                if let Err(e) = inner.import_backup(&values[0], &values[1]) {
                    // The pasted backup stays; only the passphrase is asked again.
                    inner.show_restore(Some(&e.message), &values[0]);
                }
            },
        );
        if !backup.is_empty() {
            self.with_ui(|ui| ui.dialog.set_value("backup", backup, false));
        }
    }

    /// What the dialog's fields hold, in the order asked.
    pub(super) fn ui_values(&self, names: &[&str]) -> Vec<String> {
        let ui = self.ui.borrow();
        names
            .iter()
            .map(|n| ui.as_ref().map(|u| u.dialog.value(n)).unwrap_or_default())
            .collect()
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
    ) -> ClientResult<Identity> {
        let url = &self.options.url;
        let expected = self.published_identity(session).await?.ok_or_else(|| {
            ClientError::new(
                "no_running_client",
                "No other browser has a key for you yet: generate one instead.",
            )
        })?;
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
        let code = check_code(&expected.signing, &public);
        self.link_cancelled.set(false);
        self.show_dialog(
            &DialogContent {
                title: "Approve this browser",
                lines: &[
                    "Open Sotto in a browser where you are signed in and approve this one there.",
                    "Approve only if it shows this code:",
                ],
                code: Some(&code),
                fields: &[],
                buttons: &[("cancel", "Cancel")],
            },
            |inner, _| inner.link_cancelled.set(true),
        );
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
                    let plaintext = Zeroizing::new(plaintext);
                    let bundle: Bundle = serde_json::from_slice(&plaintext)
                        .map_err(|e| ClientError::new("malformed", e.to_string()))?;
                    let secret: [u8; 64] =
                        bundle.identity.as_slice().try_into().map_err(|_| {
                            ClientError::new("malformed", "The approval is damaged.")
                        })?;
                    let identity = Identity::from_secret_bytes(&Zeroizing::new(secret));
                    if bundle.user_id != session.user.id || identity.public() != expected {
                        return Err(ClientError::new(
                            "link_mismatch",
                            "The approval holds another identity than the one published for you.",
                        ));
                    }
                    for thread in &bundle.threads {
                        history::save(store_key, thread).await?;
                    }
                    return Ok(identity);
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
        let Ok(identity) = self.with_account(|a| Ok(a.identity_public())) else {
            return;
        };
        let code = check_code(&identity.signing, &request.ephemeral_public);
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
        let id = request.id.clone();
        self.show_dialog(
            &DialogContent {
                title: "Link a new browser?",
                lines: &[
                    "A browser that is signing in as you asks for your conversations.",
                    "Approve only if it shows this same code:",
                ],
                code: Some(&code),
                fields: &[],
                buttons: &[("approve", "Approve"), ("decline", "Decline")],
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

    /// Approves (sealing the bundle to the request's key) or declines a link request.
    pub(super) async fn answer_link(self: &Rc<Self>, id: &str, approve: bool) -> ClientResult<()> {
        let (token, own) = self.session()?;
        let device_id = self.device_id()?;
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
        let identity = self.with_account(|a| Ok(a.identity().secret_bytes()))?;
        let bundle = Bundle {
            v: 2,
            user_id: own.id,
            identity: identity.to_vec(),
            threads,
        };
        let plaintext = Zeroizing::new(
            serde_json::to_vec(&bundle).map_err(|e| ClientError::new("internal", e.to_string()))?,
        );
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
