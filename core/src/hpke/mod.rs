//! HPKE base mode (RFC 9180) for one suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and an
//! AES-GCM AEAD — AES-256-GCM in Sotto ([`Suite`]); AES-128-GCM exists only so the RFC's
//! Appendix A.1 vectors exercise the same code.
//!
//! Laid out after the RFC: [`labeled`] holds `LabeledExtract`/`LabeledExpand`, [`kem`] the
//! DHKEM, [`context`] the key schedule and the sealing contexts with their sequence numbers.
//! [`seal`] and [`open`] are the single-shot API that the rest of Sotto uses.

pub mod context;
pub mod kem;
pub mod labeled;

pub use context::{HpkeAead, RecipientContext, SenderContext};
pub use kem::{ENC_LEN, PUBLIC_KEY_LEN};

use crate::CoreError;
use x25519_dalek::{PublicKey, StaticSecret};

/// The AEAD of Sotto's suite (RFC 9180 aead_id 0x0002).
pub type Suite = aes_gcm::Aes256Gcm;

/// Seals `plaintext` to `recipient` in one shot: returns `(enc, ciphertext)`.
pub fn seal(
    recipient: &PublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<([u8; ENC_LEN], Vec<u8>), CoreError> {
    let (enc, mut ctx) = SenderContext::<Suite>::setup_base(recipient, info)?;
    let ciphertext = ctx.seal(aad, plaintext)?;
    Ok((enc, ciphertext))
}

/// Opens a single-shot ciphertext made by [`seal`].
pub fn open(
    recipient: &StaticSecret,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CoreError> {
    let mut ctx = RecipientContext::<Suite>::setup_base(enc, recipient, info)?;
    ctx.open(aad, ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let sk = StaticSecret::from([7u8; 32]);
        let pk = PublicKey::from(&sk);
        let (enc, ct) = seal(&pk, b"info", b"aad", b"hello").unwrap();
        assert_eq!(open(&sk, &enc, b"info", b"aad", &ct).unwrap(), b"hello");
        assert_eq!(
            open(&sk, &enc, b"info", b"other", &ct),
            Err(CoreError::Decrypt)
        );
        assert_eq!(
            open(&sk, &enc, b"other", b"aad", &ct),
            Err(CoreError::Decrypt)
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            open(&sk, &enc, b"info", b"aad", &bad),
            Err(CoreError::Decrypt)
        );
        let wrong = StaticSecret::from([8u8; 32]);
        assert_eq!(
            open(&wrong, &enc, b"info", b"aad", &ct),
            Err(CoreError::Decrypt)
        );
    }

    #[test]
    fn every_seal_uses_a_fresh_ephemeral_key() {
        let pk = PublicKey::from(&StaticSecret::from([7u8; 32]));
        let (enc1, ct1) = seal(&pk, b"", b"", b"same").unwrap();
        let (enc2, ct2) = seal(&pk, b"", b"", b"same").unwrap();
        assert_ne!(enc1, enc2);
        assert_ne!(ct1, ct2);
    }

    #[test]
    fn short_enc_is_refused() {
        let sk = StaticSecret::from([7u8; 32]);
        assert!(matches!(
            open(&sk, &[1, 2, 3], b"", b"", b"x"),
            Err(CoreError::InvalidKey(_))
        ));
    }
}
