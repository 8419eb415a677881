//! A device's whole cryptographic state and the two operations the client needs: turn a
//! message body into one envelope payload per recipient device, and open a payload.
//!
//! The [`Account`] holds the user's identity, this device's registration key, its signed
//! and one-time prekeys, a Double Ratchet session per remote device, its own sender key per
//! group thread, the sender keys it received, and the identities of other users as first
//! seen (to notice a change). It serializes to JSON for the client's encrypted store; the
//! client must store it after every [`Account::seal`] *before* the envelopes leave.
//!
//! Threads of two users (and a user's notes to their own devices) use pairwise sessions
//! only; larger threads use sender keys, handed out over the pairwise sessions.

use crate::identity::{DeviceList, Identity, IdentityPublic, SignedDeviceList};
use crate::keys::DeviceKeys;
use crate::prekeys::{self, PreKeyBundle, PreKeyPublic, PreKeySecret, SignedPreKey, X3dhHeader};
use crate::ratchet::Session;
use crate::sealing::{self, MessageBody, Pairwise, PartKind, Route};
use crate::sender_key::{self, GroupRoute, OwnSenderKey, ReceivedSenderKey};
use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A signed prekey is replaced after a week; the previous one is kept for messages in flight.
pub const SIGNED_PREKEY_MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// One-time prekeys uploaded at a time, and the most a device keeps.
pub const ONE_TIME_PREKEY_BATCH: usize = 100;
pub const MAX_ONE_TIME_PREKEYS: usize = 200;
/// Sender keys kept per sender device and thread (older ones are for messages in flight).
const RECEIVED_KEYS_PER_THREAD: usize = 3;
const X3DH_HEADER_LEN: usize = 105;
/// Replaced sessions kept per remote device.
const PREVIOUS_SESSIONS: usize = 3;

/// What [`Account::check_identity`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityCheck {
    /// Seen for the first time (now pinned).
    New,
    Same,
    /// The user's identity differs from the one pinned: show it; the new one is now pinned.
    Changed,
}

/// A device to send to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user_id: String,
    pub device_id: String,
}

/// What an opened envelope held.
#[derive(Debug)]
pub struct Opened {
    /// `None` when the envelope only carried keys.
    pub body: Option<MessageBody>,
    /// When this envelope started a new session: the identity that X3DH authenticated. The
    /// caller checks it against the identity that signs the sender's device list.
    pub new_session_identity: Option<IdentityPublic>,
}

#[derive(Serialize, Deserialize)]
pub struct Account {
    pub user_id: String,
    #[serde(with = "crate::identity::secret_serde")]
    identity: Identity,
    #[serde(with = "crate::b64::key")]
    device_key: [u8; 32],
    signed_prekey: PreKeySecret,
    signed_prekey_at: i64,
    #[serde(default)]
    previous_signed_prekey: Option<PreKeySecret>,
    #[serde(default)]
    one_time_prekeys: Vec<PreKeySecret>,
    next_prekey_id: u32,
    #[serde(default)]
    sessions: BTreeMap<String, Session>,
    /// Sessions a newer one replaced, newest first: when two devices start sessions with
    /// each other at once, messages keep arriving on both for a while.
    #[serde(default)]
    previous_sessions: BTreeMap<String, Vec<Session>>,
    #[serde(default)]
    own_sender_keys: BTreeMap<String, OwnSenderKey>,
    /// By sender device: (thread, key) pairs.
    #[serde(default)]
    received_sender_keys: BTreeMap<String, Vec<(String, ReceivedSenderKey)>>,
    #[serde(default)]
    known_identities: BTreeMap<String, IdentityPublic>,
    /// Each other user's devices as last seen, to notice a new one.
    #[serde(default)]
    known_devices: BTreeMap<String, Vec<String>>,
}

impl Drop for Account {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.device_key);
    }
}

fn pairwise_bytes(content: &Pairwise) -> Result<zeroize::Zeroizing<Vec<u8>>, CoreError> {
    serde_json::to_vec(content)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| CoreError::Malformed {
            what: "message",
            detail: e.to_string(),
        })
}

fn encode_x3dh(h: &X3dhHeader) -> Vec<u8> {
    let mut out = Vec::with_capacity(X3DH_HEADER_LEN);
    out.extend_from_slice(&h.identity.signing);
    out.extend_from_slice(&h.identity.agreement);
    out.extend_from_slice(&h.ephemeral);
    out.extend_from_slice(&h.signed_prekey_id.to_be_bytes());
    out.push(u8::from(h.one_time_prekey_id.is_some()));
    out.extend_from_slice(&h.one_time_prekey_id.unwrap_or(0).to_be_bytes());
    out
}

fn decode_x3dh(b: &[u8]) -> Result<X3dhHeader, CoreError> {
    if b.len() < X3DH_HEADER_LEN {
        return Err(CoreError::Malformed {
            what: "prekey message",
            detail: "too short".into(),
        });
    }
    let k = |r: std::ops::Range<usize>| -> [u8; 32] { b[r].try_into().expect("32") };
    Ok(X3dhHeader {
        identity: IdentityPublic {
            signing: k(0..32),
            agreement: k(32..64),
        },
        ephemeral: k(64..96),
        signed_prekey_id: u32::from_be_bytes(b[96..100].try_into().expect("4")),
        one_time_prekey_id: (b[100] == 1)
            .then(|| u32::from_be_bytes(b[101..105].try_into().expect("4"))),
    })
}

impl Account {
    /// A new account for a user's *first* device: a new identity.
    pub fn generate(user_id: &str, now_ms: i64) -> Result<Self, CoreError> {
        Self::with_identity(user_id, Identity::generate()?, now_ms)
    }

    /// A new device for an identity that the user already has (linking or backup).
    pub fn with_identity(
        user_id: &str,
        identity: Identity,
        now_ms: i64,
    ) -> Result<Self, CoreError> {
        let device = DeviceKeys::generate()?;
        Ok(Account {
            user_id: user_id.to_owned(),
            identity,
            device_key: *device.secret_bytes(),
            signed_prekey: PreKeySecret::generate(1)?,
            signed_prekey_at: now_ms,
            previous_signed_prekey: None,
            one_time_prekeys: Vec::new(),
            next_prekey_id: 2,
            sessions: BTreeMap::new(),
            previous_sessions: BTreeMap::new(),
            own_sender_keys: BTreeMap::new(),
            received_sender_keys: BTreeMap::new(),
            known_identities: BTreeMap::new(),
            known_devices: BTreeMap::new(),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn identity_public(&self) -> IdentityPublic {
        self.identity.public()
    }

    /// This device's registration key (the server knows the device by it).
    pub fn device_public_key(&self) -> [u8; 32] {
        DeviceKeys::from_secret_bytes(self.device_key).public_key()
    }

    pub fn signed_prekey(&self) -> SignedPreKey {
        prekeys::sign_prekey(&self.identity, &self.signed_prekey)
    }

    /// Makes a new signed prekey when the current one is older than a week.
    pub fn rotate_signed_prekey_if_due(
        &mut self,
        now_ms: i64,
    ) -> Result<Option<SignedPreKey>, CoreError> {
        if now_ms - self.signed_prekey_at < SIGNED_PREKEY_MAX_AGE_MS {
            return Ok(None);
        }
        let id = self.take_prekey_id();
        let fresh = PreKeySecret::generate(id)?;
        self.previous_signed_prekey = Some(std::mem::replace(&mut self.signed_prekey, fresh));
        self.signed_prekey_at = now_ms;
        Ok(Some(self.signed_prekey()))
    }

    fn take_prekey_id(&mut self) -> u32 {
        let id = self.next_prekey_id;
        self.next_prekey_id = self.next_prekey_id.wrapping_add(1).max(2);
        id
    }

    /// Makes `count` one-time prekeys and returns their public halves for the server.
    pub fn generate_one_time_prekeys(
        &mut self,
        count: usize,
    ) -> Result<Vec<PreKeyPublic>, CoreError> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.take_prekey_id();
            let k = PreKeySecret::generate(id)?;
            out.push(k.public());
            self.one_time_prekeys.push(k);
        }
        let excess = self
            .one_time_prekeys
            .len()
            .saturating_sub(MAX_ONE_TIME_PREKEYS);
        self.one_time_prekeys.drain(..excess);
        Ok(out)
    }

    /// The identity signs the user's device list.
    pub fn sign_device_list(&self, list: &DeviceList) -> SignedDeviceList {
        self.identity.sign_device_list(list)
    }

    /// Compares a user's identity with the one pinned for them, and pins it.
    pub fn check_identity(&mut self, user_id: &str, identity: &IdentityPublic) -> IdentityCheck {
        if user_id == self.user_id {
            return if *identity == self.identity.public() {
                IdentityCheck::Same
            } else {
                IdentityCheck::Changed
            };
        }
        match self.known_identities.insert(user_id.to_owned(), *identity) {
            None => IdentityCheck::New,
            Some(old) if old == *identity => IdentityCheck::Same,
            Some(old) => {
                // A new identity: sessions made with the old one are worthless now.
                self.sessions.retain(|_, s| s.remote_identity != old);
                IdentityCheck::Changed
            }
        }
    }

    /// Records `user_id`'s current devices; returns those that are new since last time (none
    /// the first time a user is seen, or for this user's own devices).
    pub fn note_devices(&mut self, user_id: &str, devices: &[String]) -> Vec<String> {
        if user_id == self.user_id {
            return Vec::new();
        }
        let added = match self.known_devices.get(user_id) {
            Some(old) => devices
                .iter()
                .filter(|d| !old.contains(d))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        self.known_devices
            .insert(user_id.to_owned(), devices.to_vec());
        added
    }

    /// The identity pinned for a user, if any.
    pub fn known_identity(&self, user_id: &str) -> Option<IdentityPublic> {
        if user_id == self.user_id {
            return Some(self.identity.public());
        }
        self.known_identities.get(user_id).copied()
    }

    /// The safety number between this user and `other`.
    pub fn safety_number(&self, other_user: &str, other: &IdentityPublic) -> String {
        crate::safety::safety_number(
            (&self.user_id, &self.identity.public()),
            (other_user, other),
        )
    }

    /// Whether a session with this device exists (else claim its prekey bundle first).
    pub fn has_session(&self, device_id: &str) -> bool {
        self.sessions.contains_key(device_id)
    }

    /// Starts a session from a claimed bundle; the bundle's identity must be `expected`.
    pub fn start_session(
        &mut self,
        bundle: &PreKeyBundle,
        expected: &IdentityPublic,
    ) -> Result<(), CoreError> {
        if bundle.identity != *expected {
            return Err(CoreError::BadSignature("bundle of another identity"));
        }
        let (agreement, header) = prekeys::initiate(&self.identity, bundle)?;
        let session = Session::initiate(
            agreement,
            header,
            bundle.signed_prekey.key.public,
            bundle.identity,
        )?;
        self.install_session(&bundle.device_id, session);
        Ok(())
    }

    /// Makes `session` the one used with `device_id`, keeping the one it replaces.
    fn install_session(&mut self, device_id: &str, session: Session) {
        if let Some(old) = self.sessions.insert(device_id.to_owned(), session) {
            let previous = self
                .previous_sessions
                .entry(device_id.to_owned())
                .or_default();
            previous.insert(0, old);
            previous.truncate(PREVIOUS_SESSIONS);
        }
    }

    /// Forgets sessions with devices that are no longer anyone's (a removed device).
    pub fn forget_device(&mut self, device_id: &str) {
        self.sessions.remove(device_id);
        self.previous_sessions.remove(device_id);
        self.received_sender_keys.remove(device_id);
        for key in self.own_sender_keys.values_mut() {
            key.distributed_to.retain(|d| d != device_id);
        }
    }

    /// Rotates this device's sender key for `thread_id`: the next group message uses a new
    /// key, given only to the members of that moment. Called when someone leaves or is removed.
    pub fn rotate_sender_key(&mut self, thread_id: &str) {
        self.own_sender_keys.remove(thread_id);
    }

    /// Encrypts serialized [`Pairwise`] content on the session with the route's device.
    fn seal_pairwise(
        &mut self,
        route: &Route<'_>,
        plaintext: &[u8],
    ) -> Result<(PartKind, Vec<u8>), CoreError> {
        let session = self
            .sessions
            .get_mut(route.recipient_device)
            .ok_or(CoreError::NoSession("no session with this device"))?;
        let message = session.encrypt(plaintext, &route.to_aad())?;
        Ok(match &session.pending_x3dh {
            Some(h) => {
                let mut bytes = encode_x3dh(h);
                bytes.extend_from_slice(&message);
                (PartKind::PreKey, bytes)
            }
            None => (PartKind::Pairwise, message),
        })
    }

    /// Encrypts `body` for every recipient device: pairwise for two-user threads, else once
    /// under this device's sender key (handing the key to devices that lack it). Every
    /// recipient needs a session ([`Account::has_session`]). Returns `(device, payload)`;
    /// after the server accepts a group send, call [`Account::mark_distributed`].
    pub fn seal(
        &mut self,
        body: &MessageBody,
        own_device: &str,
        recipients: &[Recipient],
        group: bool,
    ) -> Result<Vec<(String, Vec<u8>)>, CoreError> {
        let user_id = self.user_id.clone();
        let mut out = Vec::with_capacity(recipients.len());
        if !group {
            sealing::check_body(body)?;
            let plaintext = pairwise_bytes(&Pairwise {
                body: Some(body.clone()),
                sender_keys: Vec::new(),
            })?;
            for r in recipients {
                let route = Route {
                    sender_user: &user_id,
                    sender_device: own_device,
                    recipient_device: &r.device_id,
                };
                let (kind, part) = self.seal_pairwise(&route, &plaintext)?;
                out.push((
                    r.device_id.clone(),
                    sealing::encode_payload(&[(kind, &part)]),
                ));
            }
            return Ok(out);
        }
        let bytes = zeroize::Zeroizing::new(sealing::body_bytes(body)?);
        let thread = body.thread_id.clone();
        if !self.own_sender_keys.contains_key(&thread) {
            self.own_sender_keys
                .insert(thread.clone(), OwnSenderKey::generate()?);
        }
        let key = self.own_sender_keys.get_mut(&thread).expect("inserted");
        let distribution = key.distribution(&thread);
        let group_part = key.encrypt(
            &bytes,
            &GroupRoute {
                thread_id: &thread,
                sender_user: &user_id,
                sender_device: own_device,
            },
        )?;
        // The sender key, for the member devices that lack it: serialized once.
        let key_plaintext = pairwise_bytes(&Pairwise {
            body: None,
            sender_keys: vec![distribution],
        })?;
        let lacking: Vec<String> = recipients
            .iter()
            .filter(|r| !key.distributed_to.contains(&r.device_id))
            .map(|r| r.device_id.clone())
            .collect();
        for r in recipients {
            if lacking.contains(&r.device_id) {
                let route = Route {
                    sender_user: &user_id,
                    sender_device: own_device,
                    recipient_device: &r.device_id,
                };
                let (kind, part) = self.seal_pairwise(&route, &key_plaintext)?;
                out.push((
                    r.device_id.clone(),
                    sealing::encode_payload(&[(kind, &part), (PartKind::Group, &group_part)]),
                ));
            } else {
                out.push((
                    r.device_id.clone(),
                    sealing::encode_payload(&[(PartKind::Group, &group_part)]),
                ));
            }
        }
        Ok(out)
    }

    /// Records that `devices` now have this device's sender key for `thread_id` — call it
    /// once the server has accepted the envelopes that carried it, so a send that failed
    /// hands the key out again next time.
    pub fn mark_distributed(&mut self, thread_id: &str, devices: &[String]) {
        if let Some(key) = self.own_sender_keys.get_mut(thread_id) {
            for d in devices {
                if !key.distributed_to.contains(d) {
                    key.distributed_to.push(d.clone());
                }
            }
        }
    }

    /// Opens one envelope payload from `sender_user`'s device `sender_device`.
    pub fn open(
        &mut self,
        payload: &[u8],
        sender_user: &str,
        sender_device: &str,
        own_device: &str,
    ) -> Result<Opened, CoreError> {
        let parts = sealing::decode_payload(payload)?;
        let mut opened = Opened {
            body: None,
            new_session_identity: None,
        };
        for (kind, bytes) in parts {
            match kind {
                PartKind::PreKey | PartKind::Pairwise => {
                    let route = Route {
                        sender_user,
                        sender_device,
                        recipient_device: own_device,
                    };
                    let (content, fresh) = self.open_pairwise(kind, bytes, &route)?;
                    opened.new_session_identity = fresh;
                    for d in &content.sender_keys {
                        let keys = self
                            .received_sender_keys
                            .entry(sender_device.to_owned())
                            .or_default();
                        keys.retain(|(t, k)| !(t == &d.thread_id && k.key_id == d.key_id));
                        keys.push((d.thread_id.clone(), ReceivedSenderKey::from_distribution(d)));
                        let same_thread = keys.iter().filter(|(t, _)| t == &d.thread_id).count();
                        if same_thread > RECEIVED_KEYS_PER_THREAD {
                            if let Some(i) = keys.iter().position(|(t, _)| t == &d.thread_id) {
                                keys.remove(i);
                            }
                        }
                    }
                    if let Some(body) = content.body {
                        if body.sender_user != sender_user || body.sender_device != sender_device {
                            return Err(CoreError::Malformed {
                                what: "message",
                                detail: "sender does not match the envelope".into(),
                            });
                        }
                        opened.body = Some(body);
                    }
                }
                PartKind::Group => {
                    let key_id = sender_key::key_id_of(bytes)?;
                    let keys = self
                        .received_sender_keys
                        .get_mut(sender_device)
                        .ok_or(CoreError::NoSession("no sender key from this device"))?;
                    let (thread, key) = keys
                        .iter_mut()
                        .find(|(_, k)| k.key_id == key_id)
                        .ok_or(CoreError::NoSession("unknown sender key"))?;
                    let route = GroupRoute {
                        thread_id: thread,
                        sender_user,
                        sender_device,
                    };
                    let plaintext = zeroize::Zeroizing::new(key.decrypt(bytes, &route)?);
                    let body = sealing::parse_body(&plaintext, sender_user, sender_device)?;
                    if body.thread_id != *thread {
                        return Err(CoreError::Malformed {
                            what: "message",
                            detail: "group message for another thread".into(),
                        });
                    }
                    opened.body = Some(body);
                }
            }
        }
        Ok(opened)
    }

    fn open_pairwise(
        &mut self,
        kind: PartKind,
        bytes: &[u8],
        route: &Route<'_>,
    ) -> Result<(Pairwise, Option<IdentityPublic>), CoreError> {
        let aad = route.to_aad();
        let device = route.sender_device;
        let mut new_identity = None;
        let (message, header) = if kind == PartKind::PreKey {
            let header = decode_x3dh(bytes)?;
            (&bytes[X3DH_HEADER_LEN..], Some(header))
        } else {
            (bytes, None)
        };
        let known = header.is_none_or(|h| self.knows_base_key(device, &h.ephemeral));
        let plaintext = if known {
            self.decrypt_with_any(device, message, &aad)?
        } else {
            let header = header.expect("a prekey message");
            let (mut session, used_one_time) = self.respond(&header)?;
            new_identity = Some(session.remote_identity);
            let pt = session.decrypt(message, &aad)?;
            // Only now, with an authentic message, does the new session replace the old
            // one and the one-time prekey go for good.
            if let Some(id) = used_one_time {
                self.one_time_prekeys.retain(|k| k.id != id);
            }
            self.install_session(device, session);
            pt
        };
        let plaintext = zeroize::Zeroizing::new(plaintext);
        let content: Pairwise =
            serde_json::from_slice(&plaintext).map_err(|e| CoreError::Malformed {
                what: "message",
                detail: e.to_string(),
            })?;
        Ok((content, new_identity))
    }

    fn knows_base_key(&self, device: &str, base_key: &[u8; 32]) -> bool {
        self.sessions
            .get(device)
            .into_iter()
            .chain(self.previous_sessions.get(device).into_iter().flatten())
            .any(|s| s.base_key == *base_key)
    }

    /// Decrypts with the current session or, failing that, a previous one — which then
    /// becomes current, as the peer is evidently using it.
    fn decrypt_with_any(
        &mut self,
        device: &str,
        message: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CoreError> {
        let first = match self.sessions.get_mut(device) {
            Some(s) => match s.decrypt(message, aad) {
                Ok(pt) => return Ok(pt),
                Err(e) => e,
            },
            None => CoreError::NoSession("no session with this device"),
        };
        let previous = self.previous_sessions.entry(device.to_owned()).or_default();
        for i in 0..previous.len() {
            if let Ok(pt) = previous[i].decrypt(message, aad) {
                let session = previous.remove(i);
                self.install_session(device, session);
                return Ok(pt);
            }
        }
        Err(first)
    }

    /// Whether opening `payload` from `sender_device` would start a new session (so the
    /// caller can first check that the device is one its user's identity lists).
    pub fn starts_session(&self, payload: &[u8], sender_device: &str) -> bool {
        let Ok(parts) = sealing::decode_payload(payload) else {
            return false;
        };
        parts.iter().any(|(kind, bytes)| {
            *kind == PartKind::PreKey
                && decode_x3dh(bytes).is_ok_and(|h| {
                    self.sessions
                        .get(sender_device)
                        .is_none_or(|s| s.base_key != h.ephemeral)
                })
        })
    }

    /// Forgets the session that a rejected first message just made (the one it replaced,
    /// if any, is current again).
    pub fn drop_session(&mut self, device_id: &str) {
        self.sessions.remove(device_id);
        if let Some(previous) = self.previous_sessions.get_mut(device_id) {
            if !previous.is_empty() {
                let s = previous.remove(0);
                self.sessions.insert(device_id.to_owned(), s);
            }
        }
    }

    fn respond(&self, header: &X3dhHeader) -> Result<(Session, Option<u32>), CoreError> {
        let spk = [
            Some(&self.signed_prekey),
            self.previous_signed_prekey.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find(|k| k.id == header.signed_prekey_id)
        .ok_or(CoreError::NoSession("unknown signed prekey"))?;
        let opk = match header.one_time_prekey_id {
            Some(id) => Some(
                self.one_time_prekeys
                    .iter()
                    .find(|k| k.id == id)
                    .ok_or(CoreError::NoSession("one-time prekey already used"))?,
            ),
            None => None,
        };
        let agreement = prekeys::respond(&self.identity, header, spk, opk)?;
        Ok((
            Session::respond(agreement, &spk.secret, header),
            header.one_time_prekey_id,
        ))
    }
}
