//! X3DH (the Signal specification, with Sotto's labels): how a device starts a session with
//! another device that is offline, from the prekeys that device left on the server.
//!
//! Each device publishes a signed prekey (X25519, signed by the user's identity, rotated
//! weekly) and a stock of one-time prekeys (each handed out by the server once). The
//! initiator A, with identity `IK_A` and a fresh ephemeral key `EK_A`, computes
//!
//! ```text
//! DH1 = DH(IK_A, SPK_B)  DH2 = DH(EK_A, IK_B)  DH3 = DH(EK_A, SPK_B)  [DH4 = DH(EK_A, OPK_B)]
//! SK  = HKDF-SHA256(salt = 0^32, ikm = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4], info = "sotto/v2 x3dh")
//! AD  = "sotto/v2" || IK_A.signing || IK_A.agreement || IK_B.signing || IK_B.agreement
//! ```
//!
//! and B computes the same from the header of A's first message. `SK` seeds the Double
//! Ratchet ([`crate::ratchet`]), whose first ratchet key on B's side is `SPK_B`.

use crate::identity::{Identity, IdentityPublic, SIG_PREKEY};
use crate::kdf::{hkdf, Secret32};
use crate::CoreError;
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

const INFO: &[u8] = b"sotto/v2 x3dh";

/// A prekey's secret, kept by the device that published it.
#[derive(Clone, Serialize, Deserialize)]
pub struct PreKeySecret {
    pub id: u32,
    #[serde(with = "crate::b64::key")]
    pub secret: [u8; 32],
}

impl Drop for PreKeySecret {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl PreKeySecret {
    pub fn generate(id: u32) -> Result<Self, CoreError> {
        let s = crate::kdf::random_secret()?;
        Ok(PreKeySecret { id, secret: *s })
    }

    pub fn public(&self) -> PreKeyPublic {
        PreKeyPublic {
            id: self.id,
            public: PublicKey::from(&StaticSecret::from(self.secret)).to_bytes(),
        }
    }

    fn static_secret(&self) -> StaticSecret {
        StaticSecret::from(self.secret)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreKeyPublic {
    pub id: u32,
    #[serde(with = "crate::b64::key")]
    pub public: [u8; 32],
}

/// A signed prekey as published: the key and the identity's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPreKey {
    pub key: PreKeyPublic,
    #[serde(with = "crate::b64")]
    pub signature: Vec<u8>,
}

fn signed_bytes(key: &PreKeyPublic) -> Vec<u8> {
    let mut m = key.id.to_be_bytes().to_vec();
    m.extend_from_slice(&key.public);
    m
}

/// Signs a signed prekey with the identity.
pub fn sign_prekey(identity: &Identity, key: &PreKeySecret) -> SignedPreKey {
    let public = key.public();
    SignedPreKey {
        key: public,
        signature: identity.sign(SIG_PREKEY, &signed_bytes(&public)).to_vec(),
    }
}

/// What the server hands out to start a session with one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreKeyBundle {
    pub device_id: String,
    pub identity: IdentityPublic,
    pub signed_prekey: SignedPreKey,
    /// Absent when the device's stock ran out: X3DH then runs without DH4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_prekey: Option<PreKeyPublic>,
}

/// What the initiator puts in front of its first messages so the responder can run X3DH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct X3dhHeader {
    pub identity: IdentityPublic,
    #[serde(with = "crate::b64::key")]
    pub ephemeral: [u8; 32],
    pub signed_prekey_id: u32,
    // Never skipped when absent: it is stored in a binary format, where every field counts.
    #[serde(default)]
    pub one_time_prekey_id: Option<u32>,
}

/// The shared secret and associated data that seed a session.
pub struct Agreement {
    pub shared_secret: Secret32,
    pub associated_data: Vec<u8>,
}

fn associated_data(initiator: &IdentityPublic, responder: &IdentityPublic) -> Vec<u8> {
    let mut ad = b"sotto/v2".to_vec();
    for k in [
        &initiator.signing,
        &initiator.agreement,
        &responder.signing,
        &responder.agreement,
    ] {
        ad.extend_from_slice(k);
    }
    ad
}

fn derive(dhs: &[[u8; 32]]) -> Result<Secret32, CoreError> {
    let mut ikm = Zeroizing::new(vec![0xFFu8; 32]);
    for dh in dhs {
        if dh.iter().all(|b| *b == 0) {
            // A low-order public key forces an all-zero output: refuse it.
            return Err(CoreError::InvalidKey("low-order public key"));
        }
        ikm.extend_from_slice(dh);
    }
    let mut sk = Zeroizing::new([0u8; 32]);
    hkdf(&[0u8; 32], &ikm, INFO, &mut sk[..])?;
    Ok(sk)
}

/// The initiator's side: checks the bundle's signature, then agrees on a secret.
/// Returns the agreement and the header to send.
pub fn initiate(
    own: &Identity,
    bundle: &PreKeyBundle,
) -> Result<(Agreement, X3dhHeader), CoreError> {
    let spk = &bundle.signed_prekey;
    bundle.identity.verify(
        SIG_PREKEY,
        "signed prekey",
        &signed_bytes(&spk.key),
        &spk.signature,
    )?;
    let ephemeral = StaticSecret::from(*crate::kdf::random_secret()?);
    let spk_b = PublicKey::from(spk.key.public);
    let ik_b = PublicKey::from(bundle.identity.agreement);
    let mut dhs = vec![
        own.agreement().diffie_hellman(&spk_b).to_bytes(),
        ephemeral.diffie_hellman(&ik_b).to_bytes(),
        ephemeral.diffie_hellman(&spk_b).to_bytes(),
    ];
    if let Some(opk) = &bundle.one_time_prekey {
        dhs.push(
            ephemeral
                .diffie_hellman(&PublicKey::from(opk.public))
                .to_bytes(),
        );
    }
    let shared_secret = derive(&dhs);
    dhs.zeroize();
    let header = X3dhHeader {
        identity: own.public(),
        ephemeral: PublicKey::from(&ephemeral).to_bytes(),
        signed_prekey_id: spk.key.id,
        one_time_prekey_id: bundle.one_time_prekey.map(|k| k.id),
    };
    Ok((
        Agreement {
            shared_secret: shared_secret?,
            associated_data: associated_data(&header.identity, &bundle.identity),
        },
        header,
    ))
}

/// The responder's side, from the header of the initiator's first message and the prekey
/// secrets it names (the caller deletes the one-time prekey afterwards).
pub fn respond(
    own: &Identity,
    header: &X3dhHeader,
    signed_prekey: &PreKeySecret,
    one_time_prekey: Option<&PreKeySecret>,
) -> Result<Agreement, CoreError> {
    let ik_a = PublicKey::from(header.identity.agreement);
    let ek_a = PublicKey::from(header.ephemeral);
    let spk = signed_prekey.static_secret();
    let mut dhs = vec![
        spk.diffie_hellman(&ik_a).to_bytes(),
        own.agreement().diffie_hellman(&ek_a).to_bytes(),
        spk.diffie_hellman(&ek_a).to_bytes(),
    ];
    if let Some(opk) = one_time_prekey {
        dhs.push(opk.static_secret().diffie_hellman(&ek_a).to_bytes());
    }
    let shared_secret = derive(&dhs);
    dhs.zeroize();
    Ok(Agreement {
        shared_secret: shared_secret?,
        associated_data: associated_data(&header.identity, &own.public()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(id: &Identity, spk: &PreKeySecret, opk: Option<&PreKeySecret>) -> PreKeyBundle {
        PreKeyBundle {
            device_id: "db".into(),
            identity: id.public(),
            signed_prekey: sign_prekey(id, spk),
            one_time_prekey: opk.map(|k| k.public()),
        }
    }

    #[test]
    fn both_sides_agree_with_and_without_a_one_time_prekey() {
        let alice = Identity::generate().unwrap();
        let bob = Identity::generate().unwrap();
        let spk = PreKeySecret::generate(1).unwrap();
        let opk = PreKeySecret::generate(77).unwrap();
        for one_time in [Some(&opk), None] {
            let (a, header) = initiate(&alice, &bundle(&bob, &spk, one_time)).unwrap();
            assert_eq!(header.one_time_prekey_id, one_time.map(|k| k.id));
            let b = respond(&bob, &header, &spk, one_time).unwrap();
            assert_eq!(*a.shared_secret, *b.shared_secret);
            assert_eq!(a.associated_data, b.associated_data);
        }
        // Forgetting the one-time prekey changes the secret.
        let (a, header) = initiate(&alice, &bundle(&bob, &spk, Some(&opk))).unwrap();
        let b = respond(&bob, &header, &spk, None).unwrap();
        assert_ne!(*a.shared_secret, *b.shared_secret);
    }

    #[test]
    fn a_prekey_not_signed_by_the_identity_is_refused() {
        let alice = Identity::generate().unwrap();
        let bob = Identity::generate().unwrap();
        let mallory = Identity::generate().unwrap();
        let spk = PreKeySecret::generate(1).unwrap();
        let mut b = bundle(&bob, &spk, None);
        b.signed_prekey = sign_prekey(&mallory, &spk);
        assert!(matches!(
            initiate(&alice, &b),
            Err(CoreError::BadSignature("signed prekey"))
        ));
        let mut swapped = bundle(&bob, &spk, None);
        swapped.signed_prekey.key.public = PreKeySecret::generate(1).unwrap().public().public;
        assert!(initiate(&alice, &swapped).is_err());
    }
}
