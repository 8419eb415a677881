//! RFC 9180 test vectors for base mode with DHKEM(X25519, HKDF-SHA256) and HKDF-SHA256:
//! Appendix A.1.1 (AES-128-GCM, aead_id 1) and the CFRG's published vector for the same KEM
//! and KDF with AES-256-GCM (aead_id 2, Sotto's suite), from the `test-vectors.json` that
//! accompanies the RFC. Each checks key derivation, encapsulation, decapsulation and a
//! sequence of seals and opens against the published bytes.

use serde::Deserialize;
use sotto_core::hpke::kem::{decap, derive_key_pair};
use sotto_core::hpke::{HpkeAead, RecipientContext, SenderContext};
use x25519_dalek::{PublicKey, StaticSecret};

#[derive(Deserialize)]
struct Vector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "skRm")]
    sk_rm: String,
    #[serde(rename = "skEm")]
    sk_em: String,
    #[serde(rename = "pkRm")]
    pk_rm: String,
    enc: String,
    shared_secret: String,
    encryptions: Vec<Encryption>,
}

#[derive(Deserialize)]
struct Encryption {
    aad: String,
    #[serde(rename = "ct")]
    ciphertext: String,
    #[serde(rename = "pt")]
    plaintext: String,
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn vectors() -> Vec<Vector> {
    serde_json::from_str(include_str!("vectors/rfc9180-base-x25519-sha256.json")).unwrap()
}

fn check<A: HpkeAead>(v: &Vector) {
    assert_eq!((v.mode, v.kem_id, v.kdf_id), (0, 0x20, 1));
    let sk_r = derive_key_pair(&h(&v.ikm_r)).unwrap();
    assert_eq!(sk_r.to_bytes().to_vec(), h(&v.sk_rm), "DeriveKeyPair(ikmR)");
    let sk_e = derive_key_pair(&h(&v.ikm_e)).unwrap();
    assert_eq!(sk_e.to_bytes().to_vec(), h(&v.sk_em), "DeriveKeyPair(ikmE)");
    let pk_r = PublicKey::from(&sk_r);
    assert_eq!(pk_r.as_bytes().to_vec(), h(&v.pk_rm));

    let info = h(&v.info);
    let (enc, mut sender) = SenderContext::<A>::setup_base_with(&pk_r, sk_e, &info).unwrap();
    assert_eq!(enc.to_vec(), h(&v.enc), "enc");
    assert_eq!(
        decap(&enc, &sk_r).unwrap().to_vec(),
        h(&v.shared_secret),
        "shared_secret"
    );

    let mut recipient = RecipientContext::<A>::setup_base(&enc, &sk_r, &info).unwrap();
    for (i, e) in v.encryptions.iter().enumerate() {
        let ct = sender.seal(&h(&e.aad), &h(&e.plaintext)).unwrap();
        assert_eq!(ct, h(&e.ciphertext), "ciphertext of sequence number {i}");
        let pt = recipient.open(&h(&e.aad), &ct).unwrap();
        assert_eq!(pt, h(&e.plaintext), "plaintext of sequence number {i}");
    }
}

#[test]
fn appendix_a_1_1_aes128gcm() {
    let v = vectors().into_iter().find(|v| v.aead_id == 1).unwrap();
    check::<aes_gcm::Aes128Gcm>(&v);
}

#[test]
fn cfrg_vector_aes256gcm_sottos_suite() {
    let v = vectors().into_iter().find(|v| v.aead_id == 2).unwrap();
    assert!(v.encryptions.len() >= 10);
    check::<aes_gcm::Aes256Gcm>(&v);
}

#[test]
fn a_forged_message_does_not_advance_the_recipient() {
    let sk_r = StaticSecret::from([3u8; 32]);
    let (enc, mut s) =
        SenderContext::<aes_gcm::Aes256Gcm>::setup_base(&PublicKey::from(&sk_r), b"").unwrap();
    let mut r = RecipientContext::<aes_gcm::Aes256Gcm>::setup_base(&enc, &sk_r, b"").unwrap();
    let first = s.seal(b"", b"one").unwrap();
    assert!(r.open(b"", b"not a real ciphertext at all").is_err());
    assert_eq!(r.open(b"", &first).unwrap(), b"one");
}
