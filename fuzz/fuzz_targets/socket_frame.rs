//! A WebSocket text frame, as the server sends it to a client (`ServerFrame`, parsed in two
//! passes) and as a client sends it to the server (`ClientFrame`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sotto_core::protocol::{ClientFrame, ServerFrame};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ServerFrame::from_json(&text);
    let _ = serde_json::from_str::<ClientFrame>(&text);
});
