//! A key backup pasted into the restore dialog, read up to the key derivation: the
//! derivation itself (Argon2id at 19 MiB or more, PBKDF2 at 600,000 iterations or more) is
//! the point of the format and bounded by `parse`, and the parsing before it is what a
//! crafted backup attacks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sotto_core::backup::parse(&String::from_utf8_lossy(data));
});
