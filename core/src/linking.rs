//! Device linking's check code: both browsers derive it from both public keys involved —
//! the user's identity signing key and the new browser's ephemeral key — so the user can see
//! that the request the running browser approves is the one the new browser made, for the
//! identity it expects. A server that swapped either key would change the code.
//!
//! `code = base32(SHA-256("sotto/v2 link" || identity_signing || ephemeral_public)[..5])`,
//! 8 characters shown as `XXXX-XXXX` (Crockford's alphabet, no I, L, O or U).

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The check code for a link request made with `ephemeral_public` to join `identity_signing`.
pub fn check_code(identity_signing: &[u8], ephemeral_public: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"sotto/v2 link")
        .chain_update(identity_signing)
        .chain_update(ephemeral_public)
        .finalize();
    let bits = digest[..5]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_short_and_differ_per_key() {
        let a = check_code(&[7u8; 32], &[1u8; 32]);
        assert_eq!(a, check_code(&[7u8; 32], &[1u8; 32]));
        assert_ne!(a, check_code(&[7u8; 32], &[2u8; 32]));
        assert_ne!(a, check_code(&[8u8; 32], &[1u8; 32]));
        assert_eq!(a.len(), 9);
        assert_eq!(&a[4..5], "-");
        assert!(a.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
    }
}
