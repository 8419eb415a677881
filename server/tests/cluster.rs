//! Two nodes on one database with NATS between them (two servers in this process, each
//! with its own sockets): what one node would tell a socket reaches the sockets the other
//! holds — wake-ups, delivered receipts, device-list changes, link requests, sign-outs —
//! and a wake-up that never came only delays a delivery until the next sweep.
//!
//! They need NATS, so they are ignored in a plain `cargo test`; scripts/service-tests.sh
//! runs them (on PostgreSQL, with `SOTTO_TEST_NATS`) whenever NATS answers.

mod common;

use common::*;
use serde_json::json;

fn payload_text(frame: &serde_json::Value) -> String {
    let bytes = sotto_core::b64::decode(frame["payload"].as_str().unwrap()).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Bob's socket is on node A; Alice sends through node B and Carol through A, at the same
/// time. With no sweep to fall back on, the bus alone wakes Bob: he gets every envelope
/// once, in the order of their seqs, each sender's in the order sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn a_socket_on_one_node_gets_in_order_what_senders_on_both_send() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(node_config(&db, 3600)).await;
    let b = TestServer::start(node_config(&db, 3600)).await;
    let bob = a.user_with_device("bob", [2; 32]).await;
    let alice = b.user_with_device("alice", [1; 32]).await;
    let carol = a.user_with_device("carol", [3; 32]).await;
    let mut bob_ws = connect(&a, &bob).await;
    const EACH: usize = 30;
    let to = &bob;
    let sends = |node: &'static str, server, from| async move {
        for i in 0..EACH {
            let (status, body) = send(server, from, &[to], &format!("{node} {i}")).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    let (sa, sb): (&TestServer, &TestServer) = (&a, &b);
    tokio::join!(sends("b", sb, &alice), sends("a", sa, &carol));
    let mut last_seq = 0;
    let mut got: Vec<String> = Vec::new();
    while got.len() < 2 * EACH {
        let frame = next_of_type(&mut bob_ws, "envelope").await;
        let seq = frame["seq"].as_i64().unwrap();
        assert!(seq > last_seq, "seq {seq} after {last_seq}");
        last_seq = seq;
        got.push(payload_text(&frame));
        ack(&mut bob_ws, seq).await;
    }
    for node in ["a", "b"] {
        let theirs: Vec<&String> = got.iter().filter(|t| t.starts_with(node)).collect();
        let sent: Vec<String> = (0..EACH).map(|i| format!("{node} {i}")).collect();
        assert_eq!(theirs, sent.iter().collect::<Vec<_>>(), "in the order sent");
    }
    assert!(silent_for(&mut bob_ws, 300).await, "and nothing twice");
    // Alone now, with no send on A to wake Bob by chance: only the bus can.
    for i in 0..3 {
        let (status, body) = send(&b, &alice, &[&bob], &format!("alone {i}")).await;
        assert_eq!(status, 200, "{body}");
        let frame = next_of_type(&mut bob_ws, "envelope").await;
        assert_eq!(payload_text(&frame), format!("alone {i}"));
        ack(&mut bob_ws, frame["seq"].as_i64().unwrap()).await;
    }
    a.stop().await;
    b.stop().await;
}

/// Receipts, device-list changes, link requests and sign-outs are pushed by the node that
/// sees them to sockets on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn receipts_device_changes_link_requests_and_sign_outs_cross_nodes() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(node_config(&db, 3600)).await;
    let b = TestServer::start(node_config(&db, 3600)).await;
    let alice = a.user_with_device("alice", [1; 32]).await;
    let bob = b.user_with_device("bob", [2; 32]).await;
    let mut alice_ws = connect(&a, &alice).await;
    let mut bob_ws = connect(&b, &bob).await;

    // Alice (on A) sends; Bob (on B) acknowledges; Alice hears "delivered" on A.
    let (status, body) = send(&a, &alice, &[&bob], "hello").await;
    assert_eq!(status, 200, "{body}");
    let seq = body["seqs"][0].as_i64().unwrap();
    let frame = next_of_type(&mut bob_ws, "envelope").await;
    assert_eq!(frame["seq"], seq);
    ack(&mut bob_ws, seq).await;
    let delivered = next_of_type(&mut alice_ws, "delivered").await;
    assert_eq!(delivered["seq"], seq);

    // Bob adds a second device through A: his socket on B hears his list changed.
    let (status, dev) = a
        .post(
            "/v1/devices",
            Some(&bob.token),
            json!({ "public_key": sotto_core::b64::encode(&[9u8; 32]) }),
        )
        .await;
    assert_eq!(status, 200, "{dev}");
    let second = Member {
        token: bob.token.clone(),
        user_id: bob.user_id.clone(),
        device_id: dev["id"].as_str().unwrap().to_owned(),
    };
    // The identity helper lives with the node that made Bob's first list.
    b.publish_device(&second).await;
    let changed = next_of_type(&mut bob_ws, "devices_changed").await;
    assert_eq!(changed["user_id"], bob.user_id);

    // A new browser of Alice's asks through B to be linked: her running browser's socket
    // on A is shown the request.
    let new_token = b
        .sign_in(&hs256(json!({ "user": { "id": "alice" } })))
        .await
        .0;
    let new = sotto_core::linking::NewBrowser::start(&[0; 32]).unwrap();
    let (status, request) = b
        .post(
            "/v1/links",
            Some(&new_token),
            json!({ "commitment": sotto_core::b64::encode(&new.commitment()) }),
        )
        .await;
    assert_eq!(status, 200, "{request}");
    let shown = next_of_type(&mut alice_ws, "link_request").await;
    assert_eq!(shown["id"], request["id"]);

    // Alice signs out through B: her socket on A is told and closed at once.
    let (status, _) = b
        .post("/v1/auth/logout", Some(&alice.token), json!({}))
        .await;
    assert_eq!(status, 200);
    let ended = next_frame(&mut alice_ws).await;
    assert_eq!(ended["type"], "error");
    assert_eq!(ended["code"], "session_revoked");
    a.stop().await;
    b.stop().await;
}

/// An envelope that arrives with no wake-up at all (here written straight into the
/// database, as a node that died between its commit and its notice would leave it)
/// reaches the socket at the next sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn a_lost_wake_up_only_delays_a_delivery_until_the_sweep() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(node_config(&db, 1)).await;
    let alice = a.user_with_device("alice", [1; 32]).await;
    let bob = a.user_with_device("bob", [2; 32]).await;
    let mut bob_ws = connect(&a, &bob).await;
    exec(
        &a.db,
        "INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            bob.device_id,
            alice.user_id,
            alice.device_id,
            now_millis(),
            b"unannounced".to_vec()
        ],
    );
    let frame = next_of_type(&mut bob_ws, "envelope").await;
    assert_eq!(payload_text(&frame), "unannounced");
    a.stop().await;
}

/// A session that ended with no notice reaching this node (here deleted straight from the
/// database, as a sign-out on a node whose notice was lost would leave it) loses its
/// socket at the next sweep: a stolen session cannot keep sending or acknowledging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn a_lost_sign_out_notice_only_delays_the_close_until_the_sweep() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(node_config(&db, 1)).await;
    let alice = a.user_with_device("alice", [1; 32]).await;
    let mut ws = connect(&a, &alice).await;
    // A live session keeps its socket through several sweeps.
    assert!(
        silent_for(&mut ws, 2500).await,
        "a live session's socket stays open"
    );
    exec(
        &a.db,
        "DELETE FROM sessions WHERE user_id = ?1",
        params![alice.user_id],
    );
    let ended = next_of_type(&mut ws, "error").await;
    assert_eq!(ended["code"], "session_revoked");
    a.stop().await;
}

/// Whatever else is published on the bus's subject — bytes that are not a notice, a
/// notice of an unknown kind, an end of session with a hash that is not base64 — is
/// dropped, and the nodes go on telling each other what they must.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn garbage_on_the_bus_is_dropped_and_the_nodes_carry_on() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(node_config(&db, 3600)).await;
    let b = TestServer::start(node_config(&db, 3600)).await;
    let alice = b.user_with_device("alice", [1; 32]).await;
    let bob = a.user_with_device("bob", [2; 32]).await;
    let mut bob_ws = connect(&a, &bob).await;
    let nats = async_nats::connect(nats_url()).await.unwrap();
    let subject = sotto_server::delivery::bus::SUBJECT;
    for junk in [
        b"\xff\x00 not json".to_vec(),
        br#"{"from":"x","notice":{"kind":"format_disk"}}"#.to_vec(),
        br#"{"from":"x","notice":{"kind":"end_session","session_hash":"%%%","code":"c","message":"m"}}"#.to_vec(),
        vec![b'{'; 100_000],
    ] {
        nats.publish(subject, junk.into()).await.unwrap();
    }
    nats.flush().await.unwrap();
    let (status, body) = send(&b, &alice, &[&bob], "still here").await;
    assert_eq!(status, 200, "{body}");
    let frame = next_of_type(&mut bob_ws, "envelope").await;
    assert_eq!(payload_text(&frame), "still here");
    a.stop().await;
    b.stop().await;
}

/// Sign-in budgets hold across nodes: an address that spreads its attempts over two nodes
/// gets one budget, not one per node; so does an account signed in from many addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn sign_in_limits_hold_across_nodes() {
    let (_dir, db) = temp_db();
    let mut cfg = node_config(&db, 3600);
    cfg.auth_rate_per_minute = 4;
    let a = TestServer::start(cfg.clone()).await;
    let b = TestServer::start(cfg).await;
    let mut answers = Vec::new();
    well_inside_a_minute().await;
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let jwt = hs256(json!({ "user": { "id": format!("spread-{i}") } }));
        let (status, _) = node.post("/v1/auth/jwt", None, json!({ "jwt": jwt })).await;
        answers.push(status);
    }
    // Each node saw three attempts, under its own limit of four; together they are six.
    assert_eq!(answers, [200, 200, 200, 200, 429, 429], "{answers:?}");
    a.stop().await;
    b.stop().await;
}

/// A session's budgets for sends, bundle claims and uploads hold across nodes: a client
/// that spreads its requests over two nodes behind the balancer gets one budget, not one
/// per node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn session_budgets_hold_across_nodes() {
    let (_dir, db) = temp_db();
    let mut cfg = node_config(&db, 3600);
    cfg.session_rate_per_minute = 4;
    let a = TestServer::start(cfg.clone()).await;
    let b = TestServer::start(cfg).await;
    let alice = a.user_with_device("alice", [1; 32]).await;
    let bob = b.user_with_device("bob", [2; 32]).await;
    let node = |i: usize| if i.is_multiple_of(2) { &a } else { &b };
    let mut sends = Vec::new();
    well_inside_a_minute().await;
    for i in 0..6 {
        let (status, body) = send(node(i), &alice, &[&bob], &format!("spread {i}")).await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        }
        sends.push(status);
    }
    // Each node saw three, under its own limit of four; together they are six.
    assert_eq!(sends, [200, 200, 200, 200, 429, 429], "{sends:?}");
    // What was refused was not stored: Bob gets the four, and nothing more.
    let mut bob_ws = connect(&a, &bob).await;
    for i in 0..4 {
        let frame = next_of_type(&mut bob_ws, "envelope").await;
        assert_eq!(payload_text(&frame), format!("spread {i}"));
        ack(&mut bob_ws, frame["seq"].as_i64().unwrap()).await;
    }
    assert!(
        silent_for(&mut bob_ws, 300).await,
        "the refused sends were not stored"
    );

    let mut claims = Vec::new();
    well_inside_a_minute().await;
    for i in 0..6 {
        let body = json!({ "devices": [bob.device_id] });
        claims.push(
            node(i)
                .post("/v1/bundles", Some(&alice.token), body)
                .await
                .0,
        );
    }
    assert_eq!(claims, [200, 200, 200, 200, 429, 429], "{claims:?}");

    let mut uploads = Vec::new();
    well_inside_a_minute().await;
    for i in 0..6 {
        let server = node(i);
        let resp = server
            .http
            .post(format!("{}/v1/blobs", server.base))
            .bearer_auth(&alice.token)
            .body(vec![7u8; 64])
            .send()
            .await
            .unwrap();
        uploads.push(resp.status().as_u16());
    }
    assert_eq!(uploads, [200, 200, 200, 200, 429, 429], "{uploads:?}");
    a.stop().await;
    b.stop().await;
}

/// A count-then-insert quota holds when requests race on two nodes: twenty uploads of
/// one-time prekeys for one device at once, half through each node, fill its 200 and no
/// more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn a_quota_holds_when_uploads_race_on_two_nodes() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(node_config(&db, 3600)).await;
    let b = TestServer::start(node_config(&db, 3600)).await;
    // Bob's device holds 30 one-time prekeys; room for 170 more: eight uploads of 20.
    let bob = a.user_with_device("bob", [2; 32]).await;
    let path = format!("/v1/devices/{}/prekeys", bob.device_id);
    let nodes = [std::sync::Arc::new(a), std::sync::Arc::new(b)];
    let racing: Vec<_> = (0..20u32)
        .map(|i| {
            let server = nodes[i as usize % 2].clone();
            let (path, token) = (path.clone(), bob.token.clone());
            let keys: Vec<_> = (1000 + 20 * i..1020 + 20 * i)
                .map(|id| {
                    sotto_core::prekeys::PreKeySecret::generate(id)
                        .unwrap()
                        .public()
                })
                .collect();
            tokio::spawn(async move {
                server
                    .post(&path, Some(&token), json!({ "one_time_prekeys": keys }))
                    .await
                    .0
            })
        })
        .collect();
    let mut answers = Vec::new();
    for r in racing {
        answers.push(r.await.unwrap());
    }
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        8,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 409),
        "{answers:?}"
    );
    let (status, count) = nodes[1]
        .post(&path, Some(&bob.token), json!({ "one_time_prekeys": [] }))
        .await;
    assert_eq!(status, 200, "{count}");
    assert_eq!(count["one_time_prekeys"], 190);
    for node in nodes {
        if let Ok(node) = std::sync::Arc::try_unwrap(node) {
            node.stop().await;
        }
    }
}

/// A group's loss, made through node A, reaches a follower's socket on node B (one bus
/// notice for many devices).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn a_group_change_reaches_followers_on_the_other_node() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(node_config(&db, 3600)).await;
    let b = TestServer::start(node_config(&db, 3600)).await;
    let key = api_key(&db.location, Some("acme"), "backend");
    let ann = a.user_with_device("ann", [1; 32]).await;
    let cal = b.user_with_device("cal", [3; 32]).await;
    let (status, _) = a
        .call(
            reqwest::Method::PUT,
            "/v1/admin/orgs/acme/groups/desk",
            Some(&key),
            Some(json!({ "members": ["ann"] })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = b
        .post(
            "/v1/resolve",
            Some(&cal.token),
            json!({ "expr": "@desk + @cal" }),
        )
        .await;
    assert_eq!(status, 200);
    let mut cal_ws = connect(&b, &cal).await;
    let mut ann_ws = connect(&b, &ann).await;
    let (status, _) = a
        .call(
            reqwest::Method::DELETE,
            "/v1/admin/orgs/acme/groups/desk/members/ann",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    for ws in [&mut cal_ws, &mut ann_ws] {
        let frame = next_of_type(ws, "group_changed").await;
        assert_eq!(frame["group"], "desk");
    }
}

/// A live send (a typing notice) through node B reaches Bob's socket on node A at once,
/// through the bus alone, and stays stored nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS (SOTTO_TEST_NATS): scripts/service-tests.sh runs it"]
async fn a_live_send_crosses_nodes() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(node_config(&db, 3600)).await;
    let b = TestServer::start(node_config(&db, 3600)).await;
    let bob = a.user_with_device("bob", [2; 32]).await;
    let alice = b.user_with_device("alice", [1; 32]).await;
    let mut bob_ws = connect(&a, &bob).await;
    let request = json!({
        "sender_device": alice.device_id,
        "recipients": [bob.user_id],
        "envelopes": [{"device_id": bob.device_id, "payload": sotto_core::b64::encode(b"typing")}],
        "live": true,
    });
    let (status, body) = b.post("/v1/envelopes", Some(&alice.token), request).await;
    assert_eq!(status, 200, "{body}");
    let frame = next_of_type(&mut bob_ws, "live").await;
    assert_eq!(payload_text(&frame), "typing");
    assert_eq!(a.queued(), 0);
    a.stop().await;
    b.stop().await;
}
