//! The client's side of the key protocol (the cryptography itself is `sotto_core::account`):
//! storing the account encrypted after every change, publishing this device's prekeys and
//! the signed device list, finding and verifying the devices a message must reach, checking
//! that a new session comes from a device its user's identity vouches for, safety numbers
//! and the encrypted backup.

use super::provisioning::with_note;
use super::Inner;
use crate::dialog::{DialogContent, Field};
use crate::error::{ClientError, ClientResult};
use crate::keystore;
use crate::util::now_millis;
use sotto_core::account::{Account, Recipient, ONE_TIME_PREKEY_BATCH};

/// One-time prekeys the server holds per device at most (its `MAX_ONE_TIME_PREKEYS`).
const SERVER_PREKEY_CAPACITY: usize = 200;
use sotto_core::identity::{DeviceList, IdentityPublic};
use sotto_core::prekeys::PreKeyBundle;
use sotto_core::protocol::{
    ClaimBundles, PrekeyCount, PublishIdentity, Session, UploadPrekeys, User, UserKeys,
};
use sotto_core::trust::IdentityCheck;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// A user's devices as their identity vouches for them.
#[derive(Clone)]
pub(super) struct VerifiedDevices {
    pub identity: IdentityPublic,
    pub devices: Vec<String>,
}

impl Inner {
    /// Runs `f` on the account (there is one whenever a device is loaded).
    pub(super) fn with_account<R>(
        &self,
        f: impl FnOnce(&mut Account) -> ClientResult<R>,
    ) -> ClientResult<R> {
        let mut state = self.state.borrow_mut();
        let account = state
            .account
            .as_mut()
            .ok_or_else(|| ClientError::new("not_signed_in", "this device is not ready yet"))?;
        f(account)
    }

    /// Stores the account as it is now, encrypted, after any earlier save. Awaiting it means
    /// the state is on disk: a message sealed before it may now leave.
    pub(super) async fn save_account(&self) -> ClientResult<()> {
        let mut done = None;
        let turn = js_sys::Promise::new(&mut |resolve, _| done = Some(resolve));
        let previous = self.account_chain.replace(turn);
        let _ = JsFuture::from(previous).await;
        let snapshot = {
            let state = self.state.borrow();
            match (&state.store_key, &state.account) {
                (Some(k), Some(a)) => {
                    Some((k.clone(), state.device_id.clone(), keystore::serialize(a)))
                }
                _ => None,
            }
        };
        let result = match snapshot {
            Some((key, device_id, Ok(bytes))) => {
                keystore::save_serialized(&key, device_id.as_deref(), &bytes).await
            }
            Some((_, _, Err(e))) => Err(e),
            None => Ok(()),
        };
        if let Some(resolve) = done {
            let _ = resolve.call0(&JsValue::NULL);
        }
        result
    }

    /// Makes this device reachable: its signed prekey and one-time prekeys on the server
    /// (when new or due), then the user's device list, signed, with this device in it.
    pub(super) async fn publish_device(
        self: &Rc<Self>,
        session: &Session,
        device_id: &str,
        fresh: bool,
        new_identity: bool,
    ) -> ClientResult<()> {
        let url = &self.options.url;
        let upload = self.with_account(|a| {
            let rotated = a.rotate_signed_prekey_if_due(now_millis())?;
            Ok(match (fresh, rotated) {
                (true, _) => Some(UploadPrekeys {
                    signed_prekey: Some(a.signed_prekey()),
                    one_time_prekeys: a.generate_one_time_prekeys(ONE_TIME_PREKEY_BATCH)?,
                }),
                (false, Some(spk)) => Some(UploadPrekeys {
                    signed_prekey: Some(spk),
                    one_time_prekeys: Vec::new(),
                }),
                (false, None) => None,
            })
        })?;
        if let Some(upload) = upload {
            self.save_account().await?;
            let _: PrekeyCount = crate::http::post(
                url,
                &format!("/v1/devices/{device_id}/prekeys"),
                Some(&session.token),
                &upload,
            )
            .await?;
        }
        let own = self.with_account(|a| Ok(a.identity_public()))?;
        for _ in 0..3 {
            let keys: UserKeys = crate::http::get(
                url,
                &format!("/v1/users/{}/keys", session.user.id),
                &session.token,
            )
            .await?;
            // The devices the current list names, if it is our identity's list.
            let (listed, version) = match (&keys.identity, &keys.device_list) {
                (Some(id), Some(signed)) if *id == own => {
                    let list = id.verify_device_list(signed, &session.user.id)?;
                    (list.devices, list.version)
                }
                // The user made a new identity on another browser: this one's is stale.
                (Some(_), _) if !new_identity => return Err(ClientError::new(
                    "identity_replaced",
                    "you set up a new key on another browser; this browser needs setting up again",
                )),
                _ => (Vec::new(), 0),
            };
            let mut devices: Vec<String> = listed
                .into_iter()
                .filter(|d| keys.devices.contains(d))
                .collect();
            if devices.iter().any(|d| d == device_id) && keys.identity == Some(own) {
                return Ok(());
            }
            devices.push(device_id.to_owned());
            let list = DeviceList {
                user_id: session.user.id.clone(),
                version: now_millis().max(version + 1),
                devices,
            };
            let signed = self.with_account(|a| Ok(a.sign_device_list(&list)))?;
            let published: ClientResult<serde_json::Value> = crate::http::call(
                url,
                "PUT",
                "/v1/identity",
                Some(&session.token),
                Some(&PublishIdentity {
                    identity: own,
                    device_list: signed,
                }),
            )
            .await;
            match published {
                Ok(_) => return Ok(()),
                // Another device of ours published meanwhile: read its list and sign again.
                Err(e) if e.code == "stale_device_list" => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::new(
            "device_list_busy",
            "the device list kept changing; try again",
        ))
    }

    /// Tops up this device's one-time prekeys after the server said `remaining` are left.
    /// One top-up runs at a time: the server says "low" after every claim, and overlapping
    /// uploads would overfill its store (and be refused) while their secrets pile up here.
    pub(super) async fn replenish_prekeys(self: &Rc<Self>, remaining: u32) -> ClientResult<()> {
        if self.replenishing.replace(true) {
            return Ok(());
        }
        let result = self.upload_prekeys(remaining).await;
        self.replenishing.set(false);
        result
    }

    async fn upload_prekeys(self: &Rc<Self>, remaining: u32) -> ClientResult<()> {
        let (token, _) = self.session()?;
        let device_id = self.device_id()?;
        let room = SERVER_PREKEY_CAPACITY.saturating_sub(remaining as usize);
        let count = ONE_TIME_PREKEY_BATCH.min(room);
        if count == 0 {
            return Ok(());
        }
        let keys = self.with_account(|a| Ok(a.generate_one_time_prekeys(count)?))?;
        self.save_account().await?;
        let _: PrekeyCount = crate::http::post(
            &self.options.url,
            &format!("/v1/devices/{device_id}/prekeys"),
            Some(&token),
            &UploadPrekeys {
                signed_prekey: None,
                one_time_prekeys: keys,
            },
        )
        .await?;
        Ok(())
    }

    /// A user's devices, verified by the core's trust rules (`Account::accept_keys`): the
    /// list must be signed by their identity and no older than one seen before; a changed
    /// identity is reported (`identitychange`) and stays flagged until acknowledged.
    pub(super) async fn verified_devices(
        self: &Rc<Self>,
        user_id: &str,
        token: &str,
    ) -> ClientResult<Option<VerifiedDevices>> {
        let keys: UserKeys = self
            .api_get(&format!("/v1/users/{user_id}/keys"), token)
            .await?;
        let (Some(identity), Some(signed)) = (keys.identity, keys.device_list) else {
            return Ok(None);
        };
        let (accepted, own) = self.with_account(|a| {
            Ok((
                a.accept_keys(user_id, &identity, &signed, &keys.devices)?,
                a.user_id == user_id,
            ))
        })?;
        if own && accepted.check == IdentityCheck::Changed {
            return Err(ClientError::new(
                "identity_replaced",
                "your identity was replaced on another browser; this browser's key is no longer yours",
            ));
        }
        if accepted.check != IdentityCheck::Same || !accepted.removed.is_empty() {
            self.save_account().await?;
        }
        if accepted.check == IdentityCheck::Changed {
            self.identity_changed(user_id);
        }
        if !accepted.added.is_empty() {
            self.device_added(user_id, &accepted.added);
        }
        Ok(Some(VerifiedDevices {
            identity,
            devices: accepted.devices,
        }))
    }

    /// A user's verified devices, from the cache when there (lists stay valid until the
    /// server says they changed, or a send is refused with `devices_changed`).
    pub(super) async fn devices_of(
        self: &Rc<Self>,
        user_id: &str,
        token: &str,
    ) -> ClientResult<Option<VerifiedDevices>> {
        let cached = self.state.borrow().device_lists.get(user_id).cloned();
        if let Some(v) = cached {
            return Ok(v);
        }
        let v = self.verified_devices(user_id, token).await?;
        self.state
            .borrow_mut()
            .device_lists
            .insert(user_id.to_owned(), v.clone());
        Ok(v)
    }

    /// Every device a message to `members` must reach (this user's other devices too), with
    /// a session made for each that has none yet.
    pub(super) async fn recipients_for(
        self: &Rc<Self>,
        members: &[User],
        own: &User,
        token: &str,
        only: Option<&Recipient>,
    ) -> ClientResult<Vec<Recipient>> {
        let own_device = self.device_id()?;
        let mut users: Vec<&User> = members.iter().collect();
        if !users.iter().any(|u| u.id == own.id) {
            users.push(own);
        }
        if let Some(only) = only {
            users.retain(|u| u.id == only.user_id);
        }
        let mut recipients = Vec::new();
        let mut identities = Vec::new();
        for user in users {
            let Some(v) = self.devices_of(&user.id, token).await? else {
                continue;
            };
            // A contact verified by safety number whose key has since changed: not until
            // the person verifies the new one.
            self.with_account(|a| Ok(a.may_send_to(&user.id)?))?;
            let wanted = |d: &String| *d != own_device && only.is_none_or(|o| o.device_id == *d);
            for d in v.devices.into_iter().filter(wanted) {
                recipients.push(Recipient {
                    user_id: user.id.clone(),
                    device_id: d,
                });
            }
            identities.push((user.id.clone(), v.identity));
        }
        let missing: Vec<String> = self.with_account(|a| {
            Ok(recipients
                .iter()
                .filter(|r| !a.has_session(&r.device_id))
                .map(|r| r.device_id.clone())
                .collect())
        })?;
        if !missing.is_empty() {
            let bundles: Vec<PreKeyBundle> = self
                .api_post("/v1/bundles", token, &ClaimBundles { devices: missing })
                .await?;
            self.with_account(|a| {
                for b in &bundles {
                    let user = recipients
                        .iter()
                        .find(|r| r.device_id == b.device_id)
                        .map(|r| r.user_id.clone())
                        .unwrap_or_default();
                    let expected = identities
                        .iter()
                        .find(|(u, _)| *u == user)
                        .map(|(_, i)| *i)
                        .ok_or_else(|| {
                            ClientError::new("bad_bundle", "a bundle for no recipient")
                        })?;
                    a.start_session(b, &expected)?;
                }
                Ok(())
            })?;
        }
        Ok(recipients)
    }

    /// The identity that vouches for `sender_device` as one of `sender_user`'s devices: the
    /// only identity an envelope labelled with that device may be opened under. A device not
    /// on the cached list sends the list to be fetched again once (it may be new).
    pub(super) async fn verified_sender(
        self: &Rc<Self>,
        sender_user: &str,
        sender_device: &str,
        token: &str,
    ) -> ClientResult<IdentityPublic> {
        let lists = |v: &Option<VerifiedDevices>| {
            v.as_ref()
                .filter(|v| v.devices.iter().any(|d| d == sender_device))
                .map(|v| v.identity)
        };
        if let Some(identity) = lists(&self.devices_of(sender_user, token).await?) {
            return Ok(identity);
        }
        self.forget_device_lists(Some(&[sender_user.to_owned()]));
        lists(&self.devices_of(sender_user, token).await?).ok_or_else(|| {
            ClientError::new(
                "unverified_sender",
                "a message came from a device that its user's identity does not list; it was dropped",
            )
        })
    }

    /// Tells the page (and the UI) that a contact's identity changed.
    pub(super) fn identity_changed(&self, user_id: &str) {
        let detail = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&detail, &"userId".into(), &user_id.into());
        self.emit("identitychange", detail.into());
        self.render();
    }

    /// Tells the page (and the UI) that a contact has a new device.
    fn device_added(&self, user_id: &str, added: &[String]) {
        let detail = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&detail, &"userId".into(), &user_id.into());
        let list: js_sys::Array = added.iter().map(|d| JsValue::from_str(d)).collect();
        let _ = js_sys::Reflect::set(&detail, &"added".into(), &list);
        {
            let mut state = self.state.borrow_mut();
            if !state.new_devices.iter().any(|u| u == user_id) {
                state.new_devices.push(user_id.to_owned());
            }
        }
        self.emit("devicechange", detail.into());
        self.render();
    }

    /// `safetyNumber(userId)`: the number this user and `user_id` can compare.
    pub(super) async fn safety_number(self: &Rc<Self>, user_id: &str) -> ClientResult<JsValue> {
        if let Some(n) = self.forwarded("safetyNumber", &[user_id.into()]).await {
            return n;
        }
        let (token, _) = self.session()?;
        let user: User = self
            .api_get(&format!("/v1/users/{user_id}"), &token)
            .await?;
        let known = self.with_account(|a| Ok(a.known_identity(&user.id)))?;
        let identity = match known {
            Some(i) => i,
            None => {
                self.verified_devices(&user.id, &token)
                    .await?
                    .ok_or_else(|| {
                        ClientError::new("no_identity", "this user has not set up Sotto yet")
                    })?
                    .identity
            }
        };
        let (number, changed, verified) = self.with_account(|a| {
            Ok((
                a.safety_number(&user.id, &identity),
                a.identity_warnings().any(|u| u == user.id),
                a.is_verified(&user.id),
            ))
        })?;
        let out = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&out, &"userId".into(), &user.id.as_str().into());
        let _ = js_sys::Reflect::set(&out, &"number".into(), &number.as_str().into());
        let _ = js_sys::Reflect::set(&out, &"changed".into(), &changed.into());
        let _ = js_sys::Reflect::set(&out, &"verified".into(), &verified.into());
        Ok(out.into())
    }

    /// `markVerified(userId, number)`: the person compared the safety `number` with
    /// `user_id` and it matched. The identity is pinned as verified (a later change then
    /// blocks sending to them until verified again) and any warning about it is settled —
    /// unless the key changed since `number` was shown (`safety_number_changed`).
    pub(super) async fn mark_verified(
        self: &Rc<Self>,
        user_id: &str,
        number: &str,
    ) -> ClientResult<()> {
        let args = [user_id.into(), number.into()];
        if let Some(done) = self.forwarded("markVerified", &args).await {
            return done.map(drop);
        }
        self.with_account(|a| {
            a.mark_verified(user_id, number).map_err(|e| match e {
                sotto_core::CoreError::NoSession(_) => ClientError::new(
                    "no_identity",
                    "no key is known for this user yet: look at their safety number first",
                ),
                _ => ClientError::new(
                    "safety_number_changed",
                    "Their key changed while you compared the numbers: compare the new number.",
                ),
            })
        })?;
        self.save_account().await?;
        self.render();
        Ok(())
    }

    /// `acknowledgeIdentityChange(userId)`: the person saw that `user_id`'s key changed.
    /// The warning goes; a contact they had verified still waits for `markVerified`.
    pub(super) async fn acknowledge_identity_change(
        self: &Rc<Self>,
        user_id: &str,
    ) -> ClientResult<()> {
        let args = [user_id.into()];
        if let Some(done) = self.forwarded("acknowledgeIdentityChange", &args).await {
            return done.map(drop);
        }
        self.with_account(|a| {
            a.acknowledge_identity_change(user_id);
            Ok(())
        })?;
        self.save_account().await?;
        self.render();
        Ok(())
    }

    /// `keyBackupExport(passphrase)`: the identity, encrypted under the passphrase.
    pub(super) fn export_backup(&self, passphrase: &str) -> ClientResult<String> {
        self.with_account(|a| {
            Ok(sotto_core::backup::export(
                a.identity(),
                &a.user_id,
                passphrase,
                sotto_core::backup::MIN_ITERATIONS,
            )?)
        })
    }

    /// Forgets the device lists fetched for `users` (all of them when `None`).
    pub(super) fn forget_device_lists(&self, users: Option<&[String]>) {
        let mut state = self.state.borrow_mut();
        match users {
            Some(users) => {
                for u in users {
                    state.device_lists.remove(u);
                }
            }
            None => state.device_lists.clear(),
        }
    }

    pub(super) fn device_id(&self) -> ClientResult<String> {
        self.state
            .borrow()
            .device_id
            .clone()
            .ok_or_else(|| ClientError::new("not_signed_in", "this device is not ready yet"))
    }
}

impl Inner {
    /// The "Verify" dialog: the safety number with each other member of the open thread,
    /// and for each a button that verifies exactly the number shown (never several people
    /// at once), or dismisses the warning about a changed key.
    pub(super) async fn show_safety_numbers(self: &Rc<Self>) -> ClientResult<()> {
        let own = match self.viewing() {
            Some(_) => self.state.borrow().offline_user.clone(),
            None => Some(self.session()?.1),
        };
        let own = own.ok_or_else(|| ClientError::new("not_signed_in", "not signed in"))?;
        let thread_id = self
            .state
            .borrow()
            .open_thread
            .clone()
            .ok_or_else(|| ClientError::new("no_thread", "Open a thread first."))?;
        let members = self.thread(&thread_id)?.members;
        let mut lines: Vec<String> = vec![
            "Compare these numbers with each person, in person or on a call. If they match, no one can read along.".into(),
        ];
        // (action, label, user, number shown)
        let mut actions: Vec<(String, String, String, String)> = Vec::new();
        for m in members.iter().filter(|m| m.id != own.id) {
            let name = crate::model::display_name(m);
            match self.safety_number(&m.id).await {
                Ok(n) => {
                    let field = |k: &str| js_sys::Reflect::get(&n, &k.into()).ok();
                    let digits = field("number")
                        .and_then(|v| v.as_string())
                        .unwrap_or_default();
                    let verified = field("verified").is_some_and(|v| v.is_truthy());
                    let changed = field("changed").is_some_and(|v| v.is_truthy());
                    let mark = match (changed, verified) {
                        (true, _) => " (key changed)",
                        (false, true) => " (verified)",
                        (false, false) => "",
                    };
                    lines.push(format!("{name}{mark}: {digits}"));
                    if !verified {
                        let label = format!("{name}'s number matches");
                        actions.push((
                            format!("verify:{}", actions.len()),
                            label,
                            m.id.clone(),
                            digits,
                        ));
                    }
                    if changed {
                        let label = format!("Dismiss warning for {name}");
                        actions.push((
                            format!("dismiss:{}", actions.len()),
                            label,
                            m.id.clone(),
                            String::new(),
                        ));
                    }
                }
                Err(e) => lines.push(format!("{name}: {}", e.message)),
            }
        }
        if lines.len() == 1 {
            lines.push("There is nobody else in this thread.".into());
        }
        let mut buttons: Vec<(&str, &str)> = actions
            .iter()
            .map(|(action, label, _, _)| (action.as_str(), label.as_str()))
            .collect();
        buttons.push(("close", "Done"));
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let chosen = actions.clone();
        self.show_dialog(
            &DialogContent {
                title: "Safety numbers",
                lines: &refs,
                code: None,
                fields: &[],
                buttons: &buttons,
            },
            move |inner, action| {
                inner.with_ui(|ui| ui.dialog.hide());
                let Some((_, _, user, number)) = chosen.iter().find(|a| a.0 == action).cloned()
                else {
                    return;
                };
                let verify = action.starts_with("verify:");
                spawn_local(async move {
                    let done = if verify {
                        inner.mark_verified(&user, &number).await
                    } else {
                        inner.acknowledge_identity_change(&user).await
                    };
                    if let Err(e) = done {
                        inner.show_notice(Some(&e.message));
                    }
                });
            },
        );
        Ok(())
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

    fn show_backup_text(self: &Rc<Self>, text: &str) {
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
                buttons: &[("save", "Save as file"), ("done", "Done")],
            },
            move |inner, action| {
                if action == "save" {
                    let _ = super::attachments::save_file(
                        "sotto-key-backup.txt",
                        "text/plain",
                        saved.as_bytes(),
                    );
                } else {
                    inner.with_ui(|ui| ui.dialog.hide());
                }
            },
        );
        self.with_ui(|ui| ui.dialog.set_value("backup", text, true));
    }
}
