//! Opening one envelope: the receiving path as a pure state machine.
//!
//! The relay labels every envelope with a sender user and device; nothing it says is
//! believed. [`Account::open`] takes, besides the envelope, what the *client* verified: the
//! identity that signs the sender user's device list (the caller has checked that the list
//! names the sending device), and a view of the threads it knows ([`Threads`]). From these
//! alone it decides, and only when every check passes does anything change:
//!
//! 1. every part is decrypted on a *copy* of the session or sender key it needs;
//! 2. the pairwise session's identity (from X3DH, or the one an existing session was made
//!    with) must be the verified identity — a relay that sends an X3DH header under its own
//!    identity, or replays one under a device it relabels, is refused;
//! 3. a first message without a one-time prekey must not reuse a base key already seen with
//!    that signed prekey (a replay once the session it made is gone);
//! 4. the body's sender must be the route's; sender keys are taken only for threads the
//!    sender belongs to, and a body only for a thread the sender belongs to;
//! 5. then, and only then, the new session is installed, the one-time prekey deleted, the
//!    sender keys stored and the chains advanced — all together.
//!
//! A refused envelope leaves the account exactly as it was (the adversarial tests compare
//! the serialized account before and after every kind of forgery).

use crate::account::Account;
use crate::identity::IdentityPublic;
use crate::ratchet::Session;
use crate::sealing::{self, Kind, MessageBody, Pairwise, PartKind, Route};
use crate::sender_key::{self, GroupRoute, ReceivedSenderKey, SenderKeyDistribution};
use crate::CoreError;

/// One envelope as the relay delivered it, labels and all.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub payload: &'a [u8],
    pub sender_user: &'a str,
    pub sender_device: &'a str,
    /// Came live (`SendRequest::live`, never stored): it must carry a typing notice, or it is
    /// refused with nothing changed — so a stored message the relay passes off as live is
    /// not used up, and arrives whole when the relay delivers it as it should.
    pub live: bool,
}

/// Where a user stands with a thread, as this device knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A current member: may post, change the thread and hand out its keys.
    Member,
    /// The thread is known and the user is not in it (never was, or was removed).
    NotMember,
    /// A thread this device has not seen: the body will introduce it (the caller then checks
    /// that its distribution includes the sender).
    Unknown,
}

/// The client's threads, as [`Account::open`] needs to see them.
pub trait Threads {
    fn standing(&self, thread_id: &str, user_id: &str) -> Standing;
}

impl<F: Fn(&str, &str) -> Standing> Threads for F {
    fn standing(&self, thread_id: &str, user_id: &str) -> Standing {
        self(thread_id, user_id)
    }
}

/// What an opened envelope held.
#[derive(Debug)]
pub struct Opened {
    /// `None` when the envelope only carried keys.
    pub body: Option<MessageBody>,
    /// Whether this envelope started a new session with the sending device.
    pub new_session: bool,
}

/// Where the session that decrypted a pairwise part came from.
enum Placement {
    Current,
    Previous(usize),
    /// Made from this envelope's X3DH header.
    New {
        one_time_prekey: Option<u32>,
        signed_prekey: u32,
        base_key: [u8; 32],
    },
}

/// Everything an envelope would change, held back until every check has passed.
#[derive(Default)]
struct Staged {
    session: Option<(Session, Placement)>,
    sender_keys: Vec<SenderKeyDistribution>,
    /// The advanced sender key that read the group part.
    group_key: Option<(String, ReceivedSenderKey)>,
}

/// A body is taken only from a member of its thread (or for a thread not yet known).
fn check_member(threads: &dyn Threads, body: &MessageBody) -> Result<(), CoreError> {
    // Read marks reveal nothing and change nothing but the sender's own mark.
    if body.kind == Kind::Readmark {
        return Ok(());
    }
    match threads.standing(&body.thread_id, &body.sender_user) {
        Standing::NotMember => Err(CoreError::NotMember),
        Standing::Member | Standing::Unknown => Ok(()),
    }
}

impl Account {
    /// Opens one envelope. `sender_identity` is the identity that signs the device list of
    /// `inbound.sender_user`, which the caller verified names `inbound.sender_device`.
    /// On any error the account is unchanged.
    pub fn open(
        &mut self,
        inbound: &Inbound<'_>,
        own_device: &str,
        sender_identity: &IdentityPublic,
        threads: &dyn Threads,
    ) -> Result<Opened, CoreError> {
        let parts = sealing::decode_payload(inbound.payload)?;
        let mut staged = Staged::default();
        let mut body = None;
        for (kind, bytes) in parts {
            match kind {
                PartKind::PreKey | PartKind::Pairwise => {
                    if staged.session.is_some() {
                        return Err(CoreError::Malformed {
                            what: "envelope",
                            detail: "two pairwise parts".into(),
                        });
                    }
                    let route = Route {
                        sender_user: inbound.sender_user,
                        sender_device: inbound.sender_device,
                        recipient_device: own_device,
                    };
                    let (session, placement, plaintext) =
                        self.stage_pairwise(kind, bytes, &route)?;
                    if session.remote_identity != *sender_identity {
                        return Err(CoreError::Unverified(
                            "the session's identity is not the one that signs the sender's devices",
                        ));
                    }
                    staged.session = Some((session, placement));
                    let content: Pairwise =
                        serde_json::from_slice(&plaintext).map_err(|e| CoreError::Malformed {
                            what: "message",
                            detail: e.to_string(),
                        })?;
                    for d in &content.sender_keys {
                        if threads.standing(&d.thread_id, inbound.sender_user)
                            == Standing::NotMember
                        {
                            return Err(CoreError::NotMember);
                        }
                    }
                    staged.sender_keys = content.sender_keys;
                    if let Some(b) = content.body {
                        sealing::check_sender(&b, inbound.sender_user, inbound.sender_device)?;
                        sealing::check_body(&b)?;
                        body = Some(b);
                    }
                }
                PartKind::Group => {
                    if staged.group_key.is_some() {
                        return Err(CoreError::Malformed {
                            what: "envelope",
                            detail: "two group parts".into(),
                        });
                    }
                    // Sender keys come only over a verified session; a group part alone is
                    // believed only while that device's session is the verified identity's.
                    if staged.session.is_none()
                        && self
                            .sessions
                            .get(inbound.sender_device)
                            .is_none_or(|s| s.remote_identity != *sender_identity)
                    {
                        return Err(CoreError::Unverified(
                            "no verified session with the device that sent this group message",
                        ));
                    }
                    let (thread, key, b) = self.stage_group(bytes, inbound, &staged)?;
                    staged.group_key = Some((thread, key));
                    body = Some(b);
                }
            }
        }
        if let Some(b) = &body {
            check_member(threads, b)?;
        }
        if inbound.live && body.as_ref().is_none_or(|b| b.kind != Kind::Typing) {
            return Err(CoreError::Malformed {
                what: "envelope",
                detail: "a live envelope carries only a typing notice".into(),
            });
        }
        let new_session = matches!(staged.session, Some((_, Placement::New { .. })));
        self.commit(inbound.sender_device, staged);
        Ok(Opened { body, new_session })
    }

    /// Decrypts a pairwise part on a copy of the session it belongs to (or on a new one made
    /// from its X3DH header); nothing in the account changes.
    fn stage_pairwise(
        &self,
        kind: PartKind,
        bytes: &[u8],
        route: &Route<'_>,
    ) -> Result<(Session, Placement, zeroize::Zeroizing<Vec<u8>>), CoreError> {
        let mut aad = route.to_aad();
        let device = route.sender_device;
        let (message, header) = if kind == PartKind::PreKey {
            let header = crate::account::decode_x3dh(bytes)?;
            aad.extend_from_slice(&bytes[..crate::account::X3DH_HEADER_LEN]);
            (&bytes[crate::account::X3DH_HEADER_LEN..], Some(header))
        } else {
            (bytes, None)
        };
        let known = header.is_none_or(|h| self.knows_base_key(device, &h.ephemeral));
        if known {
            return self.decrypt_with_any(device, message, &aad);
        }
        let header = header.expect("a prekey message");
        if header.one_time_prekey_id.is_none()
            && self.base_key_seen(header.signed_prekey_id, &header.ephemeral)
        {
            return Err(CoreError::Replay);
        }
        let mut session = self.respond(&header)?;
        let plaintext = zeroize::Zeroizing::new(session.decrypt(message, &aad)?);
        let placement = Placement::New {
            one_time_prekey: header.one_time_prekey_id,
            signed_prekey: header.signed_prekey_id,
            base_key: header.ephemeral,
        };
        Ok((session, placement, plaintext))
    }

    /// Tries the current session, then the previous ones, each on a copy.
    fn decrypt_with_any(
        &self,
        device: &str,
        message: &[u8],
        aad: &[u8],
    ) -> Result<(Session, Placement, zeroize::Zeroizing<Vec<u8>>), CoreError> {
        let first = match self.sessions.get(device) {
            Some(s) => {
                let mut copy = s.clone();
                match copy.decrypt(message, aad) {
                    Ok(pt) => return Ok((copy, Placement::Current, zeroize::Zeroizing::new(pt))),
                    Err(e) => e,
                }
            }
            None => CoreError::NoSession("no session with this device"),
        };
        for (i, s) in self
            .previous_sessions
            .get(device)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut copy = s.clone();
            if let Ok(pt) = copy.decrypt(message, aad) {
                return Ok((copy, Placement::Previous(i), zeroize::Zeroizing::new(pt)));
            }
        }
        Err(first)
    }

    /// Decrypts a group part with a copy of the sender's key (one this very envelope hands
    /// over, or one stored before) and checks its body against the route.
    fn stage_group(
        &self,
        bytes: &[u8],
        inbound: &Inbound<'_>,
        staged: &Staged,
    ) -> Result<(String, ReceivedSenderKey, MessageBody), CoreError> {
        let key_id = sender_key::key_id_of(bytes)?;
        let fresh = staged
            .sender_keys
            .iter()
            .find(|d| d.key_id == key_id)
            .map(|d| (d.thread_id.clone(), ReceivedSenderKey::from_distribution(d)));
        let stored = self
            .received_sender_keys
            .get(inbound.sender_device)
            .and_then(|keys| keys.iter().find(|(_, k)| k.key_id == key_id))
            .cloned();
        // A copy of the key handed out again (it rides along until a message is accepted)
        // never takes the chain back: the stored one reads on unless the copy is ahead.
        let (thread, mut key) = match (fresh, stored) {
            (Some(f), Some(s)) if s.0 == f.0 && s.1.iteration() >= f.1.iteration() => s,
            (Some(f), _) => f,
            (None, Some(s)) => s,
            (None, None) => return Err(CoreError::NoSession("unknown sender key")),
        };
        let route = GroupRoute {
            thread_id: &thread,
            sender_user: inbound.sender_user,
            sender_device: inbound.sender_device,
        };
        let plaintext = zeroize::Zeroizing::new(key.decrypt(bytes, &route)?);
        let body = sealing::parse_body(&plaintext, inbound.sender_user, inbound.sender_device)?;
        if body.thread_id != thread {
            return Err(CoreError::Malformed {
                what: "message",
                detail: "group message for another thread".into(),
            });
        }
        Ok((thread, key, body))
    }

    /// Applies what an envelope that passed every check changes.
    fn commit(&mut self, device: &str, staged: Staged) {
        if let Some((session, placement)) = staged.session {
            match placement {
                Placement::Current => {
                    self.sessions.insert(device.to_owned(), session);
                }
                Placement::Previous(i) => {
                    if let Some(previous) = self.previous_sessions.get_mut(device) {
                        previous.remove(i);
                    }
                    // The peer is evidently using it: it becomes current again.
                    self.install_session(device, session);
                }
                Placement::New {
                    one_time_prekey,
                    signed_prekey,
                    base_key,
                } => {
                    match one_time_prekey {
                        Some(id) => self.one_time_prekeys.retain(|k| k.id != id),
                        None => self.note_base_key(signed_prekey, base_key),
                    }
                    self.install_session(device, session);
                }
            }
        }
        for d in &staged.sender_keys {
            self.store_sender_key(
                device,
                ReceivedSenderKey::from_distribution(d),
                &d.thread_id,
            );
        }
        if let Some((thread, key)) = staged.group_key {
            self.store_sender_key(device, key, &thread);
        }
    }
}
