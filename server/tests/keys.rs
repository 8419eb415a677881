//! Identities, signed device lists, prekeys and the send check, over real HTTP and WebSocket.

mod common;

use common::*;
use serde_json::json;
use sotto_core::identity::{DeviceList, Identity};
use sotto_core::prekeys::{sign_prekey, PreKeyBundle, PreKeySecret};

#[tokio::test]
async fn device_lists_must_be_signed_by_the_identity_name_own_devices_and_be_newer() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let identity = server.identity_of(&alice.user_id);
    // Alice publishes `identity` with a list of `devices` at `version`, signed by `signer`:
    // the error code the server answers with.
    let publish = async |signer: &Identity, devices: Vec<String>, version: i64| {
        let list = DeviceList {
            user_id: alice.user_id.clone(),
            version,
            devices,
        };
        let body =
            json!({ "identity": identity.public(), "device_list": signer.sign_device_list(&list) });
        let (status, body) = server.put("/v1/identity", &alice.token, body).await;
        (status, body["error"]["code"].as_str().map(str::to_owned))
    };
    let code = |status: u16, code: &str| (status, Some(code.to_owned()));
    let mallory = Identity::generate().unwrap();
    let own = vec![alice.device_id.clone()];
    assert_eq!(
        publish(&mallory, own.clone(), now_millis()).await,
        code(400, "bad_signature"),
        "signed by someone else"
    );
    assert_eq!(
        publish(&identity, vec![bob.device_id.clone()], now_millis()).await,
        code(400, "unknown_device"),
        "naming Bob's device"
    );
    assert_eq!(
        publish(&identity, vec![], 1).await,
        code(409, "stale_device_list"),
        "an older list replayed over the current one"
    );
    // What Bob fetches verifies against Alice's identity and names her device.
    let (status, keys) = server
        .get(
            &format!("/v1/users/{}/keys", alice.user_id),
            Some(&bob.token),
        )
        .await;
    assert_eq!(status, 200, "{keys}");
    let fetched: sotto_core::protocol::UserKeys = serde_json::from_value(keys).unwrap();
    assert_eq!(fetched.identity, Some(identity.public()));
    let verified = identity
        .public()
        .verify_device_list(&fetched.device_list.unwrap(), &alice.user_id)
        .unwrap();
    assert_eq!(verified.devices, vec![alice.device_id.clone()]);
    assert_eq!(fetched.devices, vec![alice.device_id.clone()]);
}

#[tokio::test]
async fn one_time_prekeys_go_out_once_and_a_low_stock_is_reported() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut bob_ws = connect(&server, &bob).await;
    let claim = async |who: &Member| {
        server
            .post(
                "/v1/bundles",
                Some(&who.token),
                json!({ "devices": [bob.device_id] }),
            )
            .await
    };
    let take = async |who: &Member| {
        let (status, bundles) = claim(who).await;
        assert_eq!(status, 200, "{bundles}");
        let b: Vec<PreKeyBundle> = serde_json::from_value(bundles).unwrap();
        assert_eq!(b[0].identity, server.identity_of(&bob.user_id).public());
        b[0].one_time_prekey.map(|k| k.id)
    };
    let mut seen = std::collections::HashSet::new();
    // One claimer gets a few one-time prekeys an hour, then bundles without one: nobody
    // drains a device's stock (the helper uploaded 30).
    for _ in 0..5 {
        let id = take(&alice).await.expect("stock left");
        assert!(seen.insert(id), "one-time prekey {id} handed out twice");
    }
    assert_eq!(
        take(&alice).await,
        None,
        "alice has had her share this hour"
    );
    // Others still get theirs, each one different, until the stock is gone.
    for n in 0..5u8 {
        let other = server
            .user_with_device(&format!("claimer{n}"), [10 + n; 32])
            .await;
        for _ in 0..5 {
            let id = take(&other).await.expect("stock left");
            assert!(seen.insert(id), "one-time prekey {id} handed out twice");
        }
    }
    assert_eq!(seen.len(), 30);
    // Bob's connected device hears once as the stock falls below the mark, and once as it
    // runs out — not after every claim.
    let mut low = Vec::new();
    while let Ok(frame) = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        next_frame(&mut bob_ws),
    )
    .await
    {
        if frame["type"] == "prekeys_low" {
            low.push(frame["remaining"].as_i64().unwrap());
        }
    }
    assert_eq!(low, [19, 0]);
    // Naming a device twice in one claim is refused.
    let (status, body) = server
        .post(
            "/v1/bundles",
            Some(&alice.token),
            json!({ "devices": [bob.device_id, bob.device_id] }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("duplicate_device"))
    );
    // With the stock gone, the bundle still has the signed prekey (X3DH without DH4).
    let (_, bundles) = claim(&alice).await;
    assert!(bundles[0]["one_time_prekey"].is_null());
    assert!(bundles[0]["signed_prekey"]["signature"].is_string());
    // Uploads are capped.
    let many: Vec<_> = (0..201u32)
        .map(|i| PreKeySecret::generate(i).unwrap().public())
        .collect();
    let (status, body) = server
        .post(
            &format!("/v1/devices/{}/prekeys", bob.device_id),
            Some(&bob.token),
            json!({ "one_time_prekeys": many }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("too_many_prekeys"))
    );
    // Only the owner uploads for a device.
    let identity = server.identity_of(&alice.user_id);
    let (status, _) = server
        .post(
            &format!("/v1/devices/{}/prekeys", bob.device_id),
            Some(&alice.token),
            json!({ "signed_prekey": sign_prekey(&identity, &PreKeySecret::generate(9).unwrap()) }),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_send_that_misses_a_current_device_is_refused_with_the_difference() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut bob_ws = connect(&server, &bob).await;
    // Bob links a second browser: his first device is told.
    let bob2 = server.user_with_device("bob", [3; 32]).await;
    let frame = next_frame(&mut bob_ws).await;
    assert_eq!(
        (frame["type"].as_str(), frame["user_id"].as_str()),
        (Some("devices_changed"), Some(bob.user_id.as_str()))
    );
    let send = |devices: Vec<String>| {
        let envelopes: Vec<_> = devices
            .iter()
            .map(|d| json!({ "device_id": d, "payload": "AQID" }))
            .collect();
        json!({ "sender_device": alice.device_id, "recipients": [bob.user_id], "envelopes": envelopes })
    };
    let (status, body) = server
        .post(
            "/v1/envelopes",
            Some(&alice.token),
            send(vec![bob.device_id.clone()]),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("devices_changed"))
    );
    assert_eq!(body["error"]["details"]["missing"], json!([bob2.device_id]));
    assert_eq!(server.queued(), 0);
    // A device that is not current (an unlisted one) is refused as stale.
    let (status, body) = server
        .post(
            "/v1/envelopes",
            Some(&alice.token),
            send(vec![
                bob.device_id.clone(),
                bob2.device_id.clone(),
                alice.device_id.clone(),
            ]),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["details"]["stale"], json!([alice.device_id]));
    // Both current devices: accepted.
    let (status, body) = server
        .post(
            "/v1/envelopes",
            Some(&alice.token),
            send(vec![bob.device_id.clone(), bob2.device_id.clone()]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A removed device stops being current even though the signed list still names it.
    let resp = server
        .http
        .delete(format!("{}/v1/devices/{}", server.base, bob2.device_id))
        .bearer_auth(&bob2.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (status, body) = server
        .post(
            "/v1/envelopes",
            Some(&alice.token),
            send(vec![bob.device_id.clone()]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_page_on_another_origin_may_call_every_method_the_client_uses() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.allowed_origins = vec!["https://site.test".into()];
    let server = TestServer::start(cfg).await;
    for (method, path) in [
        ("PUT", "/v1/identity"),
        ("POST", "/v1/bundles"),
        ("DELETE", "/v1/devices/d1"),
        ("GET", "/v1/users/u1/keys"),
    ] {
        let preflight = |origin: &'static str| {
            server
                .http
                .request(reqwest::Method::OPTIONS, format!("{}{path}", server.base))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", method)
                .header(
                    "Access-Control-Request-Headers",
                    "authorization,content-type",
                )
                .send()
        };
        let allowed = preflight("https://site.test").await.unwrap();
        let methods = allowed
            .headers()
            .get("access-control-allow-methods")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            methods.contains(method),
            "{method} {path}: allowed {methods:?}"
        );
        assert_eq!(
            allowed
                .headers()
                .get("access-control-allow-origin")
                .unwrap(),
            "https://site.test"
        );
        let other = preflight("https://evil.test").await.unwrap();
        assert!(other.headers().get("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn visitors_share_one_allowance_of_one_time_prekeys_per_device() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut with_key = 0;
    for _ in 0..8 {
        let (_, v) = server
            .post("/v1/auth/ephemeral", None, json!({ "token": EPHEMERAL }))
            .await;
        let (status, bundles) = server
            .post(
                "/v1/bundles",
                v["token"].as_str(),
                json!({ "devices": [bob.device_id] }),
            )
            .await;
        assert_eq!(status, 200, "{bundles}");
        with_key += usize::from(!bundles[0]["one_time_prekey"].is_null());
    }
    // Free accounts cannot drain a device: five an hour, for all visitors together.
    assert_eq!(with_key, 5);
}
