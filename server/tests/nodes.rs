//! Several nodes on one database (two servers in this process, on the suite's backend):
//! what must hold across nodes holds — sign-ins made on one are good on the other, and
//! each one-time prekey goes out once however the claims are spread over the nodes.

mod common;

use common::*;
use serde_json::json;
use sotto_core::prekeys::PreKeyBundle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_one_time_prekey_goes_out_once_across_nodes() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(config(&db)).await;
    let b = TestServer::start(config(&db)).await;
    // Bob's device and its 30 one-time prekeys were published through node A.
    let bob = a.user_with_device("bob", [2; 32]).await;
    let mut claimers = Vec::new();
    for i in 0..5u8 {
        claimers.push(
            b.user_with_device(&format!("claimer{i}"), [10 + i; 32])
                .await,
        );
    }
    // Every claimer claims seven times at once, alternating between the nodes: each gets
    // its five an hour, and no key goes to two of them.
    let (a_ref, b_ref, bob_ref) = (&a, &b, &bob);
    let claims = claimers.iter().flat_map(|c| {
        (0..7).map(move |n| {
            let node = if n % 2 == 0 { a_ref } else { b_ref };
            let bob = bob_ref;
            async move {
                let (status, body) = node
                    .post(
                        "/v1/bundles",
                        Some(&c.token),
                        json!({ "devices": [bob.device_id] }),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                let bundles: Vec<PreKeyBundle> = serde_json::from_value(body).unwrap();
                (c.user_id.clone(), bundles[0].one_time_prekey.map(|k| k.id))
            }
        })
    });
    let results = futures_util::future::join_all(claims).await;
    let mut seen = std::collections::HashSet::new();
    for claimer in &claimers {
        let got: Vec<u32> = results
            .iter()
            .filter(|(who, _)| *who == claimer.user_id)
            .filter_map(|(_, id)| *id)
            .collect();
        assert_eq!(got.len(), 5, "{} got {got:?}", claimer.user_id);
        for id in got {
            assert!(seen.insert(id), "one-time prekey {id} handed out twice");
        }
    }
    assert_eq!(
        count(
            &a.db,
            "SELECT COUNT(*) FROM one_time_prekeys WHERE device_id = ?1",
            params![bob.device_id]
        ),
        30 - 25,
        "the rest stay for later"
    );
    a.stop().await;
    b.stop().await;
}

/// A link approval is handed over once, even when the new browser's polls reach two nodes
/// at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_approval_is_taken_once_across_nodes() {
    use sotto_core::b64;
    use sotto_core::linking::{NewBrowser, RunningBrowser};
    const IDENTITY: [u8; 32] = [0; 32];
    let (_dir, db) = temp_db();
    let a = TestServer::start(config(&db)).await;
    let b = TestServer::start(config(&db)).await;
    let running = a.user_with_device("alice", [1; 32]).await;
    let new_token = b
        .sign_in(&hs256(json!({ "user": { "id": "alice" } })))
        .await
        .0;
    let new = NewBrowser::start(&IDENTITY).unwrap();
    let (_, request) = b
        .post(
            "/v1/links",
            Some(&new_token),
            json!({ "commitment": b64::encode(&new.commitment()) }),
        )
        .await;
    let id = request["id"].as_str().unwrap().to_owned();
    let answering = RunningBrowser::accept(&id, &new.commitment()).unwrap();
    let (status, _) = a
        .post(
            &format!("/v1/links/{id}/accept"),
            Some(&running.token),
            json!({ "device_id": running.device_id,
                    "ephemeral_public": b64::encode(&answering.public()) }),
        )
        .await;
    assert_eq!(status, 200);
    let revealed = new.reveal(&id, &answering.public()).unwrap();
    let (status, _) = b
        .post(
            &format!("/v1/links/{id}/reveal"),
            Some(&new_token),
            json!({ "ephemeral_public": b64::encode(&revealed.new_public) }),
        )
        .await;
    assert_eq!(status, 200);
    let checked = answering.check(&IDENTITY, &revealed.new_public).unwrap();
    let sealed = checked.seal_bundle(b"bundle").unwrap();
    let (status, _) = a
        .post(
            &format!("/v1/links/{id}/approve"),
            Some(&running.token),
            json!({ "device_id": running.device_id, "sealed": b64::encode(&sealed) }),
        )
        .await;
    assert_eq!(status, 200);

    let path = format!("/v1/links/{id}");
    let polls = (0..8).map(|n| {
        let node = if n % 2 == 0 { &a } else { &b };
        node.get(&path, Some(&new_token))
    });
    let answers = futures_util::future::join_all(polls).await;
    let handed: Vec<_> = answers
        .iter()
        .filter(|(_, body)| body["sealed"].is_string())
        .collect();
    assert_eq!(handed.len(), 1, "the approval went out once: {answers:?}");
    for (status, body) in &answers {
        assert!(
            body["sealed"].is_string()
                || (*status, body["error"]["code"].as_str()) == (410, Some("link_used")),
            "{status} {body}"
        );
    }
    a.stop().await;
    b.stop().await;
}

/// Claims that name the same devices in opposite orders, on two nodes at once (visitors
/// all count as one claimer), never wait on each other: every one is answered, in the
/// order it asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_the_same_devices_in_any_order_never_deadlock() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(config(&db)).await;
    let b = TestServer::start(config(&db)).await;
    let bob = a.user_with_device("bob", [2; 32]).await;
    let carol = a.user_with_device("carol", [3; 32]).await;
    let mut visitors = Vec::new();
    for _ in 0..2 {
        let (_, v) = a
            .post("/v1/auth/ephemeral", None, json!({ "token": EPHEMERAL }))
            .await;
        visitors.push(v["token"].as_str().unwrap().to_owned());
    }
    for _ in 0..10 {
        let forward = json!({ "devices": [bob.device_id, carol.device_id] });
        let backward = json!({ "devices": [carol.device_id, bob.device_id] });
        let (one, two) = tokio::join!(
            a.post("/v1/bundles", Some(&visitors[0]), forward),
            b.post("/v1/bundles", Some(&visitors[1]), backward)
        );
        assert_eq!(one.0, 200, "{}", one.1);
        assert_eq!(two.0, 200, "{}", two.1);
        assert_eq!(one.1[0]["device_id"], bob.device_id.as_str());
        assert_eq!(two.1[0]["device_id"], carol.device_id.as_str());
    }
    a.stop().await;
    b.stop().await;
}
