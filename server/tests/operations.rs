//! What an operator watches: health and readiness, Prometheus metrics on their own
//! listener, request IDs, and JSON log lines, over real HTTP and a real process.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};

/// A free port below the range the system hands out for port 0 (32768 and up on Linux).
/// One from that range could be taken, between now and the server's binding it, by the
/// server of a test running beside this one; then `/metrics` would ask that server.
fn free_port() -> u16 {
    let start = 20_000 + (std::process::id() % 5_000) as u16;
    (start..30_000)
        .chain(20_000..start)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port between 20000 and 30000")
}

/// The value of the first sample of `metric` whose labels contain all of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let name = l.split(['{', ' ']).next().unwrap_or_default();
            name == metric && labels.iter().all(|want| l.contains(want))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let (status, body) = server.get("/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = server.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "status": "ready", "database": "ok", "bus": "none" })
    );

    // A sane caller ID is kept; anything else is replaced by one of ours.
    let resp = server
        .http
        .get(format!("{}/v1/me", server.base))
        .header("x-request-id", "lb-42.a")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "lb-42.a");
    let resp = server
        .http
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "a b\"c")
        .send()
        .await
        .unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap();
    assert!(made.starts_with("rq_") && made.len() == 35, "{made}");

    // What an extractor or the router refuses is the API's JSON error too.
    let (session, _) = server
        .sign_in(&hs256(json!({ "user": { "id": "x" } })))
        .await;
    for (method, path, status, code) in [
        (
            reqwest::Method::DELETE,
            "/healthz",
            405,
            "method_not_allowed",
        ),
        (reqwest::Method::GET, "/v1/users/%FF%FE", 400, "bad_request"),
        (
            reqwest::Method::GET,
            "/v1/admin/orgs/acme/users?limit=-1",
            401,
            "api_key_invalid",
        ),
    ] {
        let (got, body) = server
            .call(method.clone(), path, Some(&session), None)
            .await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_what_happens_on_their_own_listener() {
    let (_dir, db) = temp_db();
    let mut cfg = config(&db);
    let port = free_port();
    cfg.metrics_listen = Some(([127, 0, 0, 1], port).into());
    cfg.auth_rate_per_minute = 3;
    let server = TestServer::start(cfg).await;
    let alice = server.user_with_device("m-alice", [1; 32]).await;
    let bob = server.user_with_device("m-bob", [2; 32]).await;
    let (status, _) = server
        .post("/v1/auth/jwt", None, json!({ "jwt": "not.a.jwt" }))
        .await;
    assert_eq!(status, 401);
    // A fourth attempt within the minute from this address is refused.
    let (status, _) = server
        .post("/v1/auth/jwt", None, json!({ "jwt": "not.a.jwt" }))
        .await;
    assert_eq!(status, 429);
    let mut ws = connect(&server, &bob).await;
    let (status, _) = send(&server, &alice, &[&bob], "counted").await;
    assert_eq!(status, 200);
    next_of_type(&mut ws, "envelope").await;

    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at_least = |metric: &str, labels: &[&str], n: f64| {
        let got = sample(&text, metric, labels)
            .unwrap_or_else(|| panic!("no {metric} {labels:?} in\n{text}"));
        assert!(got >= n, "{metric} {labels:?} = {got}, wanted at least {n}");
    };
    at_least(
        "sotto_sign_ins_total",
        &["kind=\"jwt\"", "result=\"ok\""],
        2.0,
    );
    at_least("sotto_sign_ins_total", &["result=\"token_malformed\""], 1.0);
    at_least(
        "sotto_rate_limited_total",
        &["limit=\"sign-in attempts\""],
        1.0,
    );
    at_least("sotto_deliveries_total", &[], 1.0);
    at_least("sotto_delivery_latency_seconds_count", &[], 1.0);
    at_least("sotto_commit_seconds_count", &[], 1.0);
    at_least("sotto_open_sockets", &[], 1.0);
    at_least("sotto_queued_envelopes", &[], 1.0);
    // Never on the public listener.
    let (status, _) = server.get("/metrics", None).await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// `--log-format json`: every line is a JSON object, and a request's lines carry its ID.
#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--log-format",
            "json",
        ])
        .arg("--database")
        .arg(dir.path().join("s.db"))
        .env("SOTTO_LOG", "info,tower_http=debug")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(url) = line.strip_prefix("sotto-server listening on ") {
            break url.to_owned();
        }
    };
    let resp = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .header("x-request-id", "trace-me-7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let found = tokio::task::spawn_blocking(move || {
        for line in lines {
            let line = line.unwrap();
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                panic!("a log line that is not JSON: {line}");
            };
            if v["span"]["request_id"] == "trace-me-7" {
                return v;
            }
        }
        panic!("no line with the request's ID");
    });
    let line = tokio::time::timeout(std::time::Duration::from_secs(10), found)
        .await
        .expect("the request was logged")
        .unwrap();
    assert_eq!(line["span"]["path"], "/healthz");
    child.kill().unwrap();
    let _ = child.wait();
}
