//! A device's whole cryptographic state and the two operations the client needs: turn a
//! message body into one envelope payload per recipient device, and open a payload.
//!
//! The [`Account`] holds the user's identity, this device's registration key, its signed
//! and one-time prekeys, a Double Ratchet session per remote device, its own sender key per
//! group thread, the sender keys it received, and the identities of other users as first
//! seen (to notice a change). The client's encrypted store keeps it as a binary record
//! ([`Account::to_record`]); the client must store it after every [`Account::seal`]
//! *before* the envelopes leave.
//!
//! Threads of two users (and a user's notes to their own devices) use pairwise sessions
//! only; larger threads use sender keys, handed out over the pairwise sessions.

use crate::identity::{DeviceList, Identity, IdentityPublic, SignedDeviceList};
use crate::keys::DeviceKeys;
use crate::prekeys::{self, PreKeyBundle, PreKeyPublic, PreKeySecret, SignedPreKey, X3dhHeader};
use crate::ratchet::Session;
use crate::sealing::{self, MessageBody, Pairwise, PartKind, Route};
use crate::sender_key::{GroupRoute, OwnSenderKey, ReceivedSenderKey};
use crate::vec_map::VecMap;
use crate::CoreError;
use serde::{Deserialize, Serialize};

/// A signed prekey is replaced after a week; the previous one is kept for messages in flight.
pub const SIGNED_PREKEY_MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// One-time prekeys uploaded at a time; the server holds at most 200 per device.
pub const ONE_TIME_PREKEY_BATCH: usize = 100;
/// One-time prekey secrets a device keeps. A secret goes when its prekey is used; the server
/// holds at most 200 and hands out the oldest first, so it only ever holds the newest 200.
/// Any secret beyond the newest 1,000 was handed out at least 800 claims ago and never
/// used (a claimer that never wrote): only those are dropped, oldest first.
pub const MAX_ONE_TIME_PREKEYS: usize = 1_000;
/// Sender keys kept per sender device and thread (older ones are for messages in flight).
const RECEIVED_KEYS_PER_THREAD: usize = 3;
pub(crate) const X3DH_HEADER_LEN: usize = 105;
/// First-message base keys remembered per signed prekey (for messages without a one-time
/// prekey, which could otherwise be replayed once their session is gone).
const MAX_SEEN_BASE_KEYS: usize = 2000;
/// Replaced sessions kept per remote device.
const PREVIOUS_SESSIONS: usize = 3;

/// A device to send to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user_id: String,
    pub device_id: String,
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
    pub(crate) one_time_prekeys: Vec<PreKeySecret>,
    next_prekey_id: u32,
    #[serde(default)]
    pub(crate) sessions: VecMap<String, Session>,
    /// Sessions a newer one replaced, newest first: when two devices start sessions with
    /// each other at once, messages keep arriving on both for a while.
    #[serde(default)]
    pub(crate) previous_sessions: VecMap<String, Vec<Session>>,
    #[serde(default)]
    pub(crate) own_sender_keys: VecMap<String, OwnSenderKey>,
    /// By sender device: (thread, key) pairs.
    #[serde(default)]
    pub(crate) received_sender_keys: VecMap<String, Vec<(String, ReceivedSenderKey)>>,
    #[serde(default)]
    pub(crate) known_identities: VecMap<String, IdentityPublic>,
    /// Each user's devices as last seen (this user's too), to notice a new or removed one.
    #[serde(default)]
    pub(crate) known_devices: VecMap<String, Vec<String>>,
    /// The highest device-list version seen per user: an older list is a replay.
    #[serde(default)]
    pub(crate) device_list_versions: VecMap<String, i64>,
    /// Users whose identity changed and the person has not yet acknowledged it.
    #[serde(default)]
    /// Kept sorted and without repeats; stored as the set it once was.
    pub(crate) identity_warnings: Vec<String>,
    /// Identities the person verified by comparing safety numbers.
    #[serde(default)]
    pub(crate) verified_identities: VecMap<String, IdentityPublic>,
    /// By signed prekey ID: base keys of first messages that used no one-time prekey.
    #[serde(default)]
    seen_base_keys: VecMap<u32, Vec<String>>,
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

pub(crate) fn decode_x3dh(b: &[u8]) -> Result<X3dhHeader, CoreError> {
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

/// The first byte of [`Account::to_record`]'s bytes: the version of the stored format.
const RECORD_FORMAT: u8 = 2;

impl Account {
    /// The account as this device stores it: a version byte, then every field in postcard's
    /// compact binary encoding (the wasm carries far less code for it than for JSON).
    pub fn to_record(&self) -> zeroize::Zeroizing<Vec<u8>> {
        // Room for a typical account at once, so that growing leaves few copies behind.
        let mut out = Vec::with_capacity(64 * 1024);
        out.push(RECORD_FORMAT);
        // Writing into a Vec fails only when memory does.
        postcard::to_extend(self, out)
            .map(zeroize::Zeroizing::new)
            .expect("an account serializes")
    }

    /// Reads what [`Account::to_record`] wrote.
    pub fn from_record(bytes: &[u8]) -> Result<Account, CoreError> {
        let malformed = |detail: &str| CoreError::Malformed {
            what: "stored account",
            detail: detail.into(),
        };
        match bytes.split_first() {
            Some((&RECORD_FORMAT, rest)) => match postcard::take_from_bytes(rest) {
                Ok((account, [])) => Ok(account),
                Ok(_) => Err(malformed("bytes after the account")),
                // Not postcard's own words: its messages would cost the wasm 0.8 KB of text.
                Err(_) => Err(malformed("its fields do not read")),
            },
            Some(_) => Err(malformed("an unknown format")),
            None => Err(malformed("empty")),
        }
    }

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
            sessions: VecMap::default(),
            previous_sessions: VecMap::default(),
            own_sender_keys: VecMap::default(),
            received_sender_keys: VecMap::default(),
            known_identities: VecMap::default(),
            known_devices: VecMap::default(),
            device_list_versions: VecMap::default(),
            identity_warnings: Default::default(),
            verified_identities: VecMap::default(),
            seen_base_keys: VecMap::default(),
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
        // Base keys seen with a signed prekey that is gone can never come again usefully.
        let kept = [
            Some(self.signed_prekey.id),
            self.previous_signed_prekey.as_ref().map(|k| k.id),
        ];
        self.seen_base_keys
            .retain(|id, _| kept.contains(&Some(*id)));
        Ok(Some(self.signed_prekey()))
    }

    fn take_prekey_id(&mut self) -> u32 {
        let id = self.next_prekey_id;
        self.next_prekey_id = self.next_prekey_id.wrapping_add(1).max(2);
        id
    }

    /// Makes `count` one-time prekeys and returns their public halves for the server. No
    /// secret the server may still hand out is dropped (see [`MAX_ONE_TIME_PREKEYS`]).
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
    pub(crate) fn install_session(&mut self, device_id: &str, session: Session) {
        if let Some(old) = self.sessions.insert(device_id.to_owned(), session) {
            self.keep_previous(device_id, old);
        }
    }

    /// Keeps a replaced session (newest first, a few at most) for messages still in flight.
    fn keep_previous(&mut self, device_id: &str, old: Session) {
        let previous = self
            .previous_sessions
            .entry_or_default(device_id.to_owned());
        previous.insert(0, old);
        previous.truncate(PREVIOUS_SESSIONS);
    }

    /// Forgets sessions with devices that are no longer anyone's (a removed device).
    /// The device keeps the sender keys it was given, so every one of them is retired: the
    /// next group message of each thread goes under a new key it never sees.
    pub fn forget_device(&mut self, device_id: &str) {
        self.sessions.remove(device_id);
        self.previous_sessions.remove(device_id);
        self.received_sender_keys.remove(device_id);
        self.own_sender_keys
            .retain(|_, key| !key.distributed_to.iter().any(|d| d == device_id));
    }

    /// The device could not open what this device sent it (a retry request): start over
    /// with it, as Signal's retry receipts do. The current session is set aside (kept with
    /// the previous ones, for what the device still sends on it), so the next send claims a
    /// fresh bundle; and the device counts as lacking this device's sender keys, so the
    /// next group message hands them to it again.
    pub fn restart_session(&mut self, device_id: &str) {
        if let Some(old) = self.sessions.remove(device_id) {
            self.keep_previous(device_id, old);
        }
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
        let mut aad = route.to_aad();
        // A repeated X3DH header is bound to the message too: not one bit of it can change.
        let header = session.pending_x3dh.as_ref().map(encode_x3dh);
        if let Some(h) = &header {
            aad.extend_from_slice(h);
        }
        let message = session.encrypt(plaintext, &aad)?;
        Ok(match header {
            Some(mut bytes) => {
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

    /// Whether a session with `device` (current or previous) began with this X3DH base key.
    pub(crate) fn knows_base_key(&self, device: &str, base_key: &[u8; 32]) -> bool {
        self.sessions
            .get(device)
            .into_iter()
            .chain(self.previous_sessions.get(device).into_iter().flatten())
            .any(|s| s.base_key == *base_key)
    }

    /// Whether a first message without a one-time prekey already used this base key with
    /// this signed prekey (a replay, once the session it made is gone).
    pub(crate) fn base_key_seen(&self, signed_prekey: u32, base_key: &[u8; 32]) -> bool {
        let key = crate::b64::encode(base_key);
        self.seen_base_keys
            .get(&signed_prekey)
            .is_some_and(|keys| keys.contains(&key))
    }

    pub(crate) fn note_base_key(&mut self, signed_prekey: u32, base_key: [u8; 32]) {
        let keys = self.seen_base_keys.entry_or_default(signed_prekey);
        keys.push(crate::b64::encode(&base_key));
        let excess = keys.len().saturating_sub(MAX_SEEN_BASE_KEYS);
        keys.drain(..excess);
    }

    /// Keeps a sender key received from `device` for `thread`, replacing one of the same ID
    /// and keeping at most a few per thread.
    pub(crate) fn store_sender_key(&mut self, device: &str, key: ReceivedSenderKey, thread: &str) {
        let keys = self
            .received_sender_keys
            .entry_or_default(device.to_owned());
        // An older copy of a key this device holds further along changes nothing.
        if keys
            .iter()
            .any(|(t, k)| t == thread && k.key_id == key.key_id && k.iteration() >= key.iteration())
        {
            return;
        }
        keys.retain(|(t, k)| !(t == thread && k.key_id == key.key_id));
        keys.push((thread.to_owned(), key));
        let same_thread = keys.iter().filter(|(t, _)| t == thread).count();
        if same_thread > RECEIVED_KEYS_PER_THREAD {
            if let Some(i) = keys.iter().position(|(t, _)| t == thread) {
                keys.remove(i);
            }
        }
    }

    /// The responder's side of X3DH for a first message's header (nothing is changed).
    pub(crate) fn respond(&self, header: &X3dhHeader) -> Result<Session, CoreError> {
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
        Ok(Session::respond(agreement, &spk.secret, header))
    }
}
