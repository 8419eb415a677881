//! Webhooks over real HTTP to a real local receiver: signed events for new users and
//! devices, a notice for a recipient who is not online (never the content), retries
//! until the receiver answers, and URLs an API key may not use.

mod common;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sotto_server::config::Config;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver got: (headers, body, whether it answered success), and how many more
/// times it answers 500.
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<(HeaderMap, String, bool)>>,
    fail_next: Mutex<u32>,
}

async fn start_receiver(r: Arc<Receiver>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let r = r.clone();
            async move {
                let mut fail = r.fail_next.lock().unwrap();
                let ok = *fail == 0;
                *fail = fail.saturating_sub(1);
                r.got.lock().unwrap().push((headers, body, ok));
                if ok {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

/// Checks a delivery as the README tells a site to: the HMAC of "<t>.<body>" under the
/// secret, and a timestamp within five minutes.
fn verified(secret: &str, headers: &HeaderMap, body: &str) -> Value {
    let header = headers["sotto-signature"].to_str().unwrap();
    let (t, v1) = header.split_once(',').unwrap();
    let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
    assert!((now() - t).abs() < 300, "fresh timestamp");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        v1.strip_prefix("v1=").unwrap(),
        expected,
        "the signature verifies"
    );
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(headers["sotto-event-id"], event["id"].as_str().unwrap());
    event
}

/// Waits up to `secs` for an event of `kind` that `matches`.
async fn wait_for(
    r: &Receiver,
    secret: &str,
    kind: &str,
    secs: u64,
    matches: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..secs * 10 {
        let got = r.got.lock().unwrap().clone();
        for (headers, body, _) in got.iter().filter(|(_, _, ok)| *ok) {
            let event = verified(secret, headers, body);
            if event["type"] == kind && matches(&event) {
                return event;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {kind} event within {secs} s");
}

/// Starts a server with `cfg` and gives its org acme a webhook to `url` for `events`;
/// returns the server, the admin key that made it, and the webhook (with its secret).
async fn with_webhook(
    db: &TestDb,
    cfg: Config,
    url: &str,
    events: &[&str],
) -> (TestServer, String, Value) {
    let server = TestServer::start(cfg).await;
    let key = api_key(&db.location, Some("acme"), "admin");
    let (status, hook) = server
        .call(
            Method::POST,
            "/v1/admin/orgs/acme/webhooks",
            Some(&key),
            Some(json!({ "url": url, "events": events })),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    (server, key, hook)
}

/// The org's webhooks as the admin API lists them.
async fn webhook_list(server: &TestServer, key: &str) -> Value {
    let (_, list) = server
        .call(Method::GET, "/v1/admin/orgs/acme/webhooks", Some(key), None)
        .await;
    list
}

#[tokio::test]
async fn events_are_signed_retried_and_never_carry_content() {
    let receiver = Arc::new(Receiver::default());
    let url = start_receiver(receiver.clone()).await;
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.webhook_offline_after = Duration::from_secs(1);
    let events = [
        "user.created",
        "device.added",
        "message.queued_for_offline_user",
        "device.removed",
    ];
    let (server, key, hook) = with_webhook(&db, cfg, &url, &events).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let list = webhook_list(&server, &key).await;
    assert!(
        !list.to_string().contains(&secret),
        "the secret is shown once"
    );

    // The receiver fails twice: the first event still arrives, a few seconds late.
    *receiver.fail_next.lock().unwrap() = 2;
    let alice = server.user_with_device("wh-alice", [1; 32]).await;
    let created = wait_for(&receiver, &secret, "user.created", 20, |e| {
        e["data"]["user"]["external_id"] == "wh-alice"
    })
    .await;
    assert_eq!(created["data"]["user"]["id"], alice.user_id.as_str());
    let failed = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, ok)| !ok)
        .count();
    assert_eq!(failed, 2, "the receiver's two failures were retried");
    wait_for(&receiver, &secret, "device.added", 20, |e| {
        e["data"]["device_id"] == alice.device_id.as_str()
    })
    .await;

    // Bob has a device but no socket: he is told about, Carol (online, acking) is not.
    let bob = server.user_with_device("wh-bob", [2; 32]).await;
    let carol = server.user_with_device("wh-carol", [3; 32]).await;
    let mut carol_ws = connect(&server, &carol).await;
    send(&server, &alice, &[&bob], "secret words for bob").await;
    send(&server, &alice, &[&carol], "secret words for carol").await;
    let frame = next_of_type(&mut carol_ws, "envelope").await;
    ack(&mut carol_ws, frame["seq"].as_i64().unwrap()).await;
    let offline = wait_for(
        &receiver,
        &secret,
        "message.queued_for_offline_user",
        15,
        |_| true,
    )
    .await;
    assert_eq!(offline["data"]["user"]["external_id"], "wh-bob");
    assert_eq!(offline["data"]["sender"]["external_id"], "wh-alice");
    assert_eq!(offline["data"]["messages"], 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let everything: String = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b, _)| b.clone())
        .collect();
    assert!(
        !everything.contains("secret words"),
        "content never leaves in an event"
    );
    assert!(
        !everything.contains("c2VjcmV0IHdvcmRz"),
        "not even as base64"
    );
    let offline_for: Vec<String> = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, b, _)| {
            let e: Value = serde_json::from_str(b).ok()?;
            (e["type"] == "message.queued_for_offline_user").then(|| {
                e["data"]["user"]["external_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect();
    assert!(offline_for.iter().all(|u| u == "wh-bob"), "{offline_for:?}");
    assert_eq!(
        offline_for.iter().filter(|u| *u == "wh-bob").count(),
        1,
        "no repeat for the same message"
    );

    // Deleted: nothing more is sent to it.
    let id = hook["id"].as_str().unwrap();
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/admin/orgs/acme/webhooks/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let before = receiver.got.lock().unwrap().len();
    server.user_with_device("wh-dave", [4; 32]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.got.lock().unwrap().len(), before);
    server.stop().await;
}

/// A receiver that answers with a redirect (say, to an address inside the server's
/// network) is not followed: the delivery counts as failed and is retried at its own URL.
#[tokio::test]
async fn a_redirecting_receiver_is_not_followed() {
    let inside = Arc::new(Receiver::default());
    let inside_url = start_receiver(inside.clone()).await;
    let hits = Arc::new(Mutex::new(0u32));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move || {
            let (counted, to) = (counted.clone(), inside_url.clone());
            async move {
                *counted.lock().unwrap() += 1;
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, to)],
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (_dir, db) = temp_db();
    let url = format!("http://{addr}/hook");
    let (server, key, _) = with_webhook(&db, config(&db), &url, &["user.created"]).await;
    server
        .sign_in(&hs256(json!({ "user": { "id": "redirected" } })))
        .await;
    for _ in 0..50 {
        if *hits.lock().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(*hits.lock().unwrap() >= 1, "the receiver was called");
    assert!(
        inside.got.lock().unwrap().is_empty(),
        "its redirect was not followed"
    );
    let list = webhook_list(&server, &key).await;
    assert_eq!(list["webhooks"][0]["pending"], 1, "{list}");
    assert_eq!(list["webhooks"][0]["last_error"], "HTTP 307");
    server.stop().await;
}

#[tokio::test]
async fn an_api_key_cannot_aim_webhooks_into_the_servers_network() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.allow_private_webhook_urls = false;
    let server = TestServer::start(cfg).await;
    let key = api_key(&db.location, Some("acme"), "admin");
    for (url, events, code) in [
        (
            "http://hooks.example/x",
            json!(["user.created"]),
            "bad_webhook_url",
        ),
        (
            "https://127.0.0.1/x",
            json!(["user.created"]),
            "bad_webhook_url",
        ),
        (
            "https://10.1.2.3/x",
            json!(["user.created"]),
            "bad_webhook_url",
        ),
        (
            "https://[::1]/x",
            json!(["user.created"]),
            "bad_webhook_url",
        ),
        (
            "https://localhost/x",
            json!(["user.created"]),
            "bad_webhook_url",
        ),
        (
            "https://169.254.169.254/latest",
            json!(["user.created"]),
            "bad_webhook_url",
        ),
        (
            "https://[::ffff:127.0.0.1]/x",
            json!(["user.created"]),
            "bad_webhook_url",
        ),
        (
            "https://100.100.100.200/x",
            json!(["user.created"]),
            "bad_webhook_url",
        ),
        ("https://hooks.example/x", json!([]), "bad_events"),
        (
            "https://hooks.example/x",
            json!(["message.read"]),
            "bad_events",
        ),
    ] {
        let (status, body) = server
            .call(
                Method::POST,
                "/v1/admin/orgs/acme/webhooks",
                Some(&key),
                Some(json!({ "url": url, "events": events })),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{url}"
        );
    }
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/admin/orgs/acme/webhooks",
            Some(&key),
            Some(json!({ "url": "https://hooks.example/sotto", "events": ["user.created"] })),
        )
        .await;
    assert_eq!(status, 201);
    let backend = api_key(&db.location, Some("acme"), "backend");
    let (status, _) = server
        .call(
            Method::GET,
            "/v1/admin/orgs/acme/webhooks",
            Some(&backend),
            None,
        )
        .await;
    assert_eq!(status, 403, "webhooks need the admin scope");
    server.stop().await;
}

/// A receiver that takes the connection and never answers: the post gives up after its
/// timeout and is kept for a retry, and meanwhile messages flow as fast as ever.
#[tokio::test]
async fn a_receiver_that_never_answers_slows_nothing_and_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(0u32));
    let counted = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            *counted.lock().unwrap() += 1;
            held.push(socket);
        }
    });
    let (_dir, db) = temp_db();
    let url = format!("http://{addr}/hook");
    let events = ["user.created", "device.added"];
    let (server, key, _) = with_webhook(&db, config(&db), &url, &events).await;
    let ann = server.user_with_device("ann", [1; 32]).await;
    let ben = server.user_with_device("ben", [2; 32]).await;
    for _ in 0..50 {
        if *accepted.lock().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(*accepted.lock().unwrap() > 0, "the receiver was called");
    // While the posts hang, a message goes from Ann to Ben at once.
    let mut ws = connect(&server, &ben).await;
    let (status, _) = send(&server, &ann, &[&ben], "hello").await;
    assert_eq!(status, 200);
    next_of_type(&mut ws, "envelope").await;
    let list = webhook_list(&server, &key).await;
    assert_eq!(
        list["webhooks"][0]["last_error"],
        Value::Null,
        "the message arrived while the post still hung: {list}"
    );
    // After the post's 10 s timeout, the delivery is kept, with the reason, for a retry.
    let mut last_error = Value::Null;
    for _ in 0..150 {
        let list = webhook_list(&server, &key).await;
        last_error = list["webhooks"][0]["last_error"].clone();
        if last_error == "timed out" {
            assert!(
                list["webhooks"][0]["pending"].as_i64().unwrap() >= 1,
                "{list}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last_error, "timed out");
    server.stop().await;
}
