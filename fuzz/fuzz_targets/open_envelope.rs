//! A device opening whatever a relay labels as coming from another user's device: every
//! check of `Account::open` runs on bytes the attacker chose. Whatever it refuses, it must
//! refuse without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sotto_core::account::Account;
use sotto_core::identity::IdentityPublic;
use sotto_core::inbox::{Inbound, Standing};
use std::sync::OnceLock;

/// Made once: generating keys for every input would drown the fuzzer.
fn parties() -> &'static (Account, IdentityPublic) {
    static PARTIES: OnceLock<(Account, IdentityPublic)> = OnceLock::new();
    PARTIES.get_or_init(|| {
        let own = Account::generate("bob", 0).expect("account");
        let sender = Account::generate("alice", 0)
            .expect("account")
            .identity_public();
        (own, sender)
    })
}

fuzz_target!(|data: &[u8]| {
    let (own, sender) = parties();
    let mut account = Account::from_record(&own.to_record()).unwrap();
    let inbound = Inbound {
        payload: data,
        sender_user: "alice",
        sender_device: "alice-1",
        live: data.first().is_some_and(|b| b & 1 == 1),
    };
    let threads = |_: &str, _: &str| Standing::Unknown;
    let _ = account.open(&inbound, "bob-1", sender, &threads);
});
