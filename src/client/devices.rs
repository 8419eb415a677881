//! Other people's devices: the devices a message must reach, as each user's identity
//! vouches for them in a signed device list, and the check that a message comes from such
//! a device. Lists are kept until a send is refused or the server says a list changed.

use super::Inner;
use crate::error::{ClientError, ClientResult};
use sotto_core::account::Recipient;

use sotto_core::identity::IdentityPublic;
use sotto_core::prekeys::PreKeyBundle;
use sotto_core::protocol::{ClaimBundles, User, UserKeys};
use sotto_core::trust::IdentityCheck;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// How many members a thread's header looks up when it opens: enough for every
/// conversation between people; a large group's header names no one anyway.
const CHECKED_MEMBERS: usize = 20;

/// A user's devices as their identity vouches for them.
#[derive(Clone)]
pub(super) struct VerifiedDevices {
    pub identity: IdentityPublic,
    pub devices: Vec<String>,
}

impl Inner {
    /// A user's devices, verified by the core's trust rules (`Account::accept_keys`): the
    /// list must be signed by their identity and no older than one seen before; a changed
    /// identity is reported (`identitychange`) and stays flagged until acknowledged.
    pub(super) async fn verified_devices(
        self: &Rc<Self>,
        user_id: &str,
        token: &str,
    ) -> ClientResult<Option<VerifiedDevices>> {
        let keys: UserKeys = self.get_user_keys(token, user_id).await?;
        self.note_reachability(&keys);
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
    /// server says they changed, or a send is refused with `devices_changed`). A user who
    /// has not joined yet is asked about again each time: no notice comes when they do.
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
        if v.is_some() {
            self.state
                .borrow_mut()
                .device_lists
                .insert(user_id.to_owned(), v.clone());
        }
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
                .claim_bundles(token, &ClaimBundles { devices: missing })
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

    /// Remembers whether anything can reach this user now (the thread header says so).
    fn note_reachability(&self, keys: &UserKeys) {
        let why = if keys.disabled {
            Some("disabled")
        } else if keys.identity.is_none() {
            // Never set up a browser. (Someone signed out everywhere has an identity: what
            // is sent waits for them, so the header says nothing.)
            Some("not_joined")
        } else {
            None
        };
        let mut state = self.state.borrow_mut();
        let list = &mut state.unreachable;
        let at = list.iter().position(|(u, _)| *u == keys.user_id);
        let before = at.map(|i| list.remove(i).1);
        if let Some(why) = why {
            list.push((keys.user_id.clone(), why));
        }
        if before != why {
            drop(state);
            self.render();
        }
    }

    /// Looks up the other members of `thread_id` (at most [`CHECKED_MEMBERS`]) again, so
    /// its header says who has not joined yet or was disabled, and their device lists are
    /// fresh for the next send.
    pub(super) async fn check_members(self: &Rc<Self>, thread_id: &str) -> ClientResult<()> {
        let (token, own) = self.session()?;
        let members = self.thread(thread_id)?.members;
        for m in members
            .iter()
            .filter(|m| m.id != own.id)
            .take(CHECKED_MEMBERS)
        {
            if let Some(v) = self.verified_devices(&m.id, &token).await? {
                self.state
                    .borrow_mut()
                    .device_lists
                    .insert(m.id.clone(), Some(v));
            }
        }
        Ok(())
    }

    /// Tells the page (and the UI) that a contact has a new device.
    pub(super) fn device_added(&self, user_id: &str, added: &[String]) {
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

    /// Forgets the device lists fetched for `users` (all of them when `None`).
    pub(super) fn forget_device_lists(&self, users: Option<&[String]>) {
        let mut state = self.state.borrow_mut();
        match users {
            Some(users) => {
                for u in users {
                    state.device_lists.remove(u);
                }
            }
            None => state.device_lists = Default::default(),
        }
    }
}
