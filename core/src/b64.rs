//! Base64 (standard alphabet, padded) for binary fields inside JSON, as a serde adapter:
//! `#[serde(with = "sotto_core::b64")]`. In a binary format (one that is not
//! human-readable, as the client's stored records are) the same fields are plain bytes.
//!
//! `base64ct` (RustCrypto's, in constant time, which suits keys) rather than `base64`: it
//! is also a fraction of the code in the wasm. Decoding is strict: padding and the unused
//! bits of the last character must be as an encoder writes them.

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Deserializer, Serializer};

pub fn encode(bytes: &[u8]) -> String {
    Base64::encode_string(bytes)
}

pub fn decode(text: &str) -> Result<Vec<u8>, base64ct::Error> {
    Base64::decode_vec(text)
}

pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&encode(bytes))
    } else {
        s.serialize_bytes(bytes)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    if d.is_human_readable() {
        let text = String::deserialize(d)?;
        decode(&text).map_err(serde::de::Error::custom)
    } else {
        d.deserialize_byte_buf(Bytes)
    }
}

/// One field's bytes, for the `Option` adapters: `Some` must be said as such in a binary
/// format (JSON writes the value alone either way).
struct AsBytes<'a>(&'a [u8]);

impl serde::Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

/// One field's bytes, for the `Option` adapters.
struct Field(Vec<u8>);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(Field)
    }
}

/// Takes bytes as a binary format hands them over.
struct Bytes;

impl serde::de::Visitor<'_> for Bytes {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
}

/// The same for `Option<Vec<u8>>` fields.
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&super::AsBytes(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<super::Field>::deserialize(d)?.map(|f| f.0))
    }
}

/// The same for fixed 32-byte keys.
pub mod key {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        super::serialize(bytes, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let bytes = super::deserialize(d)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a key is 32 bytes"))
    }
}

/// The same for optional 32-byte keys.
pub mod key_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&super::AsBytes(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        match Option::<super::Field>::deserialize(d)? {
            Some(f) => {
                f.0.try_into()
                    .map(Some)
                    .map_err(|_| serde::de::Error::custom("a key is 32 bytes"))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    /// RFC 4648, section 10.
    #[test]
    fn the_rfc_4648_vectors_round_trip() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
        }
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=", "the standard alphabet");
    }

    /// One text per value: a second spelling of the same bytes (missing padding, stray
    /// bits in the last character, the URL alphabet, white space) is refused.
    #[test]
    fn only_the_canonical_text_decodes() {
        for bad in [
            "Zg", "Zh==", "Zg=", "Zm9v\n", " Zm9v", "-_8=", "Zm9v===", "Z",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} decoded");
        }
    }
}
