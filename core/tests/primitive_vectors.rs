//! Published test vectors for the primitives under the sessions: X25519 (RFC 7748) and
//! HKDF-SHA256 (RFC 5869); and for the key backup's Argon2id, through the backup's own
//! derivation. HPKE's (RFC 9180) are in `rfc9180_vectors.rs`.

use sotto_core::kdf::hkdf;
use x25519_dalek::{x25519, PublicKey, StaticSecret};

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

#[test]
fn rfc7748_section_5_2_scalar_multiplication() {
    let cases = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (k, u, out) in cases {
        assert_eq!(x25519(h32(k), h32(u)), h32(out));
    }
}

#[test]
fn rfc7748_section_5_2_iterated() {
    let mut k = h32("0900000000000000000000000000000000000000000000000000000000000000");
    let mut u = k;
    for i in 1..=1000 {
        let next = x25519(k, u);
        u = k;
        k = next;
        if i == 1 {
            assert_eq!(
                k,
                h32("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
            );
        }
    }
    assert_eq!(
        k,
        h32("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")
    );
}

#[test]
fn rfc7748_section_6_1_diffie_hellman() {
    let a = StaticSecret::from(h32(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    let b = StaticSecret::from(h32(
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    ));
    let a_pub = PublicKey::from(&a);
    let b_pub = PublicKey::from(&b);
    assert_eq!(
        a_pub.to_bytes(),
        h32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
    assert_eq!(
        b_pub.to_bytes(),
        h32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    );
    let shared = h32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(a.diffie_hellman(&b_pub).to_bytes(), shared);
    assert_eq!(b.diffie_hellman(&a_pub).to_bytes(), shared);
}

/// (IKM, salt, info, OKM in hex).
type HkdfCase = (Vec<u8>, Vec<u8>, Vec<u8>, &'static str);

#[test]
fn rfc5869_appendix_a_sha256_cases() {
    let seq = |from: u8, to: u8| (from..=to).collect::<Vec<u8>>();
    let cases: [HkdfCase; 3] = [
        (
            vec![0x0b; 22],
            seq(0x00, 0x0c),
            seq(0xf0, 0xf9),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        ),
        (
            seq(0x00, 0x4f),
            seq(0x60, 0xaf),
            seq(0xb0, 0xff),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
        ),
        (
            vec![0x0b; 22],
            Vec::new(),
            Vec::new(),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        ),
    ];
    for (ikm, salt, info, okm) in cases {
        let expected = hex::decode(okm).unwrap();
        let mut out = vec![0u8; expected.len()];
        hkdf(&salt, &ikm, &info, &mut out).unwrap();
        assert_eq!(out, expected);
    }
}

/// The reference implementation's test (phc-winner-argon2, `src/test.c`, version 0x13):
/// Argon2id, t = 2, m = 2^16 KiB, p = 1, "password" with salt "somesalt". Run through the
/// backup's own derivation, so the parameters reach the algorithm in the right order.
#[test]
fn argon2id_reference_vector_through_the_backup_derivation() {
    let kdf = sotto_core::backup::Kdf::Argon2id {
        memory_kib: 1 << 16,
        passes: 2,
        lanes: 1,
    };
    let key = kdf.derive("password", b"somesalt").unwrap();
    assert_eq!(
        hex::encode(*key),
        "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"
    );
}
