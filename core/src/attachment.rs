//! Attachments: a file is encrypted once with a fresh AES-256-GCM key, the ciphertext is
//! uploaded as an opaque blob, and only the key (inside the sealed message, one copy per
//! recipient device like any message) lets a member read it.
//!
//! `blob = nonce (12 random bytes) || AES-256-GCM(key, nonce, file, aad = "sotto/v1 attachment")`

use crate::error::random_bytes;
use crate::CoreError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const AAD: &[u8] = b"sotto/v1 attachment";
const NONCE_LEN: usize = 12;

/// What a message says about one of its attachments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The server's blob ID.
    pub id: String,
    pub name: String,
    /// MIME type, as the sender's browser reported it.
    #[serde(rename = "type")]
    pub mime: String,
    /// Size of the file itself, in bytes.
    pub size: u64,
    /// The key that opens the blob.
    #[serde(with = "crate::b64")]
    pub key: Vec<u8>,
}

/// Encrypts `file` with a new key; returns `(key, blob)`.
pub fn encrypt(file: &[u8]) -> Result<(Zeroizing<[u8; 32]>, Vec<u8>), CoreError> {
    let mut key = Zeroizing::new([0u8; 32]);
    random_bytes(&mut key[..])?;
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let cipher =
        Aes256Gcm::new_from_slice(&key[..]).map_err(|_| CoreError::InvalidKey("attachment key"))?;
    let ct = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: file,
                aad: AAD,
            },
        )
        .map_err(|_| CoreError::InvalidKey("attachment too large"))?;
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&ct);
    Ok((key, blob))
}

/// Opens a blob made by [`encrypt`].
pub fn decrypt(key: &[u8], blob: &[u8]) -> Result<Vec<u8>, CoreError> {
    if blob.len() < NONCE_LEN {
        return Err(CoreError::Decrypt);
    }
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| CoreError::InvalidKey("an attachment key is 32 bytes"))?;
    let (nonce, ct) = blob.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CoreError::Decrypt)?;
    cipher
        .decrypt(&nonce.into(), Payload { msg: ct, aad: AAD })
        .map_err(|_| CoreError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_fresh_keys_and_tampering() {
        let file = b"%PDF-1.7 quarterly report".to_vec();
        let (key, blob) = encrypt(&file).unwrap();
        assert_eq!(decrypt(&key[..], &blob).unwrap(), file);
        assert!(!blob.windows(9).any(|w| w == b"quarterly"));
        let (key2, blob2) = encrypt(&file).unwrap();
        assert_ne!(key[..], key2[..]);
        assert_ne!(blob, blob2);
        assert_eq!(decrypt(&key2[..], &blob), Err(CoreError::Decrypt));
        let mut bad = blob.clone();
        bad[20] ^= 1;
        assert_eq!(decrypt(&key[..], &bad), Err(CoreError::Decrypt));
        assert_eq!(decrypt(&key[..], &blob[..5]), Err(CoreError::Decrypt));
    }
}
