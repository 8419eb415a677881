//! Every parser that takes bytes from the network or from a person, fed arbitrary input:
//! each must answer with a value or a typed error — never panic, never hang. (A bounded,
//! stable-Rust stand-in for fuzzing; a `cargo fuzz` run with these as targets is the
//! longer form.)

use proptest::prelude::*;
use sotto_core::protocol::{ClientFrame, ServerFrame};

/// Bytes shaped like the inputs: mostly random, sometimes starting like the real thing.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(|mut v| {
            // An envelope's version and a part header, then anything.
            v.splice(0..0, [0u8, 2, 1, 0, 40]);
            v
        }),
    ]
}

fn jsonish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\{\"type\":\"(ready|envelope|delivered|link_request|prekeys_low|devices_changed|stored|refused|error|ack|retry|send)\"(,\"[a-z_]{1,12}\":(1|-1|\"x\"|null|\\[\\]|\\{\\}|true))*\\}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn envelope_payloads(bytes in payload()) {
        let _ = sotto_core::sealing::decode_payload(&bytes);
        let _ = sotto_core::protocol::parse_retry_request(&bytes);
    }

    #[test]
    fn websocket_frames(text in jsonish()) {
        let _ = ServerFrame::from_json(&text);
        let _ = serde_json::from_str::<ServerFrame>(&text);
        let _ = serde_json::from_str::<ClientFrame>(&text);
    }

    #[test]
    fn thread_expressions(text in prop_oneof![any::<String>(), "[@a-z()+\\- ]{0,200}"]) {
        if let Ok(e) = sotto_core::expr::parse(&text) {
            let _ = e.tags();
        }
    }

    #[test]
    fn deep_expressions_are_refused_not_overflowed(depth in 0usize..5000) {
        let text = format!("{}@a{}", "(".repeat(depth), ")".repeat(depth));
        let _ = sotto_core::expr::parse(&text);
    }

    #[test]
    fn key_backups(text in prop_oneof![
        any::<String>(),
        "sotto-backup:[A-Za-z0-9+/=]{0,120}",
    ]) {
        // Bounded: a forged iteration count is capped before any key derivation runs long.
        let _ = sotto_core::backup::import(&text, "passphrase");
    }
}
