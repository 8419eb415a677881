//! A user's identity: an Ed25519 key that signs (prekeys, the device list) and an X25519 key
//! that takes part in X3DH. Every device of the user holds the same identity — a new browser
//! gets it by device linking or from an encrypted backup — while each device has its own
//! prekeys and sessions. Other users pin the public half and are warned when it changes.
//!
//! The user's list of devices is signed by the identity ([`SignedDeviceList`]), so a server
//! that adds a device of its own to someone's list is caught: senders encrypt only to the
//! devices that the signed list names.

use crate::kdf::Secret32;
use crate::CoreError;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Domain labels: a signature made for one purpose never verifies for another.
pub(crate) const SIG_PREKEY: &[u8] = b"sotto/v2 signed prekey";
pub(crate) const SIG_DEVICE_LIST: &[u8] = b"sotto/v2 device list";

/// The secret identity. Zeroized on drop (both dalek types zeroize themselves).
pub struct Identity {
    signing: SigningKey,
    agreement: StaticSecret,
}

/// The public identity that other users pin and compare (see [`crate::safety`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityPublic {
    #[serde(with = "crate::b64::key")]
    pub signing: [u8; 32],
    #[serde(with = "crate::b64::key")]
    pub agreement: [u8; 32],
}

impl Identity {
    pub fn generate() -> Result<Self, CoreError> {
        let mut bytes = Zeroizing::new([0u8; 64]);
        crate::error::random_bytes(&mut bytes[..])?;
        Ok(Self::from_secret_bytes(&bytes))
    }

    /// The 64 secret bytes (signing seed, then agreement secret), for the encrypted store,
    /// a backup or a linked device — never for the server.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut out = Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(&self.signing.to_bytes());
        out[32..].copy_from_slice(self.agreement.as_bytes());
        out
    }

    pub fn from_secret_bytes(bytes: &[u8; 64]) -> Self {
        let seed: Secret32 = Zeroizing::new(bytes[..32].try_into().expect("32"));
        let agree: Secret32 = Zeroizing::new(bytes[32..].try_into().expect("32"));
        Identity {
            signing: SigningKey::from_bytes(&seed),
            agreement: StaticSecret::from(*agree),
        }
    }

    pub fn public(&self) -> IdentityPublic {
        IdentityPublic {
            signing: self.signing.verifying_key().to_bytes(),
            agreement: PublicKey::from(&self.agreement).to_bytes(),
        }
    }

    pub(crate) fn agreement(&self) -> &StaticSecret {
        &self.agreement
    }

    /// Signs `message` for the purpose named by `label`.
    pub(crate) fn sign(&self, label: &[u8], message: &[u8]) -> [u8; 64] {
        let mut data = label.to_vec();
        data.extend_from_slice(message);
        self.signing.sign(&data).to_bytes()
    }

    /// Signs a device list: the list travels as the exact JSON that was signed.
    pub fn sign_device_list(&self, list: &DeviceList) -> SignedDeviceList {
        let json = serde_json::to_string(list).expect("a device list serializes");
        let signature = self.sign(SIG_DEVICE_LIST, json.as_bytes()).to_vec();
        SignedDeviceList {
            list: json,
            signature,
        }
    }
}

impl IdentityPublic {
    /// Checks a signature made by [`Identity::sign`] with the same label.
    pub(crate) fn verify(
        &self,
        label: &[u8],
        what: &'static str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CoreError> {
        let key = VerifyingKey::from_bytes(&self.signing)
            .map_err(|_| CoreError::InvalidKey("identity signing key"))?;
        let sig: [u8; 64] = signature
            .try_into()
            .map_err(|_| CoreError::BadSignature(what))?;
        let mut data = label.to_vec();
        data.extend_from_slice(message);
        key.verify_strict(&data, &Signature::from_bytes(&sig))
            .map_err(|_| CoreError::BadSignature(what))
    }

    /// Opens a signed device list, checking that this identity signed it for `user_id`.
    pub fn verify_device_list(
        &self,
        signed: &SignedDeviceList,
        user_id: &str,
    ) -> Result<DeviceList, CoreError> {
        self.verify(
            SIG_DEVICE_LIST,
            "device list",
            signed.list.as_bytes(),
            &signed.signature,
        )?;
        let list: DeviceList =
            serde_json::from_slice(signed.list.as_bytes()).map_err(|e| CoreError::Malformed {
                what: "device list",
                detail: e.to_string(),
            })?;
        if list.user_id != user_id {
            return Err(CoreError::BadSignature("device list of another user"));
        }
        Ok(list)
    }
}

/// The devices a user has, as their identity vouches for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    pub user_id: String,
    /// Increases with every change (Unix milliseconds of the change), so an old list cannot
    /// be replayed over a newer one.
    pub version: i64,
    pub devices: Vec<String>,
}

/// A [`DeviceList`] as the JSON text that was signed, and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDeviceList {
    pub list: String,
    #[serde(with = "crate::b64")]
    pub signature: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_and_sign() {
        let id = Identity::generate().unwrap();
        let restored = Identity::from_secret_bytes(&id.secret_bytes());
        assert_eq!(restored.public(), id.public());
        let list = DeviceList {
            user_id: "u1".into(),
            version: 5,
            devices: vec!["d1".into(), "d2".into()],
        };
        let signed = id.sign_device_list(&list);
        assert_eq!(id.public().verify_device_list(&signed, "u1").unwrap(), list);
        assert!(id.public().verify_device_list(&signed, "u2").is_err());
        let other = Identity::generate().unwrap();
        assert!(matches!(
            other.public().verify_device_list(&signed, "u1"),
            Err(CoreError::BadSignature(_))
        ));
        // A server that adds its own device to the list breaks the signature.
        let mut forged = signed.clone();
        forged.list = forged.list.replace("\"d2\"", "\"d2\",\"evil\"");
        assert!(id.public().verify_device_list(&forged, "u1").is_err());
        // A signature for a prekey is not one for a device list.
        let sig = id.sign(SIG_PREKEY, signed.list.as_bytes());
        let relabelled = SignedDeviceList {
            signature: sig.to_vec(),
            ..signed
        };
        assert!(id.public().verify_device_list(&relabelled, "u1").is_err());
    }
}

/// For this device's encrypted key store only: the identity as its secret bytes.
pub(crate) mod secret_serde {
    use super::Identity;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &Identity, s: S) -> Result<S::Ok, S::Error> {
        crate::b64::serialize(&id.secret_bytes()[..], s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Identity, D::Error> {
        let bytes = zeroize::Zeroizing::new(crate::b64::deserialize(d)?);
        let arr: [u8; 64] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::custom("an identity is 64 bytes"))?;
        let arr = zeroize::Zeroizing::new(arr);
        Ok(Identity::from_secret_bytes(&arr))
    }
}
