//! Sign-in over real HTTP: every supported algorithm is accepted, and every kind of bad token
//! is refused with a clear code and creates no user.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

#[tokio::test]
async fn each_algorithm_signs_in_and_creates_the_user_once() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    for (i, mint) in [hs256 as fn(_) -> String, rs256, es256, eddsa]
        .into_iter()
        .enumerate()
    {
        let id = format!("user-{i}");
        let jwt = mint(
            json!({ "user": { "id": id, "email": format!("{id}@acme.test"), "name": "Ann" } }),
        );
        let (status, body) = server
            .post("/v1/auth/jwt", None, json!({ "jwt": jwt }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["org"], "acme");
        assert_eq!(body["user"]["tag"], format!("user_{i}"));
        assert!(
            body["expires_at"].as_i64().unwrap() <= now() + 600,
            "session outlives the JWT"
        );
        // The same user again: found, not duplicated.
        let again = mint(json!({ "user": { "id": id } }));
        let (_, body2) = server
            .post("/v1/auth/jwt", None, json!({ "jwt": again }))
            .await;
        assert_eq!(body2["user"]["id"], body["user"]["id"]);
    }
    assert_eq!(server.user_count(), 4);
}

#[tokio::test]
async fn bad_tokens_are_refused_with_a_clear_code_and_create_nothing() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let user = json!({ "id": "mallory" });
    let other_rsa = EncodingKey::from_rsa_pem(&pem("rsa-other.key")).unwrap();
    let header = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = URL_SAFE_NO_PAD.encode(standard(json!({ "user": user })).to_string());
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            hs256(json!({ "user": user, "exp": now() - 120 })),
            "token_expired",
        ),
        (
            "not yet valid",
            hs256(json!({ "user": user, "nbf": now() + 600 })),
            "token_not_yet_valid",
        ),
        (
            "issued in the future",
            hs256(json!({ "user": user, "iat": now() + 600 })),
            "token_not_yet_valid",
        ),
        (
            "wrong audience",
            rs256(json!({ "user": user, "aud": "someone-else" })),
            "token_wrong_audience",
        ),
        (
            "wrong issuer",
            es256(json!({ "user": user, "iss": "https://evil.test" })),
            "token_wrong_issuer",
        ),
        (
            "no exp",
            hs256(json!({ "user": user, "exp": null })),
            "token_missing_claim",
        ),
        (
            "wrong key",
            sign(Algorithm::RS256, "rs", &other_rsa, json!({ "user": user })),
            "token_bad_signature",
        ),
        (
            "unknown kid",
            sign(
                Algorithm::RS256,
                "nope",
                &other_rsa,
                json!({ "user": user }),
            ),
            "token_unknown_key",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                header(json!({"alg": "none", "typ": "JWT"})),
                payload
            ),
            "token_wrong_algorithm",
        ),
        (
            "alg none with a kid",
            format!(
                "{}.{}.",
                header(json!({"alg": "none", "kid": "hs"})),
                payload
            ),
            "token_wrong_algorithm",
        ),
        (
            // The classic confusion attack: HS256 keyed with the RSA public key's PEM.
            "algorithm swapped",
            sign(
                Algorithm::HS256,
                "rs",
                &EncodingKey::from_secret(&pem("rsa.pub")),
                json!({ "user": user }),
            ),
            "token_wrong_algorithm",
        ),
        (
            "tampered",
            {
                let t = hs256(json!({ "user": user }));
                let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
                parts[1] = URL_SAFE_NO_PAD
                    .encode(standard(json!({ "user": { "id": "admin" } })).to_string());
                parts.join(".")
            },
            "token_bad_signature",
        ),
        ("garbage", "not.a.jwt".into(), "token_malformed"),
    ];
    for (name, jwt, code) in cases {
        let (status, body) = server
            .post("/v1/auth/jwt", None, json!({ "jwt": jwt }))
            .await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        server.user_count(),
        0,
        "a refused token must create no user"
    );
}

#[tokio::test]
async fn existing_users_by_id_or_email_as_typingmind_does() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let (_, created) = server
        .sign_in(&hs256(
            json!({ "user": { "id": 1234, "email": "dana@acme.test" } }),
        ))
        .await;
    let (_, by_id) = server.sign_in(&hs256(json!({ "id": 1234 }))).await;
    let (_, by_email) = server
        .sign_in(&hs256(json!({ "email": "dana@acme.test" })))
        .await;
    assert_eq!((&by_id, &by_email), (&created, &created));
    let (status, body) = server
        .post(
            "/v1/auth/jwt",
            None,
            json!({ "jwt": hs256(json!({ "email": "who@acme.test" })) }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("user_not_found"))
    );
    assert_eq!(server.user_count(), 1);
}

#[tokio::test]
async fn ephemeral_visitors_get_a_temporary_user() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let (status, body) = server
        .post(
            "/v1/auth/ephemeral",
            None,
            json!({ "org": "acme", "token": EPHEMERAL, "name": "Vera Visitor" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["ephemeral"], true);
    assert_eq!(body["user"]["name"], "Vera Visitor");
    assert!(body["user"]["tag"]
        .as_str()
        .unwrap()
        .starts_with("visitor."));
    let (status, body) = server
        .post("/v1/auth/ephemeral", None, json!({ "token": "guess" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("ephemeral_token_invalid"))
    );
    assert_eq!(server.user_count(), 1);
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let resp = server
        .http
        .post(format!("{}/v1/auth/jwt", server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_json");
    let big = "x".repeat(100 * 1024);
    let (status, body) = server
        .post("/v1/auth/jwt", None, json!({ "jwt": big }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let (status, body) = server.get("/v1/me", Some("made-up")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("session_invalid"))
    );
    let (status, body) = server.get("/v1/nowhere", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

/// Posts a JWT sign-in and returns (status, error code or user id).
async fn jwt_outcome(server: &TestServer, jwt: &str) -> (u16, String) {
    let (status, body) = server
        .post("/v1/auth/jwt", None, json!({ "jwt": jwt }))
        .await;
    let what = body["error"]["code"]
        .as_str()
        .or(body["user"]["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    (status, what)
}

#[tokio::test]
async fn a_visitor_cannot_capture_an_account_by_its_email() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    // The visitor registers the new hire's address first.
    let (status, visitor) = server
        .post(
            "/v1/auth/ephemeral",
            None,
            json!({ "token": EPHEMERAL, "email": "newhire@acme.test", "name": "New Hire" }),
        )
        .await;
    assert_eq!(status, 200, "{visitor}");
    // An email-only sign-in does not land in the visitor's account...
    let by_email = hs256(json!({ "email": "newhire@acme.test" }));
    assert_eq!(
        jwt_outcome(&server, &by_email).await,
        (401, "user_not_found".into())
    );
    // ...and once the site has signed the real person in, it names them, not the visitor.
    let (_, real) = server
        .sign_in(&hs256(
            json!({ "user": { "id": "hire-1", "email": "newhire@acme.test", "name": "New Hire" } }),
        ))
        .await;
    let (status, who) = jwt_outcome(&server, &by_email).await;
    assert_eq!((status, who.as_str()), (200, real.as_str()));
    // Email case does not matter.
    let shouted = hs256(json!({ "email": "NewHire@ACME.test" }));
    assert_eq!(jwt_outcome(&server, &shouted).await, (200, real.clone()));
    // ASCII case only: a look-alike address (a dotted capital I for the i), which a
    // locale's Unicode folding would make equal, names nobody.
    for look_alike in ["newh\u{0130}re@acme.test", "NEWH\u{0130}RE@ACME.TEST"] {
        let token = hs256(json!({ "email": look_alike }));
        assert_eq!(
            jwt_outcome(&server, &token).await,
            (401, "user_not_found".into()),
            "{look_alike}"
        );
    }
    assert_ne!(who, visitor["user"]["id"].as_str().unwrap());
    // A token that says its email is unverified names nobody by it.
    let unverified = hs256(json!({ "email": "newhire@acme.test", "email_verified": false }));
    assert_eq!(
        jwt_outcome(&server, &unverified).await,
        (401, "token_email_unverified".into())
    );
    // And an unverified email set through an upsert is not used to find the user later.
    server
        .sign_in(&hs256(
            json!({ "user": { "id": "x-1", "email": "x@acme.test", "email_verified": false } }),
        ))
        .await;
    assert_eq!(
        jwt_outcome(&server, &hs256(json!({ "email": "x@acme.test" }))).await,
        (401, "user_not_found".into())
    );
}

#[tokio::test]
async fn a_configured_audience_issuer_and_org_are_required() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let before = server.user_count();
    for (claims, code) in [
        (json!({ "sub": "a", "aud": null }), "token_missing_claim"),
        (json!({ "sub": "a", "iss": null }), "token_missing_claim"),
    ] {
        assert_eq!(
            jwt_outcome(&server, &hs256(claims.clone())).await,
            (401, code.into()),
            "{claims}"
        );
    }
    // A token made for another org, presented to this one.
    let (status, body) = server
        .post(
            "/v1/auth/jwt",
            None,
            json!({ "jwt": hs256(json!({ "sub": "a", "org": "other" })), "org": "acme" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_wrong_org"))
    );
    assert_eq!(
        server.user_count(),
        before,
        "a refused token creates nobody"
    );
    let (status, _) = jwt_outcome(&server, &hs256(json!({ "sub": "a", "org": "acme" }))).await;
    assert_eq!(status, 200, "the token's own org is fine");
}

/// A JWT sign-in as `sub` with `X-Forwarded-For: forwarded`; (status, Retry-After).
async fn sign_in_as_from(server: &TestServer, sub: &str, forwarded: &str) -> (u16, Option<String>) {
    let resp = server
        .http
        .post(format!("{}/v1/auth/jwt", server.base))
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "jwt": hs256(json!({ "sub": sub })) }))
        .send()
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), retry)
}

/// A sign-in as a new account each time, from `forwarded`.
async fn sign_in_from(server: &TestServer, forwarded: &str) -> (u16, Option<String>) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sign_in_as_from(server, &format!("someone-{n}"), forwarded).await
}

#[tokio::test]
async fn sign_in_limits_count_per_client_behind_a_trusted_proxy() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.auth_rate_per_minute = 2;
    cfg.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let server = TestServer::start(cfg).await;
    // Two attempts from one client, then 429 with when to come back.
    assert_eq!(sign_in_from(&server, "203.0.113.1").await.0, 200);
    assert_eq!(sign_in_from(&server, "203.0.113.1").await.0, 200);
    let (status, retry) = sign_in_from(&server, "203.0.113.1").await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // Another client behind the same proxy is not locked out.
    assert_eq!(sign_in_from(&server, "203.0.113.2").await.0, 200);
    // A client cannot escape its bucket by prepending addresses: the proxy appended its own.
    assert_eq!(sign_in_from(&server, "9.9.9.9, 203.0.113.1").await.0, 429);
    // IPv6 counts per /64: a fresh address in the same block is the same client.
    assert_eq!(sign_in_from(&server, "2001:db8:0:1::1").await.0, 200);
    assert_eq!(sign_in_from(&server, "2001:db8:0:1::2").await.0, 200);
    assert_eq!(sign_in_from(&server, "2001:db8:0:1::3").await.0, 429);
}

#[tokio::test]
async fn a_flood_of_visitor_sign_ins_does_not_lock_staff_at_that_address_out() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.auth_rate_per_minute = 2;
    cfg.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let server = TestServer::start(cfg).await;
    let visitor = async || {
        server
            .http
            .post(format!("{}/v1/auth/ephemeral", server.base))
            .header("x-forwarded-for", "198.51.100.7")
            .json(&json!({ "token": EPHEMERAL }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(visitor().await, 200);
    assert_eq!(visitor().await, 200);
    assert_eq!(
        visitor().await,
        429,
        "visitors from one address are limited"
    );
    // A member of staff behind the same address still signs in, within their own budget.
    assert_eq!(sign_in_from(&server, "198.51.100.7").await.0, 200);
    assert_eq!(sign_in_from(&server, "198.51.100.7").await.0, 200);
    assert_eq!(sign_in_from(&server, "198.51.100.7").await.0, 429);
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_header_changes_nothing() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.auth_rate_per_minute = 2;
    let server = TestServer::start(cfg).await;
    assert_eq!(sign_in_from(&server, "203.0.113.1").await.0, 200);
    assert_eq!(sign_in_from(&server, "203.0.113.2").await.0, 200);
    assert_eq!(
        sign_in_from(&server, "203.0.113.3").await.0,
        429,
        "one peer, one bucket"
    );
}

#[tokio::test]
async fn sign_ins_to_one_account_are_limited_from_any_address() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.auth_rate_per_minute = 2;
    cfg.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let server = TestServer::start(cfg).await;
    // One account from three addresses: the third attempt is refused.
    for (i, expected) in [(1, 200), (2, 200), (3, 429)] {
        assert_eq!(
            sign_in_as_from(&server, "one-account", &format!("203.0.113.{i}"))
                .await
                .0,
            expected
        );
    }
}

/// A demo cluster's shared signing secret must be long enough to be a secret: a short
/// one stops the server at start instead of signing tokens anyone could forge.
#[tokio::test]
async fn a_short_shared_demo_secret_is_refused_at_start() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.demo = true;
    cfg.demo_secret = Some("too-short".into());
    let refused = sotto_server::serve(cfg, async {}, |_| {})
        .await
        .expect_err("refused");
    assert!(refused.contains("SOTTO_DEMO_SECRET"), "{refused}");
}
