//! This device's keys (the cryptography itself is `sotto_core::account`): the account,
//! stored encrypted after every change, and what the server publishes of it: the signed
//! device list, the signed prekey and one-time prekeys, topped up one batch at a time.

use super::Inner;
use crate::error::{ClientError, ClientResult};
use crate::keystore;
use crate::util::now_millis;
use sotto_core::account::{Account, ONE_TIME_PREKEY_BATCH};

use sotto_core::identity::DeviceList;
use sotto_core::protocol::{PublishIdentity, Session, UploadPrekeys};
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

/// One-time prekeys the server holds per device at most (its `MAX_ONE_TIME_PREKEYS`).
const SERVER_PREKEY_CAPACITY: usize = 200;

impl Inner {
    /// Runs `f` on the account (there is one whenever a device is loaded).
    pub(super) fn with_account<R>(
        &self,
        f: impl FnOnce(&mut Account) -> ClientResult<R>,
    ) -> ClientResult<R> {
        let mut state = self.state.borrow_mut();
        let account = state.account.as_mut().ok_or_else(not_ready)?;
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
            // Signed out (or destroyed) while this save waited: the ratchets advanced in
            // memory are gone, so nothing sealed with them may be sent.
            None => Err(ClientError::new(
                "not_signed_in",
                "the client signed out before its keys were saved",
            )),
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
            self.post_prekeys(&session.token, device_id, &upload)
                .await?;
        }
        let own = self.with_account(|a| Ok(a.identity_public()))?;
        for _ in 0..3 {
            let keys = self.get_user_keys(&session.token, &session.user.id).await?;
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
            let published = self
                .put_identity(
                    &session.token,
                    &PublishIdentity {
                        identity: own,
                        device_list: signed,
                    },
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

    pub(super) async fn upload_prekeys(self: &Rc<Self>, remaining: u32) -> ClientResult<()> {
        let (token, _) = self.session()?;
        let device_id = self.device_id()?;
        let room = SERVER_PREKEY_CAPACITY.saturating_sub(remaining as usize);
        let count = ONE_TIME_PREKEY_BATCH.min(room);
        if count == 0 {
            return Ok(());
        }
        let keys = self.with_account(|a| Ok(a.generate_one_time_prekeys(count)?))?;
        self.save_account().await?;
        let upload = UploadPrekeys {
            signed_prekey: None,
            one_time_prekeys: keys,
        };
        self.post_prekeys(&token, &device_id, &upload).await?;
        Ok(())
    }

    pub(super) fn device_id(&self) -> ClientResult<String> {
        self.state
            .borrow()
            .device_id
            .clone()
            .ok_or_else(|| ClientError::new("not_signed_in", "this device is not ready yet"))
    }
}

/// [`Inner::with_account`]'s error, out of line: it has a copy per caller.
#[inline(never)]
fn not_ready() -> ClientError {
    ClientError::new("not_signed_in", "this device is not ready yet")
}
