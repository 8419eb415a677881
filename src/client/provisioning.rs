//! Provisioning: what a browser does when it has no key for the signed-in user. It fires
//! `provisioningrequired` and asks: "Generate a new key" (a new identity: contacts are told
//! it changed), "Import from a running client", or — through `keyBackupImport` — restore the
//! identity from an encrypted backup.
//! Importing links this browser to one where the user is signed in (see `linking.rs`).
//! `provisioningdone` or `provisioningerror` follows; `loaded` comes only after.

use super::Inner;
use crate::dialog::{DialogContent, Field};
use crate::error::{ClientError, ClientResult};
use crate::keystore::StoredAccount;
use crate::options::Provisioning;
use crate::util::now_millis;
use sotto_core::account::Account;
use sotto_core::protocol::Session;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub(super) fn detail(pairs: &[(&str, &str)]) -> JsValue {
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
    pub(super) async fn published_identity(
        self: &Rc<Self>,
        session: &Session,
    ) -> ClientResult<Option<sotto_core::identity::IdentityPublic>> {
        let keys = self.get_user_keys(&session.token, &session.user.id).await?;
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
        let lines = with_note(note, &["This browser has no key for you yet. Bring your key and conversations over from a browser where you are signed in, or restore your key from a backup. A new key starts over: the people you talk to are told that your key changed."]);
        self.show_dialog(
            &DialogContent {
                title: "Set up this browser",
                lines: &lines,
                code: None,
                fields: &[],
                // Linking first: a new key resets who this user is to everyone.
                buttons: &[
                    ("import", "Import from a running client"),
                    ("restore", "Restore from a backup"),
                    ("generate", "Generate a new key"),
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
}

/// A provisioning answer given when no question is waiting.
pub(super) fn no_provisioning() -> ClientError {
    ClientError::new("no_provisioning", "no provisioning question is waiting")
}
