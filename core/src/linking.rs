//! Linking a new browser to a running one, through a relay that must not be able to fool
//! either: a short-authentication-string (SAS) exchange with a commitment, as Matrix's SAS
//! verification and ZRTP do.
//!
//! 1. The **new** browser makes an ephemeral X25519 key `N` and sends only a commitment to
//!    it: `C = SHA-256("sotto/v3 link commit" || identity_signing || N)`, where
//!    `identity_signing` is the identity it expects to receive (the published one).
//! 2. A **running** browser answers with its own ephemeral key `R`.
//! 3. Only then does the new browser reveal `N`; the running browser checks it against `C`.
//! 4. Both derive `HKDF(ikm = X25519(n, R), info = "sotto/v3 link" || transcript)` and show
//!    its first 40 bits as the check code; the rest keys the bundle (AES-256-GCM).
//!
//! A relay in the middle must fix the key it shows the running browser (by its commitment)
//! before it learns `R`, and the key it shows the new browser before it learns `N`; after
//! that nothing is left to search, so each attempt matches with probability 2^-40 and the
//! people comparing the codes see the mismatch. Without the commitment the relay could try
//! keys offline until one gives the same code (the flaw of Sotto's first linking code).
//!
//! The transcript binds the link ID, the identity, the commitment and both keys, so a code
//! cannot be carried to another request or another identity. Each side accepts the bundle
//! only after its own person said the codes match, so neither trusts the relay's word.

use crate::error::random_bytes;
use crate::kdf::hkdf;
use crate::keys::parse_public_key;
use crate::CoreError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const COMMIT_LABEL: &[u8] = b"sotto/v3 link commit";
const SAS_LABEL: &[u8] = b"sotto/v3 link";

/// What the relay carries between the two browsers, in the order both hash it.
struct Transcript<'a> {
    link_id: &'a str,
    identity_signing: &'a [u8],
    commitment: &'a [u8],
    new_public: &'a [u8],
    running_public: &'a [u8],
}

impl Transcript<'_> {
    fn info(&self) -> Vec<u8> {
        let mut info = SAS_LABEL.to_vec();
        for part in [
            self.link_id.as_bytes(),
            self.identity_signing,
            self.commitment,
            self.new_public,
            self.running_public,
        ] {
            // Length-prefixed, so no two transcripts hash alike.
            info.extend_from_slice(&(part.len() as u32).to_be_bytes());
            info.extend_from_slice(part);
        }
        info
    }
}

/// The code people compare and the key the bundle travels under.
struct Derived {
    code: String,
    bundle_key: Zeroizing<[u8; 32]>,
}

fn derive(secret: &StaticSecret, peer: &[u8], t: &Transcript<'_>) -> Result<Derived, CoreError> {
    let shared = secret.diffie_hellman(&parse_public_key(peer)?);
    if !shared.was_contributory() {
        return Err(CoreError::InvalidKey("a low-order link key"));
    }
    let mut okm = Zeroizing::new([0u8; 37]);
    hkdf(&[], shared.as_bytes(), &t.info(), &mut okm[..])?;
    Ok(Derived {
        code: format_code(okm[..5].try_into().expect("5 bytes")),
        bundle_key: Zeroizing::new(okm[5..].try_into().expect("32 bytes")),
    })
}

/// 40 bits as `XXXX-XXXX` in Crockford's base32 (no I, L, O or U to misread).
fn format_code(bytes: [u8; 5]) -> String {
    let bits = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let index = (bits >> (35 - 5 * i)) & 31;
        code.push(ALPHABET[index as usize] as char);
    }
    code
}

fn commitment_to(identity_signing: &[u8], new_public: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(COMMIT_LABEL)
        .chain_update(identity_signing)
        .chain_update(new_public)
        .finalize()
        .into()
}

fn fresh_secret() -> Result<StaticSecret, CoreError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    random_bytes(&mut seed[..])?;
    Ok(StaticSecret::from(*seed))
}

/// The key is single-use (fresh ephemerals per link), so a fixed nonce never repeats.
const BUNDLE_NONCE: [u8; 12] = [0; 12];

/// The browser that asks to be linked.
pub struct NewBrowser {
    secret: StaticSecret,
    identity_signing: Vec<u8>,
}

impl NewBrowser {
    /// Starts a link for the identity this browser expects (the published one).
    pub fn start(identity_signing: &[u8]) -> Result<Self, CoreError> {
        Ok(NewBrowser {
            secret: fresh_secret()?,
            identity_signing: identity_signing.to_vec(),
        })
    }

    fn public(&self) -> [u8; 32] {
        PublicKey::from(&self.secret).to_bytes()
    }

    /// What is sent first, in place of the key.
    pub fn commitment(&self) -> [u8; 32] {
        commitment_to(&self.identity_signing, &self.public())
    }

    /// Once a running browser answered with `running_public`: the key to reveal now and the
    /// code to show.
    pub fn reveal(&self, link_id: &str, running_public: &[u8]) -> Result<Revealed, CoreError> {
        let new_public = self.public();
        let commitment = self.commitment();
        let derived = derive(
            &self.secret,
            running_public,
            &Transcript {
                link_id,
                identity_signing: &self.identity_signing,
                commitment: &commitment,
                new_public: &new_public,
                running_public,
            },
        )?;
        Ok(Revealed {
            new_public,
            code: derived.code,
            bundle_key: derived.bundle_key,
            link_id: link_id.to_owned(),
        })
    }
}

/// The new browser after revealing its key: call [`Revealed::open_bundle`] only once its
/// person said the running browser shows the same [`Revealed::code`].
pub struct Revealed {
    pub new_public: [u8; 32],
    pub code: String,
    bundle_key: Zeroizing<[u8; 32]>,
    link_id: String,
}

impl Revealed {
    /// The running browser's bundle; `Decrypt` if anyone but that browser made it.
    pub fn open_bundle(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        open(&self.bundle_key, &self.link_id, sealed)
    }
}

/// A running browser answering a link request.
pub struct RunningBrowser {
    secret: StaticSecret,
    commitment: [u8; 32],
    link_id: String,
}

/// The running browser once the new browser's key checked out against its commitment.
pub struct Checked {
    pub code: String,
    bundle_key: Zeroizing<[u8; 32]>,
    link_id: String,
}

impl RunningBrowser {
    /// Answers the request `link_id`, whose new browser committed to `commitment`.
    pub fn accept(link_id: &str, commitment: &[u8]) -> Result<Self, CoreError> {
        let commitment: [u8; 32] = commitment.try_into().map_err(|_| CoreError::Malformed {
            what: "link request",
            detail: "a commitment is 32 bytes".into(),
        })?;
        Ok(RunningBrowser {
            secret: fresh_secret()?,
            commitment,
            link_id: link_id.to_owned(),
        })
    }

    /// The key to send back.
    pub fn public(&self) -> [u8; 32] {
        PublicKey::from(&self.secret).to_bytes()
    }

    /// Checks the new browser's revealed key against its commitment (made for this user's
    /// `identity_signing`) and derives the code to show. Consumes the answer: one exchange
    /// gives one bundle key, used once.
    pub fn check(self, identity_signing: &[u8], new_public: &[u8]) -> Result<Checked, CoreError> {
        if commitment_to(identity_signing, new_public) != self.commitment {
            return Err(CoreError::LinkTampered);
        }
        let running_public = self.public();
        let derived = derive(
            &self.secret,
            new_public,
            &Transcript {
                link_id: &self.link_id,
                identity_signing,
                commitment: &self.commitment,
                new_public,
                running_public: &running_public,
            },
        )?;
        Ok(Checked {
            code: derived.code,
            bundle_key: derived.bundle_key,
            link_id: self.link_id.clone(),
        })
    }
}

impl Checked {
    /// Seals the bundle for the new browser (only once its person approved the code).
    /// Consumes the key, so the fixed nonce never meets a second plaintext.
    pub fn seal_bundle(self, plaintext: &[u8]) -> Result<Vec<u8>, CoreError> {
        Aes256Gcm::new_from_slice(&self.bundle_key[..])
            .map_err(|_| CoreError::InvalidKey("bundle key"))?
            .encrypt(
                (&BUNDLE_NONCE).into(),
                Payload {
                    msg: plaintext,
                    aad: self.link_id.as_bytes(),
                },
            )
            .map_err(|_| CoreError::Decrypt)
    }
}

fn open(key: &[u8; 32], link_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CoreError> {
    Aes256Gcm::new_from_slice(key)
        .map_err(|_| CoreError::InvalidKey("bundle key"))?
        .decrypt(
            (&BUNDLE_NONCE).into(),
            Payload {
                msg: sealed,
                aad: link_id.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CoreError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: [u8; 32] = [7; 32];

    #[test]
    fn both_browsers_show_one_code_and_the_bundle_opens() {
        let new = NewBrowser::start(&IDENTITY).unwrap();
        let running = RunningBrowser::accept("l_1", &new.commitment()).unwrap();
        let revealed = new.reveal("l_1", &running.public()).unwrap();
        let checked = running.check(&IDENTITY, &revealed.new_public).unwrap();
        assert_eq!(revealed.code, checked.code);
        assert_eq!(checked.code.len(), 9);
        assert_eq!(&checked.code[4..5], "-");
        assert!(checked
            .code
            .chars()
            .all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
        let sealed = checked.seal_bundle(b"the identity").unwrap();
        assert_eq!(&revealed.open_bundle(&sealed).unwrap()[..], b"the identity");
    }

    #[test]
    fn a_key_that_is_not_the_committed_one_is_refused() {
        let new = NewBrowser::start(&IDENTITY).unwrap();
        let running = RunningBrowser::accept("l_1", &new.commitment()).unwrap();
        let other = NewBrowser::start(&IDENTITY).unwrap();
        let swapped = other.reveal("l_1", &running.public()).unwrap();
        assert_eq!(
            running.check(&IDENTITY, &swapped.new_public).err(),
            Some(CoreError::LinkTampered)
        );
        // Committed for another identity than the running browser's own.
        let running = RunningBrowser::accept("l_1", &new.commitment()).unwrap();
        let revealed = new.reveal("l_1", &running.public()).unwrap();
        assert_eq!(
            running.check(&[8; 32], &revealed.new_public).err(),
            Some(CoreError::LinkTampered)
        );
    }

    #[test]
    fn low_order_keys_and_bad_commitments_are_refused() {
        let new = NewBrowser::start(&IDENTITY).unwrap();
        assert!(matches!(
            new.reveal("l_1", &[0; 32]),
            Err(CoreError::InvalidKey(_))
        ));
        assert!(matches!(
            RunningBrowser::accept("l_1", &[0; 31]),
            Err(CoreError::Malformed { .. })
        ));
    }

    #[test]
    fn codes_are_bound_to_the_link_and_the_bundle_to_its_key() {
        let new = NewBrowser::start(&IDENTITY).unwrap();
        let running = RunningBrowser::accept("l_1", &new.commitment()).unwrap();
        let revealed = new.reveal("l_2", &running.public()).unwrap();
        let checked = running.check(&IDENTITY, &revealed.new_public).unwrap();
        assert_ne!(revealed.code, checked.code, "another link ID, another code");
        let sealed = checked.seal_bundle(b"x").unwrap();
        assert_eq!(
            revealed.open_bundle(&sealed).err(),
            Some(CoreError::Decrypt)
        );
    }
}
