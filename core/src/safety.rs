//! Safety numbers: what two users compare (read aloud, or side by side) to know that no one
//! sits between them. Each side's half is a fingerprint of their public identity; the two
//! halves are sorted, so both users see the same 60 digits.
//!
//! ```text
//! half(user)  = SHA-512^5200("\x00\x00" || identity.signing || identity.agreement || user_id)
//!               (iterated as in Signal: h = SHA-512(h || identity.signing || identity.agreement))
//! digits      = the first 30 bytes as six 5-byte chunks, each (u40 mod 100000), 5 digits
//! number      = sort(half(a), half(b)) concatenated: 60 digits, shown in 12 groups of 5
//! ```

use crate::identity::IdentityPublic;
use sha2::{Digest, Sha512};

const ITERATIONS: usize = 5200;

fn half(identity: &IdentityPublic, user_id: &str) -> String {
    let mut h = Sha512::new()
        .chain_update([0u8, 0u8])
        .chain_update(identity.signing)
        .chain_update(identity.agreement)
        .chain_update(user_id.as_bytes())
        .finalize();
    for _ in 0..ITERATIONS {
        h = Sha512::new()
            .chain_update(h)
            .chain_update(identity.signing)
            .chain_update(identity.agreement)
            .finalize();
    }
    (0..6)
        .map(|i| {
            let chunk = &h[i * 5..i * 5 + 5];
            let v = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", v % 100_000)
        })
        .collect()
}

/// The safety number of two users, identical on both sides: 60 digits in groups of five.
pub fn safety_number(a: (&str, &IdentityPublic), b: (&str, &IdentityPublic)) -> String {
    let mut halves = [half(a.1, a.0), half(b.1, b.0)];
    // The smaller half first (two items: no sort needed, nor its code in the wasm).
    if halves[0] > halves[1] {
        halves.swap(0, 1);
    }
    let digits = halves.concat();
    digits
        .as_bytes()
        .chunks(5)
        .map(|c| std::str::from_utf8(c).expect("digits"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn both_sides_see_the_same_number_and_a_new_key_changes_it() {
        let alice = Identity::generate().unwrap().public();
        let bob = Identity::generate().unwrap().public();
        let n = safety_number(("ua", &alice), ("ub", &bob));
        assert_eq!(n, safety_number(("ub", &bob), ("ua", &alice)));
        assert_eq!(n.len(), 60 + 11);
        assert!(n.chars().all(|c| c.is_ascii_digit() || c == ' '));
        let bob2 = Identity::generate().unwrap().public();
        assert_ne!(n, safety_number(("ua", &alice), ("ub", &bob2)));
    }
}
