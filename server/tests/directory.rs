//! Thread expressions resolved by the server over HTTP, and their errors.

mod common;

use common::*;
use serde_json::json;

async fn resolve(server: &TestServer, token: &str, expr: &str) -> (u16, serde_json::Value) {
    server
        .post("/v1/resolve", Some(token), json!({ "expr": expr }))
        .await
}

fn tags(body: &serde_json::Value) -> Vec<String> {
    let mut t: Vec<String> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["tag"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn expressions_resolve_to_users() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let mut token = String::new();
    for u in ["alice", "bob", "gary", "sue"] {
        token = server
            .sign_in(&hs256(json!({ "user": { "id": u } })))
            .await
            .0;
    }
    let (status, body) = resolve(&server, &token, "@support - @gary").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tags(&body), ["bob", "sue"]);
    assert_eq!(body["canonical"], "@bob + @sue");
    let (_, body) = resolve(&server, &token, "(@support - (@gary + @bob)) + @alice").await;
    assert_eq!(tags(&body), ["alice", "sue"]);
    let (_, body) = resolve(&server, &token, "@ALICE").await;
    assert_eq!(body["canonical"], "@alice");
}

#[tokio::test]
async fn expression_errors_point_at_the_fault() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let (token, _) = server
        .sign_in(&hs256(json!({ "user": { "id": "alice" } })))
        .await;
    for (expr, code, position) in [
        ("@alice + @nobody", "expr_unknown_tag", 9),
        ("@alice + ", "expr_syntax", 9),
        ("(@alice", "expr_syntax", 7),
        ("alice", "expr_syntax", 0),
    ] {
        let (status, body) = resolve(&server, &token, expr).await;
        assert_eq!(status, 400, "{expr}: {body}");
        assert_eq!(body["error"]["code"], code, "{expr}");
        assert_eq!(body["error"]["position"], position, "{expr}");
    }
    let (status, body) = server
        .post("/v1/resolve", None, json!({ "expr": "@alice" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("session_missing"))
    );
}

#[tokio::test]
async fn devices_are_listed_for_anyone_in_the_org_and_register_once() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let again = server.user_with_device("alice", [1; 32]).await;
    assert_eq!(
        alice.device_id, again.device_id,
        "the same key registers once"
    );
    let bob = server.user_with_device("bob", [2; 32]).await;
    let (status, list) = server
        .get(
            &format!("/v1/users/{}/devices", alice.user_id),
            Some(&bob.token),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["public_key"], sotto_core::b64::encode(&[1; 32]));
    let (status, body) = server
        .post(
            "/v1/devices",
            Some(&bob.token),
            json!({ "public_key": "AAAA" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_key"))
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_a_removed_device_loses_its_queue() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let env = json!({
        "sender_device": alice.device_id,
        "recipients": [bob.user_id],
        "envelopes": [{ "device_id": bob.device_id, "payload": "AQID" }],
    });
    assert_eq!(
        server
            .post("/v1/envelopes", Some(&alice.token), env)
            .await
            .0,
        200
    );
    assert_eq!(server.queued(), 1);
    let resp = server
        .http
        .delete(format!("{}/v1/devices/{}", server.base, bob.device_id))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        404,
        "only the owner removes a device"
    );
    let resp = server
        .http
        .delete(format!("{}/v1/devices/{}", server.base, bob.device_id))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(server.queued(), 0);
    let (status, list) = server
        .get(
            &format!("/v1/users/{}/devices", bob.user_id),
            Some(&alice.token),
        )
        .await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 0));

    assert_eq!(
        server
            .post("/v1/auth/logout", Some(&bob.token), json!({}))
            .await
            .0,
        200
    );
    let (status, body) = server.get("/v1/me", Some(&bob.token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("session_invalid"))
    );
}

#[tokio::test]
async fn attachments_are_stored_for_the_org_and_limited() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let upload = |token: &str, body: Vec<u8>| {
        server
            .http
            .post(format!("{}/v1/blobs", server.base))
            .bearer_auth(token.to_owned())
            .body(body)
            .send()
    };
    let resp = upload(&alice.token, vec![7u8; 1000]).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["size"], 1000);
    let got = server
        .http
        .get(format!("{}/v1/blobs/{id}", server.base))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), &[7u8; 1000][..]);

    let resp = upload(&alice.token, vec![0u8; sotto_server::blobs::MAX_BLOB + 1])
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let resp = upload(&alice.token, Vec::new()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = server
        .http
        .post(format!("{}/v1/blobs", server.base))
        .body(vec![1u8])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let (status, body) = server.get("/v1/blobs/b_nope", Some(&bob.token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_blob"))
    );
}

#[tokio::test]
async fn the_client_package_may_be_loaded_by_any_site() {
    let (dir, db) = temp_db();
    std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
    std::fs::write(dir.path().join("pkg/sotto_wasm_bg.wasm"), b"\0asm").unwrap();
    let mut cfg = config(&db);
    cfg.static_dir = Some(dir.path().to_path_buf());
    let server = TestServer::start(cfg).await;
    let resp = server
        .http
        .get(format!("{}/pkg/sotto_wasm_bg.wasm", server.base))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(resp.headers()["content-type"], "application/wasm");
    // The API is not open to that origin unless configured.
    let resp = server
        .http
        .post(format!("{}/v1/auth/jwt", server.base))
        .header("origin", "https://shop.example")
        .json(&serde_json::json!({ "jwt": "x" }))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_member_taken_out_of_the_configuration_leaves_the_group_at_the_next_start() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    for u in ["bob", "gary", "sue"] {
        server.sign_in(&hs256(json!({ "user": { "id": u } }))).await;
    }
    server.stop().await;
    let mut changed = config(&db);
    changed.orgs[0].groups[0].members = vec!["bob".into(), "sue".into()];
    let server = TestServer::start(changed).await;
    let (token, _) = server
        .sign_in(&hs256(json!({ "user": { "id": "bob" } })))
        .await;
    let (status, body) = resolve(&server, &token, "@support").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tags(&body), ["bob", "sue"], "gary is no longer in @support");
}

#[tokio::test]
async fn a_visitor_sees_only_what_it_may_write_to_and_never_emails() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    for (id, email) in [("alice", "alice@acme.test"), ("bob", "bob@acme.test")] {
        server
            .sign_in(&hs256(json!({ "user": { "id": id, "email": email } })))
            .await;
    }
    let (staff, _) = server
        .sign_in(&hs256(
            json!({ "user": { "id": "sue", "email": "sue@acme.test" } }),
        ))
        .await;
    let (status, visitor) = server
        .post("/v1/auth/ephemeral", None, json!({ "token": EPHEMERAL }))
        .await;
    assert_eq!(status, 200);
    let token = visitor["token"].as_str().unwrap();
    let own_tag = visitor["user"]["tag"].as_str().unwrap();

    // @support and its members, by name only.
    let (status, body) = resolve(&server, token, &format!("@support + @{own_tag}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tags(&body).len(), 3, "bob, sue and the visitor: {body}");
    assert!(body["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u.get("email").is_none()));
    let (status, _) = resolve(&server, token, "@bob").await;
    assert_eq!(status, 200, "a member of @support may be named");

    // Anyone else: one answer, whether the tag exists or not, pointing nowhere.
    let (s1, exists) = resolve(&server, token, "@support + @alice").await;
    let (s2, missing) = resolve(&server, token, "@support + @nobody").await;
    assert_eq!((s1, s2), (400, 400));
    assert_eq!(exists["error"]["code"], "tag_not_available");
    assert_eq!(exists, missing, "the answer does not tell alice exists");
    assert!(exists["error"].get("position").is_none());

    // Staff see the directory the org allows them, emails included.
    let (_, body) = resolve(&server, &staff, "@alice").await;
    assert_eq!(body["users"][0]["email"], "alice@acme.test");

    // Users by ID: a visitor sees support staff by name, and nobody else.
    let (_, support) = resolve(&server, &staff, "@support + @alice").await;
    for u in support["users"].as_array().unwrap() {
        let (status, body) = server
            .get(
                &format!("/v1/users/{}", u["id"].as_str().unwrap()),
                Some(token),
            )
            .await;
        if u["tag"] == "alice" {
            assert_eq!(status, 404, "alice is not someone the visitor may write to");
        } else {
            assert_eq!(status, 200, "{body}");
            assert!(body.get("email").is_none());
        }
    }
}

/// Uploads `mib` MiB as `token`; (status, error code).
async fn upload_mib(server: &TestServer, token: &str, mib: usize) -> (u16, Option<String>) {
    let resp = server
        .http
        .post(format!("{}/v1/blobs", server.base))
        .bearer_auth(token)
        .body(vec![0u8; mib * 1024 * 1024])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    (status, body["error"]["code"].as_str().map(str::to_owned))
}

async fn visitor_token(server: &TestServer) -> String {
    let (_, visitor) = server
        .post("/v1/auth/ephemeral", None, json!({ "token": EPHEMERAL }))
        .await;
    visitor["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn attachment_space_is_limited_per_visitor_for_all_visitors_and_per_org() {
    let full = (413, Some("quota_exceeded".to_string()));
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.org_blob_quota_mib = 300;
    let server = TestServer::start(cfg).await;
    // A visitor gets 20 MiB: two 8 MiB files, not a third.
    let first = visitor_token(&server).await;
    assert_eq!(upload_mib(&server, &first, 8).await.0, 200);
    assert_eq!(upload_mib(&server, &first, 8).await.0, 200);
    assert_eq!(upload_mib(&server, &first, 8).await, full);
    // Visitors together get a tenth of the org's space (30 MiB): a fresh visitor's second
    // file would pass its own quota, but not the visitors' pool.
    let second = visitor_token(&server).await;
    assert_eq!(upload_mib(&server, &second, 8).await.0, 200);
    assert_eq!(upload_mib(&server, &second, 8).await, full);
    // Staff still have the rest of the org's space.
    let alice = server.user_with_device("alice", [1; 32]).await;
    assert_eq!(upload_mib(&server, &alice.token, 8).await.0, 200);

    let (_dir2, db2) = temp_db();
    let mut cfg = config(&db2);
    cfg.org_blob_quota_mib = 16;
    let small = TestServer::start(cfg).await;
    let bob = small.user_with_device("bob", [2; 32]).await;
    assert_eq!(upload_mib(&small, &bob.token, 8).await.0, 200);
    assert_eq!(upload_mib(&small, &bob.token, 8).await.0, 200);
    assert_eq!(
        upload_mib(&small, &bob.token, 8).await,
        full,
        "the org is full"
    );
}
