//! The device-linking relay over real HTTP and WebSocket: the user's running browser is
//! shown the request, its approval reaches the new browser once, and wrong, expired or
//! reused requests get clear errors.

mod common;

use common::*;
use serde_json::json;
use sotto_core::b64;

#[tokio::test]
async fn a_request_reaches_the_running_browser_and_its_approval_is_taken_once() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let running = server.user_with_device("alice", [1; 32]).await;
    let mut ws = connect(&server, &running).await;
    // The new browser: same user, no device yet.
    let (new_token, _) = server
        .sign_in(&hs256(json!({ "user": { "id": "alice" } })))
        .await;
    let ephemeral = [9u8; 32];
    let (status, request) = server
        .post(
            "/v1/links",
            Some(&new_token),
            json!({ "ephemeral_public": b64::encode(&ephemeral) }),
        )
        .await;
    assert_eq!(status, 200, "{request}");
    let id = request["id"].as_str().unwrap().to_owned();
    assert_eq!(request["status"], "pending");

    let frame = next_frame(&mut ws).await;
    assert_eq!(frame["type"], "link_request");
    assert_eq!(frame["id"], id.as_str());
    assert_eq!(frame["ephemeral_public"], b64::encode(&ephemeral));
    // Both sides derive the same check code from the key.
    let shown = b64::decode(frame["ephemeral_public"].as_str().unwrap()).unwrap();
    assert_eq!(
        sotto_core::linking::check_code(&[0; 32], &shown),
        sotto_core::linking::check_code(&[0; 32], &ephemeral)
    );

    let (_, waiting) = server
        .get(&format!("/v1/links/{id}"), Some(&new_token))
        .await;
    assert_eq!(
        (waiting["status"].as_str(), waiting.get("sealed")),
        (Some("pending"), None)
    );

    let approve =
        json!({ "device_id": running.device_id, "sealed": b64::encode(b"sealed bundle") });
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/approve"),
            Some(&running.token),
            approve.clone(),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/approve"),
            Some(&running.token),
            approve,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("link_answered"))
    );

    let (status, taken) = server
        .get(&format!("/v1/links/{id}"), Some(&new_token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(taken["sealed"], b64::encode(b"sealed bundle"));
    let (status, again) = server
        .get(&format!("/v1/links/{id}"), Some(&new_token))
        .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (410, Some("link_used")),
        "single use"
    );
}

#[tokio::test]
async fn wrong_declined_expired_and_foreign_requests_are_refused() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let (status, body) = server.get("/v1/links/l_nope", Some(&alice.token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_link"))
    );
    let (status, body) = server
        .post(
            "/v1/links",
            Some(&alice.token),
            json!({ "ephemeral_public": "AAAA" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_key"))
    );

    let (_, request) = server
        .post(
            "/v1/links",
            Some(&alice.token),
            json!({ "ephemeral_public": b64::encode(&[3; 32]) }),
        )
        .await;
    let id = request["id"].as_str().unwrap().to_owned();
    // Another user can neither see nor answer it.
    let (status, _) = server
        .get(&format!("/v1/links/{id}"), Some(&bob.token))
        .await;
    assert_eq!(status, 404);
    let forged = json!({ "device_id": bob.device_id, "sealed": "AQID" });
    let (status, _) = server
        .post(&format!("/v1/links/{id}/approve"), Some(&bob.token), forged)
        .await;
    assert_eq!(status, 404);

    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/decline"),
            Some(&alice.token),
            json!({}),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("declined")));
    let (_, seen) = server
        .get(&format!("/v1/links/{id}"), Some(&alice.token))
        .await;
    assert_eq!(seen["status"], "declined");

    let (_, request) = server
        .post(
            "/v1/links",
            Some(&alice.token),
            json!({ "ephemeral_public": b64::encode(&[4; 32]) }),
        )
        .await;
    let old = request["id"].as_str().unwrap().to_owned();
    rusqlite::Connection::open(&server.db_path)
        .unwrap()
        .execute(
            "UPDATE link_requests SET expires_at = 0 WHERE id = ?1",
            [&old],
        )
        .unwrap();
    let (status, body) = server
        .get(&format!("/v1/links/{old}"), Some(&alice.token))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("link_expired"))
    );
    let approve = json!({ "device_id": alice.device_id, "sealed": "AQID" });
    let (status, body) = server
        .post(
            &format!("/v1/links/{old}/approve"),
            Some(&alice.token),
            approve,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("link_expired"))
    );
}

#[tokio::test]
async fn a_browser_that_connects_later_is_shown_the_waiting_request() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let running = server.user_with_device("alice", [1; 32]).await;
    let (_, request) = server
        .post(
            "/v1/links",
            Some(&running.token),
            json!({ "ephemeral_public": b64::encode(&[5; 32]) }),
        )
        .await;
    let mut ws = connect(&server, &running).await;
    let frame = next_frame(&mut ws).await;
    assert_eq!(
        (frame["type"].as_str(), frame["id"].as_str()),
        (Some("link_request"), request["id"].as_str())
    );
}
