//! An envelope's payload as a relay may deliver it: the part framing, and what the server
//! makes itself — a retry request (`"\0sotto-retry\0" || seq`) and an expiry notice
//! (`"\0sotto-expired\0" || seq × n`), which must read back as what was written.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sotto_core::protocol::{expired_notice, parse_expired_notice, parse_retry_request};

fuzz_target!(|data: &[u8]| {
    let _ = sotto_core::sealing::decode_payload(data);
    let _ = parse_retry_request(data);
    if let Some(seqs) = parse_expired_notice(data) {
        assert_eq!(expired_notice(&seqs), data);
    }
});
