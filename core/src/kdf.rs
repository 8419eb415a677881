//! The key derivations and the one AEAD construction that the sessions share.
//!
//! - [`hkdf`]: HKDF-SHA256 (RFC 5869) with a label per use, so no two uses of a secret can
//!   collide.
//! - [`chain_step`]: the symmetric ratchet — HKDF-SHA256 with the chain key as the
//!   pseudorandom key (`HKDF-Expand(ck, "sotto/v2 chain", 64)`): the first 32 bytes are the
//!   message key, the last 32 the next chain key. (This is HMAC-SHA256 of the chain key, as
//!   in the Signal specification, with a label of Sotto's.)
//! - [`seal_with`]/[`open_with`]: AES-256-GCM under a key *and nonce* both derived from one
//!   message key (`HKDF(salt = 0, ikm = mk, info)` → 32 + 12 bytes). Each message key is used
//!   for exactly one message and then forgotten, so no (key, nonce) pair ever repeats.

use crate::CoreError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

pub type Secret32 = Zeroizing<[u8; 32]>;

/// HKDF-SHA256: extract with `salt`, expand with `info` into `out`.
pub fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), CoreError> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out)
        .map_err(|_| CoreError::InvalidKey("HKDF output too long"))
}

const INFO_CHAIN: &[u8] = b"sotto/v2 chain";

/// One step of a symmetric chain: `(message key, next chain key)`.
pub fn chain_step(chain_key: &[u8; 32]) -> (Secret32, Secret32) {
    let mut okm = Zeroizing::new([0u8; 64]);
    Hkdf::<Sha256>::from_prk(chain_key)
        .expect("a 32-byte chain key is a valid pseudorandom key")
        .expand(INFO_CHAIN, &mut okm[..])
        .expect("64 bytes is within HKDF's limit");
    (
        Zeroizing::new(okm[..32].try_into().expect("32")),
        Zeroizing::new(okm[32..].try_into().expect("32")),
    )
}

fn cipher_for(message_key: &[u8; 32], info: &[u8]) -> Result<(Aes256Gcm, [u8; 12]), CoreError> {
    let mut okm = Zeroizing::new([0u8; 44]);
    hkdf(&[0u8; 32], message_key, info, &mut okm[..])?;
    let cipher =
        Aes256Gcm::new_from_slice(&okm[..32]).map_err(|_| CoreError::InvalidKey("aead key"))?;
    let nonce: [u8; 12] = okm[32..].try_into().expect("12 bytes");
    Ok((cipher, nonce))
}

/// Encrypts under the key and nonce derived from `message_key`.
pub fn seal_with(
    message_key: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CoreError> {
    let (cipher, nonce) = cipher_for(message_key, info)?;
    cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CoreError::InvalidKey("plaintext too long"))
}

/// Decrypts what [`seal_with`] made; any change to key, data or ciphertext fails.
pub fn open_with(
    message_key: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CoreError> {
    let (cipher, nonce) = cipher_for(message_key, info)?;
    cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| CoreError::Decrypt)
}

/// Appends `part` prefixed by its length as a big-endian u16 (parts are short labels and IDs).
pub fn push_lp(out: &mut Vec<u8>, part: &[u8]) {
    let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&part[..usize::from(len)]);
}

/// A fresh random 32-byte secret.
pub fn random_secret() -> Result<Secret32, CoreError> {
    let mut s = Zeroizing::new([0u8; 32]);
    crate::error::random_bytes(&mut s[..])?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_steps_differ_and_ciphertexts_bind_everything() {
        let ck = [7u8; 32];
        let (mk, next) = chain_step(&ck);
        assert_ne!(*mk, *next);
        assert_ne!(*next, ck);
        let ct = seal_with(&mk, b"info", b"aad", b"hello").unwrap();
        assert_eq!(open_with(&mk, b"info", b"aad", &ct).unwrap(), b"hello");
        assert_eq!(
            open_with(&mk, b"info", b"aax", &ct),
            Err(CoreError::Decrypt)
        );
        assert_eq!(
            open_with(&mk, b"infx", b"aad", &ct),
            Err(CoreError::Decrypt)
        );
        assert_eq!(
            open_with(&next, b"info", b"aad", &ct),
            Err(CoreError::Decrypt)
        );
    }
}
