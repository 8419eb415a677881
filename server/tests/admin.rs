//! The admin API and CLI over real HTTP and a real process: keys and scopes, users made
//! before they sign in, disabling and deleting, groups, sign-in keys and visitor tokens
//! at run time, orgs, the audit log, and what a wrong caller gets.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const USERS: &str = "/v1/admin/orgs/acme/users";

async fn admin(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server.call(method, path, Some(key), body).await
}

/// Asserts that an admin call is refused with `status` and the error `code`.
#[allow(clippy::too_many_arguments)]
async fn refused(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
    code: &str,
) {
    let (got, answer) = admin(server, key, method.clone(), path, body).await;
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (status, Some(code)),
        "{method} {path}: {answer}"
    );
}

#[tokio::test]
async fn callers_need_a_live_key_of_the_right_org_and_scope() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let backend = api_key(&db.location, Some("acme"), "backend");
    let admin_key = api_key(&db.location, Some("acme"), "admin");

    // No key, a made-up key, a user's session: all refused before anything happens.
    let (status, body) = server.call(Method::GET, USERS, None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("api_key_missing"))
    );
    refused(
        &server,
        "sotto_ak_made-up",
        Method::GET,
        USERS,
        None,
        401,
        "api_key_invalid",
    )
    .await;
    let (session, _) = server
        .sign_in(&hs256(json!({ "user": { "id": "u1" } })))
        .await;
    let (status, _) = admin(&server, &session, Method::GET, USERS, None).await;
    assert_eq!(status, 401, "a user's session is not an API key");

    // A backend key manages users, not sign-in keys.
    let (status, _) = admin(&server, &backend, Method::GET, USERS, None).await;
    assert_eq!(status, 200);
    let key = json!({ "kid": "k9", "alg": "HS256", "secret": "x".repeat(40) });
    let path = "/v1/admin/orgs/acme/signing-keys";
    refused(
        &server,
        &backend,
        Method::POST,
        path,
        Some(key.clone()),
        403,
        "scope_insufficient",
    )
    .await;
    let (status, body) = admin(&server, &admin_key, Method::POST, path, Some(key.clone())).await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body.get("secret").is_none(),
        "a secret is never given back: {body}"
    );
    refused(
        &server,
        &admin_key,
        Method::POST,
        path,
        Some(key),
        409,
        "kid_exists",
    )
    .await;

    // An org's key reaches only its org; an operator key reaches every org.
    let operator = api_key(&db.location, None, "admin");
    let (status, body) = admin(
        &server,
        &operator,
        Method::POST,
        "/v1/admin/orgs",
        Some(json!({ "id": "beta", "name": "Beta" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    refused(
        &server,
        &admin_key,
        Method::GET,
        "/v1/admin/orgs/beta/users",
        None,
        403,
        "wrong_org",
    )
    .await;
    // Sotto's own user IDs do not reach across orgs either.
    let (_, made) = admin(
        &server,
        &operator,
        Method::PUT,
        "/v1/admin/orgs/beta/users/b-1",
        Some(json!({ "name": "Beta user" })),
    )
    .await;
    let beta_user = made["user"]["id"].as_str().unwrap().to_owned();
    for method in [Method::GET, Method::DELETE] {
        refused(
            &server,
            &admin_key,
            method,
            &format!("{USERS}/{beta_user}?by=id"),
            None,
            404,
            "unknown_user",
        )
        .await;
    }
    let (_, body) = admin(&server, &admin_key, Method::GET, "/v1/admin/orgs", None).await;
    let ids: Vec<&str> = body["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme"], "an org's key sees its own org only");
    let (_, body) = admin(&server, &operator, Method::GET, "/v1/admin/orgs", None).await;
    assert_eq!(body["orgs"].as_array().unwrap().len(), 2);
    let (status, _) = admin(
        &server,
        &admin_key,
        Method::POST,
        "/v1/admin/orgs",
        Some(json!({ "id": "gamma" })),
    )
    .await;
    assert_eq!(status, 403, "only an operator makes orgs");
    // One tenant cannot take another's issuer (tokens naming only it would go astray).
    refused(
        &server,
        &operator,
        Method::PATCH,
        "/v1/admin/orgs/beta",
        Some(json!({ "settings": { "issuer": ISS } })),
        409,
        "issuer_taken",
    )
    .await;
    // Making an org is the operator's act, in the operator's log.
    let (_, log) = admin(&server, &operator, Method::GET, "/v1/admin/audit", None).await;
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "org.create" && e["target"] == "beta"),
        "{log}"
    );
    // The file's org still signs its people in, now that there are two.
    server
        .sign_in(&hs256(json!({ "user": { "id": "still-acme" } })))
        .await;

    // Revoked: refused at once.
    let (_, keys) = admin(
        &server,
        &admin_key,
        Method::GET,
        "/v1/admin/orgs/acme/api-keys",
        None,
    )
    .await;
    let backend_id = keys["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scope"] == "backend")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        keys.to_string().find("sotto_ak_").is_none(),
        "listing shows no secret"
    );
    let (status, _) = admin(
        &server,
        &admin_key,
        Method::DELETE,
        &format!("/v1/admin/api-keys/{backend_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    refused(
        &server,
        &backend,
        Method::GET,
        USERS,
        None,
        401,
        "api_key_invalid",
    )
    .await;

    // Bad input: typed errors, nothing changed.
    for (body, code) in [
        (json!({ "tag": "Not A Tag" }), "bad_tag"),
        (json!({ "email": "no-at-sign" }), "bad_field"),
        (
            json!({ "attributes": { "x": "y".repeat(5000) } }),
            "attributes_too_large",
        ),
        (json!({ "nickname": "z" }), "bad_json"),
    ] {
        let (status, got) = admin(
            &server,
            &admin_key,
            Method::PUT,
            &format!("{USERS}/bad"),
            Some(body),
        )
        .await;
        assert!((400..500).contains(&status), "{got}");
        assert_eq!(got["error"]["code"], code, "{got}");
    }
    assert_eq!(
        count(
            &db.location,
            "SELECT COUNT(*) FROM users WHERE external_id = 'bad'",
            params![]
        ),
        0
    );
    refused(
        &server,
        &admin_key,
        Method::GET,
        &format!("{USERS}/nobody"),
        None,
        404,
        "unknown_user",
    )
    .await;
    refused(
        &server,
        &admin_key,
        Method::GET,
        &format!("{USERS}?limit=x"),
        None,
        400,
        "bad_query",
    )
    .await;
    server.stop().await;
}

/// Guessing API keys: failures count against the address's sign-in budget, and a live
/// key still works for its holder meanwhile.
#[tokio::test]
async fn a_flood_of_wrong_api_keys_is_refused() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    cfg.auth_rate_per_minute = 3;
    let server = TestServer::start(cfg).await;
    let key = api_key(&db.location, Some("acme"), "backend");
    let mut answers = Vec::new();
    for i in 0..5 {
        let (status, _) = admin(
            &server,
            &format!("sotto_ak_guess{i}"),
            Method::GET,
            USERS,
            None,
        )
        .await;
        answers.push(status);
    }
    assert_eq!(answers, [401, 401, 401, 429, 429]);
    let (status, _) = admin(&server, &key, Method::GET, USERS, None).await;
    assert_eq!(status, 200, "a valid key is not counted");
    server.stop().await;
}

/// The Forsta flow: the backend makes `@newhire` before they ever sign in; a colleague
/// finds them at once; their first sign-in (by ID or by the email the backend vouched
/// for) is that same user.
#[tokio::test]
async fn users_made_by_the_backend_are_the_ones_who_later_sign_in() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let key = api_key(&db.location, Some("acme"), "backend");
    let (status, body) = admin(
        &server,
        &key,
        Method::PUT,
        &format!("{USERS}/emp-42"),
        Some(json!({ "email": "Nia@Acme.test", "name": "Nia New", "tag": "newhire", "attributes": { "team": "ops" } })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["created"], true);
    let made = body["user"].clone();
    assert_eq!(made["joined"], false, "no device yet");
    assert_eq!(made["attributes"]["team"], "ops");

    let colleague = server.user_with_device("colleague", [3; 32]).await;
    let (status, found) = server
        .post(
            "/v1/resolve",
            Some(&colleague.token),
            json!({ "expr": "@newhire" }),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["users"][0]["id"], made["id"]);

    // Their first sign-in by ID, and one by the email in another case: the same user.
    let (_, by_id) = server.sign_in(&hs256(json!({ "id": "emp-42" }))).await;
    assert_eq!(by_id, made["id"].as_str().unwrap());
    let (_, by_email) = server
        .sign_in(&hs256(json!({ "email": "nia@acme.test" })))
        .await;
    assert_eq!(by_email, by_id);
    let nia = server.user_with_device("emp-42", [4; 32]).await;
    assert_eq!(nia.user_id, by_id);
    let (_, body) = admin(&server, &key, Method::GET, &format!("{USERS}/emp-42"), None).await;
    assert_eq!(body["joined"], true);
    assert_eq!(body["tag"], "newhire", "the sign-in kept the backend's tag");

    // An update changes what it names; the same tag for someone else is refused.
    let (status, body) = admin(
        &server,
        &key,
        Method::PUT,
        &format!("{USERS}/emp-42"),
        Some(json!({ "name": "Nia N." })),
    )
    .await;
    assert_eq!((status, body["created"].as_bool()), (200, Some(false)));
    // A new tag takes the user's group memberships with it: nobody who later gets the
    // old tag inherits them.
    admin(
        &server,
        &key,
        Method::PUT,
        "/v1/admin/orgs/acme/groups/onboarding",
        Some(json!({ "members": ["newhire"] })),
    )
    .await;
    let (status, _) = admin(
        &server,
        &key,
        Method::PUT,
        &format!("{USERS}/emp-42"),
        Some(json!({ "tag": "nia" })),
    )
    .await;
    assert_eq!(status, 200);
    let (_, group) = admin(
        &server,
        &key,
        Method::GET,
        "/v1/admin/orgs/acme/groups/onboarding",
        None,
    )
    .await;
    assert_eq!(group["members"], json!(["nia"]));
    assert_eq!(
        body["user"]["email"], "Nia@Acme.test",
        "untouched fields stay"
    );
    refused(
        &server,
        &key,
        Method::PUT,
        &format!("{USERS}/emp-43"),
        Some(json!({ "tag": "nia" })),
        409,
        "tag_taken",
    )
    .await;
    let (status, body) = admin(
        &server,
        &key,
        Method::PUT,
        &format!("{USERS}/emp-43"),
        Some(json!({ "tag": "support" })),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("tag_taken")),
        "a group's tag too"
    );

    // Search and pages.
    for i in 0..5 {
        admin(
            &server,
            &key,
            Method::PUT,
            &format!("{USERS}/bulk-{i}"),
            Some(json!({ "name": format!("Bulk {i}") })),
        )
        .await;
    }
    let (_, page) = admin(
        &server,
        &key,
        Method::GET,
        &format!("{USERS}?q=BULK&limit=3"),
        None,
    )
    .await;
    let tags: Vec<&str> = page["users"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|u| u["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["bulk_0", "bulk_1", "bulk_2"]);
    let after = page["next_after"]
        .as_str()
        .unwrap_or_else(|| panic!("{page}"));
    let (_, rest) = admin(
        &server,
        &key,
        Method::GET,
        &format!("{USERS}?q=bulk&after={after}"),
        None,
    )
    .await;
    assert_eq!(rest["users"].as_array().unwrap().len(), 2);
    let (_, none) = admin(&server, &key, Method::GET, &format!("{USERS}?q=%25"), None).await;
    assert_eq!(
        none["users"].as_array().unwrap().len(),
        0,
        "% is matched as itself"
    );
    server.stop().await;
}

/// A disabled user's sockets close at once, their sessions stop working, and they cannot
/// sign in until enabled; deleting takes everything the server held for them.
#[tokio::test]
async fn disabled_users_are_cut_off_and_deleted_users_are_gone() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let key = api_key(&db.location, Some("acme"), "backend");
    let mallory = server.user_with_device("mallory", [5; 32]).await;
    let bob = server.user_with_device("bob", [6; 32]).await;
    let mut ws = connect(&server, &mallory).await;

    let (status, body) = admin(
        &server,
        &key,
        Method::POST,
        &format!("{USERS}/mallory/disable"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["disabled"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let frame = next_of_type(&mut ws, "error").await;
    assert_eq!(frame["code"], "user_disabled");
    let (status, _) = server.get("/v1/me", Some(&mallory.token)).await;
    assert_eq!(status, 401, "the old session is gone");
    let (status, body) = server
        .post(
            "/v1/auth/jwt",
            None,
            json!({ "jwt": hs256(json!({ "id": "mallory" })) }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("user_disabled"))
    );
    let (status, _) = admin(
        &server,
        &key,
        Method::POST,
        &format!("{USERS}/mallory/enable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (token, _) = server.sign_in(&hs256(json!({ "id": "mallory" }))).await;

    // What the server holds for them, then none of it.
    let blob = upload(&server, &token, vec![7; 1000]).await;
    send(&server, &bob, &[&mallory], "queued for mallory").await;
    let (status, export) = admin(
        &server,
        &key,
        Method::GET,
        &format!("{USERS}/mallory/export"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["devices"][0]["queued_envelopes"], 1);
    assert_eq!(export["uploads"][0]["id"], blob.as_str());
    assert!(
        !export.to_string().contains("queued for mallory"),
        "no payloads in an export"
    );
    let (status, _) = admin(
        &server,
        &key,
        Method::DELETE,
        &format!("{USERS}/mallory"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    for table in ["devices", "sessions", "identities"] {
        assert_eq!(
            count(
                &db.location,
                &format!("SELECT COUNT(*) FROM {table} WHERE user_id = ?1"),
                params![mallory.user_id]
            ),
            0,
            "{table}"
        );
    }
    assert_eq!(
        count(
            &db.location,
            "SELECT COUNT(*) FROM envelopes WHERE device_id = ?1",
            params![mallory.device_id]
        ),
        0
    );
    assert_eq!(
        count(
            &db.location,
            "SELECT COUNT(*) FROM blobs WHERE id = ?1",
            params![blob]
        ),
        0
    );
    let (status, _) = download(&server, &bob.token, &blob).await;
    assert_eq!(status, 404);
    let (status, _) = admin(
        &server,
        &key,
        Method::GET,
        &format!("{USERS}/mallory"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // The audit log says who did each of it.
    let admin_key = api_key(&db.location, Some("acme"), "admin");
    let (_, log) = admin(
        &server,
        &admin_key,
        Method::GET,
        "/v1/admin/orgs/acme/audit",
        None,
    )
    .await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions[..4],
        [
            "api_key.create",
            "user.delete",
            "user.enable",
            "user.disable"
        ]
    );
    assert!(log["entries"][1]["actor"]
        .as_str()
        .unwrap()
        .starts_with("api_key:ak_"));
    server.stop().await;
}

#[tokio::test]
async fn groups_are_managed_at_run_time_except_the_files() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let key = api_key(&db.location, Some("acme"), "backend");
    let ann = server.user_with_device("ann", [8; 32]).await;
    server.user_with_device("ben", [9; 32]).await;
    let groups = "/v1/admin/orgs/acme/groups";
    let (status, body) = admin(
        &server,
        &key,
        Method::PUT,
        &format!("{groups}/sales"),
        Some(json!({ "members": ["ann"] })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = admin(
        &server,
        &key,
        Method::POST,
        &format!("{groups}/sales/members"),
        Some(json!({ "members": ["@Ben"] })),
    )
    .await;
    assert_eq!(status, 200);
    let (_, resolved) = server
        .post("/v1/resolve", Some(&ann.token), json!({ "expr": "@sales" }))
        .await;
    assert_eq!(resolved["users"].as_array().unwrap().len(), 2, "{resolved}");
    let (_, body) = admin(
        &server,
        &key,
        Method::DELETE,
        &format!("{groups}/sales/members/ann"),
        None,
    )
    .await;
    assert_eq!(body["group"]["members"], json!(["ben"]));
    let (_, body) = admin(
        &server,
        &key,
        Method::PATCH,
        &format!("{groups}/sales"),
        Some(json!({ "name": "deals" })),
    )
    .await;
    assert_eq!(body["group"]["name"], "deals");
    let (status, _) = server
        .post("/v1/resolve", Some(&ann.token), json!({ "expr": "@sales" }))
        .await;
    assert_eq!(status, 400, "the old name is gone");
    refused(
        &server,
        &key,
        Method::PATCH,
        &format!("{groups}/deals"),
        Some(json!({ "name": "ann" })),
        409,
        "tag_taken",
    )
    .await;
    refused(
        &server,
        &key,
        Method::POST,
        &format!("{groups}/support/members"),
        Some(json!({ "members": ["ann"] })),
        409,
        "group_in_config",
    )
    .await;
    let (status, _) = admin(
        &server,
        &key,
        Method::DELETE,
        &format!("{groups}/deals"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    refused(
        &server,
        &key,
        Method::GET,
        &format!("{groups}/deals"),
        None,
        404,
        "unknown_group",
    )
    .await;
    let too_many: Vec<String> = (0..1001).map(|i| format!("m{i}")).collect();
    refused(
        &server,
        &key,
        Method::PUT,
        &format!("{groups}/huge"),
        Some(json!({ "members": too_many })),
        400,
        "too_many_members",
    )
    .await;
    server.stop().await;
}

/// A group's loss of a member reaches the devices of everyone it concerns: old members and
/// new, and whoever resolved an expression naming it (their threads follow it), so that each
/// resolves it again; no one else hears of it, and an addition is told to no one. A resolved expression says which of its
/// tags are groups.
#[tokio::test]
async fn group_changes_are_told_to_the_devices_of_old_and_new_members() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let key = api_key(&db.location, Some("acme"), "backend");
    let ann = server.user_with_device("ann", [8; 32]).await;
    let ben = server.user_with_device("ben", [9; 32]).await;
    let cal = server.user_with_device("cal", [10; 32]).await;
    let dee = server.user_with_device("dee", [11; 32]).await;
    let groups = "/v1/admin/orgs/acme/groups";
    let (status, _) = admin(
        &server,
        &key,
        Method::PUT,
        &format!("{groups}/sales"),
        Some(json!({ "members": ["ann"] })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, resolved) = server
        .post(
            "/v1/resolve",
            Some(&cal.token),
            json!({ "expr": "(@Sales) + @cal" }),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["groups"], json!(["sales"]));
    // Taking away someone who is gone (deleted since) takes away no one; naming them is
    // still an error.
    let (status, _) = server
        .post(
            "/v1/resolve",
            Some(&cal.token),
            json!({ "expr": "@sales + @cal - @gone" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post(
            "/v1/resolve",
            Some(&cal.token),
            json!({ "expr": "@sales + @gone" }),
        )
        .await;
    assert_eq!(status, 400);
    let (_, plain) = server
        .post(
            "/v1/resolve",
            Some(&dee.token),
            json!({ "expr": "@ann + @dee" }),
        )
        .await;
    assert!(plain.get("groups").is_none(), "{plain}");

    let (mut ann_ws, mut ben_ws, mut cal_ws, mut dee_ws) = (
        connect(&server, &ann).await,
        connect(&server, &ben).await,
        connect(&server, &cal).await,
        connect(&server, &dee).await,
    );
    // Ben joins and Ann leaves, in one change: both hear of it, and Cal, who follows the
    // group; Dee, who only named Ann, does not.
    let (status, _) = admin(
        &server,
        &key,
        Method::PUT,
        &format!("{groups}/sales"),
        Some(json!({ "members": ["ben"] })),
    )
    .await;
    assert_eq!(status, 200);
    for ws in [&mut ann_ws, &mut ben_ws, &mut cal_ws] {
        let frame = next_of_type(ws, "group_changed").await;
        assert_eq!(frame["group"], "sales");
    }
    assert!(
        silent_for(&mut dee_ws, 300).await,
        "Dee follows no such group"
    );
    // A refused change tells no one.
    refused(
        &server,
        &key,
        Method::POST,
        &format!("{groups}/sales/members"),
        Some(json!({ "members": ["not a tag"] })),
        400,
        "bad_tag",
    )
    .await;
    assert!(silent_for(&mut ben_ws, 300).await);
    let (status, _) = admin(
        &server,
        &key,
        Method::DELETE,
        &format!("{groups}/sales"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    for ws in [&mut ben_ws, &mut cal_ws] {
        let frame = next_of_type(ws, "group_changed").await;
        assert_eq!(frame["group"], "sales");
    }
    // Made again, with Dee: a change that only adds tells no one (no existing thread gains
    // anyone through a group).
    let (status, _) = admin(
        &server,
        &key,
        Method::PUT,
        &format!("{groups}/sales"),
        Some(json!({ "members": ["dee"] })),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        silent_for(&mut dee_ws, 300).await,
        "an addition is not told"
    );
    // Dee leaves it: she hears; Cal's following ended with the old group.
    let (status, _) = admin(
        &server,
        &key,
        Method::DELETE,
        &format!("{groups}/sales/members/dee"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    next_of_type(&mut dee_ws, "group_changed").await;
    assert!(
        silent_for(&mut cal_ws, 300).await,
        "Cal's following ended with the group"
    );
    server.stop().await;
}

/// Anyone in the org sees that a user is disabled, where they fetch the keys a message
/// needs, so a sender's client can say why nothing reaches them.
#[tokio::test]
async fn a_disabled_user_shows_as_such_to_others() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let key = api_key(&db.location, Some("acme"), "backend");
    let ann = server.user_with_device("ann", [8; 32]).await;
    let ben = server.user_with_device("ben", [9; 32]).await;
    let path = format!("/v1/users/{}/keys", ben.user_id);
    let (_, keys) = server.get(&path, Some(&ann.token)).await;
    assert!(keys.get("disabled").is_none(), "{keys}");
    let (status, _) = admin(
        &server,
        &key,
        Method::POST,
        &format!("{USERS}/ben/disable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, keys) = server.get(&path, Some(&ann.token)).await;
    assert_eq!((status, &keys["disabled"]), (200, &json!(true)), "{keys}");
    server.stop().await;
}

/// A key added through one node signs people in on another at once; retired, it stops.
/// An org made at run time, with its own key and visitor token, works like a file's.
#[tokio::test]
async fn sign_in_keys_tokens_and_orgs_change_without_a_restart() {
    let (_dir, db) = temp_db();
    let a = TestServer::start(config(&db)).await;
    let b = TestServer::start(config(&db)).await;
    let key = api_key(&db.location, Some("acme"), "admin");
    let secret = "a-rotated-secret-that-is-long-enough-for-hs256";
    let token = |kid: &str| {
        sign(
            jsonwebtoken::Algorithm::HS256,
            kid,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            standard(json!({ "user": { "id": "rotated" } })),
        )
    };
    let (status, body) = b
        .post("/v1/auth/jwt", None, json!({ "jwt": token("k2") }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_unknown_key"))
    );
    let (status, _) = admin(
        &a,
        &key,
        Method::POST,
        "/v1/admin/orgs/acme/signing-keys",
        Some(json!({ "kid": "k2", "alg": "HS256", "secret": secret })),
    )
    .await;
    assert_eq!(status, 201);
    // B has not re-read the keys yet; the unknown kid makes it.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    b.sign_in(&token("k2")).await;
    let (status, _) = admin(
        &a,
        &key,
        Method::DELETE,
        "/v1/admin/orgs/acme/signing-keys/k2",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = a
        .post("/v1/auth/jwt", None, json!({ "jwt": token("k2") }))
        .await;
    assert_eq!(status, 401, "retired on the node that retired it, at once");
    let (status, body) = admin(
        &a,
        &key,
        Method::DELETE,
        "/v1/admin/orgs/acme/signing-keys/hs",
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_key")),
        "file keys change in the file"
    );
    refused(&a, &key, Method::POST, "/v1/admin/orgs/acme/signing-keys", Some(json!({ "kid": "bad", "alg": "RS256", "public_key_pem": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----" })), 400, "bad_key").await;
    refused(
        &a,
        &key,
        Method::POST,
        "/v1/admin/orgs/acme/signing-keys",
        Some(json!({ "kid": "weak", "alg": "HS256", "secret": "short" })),
        400,
        "bad_key",
    )
    .await;

    // A new tenant, set up entirely through the API.
    let operator = api_key(&db.location, None, "admin");
    let (status, body) = admin(
        &a,
        &operator,
        Method::POST,
        "/v1/admin/orgs",
        Some(json!({ "id": "beta", "settings": { "audience": ["beta-app"], "visitor_tags": ["help"] } })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    refused(
        &a,
        &operator,
        Method::POST,
        "/v1/admin/orgs",
        Some(json!({ "id": "beta" })),
        409,
        "org_exists",
    )
    .await;
    refused(
        &a,
        &operator,
        Method::POST,
        "/v1/admin/orgs",
        Some(json!({ "id": "a b" })),
        400,
        "bad_org_id",
    )
    .await;
    refused(
        &a,
        &operator,
        Method::PATCH,
        "/v1/admin/orgs/acme",
        Some(json!({ "name": "x" })),
        409,
        "org_in_config",
    )
    .await;
    admin(
        &a,
        &operator,
        Method::POST,
        "/v1/admin/orgs/beta/signing-keys",
        Some(json!({ "kid": "b1", "alg": "HS256", "secret": secret })),
    )
    .await;
    let beta_jwt = |aud: &str| {
        sign(
            jsonwebtoken::Algorithm::HS256,
            "b1",
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            json!({ "org": "beta", "aud": aud, "exp": now() + 600, "user": { "id": "bea" } }),
        )
    };
    let (status, body) = a
        .post("/v1/auth/jwt", None, json!({ "jwt": beta_jwt("beta-app") }))
        .await;
    assert_eq!(
        (status, body["org"].as_str()),
        (200, Some("beta")),
        "{body}"
    );
    let (status, _) = a
        .post("/v1/auth/jwt", None, json!({ "jwt": beta_jwt("other") }))
        .await;
    assert_eq!(status, 401, "the org's audience setting holds");

    // Visitor tokens: made, used, revoked.
    let (status, made) = admin(
        &a,
        &operator,
        Method::POST,
        "/v1/admin/orgs/beta/visitor-tokens",
        Some(json!({ "name": "site" })),
    )
    .await;
    assert_eq!(status, 201);
    let visitor = made["token"].as_str().unwrap();
    let (status, body) = a
        .post("/v1/auth/ephemeral", None, json!({ "token": visitor }))
        .await;
    assert_eq!(
        (status, body["org"].as_str()),
        (200, Some("beta")),
        "{body}"
    );
    let (_, list) = admin(
        &a,
        &operator,
        Method::GET,
        "/v1/admin/orgs/beta/visitor-tokens",
        None,
    )
    .await;
    assert!(
        !list.to_string().contains(visitor),
        "listed without the token"
    );
    let id = made["id"].as_str().unwrap();
    admin(
        &a,
        &operator,
        Method::DELETE,
        &format!("/v1/admin/orgs/beta/visitor-tokens/{id}"),
        None,
    )
    .await;
    let (status, _) = a
        .post("/v1/auth/ephemeral", None, json!({ "token": visitor }))
        .await;
    assert_eq!(status, 401);
    a.stop().await;
    b.stop().await;
}

/// The CLI: the same operations on the database, or through a running server's API, with
/// JSON for scripts and plain messages for people.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_works_on_the_database_and_through_the_api() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let (code, out, err) = admin_cli(
        &db.location,
        &[
            "users", "upsert", "acme", "emp-7", "--name", "Cli User", "--tag", "cli",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"created\": true"), "{out}");
    let (code, out, _) = admin_cli(&db.location, &["users", "list", "acme"]);
    assert_eq!(code, 0);
    assert!(
        out.lines().any(|l| l.starts_with("cli\temp-7\tCli User")),
        "{out}"
    );
    let (code, _, err) = admin_cli(&db.location, &["users", "get", "acme", "nobody"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no such user in this org (unknown_user, HTTP 404)"),
        "{err}"
    );
    let (code, _, err) = admin_cli(&db.location, &["api-keys", "create", "--scope", "root"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad_scope"), "{err}");
    // A backend key belongs to one org: made without one, it would reach every tenant.
    let (code, _, err) = admin_cli(&db.location, &["api-keys", "create", "--scope", "backend"]);
    assert_eq!(code, 1);
    assert!(err.contains("belongs to one org"), "{err}");
    // A mistyped path makes no new database (and no key that works nowhere).
    if let Location::Sqlite(path) = &db.location {
        let wrong = path.with_file_name("typo.db");
        let (code, _, err) = admin_cli(&Location::Sqlite(wrong.clone()), &["orgs", "list"]);
        assert_eq!(code, 1);
        assert!(err.contains("no database at"), "{err}");
        assert!(!wrong.exists());
    }

    // Through the running server, with a key from the CLI.
    let key = api_key(&db.location, Some("acme"), "admin");
    let remote = |args: &[&str], key: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sotto-server"))
            .args(["admin", "--url", &server.base, "--json"])
            .args(args)
            .env("SOTTO_API_KEY", key)
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| remote(&["users", "disable", "acme", "emp-7"], &key));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["disabled"], true);
    let out = tokio::task::block_in_place(|| {
        remote(&["users", "get", "acme", "emp-7"], "sotto_ak_wrong")
    });
    assert_eq!(out.status.code(), Some(1));
    let (_, log) = server
        .call(Method::GET, "/v1/admin/orgs/acme/audit", Some(&key), None)
        .await;
    let actors: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(actors[0].starts_with("api_key:"), "{actors:?}");
    assert!(actors.iter().any(|a| a.starts_with("cli:")), "{actors:?}");
    server.stop().await;
}
