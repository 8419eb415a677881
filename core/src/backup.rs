//! Encrypted key backup: the user's identity, protected by a passphrase, as one line of text
//! that can be saved to a file and imported on another browser.
//!
//! ```text
//! text       = "sotto-backup:" || base64(header || ciphertext)
//! header v2  = version (u8 = 2) || kdf (u8 = 2: Argon2id v1.3) || memory in KiB (u32 BE)
//!              || passes (u32 BE) || lanes (u8) || salt (16) || nonce (12)
//! key        = Argon2id(passphrase, salt, memory, passes, lanes) -> 32 bytes
//! header v1  = version (u8 = 1) || kdf (u8 = 1: PBKDF2-HMAC-SHA256) || iterations (u32 BE)
//!              || salt (16) || nonce (12)          (read, no longer written)
//! key        = PBKDF2-HMAC-SHA256(passphrase, salt, iterations) -> 32 bytes
//! ciphertext = AES-256-GCM(key, nonce, aad = header, JSON {user_id, identity})
//! ```
//!
//! New backups use Argon2id, which makes every guess at a stolen backup's passphrase cost
//! memory as well as time (a GPU or ASIC gains far less over a browser than with PBKDF2),
//! at OWASP's minimum: 19 MiB, 2 passes, 1 lane. The costs travel in the header so they
//! can be raised later; an import refuses costs below that minimum (or PBKDF2 below
//! [`MIN_ITERATIONS`]), so a forged backup cannot talk a browser into a weak derivation,
//! and costs above the bounds here, so a crafted one can neither hang the tab nor take its
//! memory (it fails at once, `malformed`). A wrong passphrase, or any altered byte, is
//! [`CoreError::WrongPassphrase`].

use crate::identity::Identity;
use crate::CoreError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// OWASP's 2023 figure for PBKDF2-SHA256, for version 1 backups.
pub const MIN_ITERATIONS: u32 = 600_000;
/// About ten seconds of a slow phone's time; anything above is a crafted backup.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Argon2id's memory for new backups, and the least an import accepts (OWASP): 19 MiB.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// The most memory an import spends: 64 MiB, which a phone's tab can still give.
pub const ARGON2_MAX_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id's passes for new backups, and the fewest an import accepts (OWASP).
pub const ARGON2_PASSES: u32 = 2;
pub const ARGON2_MAX_PASSES: u32 = 8;
/// Lanes: the browser computes them one after another, so more only cost time.
pub const ARGON2_MAX_LANES: u8 = 4;
const PREFIX: &str = "sotto-backup:";
const V1: u8 = 1;
const V2: u8 = 2;
const KDF_PBKDF2_SHA256: u8 = 1;
const KDF_ARGON2ID: u8 = 2;
const V1_HEADER_LEN: usize = 1 + 1 + 4 + 16 + 12;
const V2_HEADER_LEN: usize = 1 + 1 + 4 + 4 + 1 + 16 + 12;
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

/// How a backup's key is derived from its passphrase, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    Pbkdf2Sha256 {
        iterations: u32,
    },
    Argon2id {
        memory_kib: u32,
        passes: u32,
        lanes: u8,
    },
}

impl Kdf {
    /// The 32-byte key for `passphrase` and `salt`.
    pub fn derive(&self, passphrase: &str, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, CoreError> {
        let mut key = Zeroizing::new([0u8; 32]);
        match *self {
            Kdf::Pbkdf2Sha256 { iterations } => {
                pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.as_bytes(), salt, iterations, &mut key[..])
            }
            Kdf::Argon2id {
                memory_kib,
                passes,
                lanes,
            } => {
                let params = argon2::Params::new(memory_kib, passes, u32::from(lanes), Some(32))
                    .map_err(|_| bad("the backup's key derivation is out of range"))?;
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                    .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
                    .map_err(|_| bad("the backup's key derivation failed"))?;
            }
        }
        Ok(key)
    }

    fn cipher(&self, passphrase: &str, salt: &[u8]) -> Result<Aes256Gcm, CoreError> {
        let key = self.derive(passphrase, salt)?;
        Aes256Gcm::new_from_slice(&key[..]).map_err(|_| CoreError::InvalidKey("backup key"))
    }
}

fn bad(detail: &str) -> CoreError {
    CoreError::Malformed {
        what: "backup",
        detail: detail.into(),
    }
}

/// Exports `identity` of `user_id` under `passphrase` (Argon2id, version 2).
pub fn export(identity: &Identity, user_id: &str, passphrase: &str) -> Result<String, CoreError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(CoreError::Malformed {
            what: "passphrase",
            detail: format!("use at least {MIN_PASSPHRASE_CHARS} characters"),
        });
    }
    let mut header = vec![V2, KDF_ARGON2ID];
    header.extend_from_slice(&ARGON2_MEMORY_KIB.to_be_bytes());
    header.extend_from_slice(&ARGON2_PASSES.to_be_bytes());
    header.push(1);
    let mut random = [0u8; 28];
    crate::error::random_bytes(&mut random)?;
    header.extend_from_slice(&random);
    let contents = Contents {
        user_id: user_id.to_owned(),
        identity: identity.secret_bytes().to_vec(),
    };
    let plaintext = Zeroizing::new(serde_json::to_vec(&contents).expect("serializes"));
    let sealed = Sealed {
        kdf: Kdf::Argon2id {
            memory_kib: ARGON2_MEMORY_KIB,
            passes: ARGON2_PASSES,
            lanes: 1,
        },
        header_len: header.len(),
        bytes: header,
    };
    let ct = sealed
        .cipher(passphrase)?
        .encrypt(
            &sealed.nonce().into(),
            Payload {
                msg: &plaintext,
                aad: sealed.header(),
            },
        )
        .map_err(|_| CoreError::InvalidKey("backup too long"))?;
    let mut bytes = sealed.bytes;
    bytes.extend_from_slice(&ct);
    Ok(format!("{PREFIX}{}", crate::b64::encode(&bytes)))
}

/// A backup's text, checked up to the key derivation: what [`parse`] accepts costs at most
/// the bounded derivation of its [`Kdf`] to open.
pub struct Sealed {
    pub kdf: Kdf,
    bytes: Vec<u8>,
    header_len: usize,
}

impl Sealed {
    fn header(&self) -> &[u8] {
        &self.bytes[..self.header_len]
    }

    fn salt(&self) -> &[u8] {
        &self.header()[self.header_len - 28..self.header_len - 12]
    }

    fn nonce(&self) -> [u8; 12] {
        self.header()[self.header_len - 12..]
            .try_into()
            .expect("12")
    }

    fn cipher(&self, passphrase: &str) -> Result<Aes256Gcm, CoreError> {
        self.kdf.cipher(passphrase, self.salt())
    }

    /// Derives the key from `passphrase` and opens the backup.
    pub fn open(&self, passphrase: &str) -> Result<Restored, CoreError> {
        let plaintext = Zeroizing::new(
            self.cipher(passphrase)?
                .decrypt(
                    &self.nonce().into(),
                    Payload {
                        msg: &self.bytes[self.header_len..],
                        aad: self.header(),
                    },
                )
                .map_err(|_| CoreError::WrongPassphrase)?,
        );
        let contents: Contents = serde_json::from_slice(&plaintext)
            .map_err(|_| bad("the backup's contents are damaged"))?;
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
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4"))
}

/// Reads a backup's text and checks its header, without deriving anything.
pub fn parse(text: &str) -> Result<Sealed, CoreError> {
    let body = text
        .trim()
        .strip_prefix(PREFIX)
        .ok_or_else(|| bad("this is not a Sotto key backup"))?;
    let bytes = crate::b64::decode(body.trim()).map_err(|_| bad("the backup text is damaged"))?;
    if bytes.len() < V1_HEADER_LEN + 16 {
        return Err(bad("the backup is too short"));
    }
    let (header_len, kdf) = match bytes[0] {
        V1 => {
            if bytes[1] != KDF_PBKDF2_SHA256 {
                return Err(bad("unknown key derivation"));
            }
            let iterations = be32(&bytes[2..]);
            if iterations < MIN_ITERATIONS {
                return Err(bad("the backup's key derivation is too weak"));
            }
            if iterations > MAX_ITERATIONS {
                return Err(bad("the backup's iteration count is out of range"));
            }
            (V1_HEADER_LEN, Kdf::Pbkdf2Sha256 { iterations })
        }
        V2 if bytes.len() >= V2_HEADER_LEN + 16 => {
            if bytes[1] != KDF_ARGON2ID {
                return Err(bad("unknown key derivation"));
            }
            let (memory_kib, passes, lanes) = (be32(&bytes[2..]), be32(&bytes[6..]), bytes[10]);
            if memory_kib < ARGON2_MEMORY_KIB || passes < ARGON2_PASSES || lanes == 0 {
                return Err(bad("the backup's key derivation is too weak"));
            }
            if memory_kib > ARGON2_MAX_MEMORY_KIB
                || passes > ARGON2_MAX_PASSES
                || lanes > ARGON2_MAX_LANES
            {
                return Err(bad("the backup's key derivation is out of range"));
            }
            (
                V2_HEADER_LEN,
                Kdf::Argon2id {
                    memory_kib,
                    passes,
                    lanes,
                },
            )
        }
        V2 => return Err(bad("the backup is too short")),
        v => return Err(CoreError::UnsupportedVersion(u16::from(v))),
    };
    Ok(Sealed {
        kdf,
        bytes,
        header_len,
    })
}

/// Opens a backup made by [`export`] (or a version 1 backup of an earlier Sotto).
pub fn import(text: &str, passphrase: &str) -> Result<Restored, CoreError> {
    parse(text)?.open(passphrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrites a backup's bytes (after the prefix) with `edit`.
    fn altered(text: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut bytes = crate::b64::decode(&text[PREFIX.len()..]).unwrap();
        edit(&mut bytes);
        format!("{PREFIX}{}", crate::b64::encode(&bytes))
    }

    fn malformed(r: Result<Restored, CoreError>) -> bool {
        matches!(r, Err(CoreError::Malformed { .. }))
    }

    #[test]
    fn a_backup_restores_the_identity_and_refuses_the_wrong_passphrase() {
        let id = Identity::generate().unwrap();
        let text = export(&id, "u1", "correct horse battery").unwrap();
        assert!(text.starts_with(PREFIX));
        let sealed = parse(&text).unwrap();
        assert_eq!(
            sealed.kdf,
            Kdf::Argon2id {
                memory_kib: 19 * 1024,
                passes: 2,
                lanes: 1
            }
        );
        let restored = sealed.open("correct horse battery").unwrap();
        assert_eq!(restored.user_id, "u1");
        assert_eq!(restored.identity.public(), id.public());
        assert_eq!(
            import(&text, "wrong horse battery").err(),
            Some(CoreError::WrongPassphrase)
        );
        assert!(export(&id, "u1", "short").is_err());
        assert!(malformed(import("hello", "x")));
    }

    /// A backup written by Sotto 0.1 (version 1, PBKDF2), kept as it was written.
    #[test]
    fn a_version_1_backup_still_opens() {
        let v1 = "sotto-backup:AQEACSfAfSW7fR/n960uvj8T/L+v75r1wCDhrGG8AtbXi1PbUoIv1h+LDi14iRTm3/rpWwia2TGHU+eUEVh1yy4n4LgulicESvKdeFMWidA0VsPXf58pRYwc+L511SjGpy82S1iMv0UwaJlWRf9pocdiExOj/7cSf6y3H/4OoW2b8symEmOZ4JDfNkGVUyW0OrYrpoDMU4FwlPHb4JYw31KFk2RxJHCr1K/yKQ==";
        let sealed = parse(v1).unwrap();
        assert_eq!(
            sealed.kdf,
            Kdf::Pbkdf2Sha256 {
                iterations: MIN_ITERATIONS
            }
        );
        let restored = sealed.open("correct horse battery").unwrap();
        assert_eq!(restored.user_id, "user-7");
        assert_eq!(
            restored.identity.public(),
            Identity::from_secret_bytes(&[7u8; 64]).public()
        );
        assert_eq!(
            import(v1, "wrong horse battery").err(),
            Some(CoreError::WrongPassphrase)
        );
        // Its iteration count is bounded on both sides.
        for count in [1000u32, MAX_ITERATIONS + 1, u32::MAX] {
            let forged = altered(v1, |b| b[2..6].copy_from_slice(&count.to_be_bytes()));
            assert!(
                malformed(import(&forged, "correct horse battery")),
                "{count}"
            );
        }
    }

    /// Costs below OWASP's minimum, or above what a tab can give, fail at once — before
    /// any derivation — and any altered byte is a wrong passphrase.
    #[test]
    fn a_weakened_costly_or_altered_backup_is_refused() {
        let id = Identity::generate().unwrap();
        let text = export(&id, "u1", "correct horse battery").unwrap();
        let forgeries: [(usize, &[u8]); 8] = [
            (2, &1024u32.to_be_bytes()),
            (2, &(ARGON2_MAX_MEMORY_KIB + 1).to_be_bytes()),
            (2, &u32::MAX.to_be_bytes()),
            (6, &1u32.to_be_bytes()),
            (6, &(ARGON2_MAX_PASSES + 1).to_be_bytes()),
            (6, &u32::MAX.to_be_bytes()),
            (10, &[0]),
            (10, &[ARGON2_MAX_LANES + 1]),
        ];
        for (at, value) in forgeries {
            let forged = altered(&text, |b| b[at..at + value.len()].copy_from_slice(value));
            assert!(parse(&forged).is_err(), "{at} {value:?}");
            assert!(malformed(import(&forged, "correct horse battery")));
        }
        let other_kdf = altered(&text, |b| b[1] = KDF_PBKDF2_SHA256);
        assert!(malformed(import(&other_kdf, "correct horse battery")));
        let future = altered(&text, |b| b[0] = 3);
        assert_eq!(
            import(&future, "x").err(),
            Some(CoreError::UnsupportedVersion(3))
        );
        let short = altered(&text, |b| b.truncate(V2_HEADER_LEN + 15));
        assert!(malformed(import(&short, "correct horse battery")));
        // Costs raised within the bounds are covered by the header: changing them changes
        // the key, and the header is authenticated besides.
        let raised = altered(&text, |b| b[6..10].copy_from_slice(&3u32.to_be_bytes()));
        assert_eq!(
            import(&raised, "correct horse battery").err(),
            Some(CoreError::WrongPassphrase)
        );
        let flipped = altered(&text, |b| {
            let last = b.len() - 1;
            b[last] ^= 1;
        });
        assert_eq!(
            import(&flipped, "correct horse battery").err(),
            Some(CoreError::WrongPassphrase)
        );
    }
}
