//! An envelope's payload as a relay may deliver it: the part framing, and the retry
//! request the server makes (`"\0sotto-retry\0" || seq`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sotto_core::sealing::decode_payload(data);
    let _ = sotto_core::protocol::parse_retry_request(data);
});
