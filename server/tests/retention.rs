//! The clean-up task over a real server and its SQLite file: what no one can use any more
//! goes (expired sessions, old link requests, old envelopes and blobs, dead visitors with
//! their devices and queues); everything still in use stays.

mod common;

use common::*;
use serde_json::json;

fn count(db: &TestDb, sql: &str) -> i64 {
    common::count(&db.location, sql, params![])
}

fn exec(db: &TestDb, sql: &str, arg: &str) {
    common::exec(&db.location, sql, params![arg]);
}

#[tokio::test]
async fn what_no_one_can_use_is_cleaned_up_and_nothing_else() {
    let (_dir, db) = temp_db();
    let cfg = sweeping_every_second(&db);
    let server = TestServer::start(cfg).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let send = async |text: &str| {
        let (status, body) = send(&server, &alice, &[&bob], text).await;
        assert_eq!(status, 200, "{body}");
        body["seqs"][0].as_i64().unwrap()
    };
    let old = send("sent 31 days ago").await;
    send("sent now").await;
    exec(
        &db,
        "UPDATE envelopes SET accepted_at = accepted_at - 2678400000 WHERE seq = ?1",
        &old.to_string(),
    );
    // Two visitors: one gone for 8 days, one still here.
    let visitor = async || {
        let (_, v) = server
            .post("/v1/auth/ephemeral", None, json!({ "token": EPHEMERAL }))
            .await;
        let token = v["token"].as_str().unwrap().to_owned();
        let (_, dev) = server
            .post(
                "/v1/devices",
                Some(&token),
                json!({ "public_key": sotto_core::b64::encode(&[7u8; 32]) }),
            )
            .await;
        (
            v["user"]["id"].as_str().unwrap().to_owned(),
            dev["id"].as_str().unwrap().to_owned(),
        )
    };
    let (gone, gone_device) = visitor().await;
    let (here, _) = visitor().await;
    exec(&db, "DELETE FROM sessions WHERE user_id = ?1", &gone);
    exec(
        &db,
        "UPDATE users SET created_at = created_at - 8 * 86400 WHERE id = ?1",
        &gone,
    );
    // A message waits for the gone visitor's device.
    common::exec(
        &db.location,
        "INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         VALUES (?1, 'u', 'd', ?2, ?3)",
        params![gone_device, now_millis(), vec![1u8]],
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM envelopes WHERE device_id = '{gone_device}'")
        ),
        1
    );
    // An expired session of Bob's, and an old blob of Alice's.
    exec(&db, "UPDATE sessions SET expires_at = 0 WHERE user_id = ?1 AND token_hash = (SELECT token_hash FROM sessions WHERE user_id = ?1 ORDER BY token_hash LIMIT 1)", &bob.user_id);
    let upload = server
        .http
        .post(format!("{}/v1/blobs", server.base))
        .bearer_auth(&alice.token)
        .body(vec![1u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status().as_u16(), 200);
    exec(
        &db,
        "UPDATE blobs SET created_at = created_at - 31 * 86400 WHERE uploader = ?1",
        &alice.user_id,
    );

    let users_before = count(&db, "SELECT COUNT(*) FROM users");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM blobs"),
        0,
        "the old blob went"
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM envelopes WHERE seq = {old}")
        ),
        0,
        "the month-old envelope went"
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT COUNT(*) FROM envelopes WHERE device_id = '{}'",
                bob.device_id
            )
        ),
        1,
        "today's envelope stays"
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM users WHERE id = '{gone}'")
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM devices WHERE id = '{gone_device}'")
        ),
        0,
        "the visitor's device went with it"
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM envelopes WHERE device_id = '{gone_device}'")
        ),
        0,
        "and its queue"
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM users WHERE id = '{here}'")
        ),
        1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users"), users_before - 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM sessions WHERE expires_at <= 0"),
        0
    );
    // Everyone still here still works.
    let (status, _) = server.get("/v1/me", Some(&alice.token)).await;
    assert_eq!(status, 200);
}

/// A sender is told which of its envelopes expired unread, on its socket, at once; what the
/// server made itself, or what a removed device sent, expires silently.
#[tokio::test]
async fn a_sender_is_told_which_envelopes_expired_unread() {
    let (_dir, db) = temp_db();
    let cfg = sweeping_every_second(&db);
    let server = TestServer::start(cfg).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let carol = server.user_with_device("carol", [3; 32]).await;
    let mut alice_ws = connect(&server, &alice).await;
    let mut seqs = Vec::new();
    for text in ["one", "two"] {
        let (status, body) = send(&server, &alice, &[&bob, &carol], text).await;
        assert_eq!(status, 200, "{body}");
        seqs.push(body["seqs"].as_array().unwrap().clone());
    }
    let (_, fresh) = send(&server, &alice, &[&bob], "today").await;
    let to_bob: Vec<i64> = seqs.iter().map(|s| s[0].as_i64().unwrap()).collect();
    let to_carol: Vec<i64> = seqs.iter().map(|s| s[1].as_i64().unwrap()).collect();
    // Neither Bob nor Carol reads anything for a month. Beside Alice's envelopes, Bob's
    // queue holds a retry request (the server's own, in Alice's name) and an envelope from
    // a device that is no longer registered.
    exec(
        &db,
        "UPDATE envelopes SET accepted_at = accepted_at - 2678400000 WHERE seq <> ?1",
        &fresh["seqs"][0].to_string(),
    );
    // The retry request is labelled with Alice's device, as the server makes them: it is
    // silent because the server made it, not because its sender is unknown.
    common::exec(
        &db.location,
        "INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         VALUES (?1, ?2, ?3, 0, ?4)",
        params![
            bob.device_id,
            alice.user_id,
            alice.device_id,
            sotto_core::protocol::retry_request(1)
        ],
    );
    common::exec(
        &db.location,
        "INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         VALUES (?1, 'u', 'removed-device', 0, ?2)",
        params![bob.device_id, vec![1u8]],
    );

    // Alice hears within a sweep: one notice per recipient device that she sent to.
    let mut told: Vec<(String, Vec<i64>)> = Vec::new();
    while told.len() < 2 {
        let frame = next_of_type(&mut alice_ws, "envelope").await;
        let payload = sotto_core::b64::decode(frame["payload"].as_str().unwrap()).unwrap();
        let seqs = sotto_core::protocol::parse_expired_notice(&payload).expect("a notice");
        // Labelled with the device that never got them, and its user.
        let of = [&bob, &carol]
            .into_iter()
            .find(|m| frame["sender_device"] == m.device_id.as_str())
            .expect("from Bob's or Carol's device");
        assert_eq!(frame["sender_user"], of.user_id.as_str());
        told.push((frame["sender_device"].as_str().unwrap().to_owned(), seqs));
        ack(&mut alice_ws, frame["seq"].as_i64().unwrap()).await;
    }
    told.sort();
    let mut expected = vec![
        (bob.device_id.clone(), to_bob),
        (carol.device_id.clone(), to_carol),
    ];
    expected.sort();
    assert_eq!(told, expected);
    assert!(
        silent_for(&mut alice_ws, 1500).await,
        "nothing else is noticed"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM envelopes"),
        1,
        "only today's envelope waits"
    );
}
