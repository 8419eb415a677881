//! Encrypted key backup: the user's identity, protected by a passphrase, as one line of text
//! that can be saved to a file and imported on another browser.
//!
//! ```text
//! text      = "sotto-backup:" || base64(header || ciphertext)
//! header    = version (u8 = 1) || kdf (u8 = 1: PBKDF2-HMAC-SHA256) || iterations (u32 BE)
//!             || salt (16) || nonce (12)
//! key       = PBKDF2-HMAC-SHA256(passphrase, salt, iterations) -> 32 bytes
//! ciphertext= AES-256-GCM(key, nonce, aad = header, JSON {user_id, identity})
//! ```
//!
//! The iteration count travels in the header so it can be raised later; an import refuses
//! fewer than [`MIN_ITERATIONS`] (OWASP's 2023 figure for PBKDF2-SHA256), so a forged
//! backup cannot talk a browser into a weak derivation, and more than [`MAX_ITERATIONS`],
//! so a crafted one cannot hang the tab (it fails at once, `malformed`). A wrong passphrase, or any altered
//! byte, is [`CoreError::WrongPassphrase`].

use crate::identity::Identity;
use crate::CoreError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

pub const MIN_ITERATIONS: u32 = 600_000;
/// About ten seconds of a slow phone's time; anything above is a crafted backup.
pub const MAX_ITERATIONS: u32 = 10_000_000;
const PREFIX: &str = "sotto-backup:";
const VERSION: u8 = 1;
const KDF_PBKDF2_SHA256: u8 = 1;
const HEADER_LEN: usize = 1 + 1 + 4 + 16 + 12;
/// Passphrases shorter than this are refused on export.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

#[derive(Serialize, Deserialize)]
struct Contents {
    user_id: String,
    #[serde(with = "crate::b64")]
    identity: Vec<u8>,
}

impl Drop for Contents {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.identity);
    }
}

/// What a backup restores.
pub struct Restored {
    pub user_id: String,
    pub identity: Identity,
}

fn derive(passphrase: &str, salt: &[u8], iterations: u32) -> Result<Aes256Gcm, CoreError> {
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.as_bytes(), salt, iterations, &mut key[..]);
    Aes256Gcm::new_from_slice(&key[..]).map_err(|_| CoreError::InvalidKey("backup key"))
}

fn bad(detail: &str) -> CoreError {
    CoreError::Malformed {
        what: "backup",
        detail: detail.into(),
    }
}

/// Exports `identity` of `user_id` under `passphrase`.
pub fn export(
    identity: &Identity,
    user_id: &str,
    passphrase: &str,
    iterations: u32,
) -> Result<String, CoreError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(CoreError::Malformed {
            what: "passphrase",
            detail: format!("use at least {MIN_PASSPHRASE_CHARS} characters"),
        });
    }
    let iterations = iterations.clamp(MIN_ITERATIONS, MAX_ITERATIONS);
    let mut header = vec![VERSION, KDF_PBKDF2_SHA256];
    header.extend_from_slice(&iterations.to_be_bytes());
    let mut random = [0u8; 28];
    crate::error::random_bytes(&mut random)?;
    header.extend_from_slice(&random);
    let contents = Contents {
        user_id: user_id.to_owned(),
        identity: identity.secret_bytes().to_vec(),
    };
    let plaintext = Zeroizing::new(serde_json::to_vec(&contents).expect("serializes"));
    let cipher = derive(passphrase, &header[6..22], iterations)?;
    let nonce: [u8; 12] = header[22..34].try_into().expect("12");
    let ct = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: &plaintext,
                aad: &header,
            },
        )
        .map_err(|_| CoreError::InvalidKey("backup too long"))?;
    header.extend_from_slice(&ct);
    Ok(format!("{PREFIX}{}", crate::b64::encode(&header)))
}

/// Opens a backup made by [`export`].
pub fn import(text: &str, passphrase: &str) -> Result<Restored, CoreError> {
    let body = text
        .trim()
        .strip_prefix(PREFIX)
        .ok_or_else(|| bad("this is not a Sotto key backup"))?;
    let bytes = crate::b64::decode(body.trim()).map_err(|_| bad("the backup text is damaged"))?;
    if bytes.len() < HEADER_LEN + 16 {
        return Err(bad("the backup is too short"));
    }
    if bytes[0] != VERSION {
        return Err(CoreError::UnsupportedVersion(u16::from(bytes[0])));
    }
    if bytes[1] != KDF_PBKDF2_SHA256 {
        return Err(bad("unknown key derivation"));
    }
    let iterations = u32::from_be_bytes(bytes[2..6].try_into().expect("4"));
    if iterations < MIN_ITERATIONS {
        return Err(bad("the backup's key derivation is too weak"));
    }
    if iterations > MAX_ITERATIONS {
        return Err(bad("the backup's iteration count is out of range"));
    }
    let (header, ct) = bytes.split_at(HEADER_LEN);
    let cipher = derive(passphrase, &header[6..22], iterations)?;
    let nonce: [u8; 12] = header[22..34].try_into().expect("12");
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ct,
                    aad: header,
                },
            )
            .map_err(|_| CoreError::WrongPassphrase)?,
    );
    let contents: Contents =
        serde_json::from_slice(&plaintext).map_err(|_| bad("the backup's contents are damaged"))?;
    let secret: [u8; 64] = contents
        .identity
        .as_slice()
        .try_into()
        .map_err(|_| bad("the backup's identity is damaged"))?;
    let secret = Zeroizing::new(secret);
    Ok(Restored {
        user_id: contents.user_id.clone(),
        identity: Identity::from_secret_bytes(&secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_restores_the_identity_and_refuses_the_wrong_passphrase() {
        let id = Identity::generate().unwrap();
        let text = export(&id, "u1", "correct horse battery", MIN_ITERATIONS).unwrap();
        assert!(text.starts_with(PREFIX));
        let restored = import(&text, "correct horse battery").unwrap();
        assert_eq!(restored.user_id, "u1");
        assert_eq!(restored.identity.public(), id.public());
        assert_eq!(
            import(&text, "wrong horse battery").err(),
            Some(CoreError::WrongPassphrase)
        );
        assert!(export(&id, "u1", "short", MIN_ITERATIONS).is_err());
        assert!(matches!(
            import("hello", "x"),
            Err(CoreError::Malformed { .. })
        ));
    }

    #[test]
    fn a_weakened_or_altered_backup_is_refused() {
        let id = Identity::generate().unwrap();
        let text = export(&id, "u1", "correct horse battery", MIN_ITERATIONS).unwrap();
        let mut bytes = crate::b64::decode(&text[PREFIX.len()..]).unwrap();
        let original = bytes.clone();
        bytes[2..6].copy_from_slice(&1000u32.to_be_bytes());
        let weak = format!("{PREFIX}{}", crate::b64::encode(&bytes));
        assert!(matches!(
            import(&weak, "correct horse battery"),
            Err(CoreError::Malformed { .. })
        ));
        // A crafted count of 2^32 - 1 fails at once instead of hanging the tab.
        let mut huge = original.clone();
        huge[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
        let huge = format!("{PREFIX}{}", crate::b64::encode(&huge));
        assert!(matches!(
            import(&huge, "correct horse battery"),
            Err(CoreError::Malformed { .. })
        ));
        let mut altered = original;
        let last = altered.len() - 1;
        altered[last] ^= 1;
        let altered = format!("{PREFIX}{}", crate::b64::encode(&altered));
        assert_eq!(
            import(&altered, "correct horse battery").err(),
            Some(CoreError::WrongPassphrase)
        );
    }
}
