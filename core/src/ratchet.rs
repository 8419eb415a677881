//! The Double Ratchet (the Signal specification, with Sotto's labels): one pairwise session
//! between two devices, seeded by X3DH ([`crate::prekeys`]).
//!
//! ```text
//! KDF_RK(rk, dh)  = HKDF-SHA256(salt = rk, ikm = dh, info = "sotto/v2 ratchet") -> (rk', ck)
//! KDF_CK(ck)      = HKDF-Expand(prk = ck, info = "sotto/v2 chain", 64) -> mk || ck'
//! key, nonce      = HKDF-SHA256(salt = 0^32, ikm = mk, info = "sotto/v2 message") -> 32 + 12 bytes
//! header          = ratchet public key (32) || pn (u32 BE) || n (u32 BE)
//! aad             = X3DH AD || header || route (who sends to whom, as the server reports it)
//! ```
//!
//! Each message key encrypts one message and is then deleted, so no nonce repeats and a
//! replayed message finds no key ([`CoreError::Replay`]). Keys of skipped messages are kept
//! for late arrivals, at most [`MAX_SKIP`] per chain and [`MAX_SKIPPED_KEYS`] in all (the
//! oldest are dropped). Decryption works on a copy of the state and commits it only when the
//! message authenticates, so garbage cannot advance or break a session. The caller must store
//! the state after every encryption *before* the message leaves the device.

use crate::identity::IdentityPublic;
use crate::kdf::{chain_step, hkdf, open_with, random_secret, seal_with, Secret32};
use crate::prekeys::{Agreement, X3dhHeader};
use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

/// How far ahead of the last received message one message may be.
pub const MAX_SKIP: u32 = 1000;
/// How many skipped message keys a session keeps in all.
pub const MAX_SKIPPED_KEYS: usize = 2000;
pub const HEADER_LEN: usize = 40;

const INFO_ROOT: &[u8] = b"sotto/v2 ratchet";
const INFO_MESSAGE: &[u8] = b"sotto/v2 message";

#[derive(Clone, Serialize, Deserialize)]
struct SkippedKey {
    #[serde(with = "crate::b64::key")]
    dh: [u8; 32],
    n: u32,
    #[serde(with = "crate::b64::key")]
    mk: [u8; 32],
}

impl Drop for SkippedKey {
    fn drop(&mut self) {
        self.mk.zeroize();
    }
}

/// A message's ratchet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub dh: [u8; 32],
    pub pn: u32,
    pub n: u32,
}

impl Header {
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..32].copy_from_slice(&self.dh);
        b[32..36].copy_from_slice(&self.pn.to_be_bytes());
        b[36..].copy_from_slice(&self.n.to_be_bytes());
        b
    }

    pub fn parse(b: &[u8]) -> Result<Self, CoreError> {
        if b.len() < HEADER_LEN {
            return Err(CoreError::Malformed {
                what: "ratchet header",
                detail: "too short".into(),
            });
        }
        Ok(Header {
            dh: b[..32].try_into().expect("32"),
            pn: u32::from_be_bytes(b[32..36].try_into().expect("4")),
            n: u32::from_be_bytes(b[36..40].try_into().expect("4")),
        })
    }
}

/// One side of a pairwise session. Every secret in it is zeroized on drop.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(with = "crate::b64::key")]
    root: [u8; 32],
    /// Our current ratchet secret.
    #[serde(with = "crate::b64::key")]
    dhs: [u8; 32],
    #[serde(with = "crate::b64::key_option")]
    dhr: Option<[u8; 32]>,
    #[serde(with = "crate::b64::key_option")]
    ck_s: Option<[u8; 32]>,
    #[serde(with = "crate::b64::key_option")]
    ck_r: Option<[u8; 32]>,
    ns: u32,
    nr: u32,
    pn: u32,
    skipped: VecDeque<SkippedKey>,
    #[serde(with = "crate::b64")]
    ad: Vec<u8>,
    /// The peer's identity, as X3DH authenticated it.
    pub remote_identity: IdentityPublic,
    /// Until the peer answers, the initiator repeats its X3DH header on every message, so
    /// the first one to arrive can start the session.
    pub pending_x3dh: Option<X3dhHeader>,
    /// The X3DH ephemeral key this session began with, so a repeated header is recognized.
    #[serde(with = "crate::b64::key")]
    pub base_key: [u8; 32],
}

impl Drop for Session {
    fn drop(&mut self) {
        self.root.zeroize();
        self.dhs.zeroize();
        self.ck_s.zeroize();
        self.ck_r.zeroize();
    }
}

fn dh(secret: &[u8; 32], public: &[u8; 32]) -> Result<Secret32, CoreError> {
    let out = StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*public));
    if !out.was_contributory() {
        return Err(CoreError::InvalidKey("low-order ratchet key"));
    }
    Ok(Zeroizing::new(out.to_bytes()))
}

fn kdf_rk(root: &[u8; 32], dh_out: &[u8; 32]) -> Result<(Secret32, Secret32), CoreError> {
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf(root, dh_out, INFO_ROOT, &mut okm[..])?;
    Ok((
        Zeroizing::new(okm[..32].try_into().expect("32")),
        Zeroizing::new(okm[32..].try_into().expect("32")),
    ))
}

fn public_of(secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

impl Session {
    /// The initiator's session, from X3DH with the responder's signed prekey as its first
    /// ratchet key.
    pub fn initiate(
        agreement: Agreement,
        header: X3dhHeader,
        responder_signed_prekey: [u8; 32],
        remote_identity: IdentityPublic,
    ) -> Result<Self, CoreError> {
        let dhs = random_secret()?;
        let (root, ck_s) = kdf_rk(
            &agreement.shared_secret,
            &*dh(&dhs, &responder_signed_prekey)?,
        )?;
        let mut session = Session::fresh(
            *root,
            *dhs,
            agreement.associated_data,
            remote_identity,
            &header,
        );
        session.dhr = Some(responder_signed_prekey);
        session.ck_s = Some(*ck_s);
        session.pending_x3dh = Some(header);
        Ok(session)
    }

    /// The responder's session: its signed prekey is its first ratchet key.
    pub fn respond(
        agreement: Agreement,
        signed_prekey_secret: &[u8; 32],
        header: &X3dhHeader,
    ) -> Self {
        Session::fresh(
            *agreement.shared_secret,
            *signed_prekey_secret,
            agreement.associated_data,
            header.identity,
            header,
        )
    }

    /// A session before any chain: the initiator then adds its first sending chain.
    fn fresh(
        root: [u8; 32],
        dhs: [u8; 32],
        ad: Vec<u8>,
        remote_identity: IdentityPublic,
        header: &X3dhHeader,
    ) -> Self {
        Session {
            root,
            dhs,
            dhr: None,
            ck_s: None,
            ck_r: None,
            ns: 0,
            nr: 0,
            pn: 0,
            skipped: VecDeque::new(),
            ad,
            remote_identity,
            base_key: header.ephemeral,
            pending_x3dh: None,
        }
    }

    fn aad(&self, header: &Header, route: &[u8]) -> Vec<u8> {
        let mut aad = self.ad.clone();
        aad.extend_from_slice(&header.to_bytes());
        aad.extend_from_slice(route);
        aad
    }

    /// Encrypts one message: `header || ciphertext`. `route` is bound as associated data.
    pub fn encrypt(&mut self, plaintext: &[u8], route: &[u8]) -> Result<Vec<u8>, CoreError> {
        let ck = self
            .ck_s
            .ok_or(CoreError::NoSession("the peer has not answered yet"))?;
        let (mk, next) = chain_step(&ck);
        let header = Header {
            dh: public_of(&self.dhs),
            pn: self.pn,
            n: self.ns,
        };
        self.ck_s = Some(*next);
        self.ns = self.ns.checked_add(1).ok_or(CoreError::SequenceOverflow)?;
        let ct = seal_with(&mk, INFO_MESSAGE, &self.aad(&header, route), plaintext)?;
        let mut out = header.to_bytes().to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Whether this session can send now (a responder can only after the first message).
    pub fn can_send(&self) -> bool {
        self.ck_s.is_some()
    }

    /// Decrypts `header || ciphertext`. The state changes only if the message authenticates.
    pub fn decrypt(&mut self, message: &[u8], route: &[u8]) -> Result<Vec<u8>, CoreError> {
        let header = Header::parse(message)?;
        let ct = &message[HEADER_LEN..];
        let mut next = self.clone();
        let plaintext = next.decrypt_in_place(&header, ct, route)?;
        *self = next;
        Ok(plaintext)
    }

    fn decrypt_in_place(
        &mut self,
        header: &Header,
        ct: &[u8],
        route: &[u8],
    ) -> Result<Vec<u8>, CoreError> {
        let aad = self.aad(header, route);
        if let Some(i) = self
            .skipped
            .iter()
            .position(|k| k.dh == header.dh && k.n == header.n)
        {
            let key = self.skipped.remove(i).expect("found");
            return open_with(&key.mk, INFO_MESSAGE, &aad, ct);
        }
        if self.dhr == Some(header.dh) {
            if header.n < self.nr {
                return Err(CoreError::Replay);
            }
        } else {
            self.skip_until(header.pn)?;
            self.dh_ratchet(header)?;
        }
        self.skip_until(header.n)?;
        let ck = self
            .ck_r
            .ok_or(CoreError::NoSession("no receiving chain"))?;
        let (mk, next) = chain_step(&ck);
        self.ck_r = Some(*next);
        self.nr += 1;
        let plaintext = open_with(&mk, INFO_MESSAGE, &aad, ct)?;
        // The peer has our session: it no longer needs the X3DH header.
        self.pending_x3dh = None;
        Ok(plaintext)
    }

    fn skip_until(&mut self, until: u32) -> Result<(), CoreError> {
        let (Some(mut ck), Some(dhr)) = (self.ck_r, self.dhr) else {
            return Ok(());
        };
        if until > self.nr.saturating_add(MAX_SKIP) {
            return Err(CoreError::TooManySkipped);
        }
        while self.nr < until {
            let (mk, next) = chain_step(&ck);
            self.skipped.push_back(SkippedKey {
                dh: dhr,
                n: self.nr,
                mk: *mk,
            });
            ck = *next;
            self.nr += 1;
        }
        self.ck_r = Some(ck);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_front();
        }
        Ok(())
    }

    fn dh_ratchet(&mut self, header: &Header) -> Result<(), CoreError> {
        self.pn = self.ns;
        self.ns = 0;
        self.nr = 0;
        self.dhr = Some(header.dh);
        let (root, ck_r) = kdf_rk(&self.root, &*dh(&self.dhs, &header.dh)?)?;
        let dhs = random_secret()?;
        let (root, ck_s) = kdf_rk(&root, &*dh(&dhs, &header.dh)?)?;
        self.root = *root;
        self.dhs = *dhs;
        self.ck_r = Some(*ck_r);
        self.ck_s = Some(*ck_s);
        Ok(())
    }

    /// How many skipped keys are kept (for tests and diagnostics).
    pub fn skipped_keys(&self) -> usize {
        self.skipped.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::prekeys::{initiate, respond, sign_prekey, PreKeyBundle, PreKeySecret};

    /// A fresh pair of sessions: (alice → bob initiator, bob responder after A's first).
    pub(crate) fn pair() -> (Session, Session) {
        let alice = Identity::generate().unwrap();
        let bob = Identity::generate().unwrap();
        let spk = PreKeySecret::generate(1).unwrap();
        let bundle = PreKeyBundle {
            device_id: "b".into(),
            identity: bob.public(),
            signed_prekey: sign_prekey(&bob, &spk),
            one_time_prekey: None,
        };
        let (agreement, header) = initiate(&alice, &bundle).unwrap();
        let a = Session::initiate(agreement, header, spk.public().public, bob.public()).unwrap();
        let agreement_b = respond(&bob, &header, &spk, None).unwrap();
        let b = Session::respond(agreement_b, &spk.secret, &header);
        (a, b)
    }

    #[test]
    fn messages_flow_both_ways_with_ratchet_steps() {
        let (mut a, mut b) = pair();
        assert!(!b.can_send());
        for round in 0..5 {
            let m = a.encrypt(format!("a{round}").as_bytes(), b"r").unwrap();
            assert_eq!(b.decrypt(&m, b"r").unwrap(), format!("a{round}").as_bytes());
            let m = b.encrypt(format!("b{round}").as_bytes(), b"r").unwrap();
            assert_eq!(a.decrypt(&m, b"r").unwrap(), format!("b{round}").as_bytes());
        }
        assert!(a.pending_x3dh.is_none());
    }

    #[test]
    fn late_messages_open_once_and_replays_are_refused() {
        let (mut a, mut b) = pair();
        let m0 = a.encrypt(b"0", b"").unwrap();
        let m1 = a.encrypt(b"1", b"").unwrap();
        let m2 = a.encrypt(b"2", b"").unwrap();
        assert_eq!(b.decrypt(&m2, b"").unwrap(), b"2");
        assert_eq!(b.skipped_keys(), 2);
        assert_eq!(b.decrypt(&m0, b"").unwrap(), b"0");
        assert!(b.decrypt(&m0, b"").is_err());
        assert_eq!(b.decrypt(&m2, b"").unwrap_err(), CoreError::Replay);
        assert_eq!(b.decrypt(&m1, b"").unwrap(), b"1");
        assert_eq!(b.skipped_keys(), 0);
    }

    #[test]
    fn tampering_and_wrong_routes_fail_without_harming_the_session() {
        let (mut a, mut b) = pair();
        let m = a.encrypt(b"hello", b"route").unwrap();
        let mut bad = m.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(b.decrypt(&bad, b"route"), Err(CoreError::Decrypt));
        assert_eq!(b.decrypt(&m, b"other"), Err(CoreError::Decrypt));
        let mut forged_header = m.clone();
        forged_header[35] ^= 1; // pn
        assert!(b.decrypt(&forged_header, b"route").is_err());
        assert_eq!(b.decrypt(&m, b"route").unwrap(), b"hello");
    }

    #[test]
    fn skipping_is_bounded() {
        let (mut a, mut b) = pair();
        let first = a.encrypt(b"x", b"").unwrap();
        b.decrypt(&first, b"").unwrap();
        let mut last = Vec::new();
        for _ in 0..=MAX_SKIP + 1 {
            last = a.encrypt(b"x", b"").unwrap();
        }
        assert_eq!(
            b.decrypt(&last, b"").unwrap_err(),
            CoreError::TooManySkipped
        );
    }

    #[test]
    fn state_survives_serialization() {
        let (mut a, mut b) = pair();
        let m = a.encrypt(b"one", b"").unwrap();
        let mut b2: Session = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(b2.decrypt(&m, b"").unwrap(), b"one");
        assert_eq!(b.decrypt(&m, b"").unwrap(), b"one");
    }
}
