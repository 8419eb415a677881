//! The device-linking relay over real HTTP and WebSocket: commit, answer, reveal, approve,
//! each once, in order, by the party it belongs to; the two browsers (real `sotto_core`
//! linking keys) derive one code; wrong, expired, foreign or reused requests get clear errors.

mod common;

use common::*;
use serde_json::{json, Value};
use sotto_core::b64;
use sotto_core::linking::{NewBrowser, RunningBrowser};

const IDENTITY: [u8; 32] = [0; 32];

async fn new_browser_token(server: &TestServer, user: &str) -> String {
    server
        .sign_in(&hs256(json!({ "user": { "id": user } })))
        .await
        .0
}

async fn ask(server: &TestServer, token: &str, new: &NewBrowser) -> String {
    let (status, request) = server
        .post(
            "/v1/links",
            Some(token),
            json!({ "commitment": b64::encode(&new.commitment()) }),
        )
        .await;
    assert_eq!(status, 200, "{request}");
    assert_eq!(request["status"], "pending");
    assert!(
        request.get("new_public").is_none(),
        "no key before the answer"
    );
    request["id"].as_str().unwrap().to_owned()
}

fn code_of(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[tokio::test]
async fn both_browsers_derive_one_code_and_the_approval_is_taken_once() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let running = server.user_with_device("alice", [1; 32]).await;
    let mut ws = connect(&server, &running).await;
    let new_token = new_browser_token(&server, "alice").await;
    let new = NewBrowser::start(&IDENTITY).unwrap();
    let id = ask(&server, &new_token, &new).await;

    // The running browser hears of the commitment and answers with its key.
    let frame = next_frame(&mut ws).await;
    assert_eq!(
        (frame["type"].as_str(), frame["id"].as_str()),
        (Some("link_request"), Some(id.as_str()))
    );
    assert_eq!(frame["commitment"], b64::encode(&new.commitment()));
    let commitment = b64::decode(frame["commitment"].as_str().unwrap()).unwrap();
    let answering = RunningBrowser::accept(&id, &commitment).unwrap();
    let accept = json!({ "device_id": running.device_id, "ephemeral_public": b64::encode(&answering.public()) });
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/accept"),
            Some(&running.token),
            accept.clone(),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/accept"),
            Some(&running.token),
            accept,
        )
        .await;
    assert_eq!((status, code_of(&body)), (409, Some("link_answered")));

    // The new browser sees the answer and reveals its key, which reaches the answerer.
    let (_, seen) = server
        .get(&format!("/v1/links/{id}"), Some(&new_token))
        .await;
    assert_eq!(seen["status"], "accepted");
    let running_public = b64::decode(seen["running_public"].as_str().unwrap()).unwrap();
    let revealed = new.reveal(&id, &running_public).unwrap();
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/reveal"),
            Some(&new_token),
            json!({ "ephemeral_public": b64::encode(&revealed.new_public) }),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("revealed")));
    let frame = next_frame(&mut ws).await;
    assert_eq!(frame["status"], "revealed");
    let new_public = b64::decode(frame["new_public"].as_str().unwrap()).unwrap();
    let checked = answering.check(&IDENTITY, &new_public).unwrap();
    assert_eq!(checked.code, revealed.code, "both browsers show one code");

    let sealed = checked.seal_bundle(b"bundle").unwrap();
    let approve = json!({ "device_id": running.device_id, "sealed": b64::encode(&sealed) });
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
    assert_eq!((status, code_of(&body)), (409, Some("link_answered")));

    let (status, taken) = server
        .get(&format!("/v1/links/{id}"), Some(&new_token))
        .await;
    assert_eq!(status, 200);
    let sealed = b64::decode(taken["sealed"].as_str().unwrap()).unwrap();
    assert_eq!(&revealed.open_bundle(&sealed).unwrap()[..], b"bundle");
    let (status, again) = server
        .get(&format!("/v1/links/{id}"), Some(&new_token))
        .await;
    assert_eq!(
        (status, code_of(&again)),
        (410, Some("link_used")),
        "single use"
    );
}

#[tokio::test]
async fn each_step_happens_in_order_and_only_by_its_party() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let first = server.user_with_device("alice", [1; 32]).await;
    let second = server.user_with_device("alice", [2; 32]).await;
    let mut second_ws = connect(&server, &second).await;
    let bob = server.user_with_device("bob", [3; 32]).await;
    let new_token = new_browser_token(&server, "alice").await;
    let new = NewBrowser::start(&IDENTITY).unwrap();
    let id = ask(&server, &new_token, &new).await;
    assert_eq!(next_frame(&mut second_ws).await["status"], "pending");
    let key = json!({ "ephemeral_public": b64::encode(&[9; 32]) });

    // Nothing to reveal before an answer; nothing to approve before the reveal.
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/reveal"),
            Some(&new_token),
            key.clone(),
        )
        .await;
    assert_eq!((status, code_of(&body)), (409, Some("link_answered")));
    let approve = json!({ "device_id": first.device_id, "sealed": "AQID" });
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/approve"),
            Some(&first.token),
            approve.clone(),
        )
        .await;
    assert_eq!((status, code_of(&body)), (409, Some("link_answered")));

    // Bob can neither see nor answer Alice's request; nor with a device of Alice's.
    let (status, _) = server
        .get(&format!("/v1/links/{id}"), Some(&bob.token))
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post(
            &format!("/v1/links/{id}/accept"),
            Some(&bob.token),
            json!({ "device_id": bob.device_id, "ephemeral_public": b64::encode(&[9; 32]) }),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/accept"),
            Some(&first.token),
            json!({ "device_id": bob.device_id, "ephemeral_public": b64::encode(&[9; 32]) }),
        )
        .await;
    assert_eq!((status, code_of(&body)), (403, Some("unknown_device")));
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/accept"),
            Some(&first.token),
            json!({ "device_id": first.device_id, "ephemeral_public": "AAAA" }),
        )
        .await;
    assert_eq!((status, code_of(&body)), (400, Some("invalid_key")));

    // The first browser answers; the second is told and cannot answer too.
    let answering = RunningBrowser::accept(&id, &new.commitment()).unwrap();
    let (status, _) = server
        .post(
            &format!("/v1/links/{id}/accept"),
            Some(&first.token),
            json!({ "device_id": first.device_id, "ephemeral_public": b64::encode(&answering.public()) }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(next_frame(&mut second_ws).await["status"], "accepted");
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/accept"),
            Some(&second.token),
            json!({ "device_id": second.device_id, "ephemeral_public": b64::encode(&[9; 32]) }),
        )
        .await;
    assert_eq!((status, code_of(&body)), (409, Some("link_answered")));

    // Only the asking session sees its request and reveals; the running browsers' own
    // sessions of the same user are told it does not exist.
    let (status, _) = server
        .get(&format!("/v1/links/{id}"), Some(&first.token))
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post(
            &format!("/v1/links/{id}/reveal"),
            Some(&second.token),
            key.clone(),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post(
            &format!("/v1/links/{id}/reveal"),
            Some(&new_token),
            key.clone(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .post(&format!("/v1/links/{id}/reveal"), Some(&new_token), key)
        .await;
    assert_eq!(
        (status, code_of(&body)),
        (409, Some("link_answered")),
        "revealed once"
    );
    assert!(
        silent_for(&mut second_ws, 300).await,
        "the reveal goes to the answerer only"
    );

    // Only the answering device approves.
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/approve"),
            Some(&second.token),
            json!({ "device_id": second.device_id, "sealed": "AQID" }),
        )
        .await;
    assert_eq!(
        (status, code_of(&body)),
        (403, Some("not_the_answering_device"))
    );
    let (status, _) = server
        .post(
            &format!("/v1/links/{id}/approve"),
            Some(&first.token),
            approve,
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_declined_and_expired_requests_are_refused() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let mut ws = connect(&server, &alice).await;
    let (status, body) = server.get("/v1/links/l_nope", Some(&alice.token)).await;
    assert_eq!((status, code_of(&body)), (404, Some("unknown_link")));
    let (status, body) = server
        .post(
            "/v1/links",
            Some(&alice.token),
            json!({ "commitment": "AAAA" }),
        )
        .await;
    assert_eq!((status, code_of(&body)), (400, Some("bad_payload")));

    let new_token = new_browser_token(&server, "alice").await;
    let id = ask(&server, &new_token, &NewBrowser::start(&IDENTITY).unwrap()).await;
    assert_eq!(next_frame(&mut ws).await["status"], "pending");
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/decline"),
            Some(&alice.token),
            json!({}),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("declined")));
    // The browsers showing it are told, so their dialogs close.
    let frame = next_frame(&mut ws).await;
    assert_eq!(
        (frame["id"].as_str(), frame["status"].as_str()),
        (Some(id.as_str()), Some("declined"))
    );
    let (_, seen) = server
        .get(&format!("/v1/links/{id}"), Some(&new_token))
        .await;
    assert_eq!(seen["status"], "declined");
    let (status, body) = server
        .post(
            &format!("/v1/links/{id}/decline"),
            Some(&alice.token),
            json!({}),
        )
        .await;
    assert_eq!((status, code_of(&body)), (409, Some("link_answered")));

    let old = ask(&server, &new_token, &NewBrowser::start(&IDENTITY).unwrap()).await;
    exec(
        &server.db,
        "UPDATE link_requests SET expires_at = 0 WHERE id = ?1",
        params![old],
    );
    let (status, body) = server
        .get(&format!("/v1/links/{old}"), Some(&new_token))
        .await;
    assert_eq!((status, code_of(&body)), (410, Some("link_expired")));
    let (status, body) = server
        .post(
            &format!("/v1/links/{old}/accept"),
            Some(&alice.token),
            json!({ "device_id": alice.device_id, "ephemeral_public": b64::encode(&[9; 32]) }),
        )
        .await;
    assert_eq!((status, code_of(&body)), (410, Some("link_expired")));
}

#[tokio::test]
async fn a_browser_that_connects_later_is_shown_what_waits_for_it() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let running = server.user_with_device("alice", [1; 32]).await;
    let other = server.user_with_device("alice", [2; 32]).await;
    let new_token = new_browser_token(&server, "alice").await;
    let new = NewBrowser::start(&IDENTITY).unwrap();
    let id = ask(&server, &new_token, &new).await;
    {
        let mut ws = connect(&server, &running).await;
        let frame = next_frame(&mut ws).await;
        assert_eq!(
            (
                frame["type"].as_str(),
                frame["id"].as_str(),
                frame["status"].as_str()
            ),
            (Some("link_request"), Some(id.as_str()), Some("pending"))
        );
    }
    let answering = RunningBrowser::accept(&id, &new.commitment()).unwrap();
    server
        .post(
            &format!("/v1/links/{id}/accept"),
            Some(&running.token),
            json!({ "device_id": running.device_id, "ephemeral_public": b64::encode(&answering.public()) }),
        )
        .await;
    let revealed = new.reveal(&id, &answering.public()).unwrap();
    server
        .post(
            &format!("/v1/links/{id}/reveal"),
            Some(&new_token),
            json!({ "ephemeral_public": b64::encode(&revealed.new_public) }),
        )
        .await;
    // The answerer, reconnecting, gets the revealed key; the other browser nothing.
    let mut ws = connect(&server, &running).await;
    let frame = next_frame(&mut ws).await;
    assert_eq!(
        (frame["id"].as_str(), frame["status"].as_str()),
        (Some(id.as_str()), Some("revealed"))
    );
    let mut other_ws = connect(&server, &other).await;
    assert!(silent_for(&mut other_ws, 300).await);
}
