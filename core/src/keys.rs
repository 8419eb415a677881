//! A device's long-term X25519 key pair. The secret never leaves the device that made it;
//! only [`DeviceKeys::public_key`] is sent to the server. The secret is zeroized on drop.

use crate::error::random_bytes;
use crate::CoreError;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

pub struct DeviceKeys {
    secret: StaticSecret,
}

impl DeviceKeys {
    /// A new random key pair.
    pub fn generate() -> Result<Self, CoreError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        random_bytes(&mut seed[..])?;
        Ok(Self::from_secret_bytes(*seed))
    }

    /// Restores a key pair from its stored secret.
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        DeviceKeys {
            secret: StaticSecret::from(bytes),
        }
    }

    /// The secret, for storage on this device only.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    pub fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    pub fn public_key(&self) -> [u8; 32] {
        PublicKey::from(&self.secret).to_bytes()
    }
}

/// Parses a 32-byte X25519 public key, as published by a device.
pub fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, CoreError> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| CoreError::InvalidKey("an X25519 public key is 32 bytes"))?;
    Ok(PublicKey::from(arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_round_trips_and_keys_differ() {
        let a = DeviceKeys::generate().unwrap();
        let b = DeviceKeys::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
        let restored = DeviceKeys::from_secret_bytes(*a.secret_bytes());
        assert_eq!(restored.public_key(), a.public_key());
        assert!(parse_public_key(&[0u8; 31]).is_err());
    }
}
