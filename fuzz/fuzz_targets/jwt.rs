//! A sign-in token from anyone on the internet: header and claims peeked at, then verified
//! against an org with a key, an audience and an issuer. It must be refused, cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sotto_server::auth::jwt::{peek_claims, OrgAuth, VerifyingKey};
use std::sync::OnceLock;

fn org() -> &'static OrgAuth {
    static ORG: OnceLock<OrgAuth> = OnceLock::new();
    ORG.get_or_init(|| OrgAuth {
        id: "o".into(),
        name: None,
        keys: vec![VerifyingKey::hs256(Some("k".into()), &[7; 32])],
        audience: vec!["a".into()],
        issuer: Some("i".into()),
        leeway: 30,
        ephemeral_tokens: vec![],
        visitor_token_hashes: vec![],
        in_file: true,
        jwks_url: None,
        visitor_tags: vec![],
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = peek_claims(&text);
    assert!(
        org().verify(&text).is_err(),
        "a token nobody signed was accepted"
    );
});
