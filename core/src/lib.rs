//! `sotto-core`: everything in Sotto that is neither browser nor server.
//!
//! The wasm client (`sotto`) and the relay (`sotto-server`) both depend on this crate, so the
//! protocol they speak is defined once, here, and tested natively:
//!
//! - [`protocol`]: the versioned wire types (HTTP bodies, WebSocket frames, envelopes and the
//!   encrypted message body);
//! - [`expr`]: the parser for thread distribution expressions such as `@support - @gary`;
//! - [`hpke`]: RFC 9180 HPKE base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM;
//! - [`keys`]: a device's X25519 key pair;
//! - [`linking`]: the commit-then-reveal exchange and check code that link a new browser;
//! - [`attachment`]: files encrypted once under a fresh key, the key sent inside messages;
//! - [`sealing`]: how one message body becomes one envelope per recipient device;
//! - [`inbox`]: opening an envelope — every check on what the relay delivered, then one commit;
//! - [`trust`]: which identities and device lists to believe (pins, versions, warnings);
//! - [`membership`]: who may change a thread, and when a change counts;
//! - [`amend`]: who may edit, delete or react to a message, and which change wins.
//!
//! Nothing here does I/O: randomness comes from `getrandom`, which works natively and in the
//! browser alike.

pub mod account;
pub mod amend;
pub mod attachment;
pub mod b64;
pub mod backup;
pub mod error;
pub mod expr;
pub mod hpke;
pub mod identity;
pub mod inbox;
pub mod kdf;
pub mod keys;
pub mod linking;
pub mod membership;
pub mod prekeys;
pub mod protocol;
pub mod ratchet;
pub mod safety;
pub mod sealing;
pub mod sender_key;
pub mod trust;
pub mod vec_map;

pub use error::CoreError;
