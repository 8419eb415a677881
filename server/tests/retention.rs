//! The clean-up task over a real server and its SQLite file: what no one can use any more
//! goes (expired sessions, old link requests, old envelopes and blobs, dead visitors with
//! their devices and queues); everything still in use stays.

mod common;

use common::*;
use serde_json::json;
use sotto_server::retention::Retention;

fn count(db: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

fn exec(db: &std::path::Path, sql: &str, arg: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute(sql, [arg])
        .unwrap();
}

#[tokio::test]
async fn what_no_one_can_use_is_cleaned_up_and_nothing_else() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    // Sweep only when the test has set the scene: the first sweep runs at start.
    cfg.retention = Retention {
        interval_secs: 1,
        ..Retention::default()
    };
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
        "UPDATE envelopes SET accepted_at = accepted_at - 31 * 86400000 WHERE seq = ?1",
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
    exec(
        &db,
        "INSERT INTO envelopes (device_id, sender_user, sender_device, accepted_at, payload)
         VALUES (?1, 'u', 'd', strftime('%s','now') * 1000, x'01')",
        &gone_device,
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM envelopes WHERE device_id = '{gone_device}'")
        ),
        1
    );
    // An expired session of Bob's, and an old blob of Alice's.
    exec(&db, "UPDATE sessions SET expires_at = 0 WHERE user_id = ?1 AND rowid = (SELECT MIN(rowid) FROM sessions WHERE user_id = ?1)", &bob.user_id);
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
