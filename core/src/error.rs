//! The one error type of the core, with a stable machine-readable code for each variant so
//! the client can hand it to JavaScript as `Error.code` unchanged.

use thiserror::Error;

/// Everything that can go wrong in pure protocol and crypto code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A ciphertext did not authenticate: wrong key, tampered bytes or wrong associated data.
    #[error("the message could not be decrypted")]
    Decrypt,
    /// A key or encapsulation had the wrong length or was otherwise unusable.
    #[error("invalid key material: {0}")]
    InvalidKey(&'static str),
    /// The HPKE context has sealed 2^96-1 messages; a new one must be set up.
    #[error("message limit of this encryption context reached")]
    SequenceOverflow,
    /// The operating system or browser could not supply random bytes.
    #[error("no secure random source available")]
    Random,
    /// Bytes that should have been a protocol structure were not.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// The peer speaks a protocol version this build does not know.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// A signature (on a prekey, a device list or a group message) did not verify.
    #[error("a signature did not verify: {0}")]
    BadSignature(&'static str),
    /// A message that was already decrypted once came again; it is refused, never shown twice.
    #[error("this message was already received")]
    Replay,
    /// A message claims to be further ahead in its chain than the skipped-key bound allows.
    #[error("too many messages were skipped")]
    TooManySkipped,
    /// There is no session or sender key for what arrived; the peer must set one up again.
    #[error("no session for this message: {0}")]
    NoSession(&'static str),
    /// An encrypted backup was opened with the wrong passphrase (or was altered).
    #[error("the passphrase is wrong or the backup was altered")]
    WrongPassphrase,
    /// What arrived is not from whom it claims: its identity is not the one that signs the
    /// sender's device list, or the device is not on that list. The relay made it up.
    #[error("unverified sender: {0}")]
    Unverified(&'static str),
    /// The sender is not a member of the thread it writes to (or hands a key out for).
    #[error("the sender is not a member of this thread")]
    NotMember,
    /// A signed device list older than one already seen: a replay.
    #[error("this device list is older than one already seen")]
    StaleDeviceList,
    /// A thread change dated further in the future than clocks can disagree.
    #[error("a change dated in the future")]
    FromTheFuture,
    /// A linking browser's key is not the one it committed to: the relay swapped it.
    #[error("the new browser's key does not match its commitment")]
    LinkTampered,
}

impl CoreError {
    /// The stable code that crosses to JavaScript and into logs.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Decrypt => "decrypt_failed",
            CoreError::InvalidKey(_) => "invalid_key",
            CoreError::SequenceOverflow => "sequence_overflow",
            CoreError::Random => "no_random",
            CoreError::Malformed { .. } => "malformed",
            CoreError::UnsupportedVersion(_) => "unsupported_version",
            CoreError::BadSignature(_) => "bad_signature",
            CoreError::Replay => "replay",
            CoreError::TooManySkipped => "too_many_skipped",
            CoreError::NoSession(_) => "no_session",
            CoreError::WrongPassphrase => "wrong_passphrase",
            CoreError::Unverified(_) => "unverified_sender",
            CoreError::NotMember => "not_a_member",
            CoreError::StaleDeviceList => "stale_device_list",
            CoreError::FromTheFuture => "clock_skew",
            CoreError::LinkTampered => "link_tampered",
        }
    }
}

/// Fills `buf` with cryptographically secure random bytes.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CoreError> {
    getrandom::fill(buf).map_err(|_| CoreError::Random)
}
