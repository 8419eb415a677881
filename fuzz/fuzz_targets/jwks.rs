//! A JWKS document from an org's identity provider (or whatever answers at its URL): the
//! keys it yields, or a clean error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = sotto_server::auth::jwks::parse(data) {
        assert!(keys.iter().all(|k| k.kid.is_some()), "a key without a kid was taken");
    }
});
