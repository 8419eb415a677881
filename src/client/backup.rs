//! The key backup: the identity encrypted under a passphrase (`sotto_core::backup`), and its
//! dialogs.

use super::provisioning::with_note;
use super::Inner;
use crate::dialog::{DialogContent, Field};
use crate::error::ClientResult;

use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};

impl Inner {
    /// `keyBackupExport(passphrase)`: the identity, encrypted under the passphrase.
    pub(super) fn export_backup(&self, passphrase: &str) -> ClientResult<String> {
        self.with_account(|a| {
            Ok(sotto_core::backup::export(
                a.identity(),
                &a.user_id,
                passphrase,
            )?)
        })
    }

    /// The "Key backup" dialog: a passphrase twice, then the backup text to keep.
    pub(super) fn show_backup_dialog(self: &Rc<Self>, note: Option<&str>) {
        let lines = with_note(note, &["Choose a passphrase of at least 8 characters. With the backup and the passphrase you can restore your key on another browser; without the passphrase nobody can."]);
        self.show_dialog(
            &DialogContent {
                title: "Back up your key",
                lines: &lines,
                code: None,
                fields: &[
                    Field {
                        name: "passphrase",
                        label: "Passphrase",
                        kind: "password",
                    },
                    Field {
                        name: "again",
                        label: "Passphrase again",
                        kind: "password",
                    },
                ],
                buttons: &[("make", "Make backup"), ("cancel", "Cancel")],
            },
            |inner, action| {
                if action != "make" {
                    inner.with_ui(|ui| ui.dialog.hide());
                    return;
                }
                let v = inner.ui_values(&["passphrase", "again"]);
                if v[0] != v[1] {
                    inner.show_backup_dialog(Some("The two passphrases differ."));
                    return;
                }
                let passphrase = v[0].clone();
                spawn_local(async move {
                    let made = match inner
                        .forwarded("keyBackupExport", &[passphrase.as_str().into()])
                        .await
                    {
                        Some(made) => made.map(|t| t.as_string().unwrap_or_default()),
                        None => inner.export_backup(&passphrase),
                    };
                    match made {
                        Ok(text) => inner.show_backup_text(&text),
                        Err(e) => inner.show_backup_dialog(Some(&e.message)),
                    }
                });
            },
        );
    }

    pub(super) fn show_backup_text(self: &Rc<Self>, text: &str) {
        let saved = text.to_owned();
        self.show_dialog(
            &DialogContent {
                title: "Your key backup",
                lines: &["Keep this text somewhere safe, apart from the passphrase."],
                code: None,
                fields: &[Field {
                    name: "backup",
                    label: "Backup",
                    kind: "textarea",
                }],
                buttons: &[("save", "Save as file"), ("copy", "Copy"), ("done", "Done")],
            },
            move |inner, action| match action {
                "save" => {
                    let _ = super::attachments::save_file(
                        "sotto-key-backup.txt",
                        "text/plain",
                        saved.as_bytes(),
                    );
                }
                "copy" => {
                    let saved = saved.clone();
                    spawn_local(async move {
                        let label = match copy_text(&saved).await {
                            true => "Copied",
                            false => "Not copied: select the text and copy it",
                        };
                        inner.with_ui(|ui| ui.dialog.relabel("copy", label));
                    });
                }
                _ => inner.with_ui(|ui| ui.dialog.hide()),
            },
        );
        self.with_ui(|ui| ui.dialog.set_value("backup", text, true));
    }
}

/// Puts `text` on the clipboard (`navigator.clipboard.writeText`); false where the browser
/// refuses or has no clipboard for the page (an insecure origin).
async fn copy_text(text: &str) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).unwrap_or_default();
    let clipboard = get(&get(&window.into(), "navigator"), "clipboard");
    let Ok(write) = get(&clipboard, "writeText").dyn_into::<js_sys::Function>() else {
        return false;
    };
    match write.call1(&clipboard, &text.into()) {
        Ok(p) => JsFuture::from(js_sys::Promise::from(p)).await.is_ok(),
        Err(_) => false,
    }
}
