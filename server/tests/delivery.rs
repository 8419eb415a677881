//! Store-and-forward delivery over real HTTP and WebSocket: offline devices get their queue
//! in order when they connect, nothing is deleted before it is acknowledged, and the queue
//! survives a restart of the server.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::json;
use sotto_core::b64;

fn payload(frame: &serde_json::Value) -> String {
    String::from_utf8(b64::decode(frame["payload"].as_str().unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn an_offline_device_gets_its_queue_in_order_and_only_acks_delete() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    for text in ["one", "two", "three"] {
        let (status, body) = send(&server, &alice, &[&bob], text).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stored"], 1);
    }
    assert_eq!(server.queued(), 3);

    let mut ws = connect(&server, &bob).await;
    let frames = [
        next_frame(&mut ws).await,
        next_frame(&mut ws).await,
        next_frame(&mut ws).await,
    ];
    assert_eq!(
        frames.iter().map(payload).collect::<Vec<_>>(),
        ["one", "two", "three"]
    );
    assert_eq!(frames[0]["sender_user"], alice.user_id.as_str());
    assert_eq!(frames[0]["sender_device"], alice.device_id.as_str());
    // Acknowledge only the first, then drop the connection.
    ack(&mut ws, frames[0]["seq"].as_i64().unwrap()).await;
    assert_eq!(
        server.queued_reaches(2).await,
        2,
        "the acknowledged one goes"
    );
    drop(ws);
    assert_eq!(
        server.queued(),
        2,
        "unacknowledged envelopes must stay queued"
    );

    let mut ws = connect(&server, &bob).await;
    assert_eq!(payload(&next_frame(&mut ws).await), "two");
    assert_eq!(payload(&next_frame(&mut ws).await), "three");
    // A live connection gets new envelopes as they arrive.
    send(&server, &alice, &[&bob], "four").await;
    let four = next_frame(&mut ws).await;
    assert_eq!(payload(&four), "four");
    assert!(
        silent_for(&mut ws, 200).await,
        "nothing is sent twice on one connection"
    );
}

#[tokio::test]
async fn queued_envelopes_survive_a_restart() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    send(&server, &alice, &[&bob], "before the restart").await;
    server.stop().await;

    let server = TestServer::start(config(&db)).await;
    let mut ws = connect(&server, &bob).await;
    let frame = next_frame(&mut ws).await;
    assert_eq!(payload(&frame), "before the restart");
    ack(&mut ws, frame["seq"].as_i64().unwrap()).await;
    assert_eq!(server.queued_reaches(0).await, 0);
}

#[tokio::test]
async fn a_send_is_all_or_nothing_and_checked() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let ghost = Member {
        token: String::new(),
        user_id: String::new(),
        device_id: "d_nope".into(),
    };
    let (status, body) = send(&server, &alice, &[&bob, &ghost], "x").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_user"))
    );
    assert_eq!(server.queued(), 0, "a failed send stores nothing");
    // Sending as someone else's device is refused.
    let forged = Member {
        device_id: bob.device_id.clone(),
        token: alice.token.clone(),
        user_id: alice.user_id.clone(),
    };
    let (status, body) = send(&server, &forged, &[&bob], "x").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("unknown_device"))
    );
    let (status, body) = send(&server, &alice, &[], "x").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("no_envelopes"))
    );
}

#[tokio::test]
async fn the_socket_refuses_bad_auth() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    // Without credentials there is no socket at all: nothing to push frames into.
    match tokio_tungstenite::connect_async(server.ws_url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401)
        }
        other => panic!("expected 401, got {other:?}"),
    }
    // Wrong credentials: the socket says why and closes, reading nothing.
    for (token, device, code) in [
        ("bogus", alice.device_id.as_str(), "session_invalid"),
        (
            alice.token.as_str(),
            bob.device_id.as_str(),
            "unknown_device",
        ),
    ] {
        let mut ws = open_socket(&server, token, device).await.unwrap();
        let frame = next_frame(&mut ws).await;
        assert_eq!(
            (frame["type"].as_str(), frame["code"].as_str()),
            (Some("error"), Some(code))
        );
    }
}

#[tokio::test]
async fn connections_are_limited_per_user() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let mut open = Vec::new();
    for _ in 0..sotto_server::delivery::registry::MAX_CONNECTIONS_PER_USER {
        open.push(connect(&server, &alice).await);
    }
    let mut one_more = open_socket(&server, &alice.token, &alice.device_id)
        .await
        .unwrap();
    let frame = next_frame(&mut one_more).await;
    assert_eq!(frame["code"], "too_many_connections");
    // Closing one makes room.
    drop(open.pop());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    connect(&server, &alice).await;
}

#[tokio::test]
async fn the_sender_is_told_when_a_recipient_device_acknowledges() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut alice_ws = connect(&server, &alice).await;
    let (status, receipt) = send(&server, &alice, &[&bob], "hello").await;
    assert_eq!(status, 200);
    let seq = receipt["seqs"][0].as_i64().unwrap();
    let mut bob_ws = connect(&server, &bob).await;
    let frame = next_frame(&mut bob_ws).await;
    assert_eq!(frame["seq"].as_i64(), Some(seq));
    assert!(
        silent_for(&mut alice_ws, 200).await,
        "nothing before the ack"
    );
    ack(&mut bob_ws, seq).await;
    let delivered = next_frame(&mut alice_ws).await;
    assert_eq!(
        (delivered["type"].as_str(), delivered["seq"].as_i64()),
        (Some("delivered"), Some(seq))
    );
}

#[tokio::test]
async fn an_envelope_that_does_not_open_is_asked_for_again_and_never_reported_delivered() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut alice_ws = connect(&server, &alice).await;
    let (_, receipt) = send(&server, &alice, &[&bob], "hello").await;
    let seq = receipt["seqs"][0].as_i64().unwrap();
    let mut bob_ws = connect(&server, &bob).await;
    assert_eq!(next_frame(&mut bob_ws).await["seq"].as_i64(), Some(seq));
    retry(&mut bob_ws, seq).await;
    // Alice gets a retry request from Bob's device — not "delivered".
    let frame = next_frame(&mut alice_ws).await;
    assert_eq!(frame["type"], "envelope", "{frame}");
    assert_eq!(
        (
            frame["sender_user"].as_str(),
            frame["sender_device"].as_str()
        ),
        (Some(bob.user_id.as_str()), Some(bob.device_id.as_str()))
    );
    let request = b64::decode(frame["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        sotto_core::protocol::parse_retry_request(&request),
        Some(seq)
    );
    assert_eq!(
        server.queued(),
        1,
        "Bob's copy is gone; the request waits for Alice"
    );
    // While the request waits, Alice may answer it with one envelope to Bob's asking device
    // alone, though Bob has another device a full send would have to include.
    let bob2 = server.user_with_device("bob", [5; 32]).await;
    let resend = |seq: i64, devices: Vec<&str>| {
        json!({
            "sender_device": alice.device_id,
            "recipients": [bob.user_id],
            "envelopes": devices.iter().map(|d| json!({ "device_id": d, "payload": "AQID" })).collect::<Vec<_>>(),
            "resend_of": seq,
        })
    };
    let (status, body) = server
        .post(
            "/v1/envelopes",
            Some(&alice.token),
            resend(seq, vec![&bob.device_id]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for (req, code) in [
        (resend(seq + 100, vec![&bob.device_id]), "no_retry_request"),
        (resend(seq, vec![&bob2.device_id]), "no_retry_request"),
        (
            resend(seq, vec![&bob.device_id, &bob2.device_id]),
            "bad_resend",
        ),
    ] {
        let (status, body) = server.post("/v1/envelopes", Some(&alice.token), req).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)));
    }
    let resent = next_of_type(&mut bob_ws, "envelope").await;
    ack(&mut bob_ws, resent["seq"].as_i64().unwrap()).await;
    next_of_type(&mut alice_ws, "delivered").await;
    // A retry request is never answered with another one; acking it empties the queue.
    let retry_seq = frame["seq"].as_i64().unwrap();
    retry(&mut alice_ws, retry_seq).await;
    assert!(silent_for(&mut bob_ws, 300).await);
    assert!(
        silent_for(&mut alice_ws, 100).await,
        "no delivered for a retry"
    );
    assert_eq!(server.queued(), 0);
    // Only the server makes retry requests and expiry notices: a client's envelope that
    // looks like one is refused.
    for forged in [
        sotto_core::protocol::retry_request(1),
        sotto_core::protocol::expired_notice(&[1]),
        b"\0sotto-anything".to_vec(),
    ] {
        let (status, body) = server
            .post(
                "/v1/envelopes",
                Some(&bob.token),
                json!({
                    "sender_device": bob.device_id,
                    "recipients": [alice.user_id],
                    "envelopes": [{ "device_id": alice.device_id, "payload": b64::encode(&forged) }],
                }),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_payload"))
        );
    }
    // Asking again for an envelope that is not yours does nothing.
    let (_, receipt) = send(&server, &alice, &[&bob, &bob2], "second").await;
    let second = receipt["seqs"][0].as_i64().unwrap();
    retry(&mut alice_ws, second).await;
    assert_eq!(next_frame(&mut bob_ws).await["seq"].as_i64(), Some(second));
    assert!(silent_for(&mut alice_ws, 200).await);
}

#[tokio::test]
async fn concurrent_sends_are_all_stored_once_and_delivered_in_order() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    // Many sends at once: the server commits them in groups, each answered after its commit.
    let sends = (0..200).map(|i| {
        let (server, alice, bob) = (&server, &alice, &bob);
        async move { send(server, alice, &[bob], &format!("m{i:03}")).await }
    });
    let answers = futures_util::future::join_all(sends).await;
    let mut seqs: Vec<i64> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["seqs"][0].as_i64().unwrap()
        })
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 200, "every send has its own sequence number");
    assert_eq!(server.queued(), 200);
    let mut ws = connect(&server, &bob).await;
    let mut last = 0;
    for _ in 0..200 {
        let frame = next_frame(&mut ws).await;
        let seq = frame["seq"].as_i64().unwrap();
        assert!(seq > last, "delivered in queue order");
        last = seq;
        ack(&mut ws, seq).await;
    }
    // Acknowledgements are committed in groups too; all of them land.
    for _ in 0..50 {
        if server.queued() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(server.queued(), 0);
}

#[tokio::test]
async fn a_send_on_the_socket_is_stored_and_answered_like_a_post() {
    use futures_util::SinkExt;
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut alice_ws = connect(&server, &alice).await;
    let mut bob_ws = connect(&server, &bob).await;
    let frame = |id: u64, devices: &[&str]| {
        let envelopes: Vec<_> = devices
            .iter()
            .map(|d| json!({ "device_id": d, "payload": b64::encode(b"over the socket") }))
            .collect();
        let request = json!({ "sender_device": alice.device_id, "recipients": [bob.user_id], "envelopes": envelopes });
        tokio_tungstenite::tungstenite::Message::Text(
            json!({ "type": "send", "id": id, "request": request })
                .to_string()
                .into(),
        )
    };
    alice_ws.send(frame(7, &[&bob.device_id])).await.unwrap();
    let answer = next_frame(&mut alice_ws).await;
    assert_eq!(
        (answer["type"].as_str(), answer["id"].as_u64()),
        (Some("stored"), Some(7)),
        "{answer}"
    );
    let seq = answer["receipt"]["seqs"][0].as_i64().unwrap();
    let got = next_frame(&mut bob_ws).await;
    assert_eq!(
        (got["seq"].as_i64(), payload(&got).as_str()),
        (Some(seq), "over the socket")
    );
    // The same checks as the HTTP route: a send that misses Bob's device is refused.
    alice_ws.send(frame(8, &[])).await.unwrap();
    let answer = next_frame(&mut alice_ws).await;
    assert_eq!(
        (
            answer["type"].as_str(),
            answer["id"].as_u64(),
            answer["error"]["code"].as_str()
        ),
        (Some("refused"), Some(8), Some("no_envelopes"))
    );
    // A socket sends only as its own device: Alice's socket passing a send off as Bob's
    // device (to Alice) is refused, and nothing is stored.
    let forged = json!({
        "sender_device": bob.device_id,
        "recipients": [alice.user_id],
        "envelopes": [{ "device_id": alice.device_id, "payload": b64::encode(b"as bob") }],
    });
    alice_ws
        .send(tokio_tungstenite::tungstenite::Message::Text(
            json!({ "type": "send", "id": 9, "request": forged })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let answer = next_frame(&mut alice_ws).await;
    assert_eq!(
        (answer["id"].as_u64(), answer["error"]["code"].as_str()),
        (Some(9), Some("unknown_device")),
        "{answer}"
    );
    assert_eq!(server.queued(), 1);
}

/// A device whose socket stops reading while megabytes are sent to it (more than the
/// server pushes to one connection, so the rest waits in the queue) gets every envelope
/// once and in order when it reads again, and nothing after.
#[tokio::test]
async fn a_socket_that_stops_reading_gets_everything_once_and_in_order_when_it_reads_again() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut bob_ws = connect(&server, &bob).await;
    let big = "x".repeat(100 * 1024);
    let mut sent = Vec::new();
    for i in 0..80 {
        let (status, receipt) = send(&server, &alice, &[&bob], &format!("{i:03}{big}")).await;
        assert_eq!(status, 200, "{receipt}");
        sent.push(receipt["seqs"][0].as_i64().unwrap());
    }
    for (i, seq) in sent.iter().enumerate() {
        let frame = next_of_type(&mut bob_ws, "envelope").await;
        assert_eq!(frame["seq"].as_i64(), Some(*seq), "envelope {i} in order");
        assert!(payload(&frame).starts_with(&format!("{i:03}")));
        ack(&mut bob_ws, *seq).await;
    }
    assert!(silent_for(&mut bob_ws, 300).await, "nothing is sent twice");
}

/// Send frames on one socket are stored and answered in the order they came, each with
/// its own sequence number, also when they come faster than they are stored.
#[tokio::test]
async fn sends_on_one_socket_are_answered_in_order() {
    use futures_util::SinkExt;
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut alice_ws = connect(&server, &alice).await;
    for id in 1..=40u64 {
        let request = json!({
            "sender_device": alice.device_id,
            "recipients": [bob.user_id],
            "envelopes": [{ "device_id": bob.device_id, "payload": b64::encode(format!("m{id}").as_bytes()) }],
        });
        let frame = json!({ "type": "send", "id": id, "request": request }).to_string();
        alice_ws
            .send(tokio_tungstenite::tungstenite::Message::Text(frame.into()))
            .await
            .unwrap();
    }
    let mut last = 0;
    for id in 1..=40u64 {
        let answer = next_of_type(&mut alice_ws, "stored").await;
        assert_eq!(answer["id"].as_u64(), Some(id), "{answer}");
        let seq = answer["receipt"]["seqs"][0].as_i64().unwrap();
        assert!(seq > last, "stored in the order sent");
        last = seq;
    }
    let mut bob_ws = connect(&server, &bob).await;
    for id in 1..=40u64 {
        let frame = next_of_type(&mut bob_ws, "envelope").await;
        assert_eq!(payload(&frame), format!("m{id}"));
    }
}

/// The socket says `error` with `code` (after any frames already on their way) and closes.
async fn closes_with(ws: &mut Ws, code: &str) {
    let frame = next_of_type(ws, "error").await;
    assert_eq!(
        (frame["type"].as_str(), frame["code"].as_str()),
        (Some("error"), Some(code)),
        "{frame}"
    );
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))) | Ok(None) => break,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) => break,
            Err(_) => panic!("the socket stayed open"),
        }
    }
}

#[tokio::test]
async fn signing_out_or_removing_a_device_closes_its_socket_at_once() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut alice_ws = connect(&server, &alice).await;
    let mut bob_ws = connect(&server, &bob).await;
    // Another session of Bob's stays connected when one signs out.
    let bob_again = server.user_with_device("bob", [3; 32]).await;
    let mut other_ws = connect(&server, &bob_again).await;

    let (status, _) = server
        .post("/v1/auth/logout", Some(&bob.token), json!({}))
        .await;
    assert_eq!(status, 200);
    closes_with(&mut bob_ws, "session_revoked").await;
    assert!(
        silent_for(&mut other_ws, 200).await,
        "the other session is untouched"
    );

    let resp = server
        .http
        .delete(format!("{}/v1/devices/{}", server.base, alice.device_id))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    closes_with(&mut alice_ws, "device_removed").await;
}

#[tokio::test]
async fn one_sender_cannot_fill_a_device_queue_for_everyone() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let carol = server.user_with_device("carol", [3; 32]).await;
    // Two envelopes for one device in one send: refused, nothing stored.
    let (status, body) = server
        .post(
            "/v1/envelopes",
            Some(&alice.token),
            json!({
                "sender_device": alice.device_id,
                "recipients": [bob.user_id],
                "envelopes": [
                    { "device_id": bob.device_id, "payload": "AQID" },
                    { "device_id": bob.device_id, "payload": "AQID" },
                ],
            }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("duplicate_device"))
    );
    assert_eq!(server.queued(), 0);
    // Alice has left Bob her whole share of envelopes he has not picked up (written
    // straight to the database, as a flood of sends would).
    exec(
        &server.db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?4)
         INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         SELECT ?1, ?2, ?3, 0, ?5 FROM n",
        params![
            bob.device_id,
            alice.user_id,
            alice.device_id,
            sotto_server::delivery::queue::MAX_QUEUED_PER_SENDER,
            vec![1u8]
        ],
    );
    let (status, body) = send(&server, &alice, &[&bob], "one more").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("sender_queue_share_full"))
    );
    // Everyone else still reaches Bob.
    let (status, body) = send(&server, &carol, &[&bob], "hello bob").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_session_that_floods_sends_is_slowed_alone() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.session_rate_per_minute = 3;
    let server = TestServer::start(cfg).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    for i in 0..3 {
        assert_eq!(
            send(&server, &alice, &[&bob], &format!("m{i}")).await.0,
            200
        );
    }
    let (status, body) = send(&server, &alice, &[&bob], "one too many").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(server.queued(), 3, "the refused send stored nothing");
    assert_eq!(send(&server, &bob, &[&alice], "bob is fine").await.0, 200);
}

/// A stopping server tells its sockets it is going away (1001, so clients reconnect to
/// another node), and every send it answered is in the database afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_says_going_away_and_keeps_what_it_accepted() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let mut bob_ws = connect(&server, &bob).await;
    let location = server.db.clone();
    // Sends race the stop: each answered one must be kept.
    let http = server.http.clone();
    let (base, token, from, to, user) = (
        server.base.clone(),
        alice.token.clone(),
        alice.device_id.clone(),
        bob.device_id.clone(),
        bob.user_id.clone(),
    );
    let sends = tokio::spawn(async move {
        let mut accepted = 0;
        for i in 0..200 {
            let body = json!({
                "sender_device": from,
                "recipients": [user],
                "envelopes": [{ "device_id": to, "payload": sotto_core::b64::encode(format!("m{i}").as_bytes()) }],
            });
            match http
                .post(format!("{base}/v1/envelopes"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => accepted += 1,
                _ => break,
            }
        }
        accepted
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let stopped = tokio::spawn(server.stop());
    let close = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), bob_ws.next())
            .await
            .expect("the socket was told within 10 s")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.expect("a close frame").code, CloseCode::Away);
    tokio::time::timeout(std::time::Duration::from_secs(20), stopped)
        .await
        .expect("the server stopped")
        .unwrap();
    let accepted = sends.await.unwrap();
    assert!(accepted > 0, "some sends got in before the stop");
    assert_eq!(
        count(&location, "SELECT COUNT(*) FROM envelopes", params![]),
        accepted,
        "every answered send is stored"
    );
}

/// Fills `device`'s queue with `n` envelopes from `sender` (user, device), straight in the
/// database, as a flood of sends would.
fn flood(server: &TestServer, device: &str, sender: (&str, &str), n: i64) {
    exec(
        &server.db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?4)
         INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         SELECT ?1, ?2, ?3, 0, ?5 FROM n",
        params![device, sender.0, sender.1, n, vec![1u8]],
    );
}

/// Visitors are free to make: all of them together get one share of a device's queue, so
/// a crowd of them cannot fill it; staff still get through. A full queue takes nothing.
#[tokio::test]
async fn visitors_together_get_one_share_and_a_full_queue_takes_nothing() {
    use sotto_server::delivery::queue::{MAX_QUEUED_FROM_VISITORS, MAX_QUEUED_PER_DEVICE};
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let carol = server.user_with_device("carol", [3; 32]).await;
    let mut visitors = Vec::new();
    for key in [7u8, 8] {
        let (_, v) = server
            .post("/v1/auth/ephemeral", None, json!({ "token": EPHEMERAL }))
            .await;
        let token = v["token"].as_str().unwrap().to_owned();
        let (status, dev) = server
            .post(
                "/v1/devices",
                Some(&token),
                json!({ "public_key": b64::encode(&[key; 32]) }),
            )
            .await;
        assert_eq!(status, 200, "{dev}");
        visitors.push(Member {
            token,
            user_id: v["user"]["id"].as_str().unwrap().to_owned(),
            device_id: dev["id"].as_str().unwrap().to_owned(),
        });
    }
    // One visitor has left Bob all the visitors' share.
    let first = &visitors[0];
    flood(
        &server,
        &bob.device_id,
        (&first.user_id, &first.device_id),
        MAX_QUEUED_FROM_VISITORS,
    );
    let (status, body) = send(&server, &visitors[1], &[&bob], "me too").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("sender_queue_share_full")),
        "another visitor finds the visitors' share full"
    );
    let (status, body) = send(&server, &carol, &[&bob], "staff still get through").await;
    assert_eq!(status, 200, "{body}");

    // Carol's queue is full: a send to her stores nothing, from a visitor or from staff.
    flood(
        &server,
        &carol.device_id,
        (&bob.user_id, &bob.device_id),
        MAX_QUEUED_PER_DEVICE,
    );
    let before = server.queued();
    let (status, body) = send(&server, &visitors[1], &[&carol], "full").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("recipient_queue_full"))
    );
    let (status, body) = send(&server, &bob, &[&carol], "full").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("recipient_queue_full"))
    );
    assert_eq!(server.queued(), before, "nothing stored");
}
