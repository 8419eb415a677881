//! DHKEM(X25519, HKDF-SHA256), KEM id 0x0020 (RFC 9180 §4.1).

use super::labeled::{self, NH};
use crate::error::random_bytes;
use crate::CoreError;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

pub const KEM_ID: u16 = 0x0020;
/// Length of an encapsulated key (`Nenc`): the ephemeral X25519 public key.
pub const ENC_LEN: usize = 32;
/// Length of a serialized X25519 public key (`Npk`).
pub const PUBLIC_KEY_LEN: usize = 32;

const SUITE_ID: [u8; 5] = [b'K', b'E', b'M', (KEM_ID >> 8) as u8, KEM_ID as u8];

/// The KEM's shared secret (`Nsecret` = 32 bytes), zeroized on drop.
pub type SharedSecret = Zeroizing<[u8; NH]>;

/// `DeriveKeyPair(ikm)`: the deterministic key pair that the RFC's vectors start from.
pub fn derive_key_pair(ikm: &[u8]) -> Result<StaticSecret, CoreError> {
    let prk = labeled::extract(&SUITE_ID, b"", b"dkp_prk", ikm);
    let mut sk = Zeroizing::new([0u8; 32]);
    labeled::expand(&SUITE_ID, &prk[..], b"sk", b"", &mut sk[..])?;
    Ok(StaticSecret::from(*sk))
}

/// `Encap(pkR)` with a fresh ephemeral key.
pub fn encap(recipient: &PublicKey) -> Result<(SharedSecret, [u8; ENC_LEN]), CoreError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    random_bytes(&mut seed[..])?;
    encap_with(recipient, StaticSecret::from(*seed))
}

/// `Encap(pkR)` with a given ephemeral secret: the deterministic form the test vectors use.
pub fn encap_with(
    recipient: &PublicKey,
    ephemeral: StaticSecret,
) -> Result<(SharedSecret, [u8; ENC_LEN]), CoreError> {
    let enc = PublicKey::from(&ephemeral).to_bytes();
    let dh = ephemeral.diffie_hellman(recipient);
    if !dh.was_contributory() {
        return Err(CoreError::InvalidKey("low-order public key"));
    }
    let secret = extract_and_expand(dh.as_bytes(), &enc, recipient.as_bytes())?;
    Ok((secret, enc))
}

/// `Decap(enc, skR)`.
pub fn decap(enc: &[u8], recipient: &StaticSecret) -> Result<SharedSecret, CoreError> {
    let enc: [u8; ENC_LEN] = enc
        .try_into()
        .map_err(|_| CoreError::InvalidKey("encapsulated key must be 32 bytes"))?;
    let dh = recipient.diffie_hellman(&PublicKey::from(enc));
    if !dh.was_contributory() {
        return Err(CoreError::InvalidKey("low-order public key"));
    }
    let own = PublicKey::from(recipient);
    extract_and_expand(dh.as_bytes(), &enc, own.as_bytes())
}

fn extract_and_expand(dh: &[u8], enc: &[u8], pk_r: &[u8]) -> Result<SharedSecret, CoreError> {
    let eae_prk = labeled::extract(&SUITE_ID, b"", b"eae_prk", dh);
    let mut kem_context = [0u8; ENC_LEN + PUBLIC_KEY_LEN];
    kem_context[..ENC_LEN].copy_from_slice(enc);
    kem_context[ENC_LEN..].copy_from_slice(pk_r);
    let mut secret = Zeroizing::new([0u8; NH]);
    labeled::expand(
        &SUITE_ID,
        &eae_prk[..],
        b"shared_secret",
        &kem_context,
        &mut secret[..],
    )?;
    Ok(secret)
}
