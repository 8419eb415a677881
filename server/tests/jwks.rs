//! Sign-in keys from an identity provider's JWKS, against a real local JWKS server that
//! rotates its keys: new keys work at once, old ones a while longer, users stay signed
//! in, an unreachable provider changes nothing, and a flood of made-up key IDs costs one
//! fetch per interval.

mod common;

use axum::http::header;
use axum::routing::get;
use common::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A JWKS endpoint whose keys the test changes, counting fetches; `None` answers 500.
struct Provider {
    keys: Mutex<Option<JwkSet>>,
    fetches: AtomicUsize,
}

fn jwk(kid: &str, alg: Algorithm, key: &EncodingKey) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk
}

async fn start_provider(provider: Arc<Provider>) -> String {
    let app = axum::Router::new().route(
        "/jwks",
        get(move || {
            let p = provider.clone();
            async move {
                p.fetches.fetch_add(1, Ordering::SeqCst);
                match p.keys.lock().unwrap().clone() {
                    Some(set) => Ok((
                        [(header::CACHE_CONTROL, "public, max-age=600")],
                        axum::Json(set),
                    )),
                    None => Err(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/jwks")
}

/// The test org with no keys of its own: it signs in only with what `url` publishes.
fn jwks_only(db: &TestDb, url: String) -> sotto_server::config::Config {
    let mut cfg = config(db);
    cfg.orgs[0].keys.clear();
    cfg.orgs[0].jwks_url = Some(url);
    cfg
}

#[tokio::test]
async fn keys_rotate_through_the_providers_jwks_while_users_stay_signed_in() {
    let rsa = EncodingKey::from_rsa_pem(&pem("rsa.key")).unwrap();
    let ec = EncodingKey::from_ec_pem(&pem("ec.key")).unwrap();
    let provider = Arc::new(Provider {
        keys: Mutex::new(Some(JwkSet {
            keys: vec![jwk("r1", Algorithm::RS256, &rsa)],
        })),
        fetches: AtomicUsize::new(0),
    });
    let url = start_provider(provider.clone()).await;
    let (_dir, db) = temp_db();
    let cfg = jwks_only(&db, url);
    let server = TestServer::start(cfg).await;
    let token = |alg, kid: &str, key: &EncodingKey, user: &str| {
        sign(alg, kid, key, json!({ "user": { "id": user } }))
    };

    let (session, _) = server
        .sign_in(&token(Algorithm::RS256, "r1", &rsa, "ann"))
        .await;
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 1);
    server
        .sign_in(&token(Algorithm::RS256, "r1", &rsa, "ann"))
        .await;
    assert_eq!(
        provider.fetches.load(Ordering::SeqCst),
        1,
        "cached per Cache-Control"
    );

    // The provider rotates: r1 out, e1 in. A token with e1 fetches the set again (once
    // the refetch interval has passed since the last fetch).
    *provider.keys.lock().unwrap() = Some(JwkSet {
        keys: vec![jwk("e1", Algorithm::ES256, &ec)],
    });
    let (status, body) = server
        .post(
            "/v1/auth/jwt",
            None,
            json!({ "jwt": token(Algorithm::ES256, "e1", &ec, "ann") }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_unknown_key")),
        "too soon to refetch"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5_100)).await;
    server
        .sign_in(&token(Algorithm::ES256, "e1", &ec, "ann"))
        .await;
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);
    // r1 left the set but is kept until the copy that listed it would have gone stale.
    server
        .sign_in(&token(Algorithm::RS256, "r1", &rsa, "ann"))
        .await;
    // Sessions opened before the rotation go on.
    let (status, _) = server.get("/v1/me", Some(&session)).await;
    assert_eq!(status, 200);

    // A flood of made-up kids: refused, and at most one more fetch.
    for i in 0..20 {
        let (status, _) = server
            .post(
                "/v1/auth/jwt",
                None,
                json!({ "jwt": token(Algorithm::ES256, &format!("made-up-{i}"), &ec, "ann") }),
            )
            .await;
        assert_eq!(status, 401);
    }
    assert!(provider.fetches.load(Ordering::SeqCst) <= 3);

    // A published key accepts its own algorithm only, whatever the token's header says.
    let forged = token(
        Algorithm::HS256,
        "e1",
        &EncodingKey::from_secret(b"the-public-key-is-no-secret-at-all-0000"),
        "ann",
    );
    let (status, body) = server
        .post("/v1/auth/jwt", None, json!({ "jwt": forged }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_wrong_algorithm"))
    );

    // The provider goes down: the keys held keep working.
    *provider.keys.lock().unwrap() = None;
    tokio::time::sleep(std::time::Duration::from_millis(5_100)).await;
    let (status, _) = server
        .post(
            "/v1/auth/jwt",
            None,
            json!({ "jwt": token(Algorithm::ES256, "e2", &ec, "ann") }),
        )
        .await;
    assert_eq!(
        status, 401,
        "an unknown kid, and the provider cannot say otherwise"
    );
    server
        .sign_in(&token(Algorithm::ES256, "e1", &ec, "ann"))
        .await;
    server.stop().await;
}

/// A provider (or whatever answers at its URL) that sends a document past the size limit
/// gives no keys, and the server answers on.
#[tokio::test]
async fn an_oversized_jwks_gives_no_keys() {
    let rsa = EncodingKey::from_rsa_pem(&pem("rsa.key")).unwrap();
    let mut keys = vec![jwk("r1", Algorithm::RS256, &rsa)];
    // Padding: many copies of one key, past 64 KiB in all.
    let mut pad = jwk("pad", Algorithm::RS256, &rsa);
    pad.common.key_id = Some("p".repeat(2000));
    keys.extend(std::iter::repeat_n(pad, 60));
    let provider = Arc::new(Provider {
        keys: Mutex::new(Some(JwkSet { keys })),
        fetches: AtomicUsize::new(0),
    });
    let url = start_provider(provider.clone()).await;
    let (_dir, db) = temp_db();
    let cfg = jwks_only(&db, url);
    let server = TestServer::start(cfg).await;
    let token = sign(
        Algorithm::RS256,
        "r1",
        &rsa,
        json!({ "user": { "id": "ann" } }),
    );
    let (status, body) = server
        .post("/v1/auth/jwt", None, json!({ "jwt": token }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_unknown_key"))
    );
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 1);
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200);
    server.stop().await;
}

/// Through the admin API only https is accepted: an API key cannot make the server fetch
/// from its own machine or network.
#[tokio::test]
async fn an_api_key_cannot_point_jwks_at_the_servers_network() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let operator = api_key(&db.location, None, "admin");
    for url in [
        "http://127.0.0.1:5432/",
        "https://127.0.0.1/jwks",
        "https://10.0.0.7/jwks",
        "https://[::1]/jwks",
        "https://[::ffff:127.0.0.1]/jwks",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/jwks",
        "http://internal.example/jwks",
        "file:///etc/passwd",
        "gopher://x",
    ] {
        let (status, body) = server
            .call(
                reqwest::Method::POST,
                "/v1/admin/orgs",
                Some(&operator),
                Some(json!({ "id": "t", "settings": { "jwks_url": url } })),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_setting")),
            "{url}"
        );
    }
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/admin/orgs",
            Some(&operator),
            Some(json!({ "id": "t", "settings": { "jwks_url": "https://idp.example/.well-known/jwks.json" } })),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Visitor tokens per org are bounded (a visitor's sign-in compares against each).
    for _ in 0..50 {
        let (status, _) = server
            .call(
                reqwest::Method::POST,
                "/v1/admin/orgs/t/visitor-tokens",
                Some(&operator),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/admin/orgs/t/visitor-tokens",
            Some(&operator),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("too_many_tokens"))
    );
    server.stop().await;
}

/// The provider drops a compromised key; without a word, its tokens would still be taken
/// until the cached set goes stale (here ten minutes). The operator reloads the JWKS: on
/// every node the key stops at once, while the provider's other keys go on working. A
/// provider that cannot be reached changes nothing.
#[tokio::test]
async fn an_operator_drops_a_compromised_key_on_every_node_at_once() {
    let rsa = EncodingKey::from_rsa_pem(&pem("rsa.key")).unwrap();
    let ec = EncodingKey::from_ec_pem(&pem("ec.key")).unwrap();
    let provider = Arc::new(Provider {
        keys: Mutex::new(Some(JwkSet {
            keys: vec![
                jwk("r1", Algorithm::RS256, &rsa),
                jwk("e1", Algorithm::ES256, &ec),
            ],
        })),
        fetches: AtomicUsize::new(0),
    });
    let url = start_provider(provider.clone()).await;
    let (_dir, db) = temp_db();
    let cfg = jwks_only(&db, url);
    let a = TestServer::start(cfg.clone()).await;
    let b = TestServer::start(cfg).await;
    let key = api_key(&db.location, Some("acme"), "admin");
    let stolen = sign(
        Algorithm::RS256,
        "r1",
        &rsa,
        json!({ "user": { "id": "ann" } }),
    );
    let good = sign(
        Algorithm::ES256,
        "e1",
        &ec,
        json!({ "user": { "id": "ann" } }),
    );
    for node in [&a, &b] {
        node.sign_in(&stolen).await;
    }
    *provider.keys.lock().unwrap() = Some(JwkSet {
        keys: vec![jwk("e1", Algorithm::ES256, &ec)],
    });
    for node in [&a, &b] {
        node.sign_in(&stolen).await;
    }

    let reload = |node: &TestServer| {
        let (node, key) = (node.base.clone(), key.clone());
        async move {
            let resp = reqwest::Client::new()
                .post(format!("{node}/v1/admin/orgs/acme/jwks/reload"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = reload(&a).await;
    assert_eq!((status, &body["kids"]), (200, &json!(["e1"])), "{body}");
    let refused = |node: &TestServer| {
        let stolen = stolen.clone();
        let node_url = node.base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{node_url}/v1/auth/jwt"))
                .json(&json!({ "jwt": stolen }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(refused(&a).await, 401, "the node that reloaded");
    // The other node learns of the reload when it next reads the orgs (every 5 s).
    let mut status = 200;
    for _ in 0..100 {
        status = refused(&b).await;
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "the other node");
    for node in [&a, &b] {
        node.sign_in(&good).await;
    }
    // Again at once: refused, since each reload costs every node a rebuild.
    let (status, body) = reload(&a).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    // Down, the provider: a reload says so, and the node keeps what it holds.
    provider.keys.lock().unwrap().take();
    let (status, body) = reload(&b).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("jwks_unavailable")),
        "{body}"
    );
    b.sign_in(&good).await;
    let (_, log) = a
        .call(
            reqwest::Method::GET,
            "/v1/admin/orgs/acme/audit",
            Some(&key),
            None,
        )
        .await;
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "org.jwks_reload"),
        "{log}"
    );
    a.stop().await;
    b.stop().await;
}
