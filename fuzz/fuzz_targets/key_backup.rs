//! A key backup pasted into the restore dialog. Inputs whose header would start a key
//! derivation (600,000 iterations or more by design) are left out: the derivation is the
//! point of the format, and the parsing before it is what a crafted backup attacks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sotto_core::backup::{MAX_ITERATIONS, MIN_ITERATIONS};

fn would_derive(text: &str) -> bool {
    let Some(body) = text.trim().strip_prefix("sotto-backup:") else {
        return false;
    };
    let Ok(bytes) = sotto_core::b64::decode(body.trim()) else {
        return false;
    };
    if bytes.len() < 34 + 16 || bytes[0] != 1 || bytes[1] != 1 {
        return false;
    }
    let iterations = u32::from_be_bytes(bytes[2..6].try_into().unwrap());
    (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if !would_derive(&text) {
        let _ = sotto_core::backup::import(&text, "a passphrase");
    }
});
