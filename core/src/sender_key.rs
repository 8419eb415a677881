//! Sender keys for group threads: each member's device keeps, per thread, a chain key and an
//! Ed25519 signing key. It hands both (the signing key's public half) to every other member
//! device over the pairwise sessions as a [`SenderKeyDistribution`]; then every group
//! message is encrypted once, signed, and the same bytes go to every device.
//!
//! ```text
//! mk_i, ck_{i+1} = KDF_CK(ck_i)                       (as in crate::ratchet)
//! key, nonce     = HKDF-SHA256(0^32, mk_i, "sotto/v2 group message")
//! message        = key_id (u32 BE) || i (u32 BE) || ciphertext || signature (64)
//! aad            = "sotto/v2 group" || lp(thread) || lp(sender user) || lp(sender device) || key_id || i
//! signature      = Ed25519(signing key, "sotto/v2 group signature" || aad || ciphertext)
//! ```
//!
//! Members can derive each other's message keys only forwards, so a newcomer cannot read
//! the past; when a member leaves or is removed, everyone discards their own sender key for
//! the thread and distributes a fresh one to the remaining members only, so the removed
//! member cannot read what follows. A receiver keeps at most [`MAX_SKIP`] skipped keys.

use crate::kdf::{chain_step, open_with, push_lp, random_secret, seal_with};
use crate::CoreError;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

pub const MAX_SKIP: u32 = 1000;
const INFO: &[u8] = b"sotto/v2 group message";
const SIG_LABEL: &[u8] = b"sotto/v2 group signature";
const PREFIX: usize = 8;
const SIG_LEN: usize = 64;

/// Who a group message is from and for, as bound into its associated data.
#[derive(Debug, Clone, Copy)]
pub struct GroupRoute<'a> {
    pub thread_id: &'a str,
    pub sender_user: &'a str,
    pub sender_device: &'a str,
}

fn aad(route: &GroupRoute<'_>, key_id: u32, iteration: u32) -> Vec<u8> {
    let mut out = b"sotto/v2 group".to_vec();
    push_lp(&mut out, route.thread_id.as_bytes());
    push_lp(&mut out, route.sender_user.as_bytes());
    push_lp(&mut out, route.sender_device.as_bytes());
    out.extend_from_slice(&key_id.to_be_bytes());
    out.extend_from_slice(&iteration.to_be_bytes());
    out
}

/// This device's own sender key for one thread.
#[derive(Clone, Serialize, Deserialize)]
pub struct OwnSenderKey {
    pub key_id: u32,
    iteration: u32,
    #[serde(with = "crate::b64::key")]
    chain: [u8; 32],
    #[serde(with = "crate::b64::key")]
    signing: [u8; 32],
    /// The member devices that already have this key (the rest get a distribution).
    #[serde(default)]
    pub distributed_to: Vec<String>,
}

impl Drop for OwnSenderKey {
    fn drop(&mut self) {
        self.chain.zeroize();
        self.signing.zeroize();
    }
}

/// What a member device needs to read one sender's messages in one thread, sent pairwise.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderKeyDistribution {
    pub thread_id: String,
    pub key_id: u32,
    pub iteration: u32,
    #[serde(with = "crate::b64::key")]
    pub chain: [u8; 32],
    #[serde(with = "crate::b64::key")]
    pub signing_public: [u8; 32],
}

impl Drop for SenderKeyDistribution {
    fn drop(&mut self) {
        self.chain.zeroize();
    }
}

impl std::fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SenderKeyDistribution({}, {})",
            self.thread_id, self.key_id
        )
    }
}

impl OwnSenderKey {
    pub fn generate() -> Result<Self, CoreError> {
        let mut id = [0u8; 4];
        crate::error::random_bytes(&mut id)?;
        Ok(OwnSenderKey {
            key_id: u32::from_be_bytes(id),
            iteration: 0,
            chain: *random_secret()?,
            signing: *random_secret()?,
            distributed_to: Vec::new(),
        })
    }

    /// The distribution for other members: the chain as it is *now*, so they read from here on.
    pub fn distribution(&self, thread_id: &str) -> SenderKeyDistribution {
        SenderKeyDistribution {
            thread_id: thread_id.to_owned(),
            key_id: self.key_id,
            iteration: self.iteration,
            chain: self.chain,
            signing_public: SigningKey::from_bytes(&self.signing)
                .verifying_key()
                .to_bytes(),
        }
    }

    /// Encrypts once for every member; the caller stores the advanced key before sending.
    pub fn encrypt(
        &mut self,
        plaintext: &[u8],
        route: &GroupRoute<'_>,
    ) -> Result<Vec<u8>, CoreError> {
        let (mk, next) = chain_step(&self.chain);
        let i = self.iteration;
        self.chain = *next;
        self.iteration = i.checked_add(1).ok_or(CoreError::SequenceOverflow)?;
        let aad = aad(route, self.key_id, i);
        let ct = seal_with(&mk, INFO, &aad, plaintext)?;
        let mut signed = SIG_LABEL.to_vec();
        signed.extend_from_slice(&aad);
        signed.extend_from_slice(&ct);
        let sig = SigningKey::from_bytes(&self.signing).sign(&signed);
        let mut out = Vec::with_capacity(PREFIX + ct.len() + SIG_LEN);
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&i.to_be_bytes());
        out.extend_from_slice(&ct);
        out.extend_from_slice(&sig.to_bytes());
        Ok(out)
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct Skipped {
    iteration: u32,
    #[serde(with = "crate::b64::key")]
    mk: [u8; 32],
}

impl Drop for Skipped {
    fn drop(&mut self) {
        self.mk.zeroize();
    }
}

/// Another member device's sender key for one thread, as received.
#[derive(Clone, Serialize, Deserialize)]
pub struct ReceivedSenderKey {
    pub key_id: u32,
    iteration: u32,
    #[serde(with = "crate::b64::key")]
    chain: [u8; 32],
    #[serde(with = "crate::b64::key")]
    signing_public: [u8; 32],
    skipped: Vec<Skipped>,
}

impl Drop for ReceivedSenderKey {
    fn drop(&mut self) {
        self.chain.zeroize();
    }
}

/// The key ID a group message was made with, to find the receiver's state for it.
pub fn key_id_of(message: &[u8]) -> Result<u32, CoreError> {
    if message.len() < PREFIX + 16 + SIG_LEN {
        return Err(CoreError::Malformed {
            what: "group message",
            detail: "too short".into(),
        });
    }
    Ok(u32::from_be_bytes(message[..4].try_into().expect("4")))
}

impl ReceivedSenderKey {
    /// The next message number this copy of the key can read.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    pub fn from_distribution(d: &SenderKeyDistribution) -> Self {
        ReceivedSenderKey {
            key_id: d.key_id,
            iteration: d.iteration,
            chain: d.chain,
            signing_public: d.signing_public,
            skipped: Vec::new(),
        }
    }

    /// Checks the signature, then decrypts; the state changes only on success.
    pub fn decrypt(
        &mut self,
        message: &[u8],
        route: &GroupRoute<'_>,
    ) -> Result<Vec<u8>, CoreError> {
        if key_id_of(message)? != self.key_id {
            return Err(CoreError::NoSession("unknown sender key"));
        }
        let i = u32::from_be_bytes(message[4..8].try_into().expect("4"));
        let (ct, sig) = message[PREFIX..].split_at(message.len() - PREFIX - SIG_LEN);
        let aad = aad(route, self.key_id, i);
        let mut signed = SIG_LABEL.to_vec();
        signed.extend_from_slice(&aad);
        signed.extend_from_slice(ct);
        let key = VerifyingKey::from_bytes(&self.signing_public)
            .map_err(|_| CoreError::InvalidKey("sender signing key"))?;
        let sig = Signature::from_bytes(&sig.try_into().expect("64"));
        key.verify_strict(&signed, &sig)
            .map_err(|_| CoreError::BadSignature("group message"))?;
        let mut next = self.clone();
        let mk = next.message_key(i)?;
        let plaintext = open_with(&mk, INFO, &aad, ct)?;
        *self = next;
        Ok(plaintext)
    }

    fn message_key(&mut self, i: u32) -> Result<[u8; 32], CoreError> {
        if i < self.iteration {
            let pos = self
                .skipped
                .iter()
                .position(|s| s.iteration == i)
                .ok_or(CoreError::Replay)?;
            return Ok(self.skipped.remove(pos).mk);
        }
        if i - self.iteration > MAX_SKIP {
            return Err(CoreError::TooManySkipped);
        }
        while self.iteration < i {
            let (mk, next) = chain_step(&self.chain);
            self.skipped.push(Skipped {
                iteration: self.iteration,
                mk: *mk,
            });
            self.chain = *next;
            self.iteration += 1;
        }
        if self.skipped.len() > MAX_SKIP as usize {
            let excess = self.skipped.len() - MAX_SKIP as usize;
            self.skipped.drain(..excess);
        }
        let (mk, next) = chain_step(&self.chain);
        self.chain = *next;
        self.iteration += 1;
        Ok(*mk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: GroupRoute<'static> = GroupRoute {
        thread_id: "t",
        sender_user: "ua",
        sender_device: "da",
    };

    #[test]
    fn members_read_once_in_any_order_and_forgeries_fail() {
        let mut own = OwnSenderKey::generate().unwrap();
        let mut bob = ReceivedSenderKey::from_distribution(&own.distribution("t"));
        let m: Vec<_> = (0..4)
            .map(|i| own.encrypt(format!("m{i}").as_bytes(), &ROUTE).unwrap())
            .collect();
        assert_eq!(bob.decrypt(&m[2], &ROUTE).unwrap(), b"m2");
        assert_eq!(bob.decrypt(&m[0], &ROUTE).unwrap(), b"m0");
        assert_eq!(bob.decrypt(&m[0], &ROUTE), Err(CoreError::Replay));
        assert_eq!(bob.decrypt(&m[3], &ROUTE).unwrap(), b"m3");
        assert_eq!(bob.decrypt(&m[1], &ROUTE).unwrap(), b"m1");
        // Another member knows the chain but not the signing key: a forgery fails.
        let mut carol_forges = own.clone();
        carol_forges.signing = *random_secret().unwrap();
        let forged = carol_forges.encrypt(b"evil", &ROUTE).unwrap();
        assert_eq!(
            bob.decrypt(&forged, &ROUTE),
            Err(CoreError::BadSignature("group message"))
        );
        // The route is bound: a message moved to another thread fails.
        let next = own.encrypt(b"x", &ROUTE).unwrap();
        let other = GroupRoute {
            thread_id: "t2",
            ..ROUTE
        };
        assert!(bob.decrypt(&next, &other).is_err());
        assert_eq!(bob.decrypt(&next, &ROUTE).unwrap(), b"x");
    }

    #[test]
    fn a_newcomer_reads_only_from_its_distribution_on() {
        let mut own = OwnSenderKey::generate().unwrap();
        let before = own.encrypt(b"old", &ROUTE).unwrap();
        let mut late = ReceivedSenderKey::from_distribution(&own.distribution("t"));
        assert!(late.decrypt(&before, &ROUTE).is_err());
        let after = own.encrypt(b"new", &ROUTE).unwrap();
        assert_eq!(late.decrypt(&after, &ROUTE).unwrap(), b"new");
    }
}
