//! The HPKE key schedule (RFC 9180 §5.1, base mode only) and the sender and recipient
//! encryption contexts (§5.2), whose per-message nonce is `base_nonce XOR seq` so that no
//! nonce is ever used twice under one key.

use super::kem::{self, SharedSecret, ENC_LEN, KEM_ID};
use super::labeled::{self, NH};
use crate::CoreError;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, Payload};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

/// `Nn`: AES-GCM nonces are 96 bits.
pub const NONCE_LEN: usize = 12;
const KDF_ID: u16 = 0x0001;
const MODE_BASE: u8 = 0x00;

/// An AEAD usable in the suite, with its RFC 9180 identifier.
pub trait HpkeAead: KeyInit + Aead + AeadCore<NonceSize = U12> {
    const AEAD_ID: u16;
}

impl HpkeAead for aes_gcm::Aes256Gcm {
    const AEAD_ID: u16 = 0x0002;
}

impl HpkeAead for aes_gcm::Aes128Gcm {
    const AEAD_ID: u16 = 0x0001;
}

fn suite_id<A: HpkeAead>() -> [u8; 10] {
    let mut id = *b"HPKE\0\0\0\0\0\0";
    id[4..6].copy_from_slice(&KEM_ID.to_be_bytes());
    id[6..8].copy_from_slice(&KDF_ID.to_be_bytes());
    id[8..10].copy_from_slice(&A::AEAD_ID.to_be_bytes());
    id
}

/// The state shared by both directions: the AEAD under `key`, `base_nonce` and the counter.
struct Context<A: HpkeAead> {
    aead: A,
    base_nonce: [u8; NONCE_LEN],
    seq: u64,
}

impl<A: HpkeAead> Drop for Context<A> {
    fn drop(&mut self) {
        self.base_nonce.zeroize();
    }
}

impl<A: HpkeAead> Context<A> {
    /// `KeySchedule(mode_base, shared_secret, info, "", "")`.
    fn key_schedule(shared_secret: &SharedSecret, info: &[u8]) -> Result<Self, CoreError> {
        let suite = suite_id::<A>();
        let psk_id_hash = labeled::extract(&suite, b"", b"psk_id_hash", b"");
        let info_hash = labeled::extract(&suite, b"", b"info_hash", info);
        let mut ksc = [0u8; 1 + 2 * NH];
        ksc[0] = MODE_BASE;
        ksc[1..1 + NH].copy_from_slice(&psk_id_hash[..]);
        ksc[1 + NH..].copy_from_slice(&info_hash[..]);
        let secret = labeled::extract(&suite, &shared_secret[..], b"secret", b"");

        let mut key = Zeroizing::new(vec![0u8; A::key_size()]);
        labeled::expand(&suite, &secret[..], b"key", &ksc, &mut key)?;
        let mut base_nonce = [0u8; NONCE_LEN];
        labeled::expand(&suite, &secret[..], b"base_nonce", &ksc, &mut base_nonce)?;
        let aead = A::new_from_slice(&key).map_err(|_| CoreError::InvalidKey("aead key"))?;
        Ok(Context {
            aead,
            base_nonce,
            seq: 0,
        })
    }

    /// `ComputeNonce(seq)`, then advances `seq`; refuses to wrap around.
    fn next_nonce(&mut self) -> Result<[u8; NONCE_LEN], CoreError> {
        let mut nonce = self.base_nonce;
        for (n, s) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.seq.to_be_bytes())
        {
            *n ^= s;
        }
        self.seq = self.seq.checked_add(1).ok_or(CoreError::SequenceOverflow)?;
        Ok(nonce)
    }
}

/// The sender's side: made by [`SenderContext::setup_base`], seals messages in order.
pub struct SenderContext<A: HpkeAead>(Context<A>);

impl<A: HpkeAead> SenderContext<A> {
    /// `SetupBaseS(pkR, info)`: a fresh encapsulation and the context bound to it.
    pub fn setup_base(
        recipient: &PublicKey,
        info: &[u8],
    ) -> Result<([u8; ENC_LEN], Self), CoreError> {
        let (secret, enc) = kem::encap(recipient)?;
        Ok((enc, SenderContext(Context::key_schedule(&secret, info)?)))
    }

    /// `SetupBaseS` with a caller-chosen ephemeral key, for test vectors only.
    pub fn setup_base_with(
        recipient: &PublicKey,
        ephemeral: StaticSecret,
        info: &[u8],
    ) -> Result<([u8; ENC_LEN], Self), CoreError> {
        let (secret, enc) = kem::encap_with(recipient, ephemeral)?;
        Ok((enc, SenderContext(Context::key_schedule(&secret, info)?)))
    }

    /// `ContextS.Seal(aad, pt)`.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CoreError> {
        let nonce = self.0.next_nonce()?;
        self.0
            .aead
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CoreError::InvalidKey("plaintext too long"))
    }
}

/// The recipient's side: made by [`RecipientContext::setup_base`], opens messages in order.
pub struct RecipientContext<A: HpkeAead>(Context<A>);

impl<A: HpkeAead> RecipientContext<A> {
    /// `SetupBaseR(enc, skR, info)`.
    pub fn setup_base(
        enc: &[u8],
        recipient: &StaticSecret,
        info: &[u8],
    ) -> Result<Self, CoreError> {
        let secret = kem::decap(enc, recipient)?;
        Ok(RecipientContext(Context::key_schedule(&secret, info)?))
    }

    /// `ContextR.Open(aad, ct)`. A failed open does not advance the sequence number, as the
    /// RFC requires, so a forged message cannot desynchronise the context.
    pub fn open(&mut self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CoreError> {
        let seq = self.0.seq;
        let nonce = self.0.next_nonce()?;
        self.0
            .aead
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| {
                self.0.seq = seq;
                CoreError::Decrypt
            })
    }
}
