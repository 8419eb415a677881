//! Live sends (typing notices) over real HTTP and WebSocket: handed at once to the sockets
//! open now and stored nowhere, checked like a stored send, and limited on their own.

mod common;

use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use sotto_core::b64;

/// A live send from `from` naming `users`, one envelope per device, of `payload`.
fn live(from: &Member, users: &[&Member], devices: &[&str], payload: &[u8]) -> Value {
    json!({
        "sender_device": from.device_id,
        "recipients": users.iter().map(|m| m.user_id.clone()).collect::<Vec<_>>(),
        "envelopes": devices.iter().map(|d| json!({"device_id": d, "payload": b64::encode(payload)})).collect::<Vec<_>>(),
        "live": true,
    })
}

/// Posts `body` to `POST /v1/envelopes` as `from`: (status, answer).
async fn post(server: &TestServer, from: &Member, body: Value) -> (u16, Value) {
    server.post("/v1/envelopes", Some(&from.token), body).await
}

/// Alice, Bob and Carol, each with a device.
async fn three(server: &TestServer) -> (Member, Member, Member) {
    (
        server.user_with_device("alice", [1; 32]).await,
        server.user_with_device("bob", [2; 32]).await,
        server.user_with_device("carol", [3; 32]).await,
    )
}

#[tokio::test]
async fn a_live_send_reaches_only_the_sockets_open_now_and_is_never_stored() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let (alice, bob, carol) = three(&server).await;
    let mut alice_ws = connect(&server, &alice).await;
    let mut bob_ws = connect(&server, &bob).await;

    // Over the socket: answered like a send, with no seqs.
    let request = live(
        &alice,
        &[&bob, &carol],
        &[&bob.device_id, &carol.device_id],
        b"typing",
    );
    alice_ws
        .send(tokio_tungstenite::tungstenite::Message::Text(
            json!({"type": "send", "id": 3, "request": request})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let answer = next_frame(&mut alice_ws).await;
    assert_eq!(
        (answer["type"].as_str(), answer["id"].as_u64()),
        (Some("stored"), Some(3)),
        "{answer}"
    );
    assert_eq!(answer["receipt"]["seqs"], json!([]));
    let got = next_frame(&mut bob_ws).await;
    assert_eq!(got["type"], "live", "{got}");
    assert_eq!(
        (
            got["seq"].as_i64(),
            got["sender_user"].as_str(),
            got["sender_device"].as_str()
        ),
        (
            Some(0),
            Some(alice.user_id.as_str()),
            Some(alice.device_id.as_str())
        )
    );
    assert_eq!(
        b64::decode(got["payload"].as_str().unwrap()).unwrap(),
        b"typing"
    );

    // Nothing was queued: Carol, who was away, finds nothing when she connects, and Bob
    // is told nothing is delivered.
    assert_eq!(server.queued(), 0);
    let mut carol_ws = connect(&server, &carol).await;
    assert!(
        silent_for(&mut carol_ws, 500).await,
        "an absent device never gets it"
    );
    assert!(
        silent_for(&mut alice_ws, 200).await,
        "no delivered receipt for a live send"
    );

    // Over HTTP too, to every socket of the device.
    let (status, body) = post(
        &server,
        &alice,
        live(&alice, &[&carol], &[&carol.device_id], b"again"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got = next_of_type(&mut carol_ws, "live").await;
    assert_eq!(
        b64::decode(got["payload"].as_str().unwrap()).unwrap(),
        b"again"
    );
    assert_eq!(server.queued(), 0);
}

#[tokio::test]
async fn a_live_send_is_checked_like_a_stored_one() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let (alice, bob, carol) = three(&server).await;
    let mut carol_ws = connect(&server, &carol).await;
    let refused = |body: Value| {
        let (server, alice) = (&server, &alice);
        async move {
            let (status, answer) = post(server, alice, body).await;
            (
                status,
                answer["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    // A device of someone the send does not name (or one no longer current): the lists
    // are old, as for a stored send.
    assert_eq!(
        refused(live(&alice, &[&bob], &[&carol.device_id], b"x")).await,
        (409, "devices_changed".into())
    );
    // Payloads too large, empty, or posing as the server's own.
    assert_eq!(
        refused(live(&alice, &[&carol], &[&carol.device_id], &[7; 9 * 1024])).await,
        (400, "bad_payload".into())
    );
    assert_eq!(
        refused(live(
            &alice,
            &[&carol],
            &[&carol.device_id],
            sotto_core::protocol::SERVER_MADE_PREFIX
        ))
        .await,
        (400, "bad_payload".into())
    );
    // From a device that is not the sender's.
    let mut forged = live(&alice, &[&carol], &[&carol.device_id], b"x");
    forged["sender_device"] = json!(bob.device_id);
    assert_eq!(refused(forged).await, (403, "unknown_device".into()));
    // Posing as the answer to a retry request.
    let mut resend = live(&alice, &[&carol], &[&carol.device_id], b"x");
    resend["resend_of"] = json!(1);
    assert_eq!(refused(resend).await, (400, "bad_resend".into()));
    // None of it reached Carol.
    assert!(silent_for(&mut carol_ws, 300).await);
}

#[tokio::test]
async fn live_sends_are_limited_apart_from_messages() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let limit = sotto_server::delivery::live::LIVE_SENDS_PER_MINUTE;
    for _ in 0..limit {
        let (status, body) = post(
            &server,
            &alice,
            live(&alice, &[&bob], &[&bob.device_id], b"t"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = post(
        &server,
        &alice,
        live(&alice, &[&bob], &[&bob.device_id], b"t"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    // A flood of typing notices leaves the messages' own budget alone.
    let (status, body) = send(&server, &alice, &[&bob], "still sends").await;
    assert_eq!(status, 200, "{body}");
}
