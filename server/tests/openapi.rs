//! The OpenAPI document: served, 3.1, and naming every route the server has (read from
//! the router's source, so a route added without its description fails here).

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// (method, path) of every `.route(...)` in a router source file.
fn routes_in(source: &str) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for chunk in source.split(".route(").skip(1) {
        // Up to the parenthesis that closes this `.route(`.
        let mut depth = 1;
        let end = chunk
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(chunk.len(), |(i, _)| i);
        let chunk = &chunk[..end];
        let Some(path) = chunk.split('"').nth(1) else {
            continue;
        };
        if path.contains('*') {
            continue; // the catch-all 404
        }
        for method in ["get", "post", "put", "patch", "delete"] {
            let called = [format!("{method}("), format!(".{method}(")];
            let hit = chunk.match_indices(&called[0]).any(|(i, _)| {
                i == 0
                    || !chunk.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && chunk.as_bytes()[i - 1] != b'_'
            });
            if hit || chunk.contains(&called[1]) {
                found.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_document_describes_every_route() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(config(&db)).await;
    let (status, doc) = server.get("/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let src = |f: &str| {
        std::fs::read_to_string(format!("{}/src/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let mut routes = routes_in(&src("lib.rs"));
    routes.extend(routes_in(&src("routes/admin.rs")));
    assert!(routes.len() > 60, "the source was read: {routes:?}");
    let missing: Vec<_> = routes.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document: {missing:?}"
    );
    let extra: Vec<_> = described.difference(&routes).collect();
    assert!(extra.is_empty(), "described but not routed: {extra:?}");

    // Every operation answers errors in the one shape, and says what credential it takes.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let error =
                &op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(error, "#/components/schemas/ErrorBody", "{method} {path}");
            let security: Vec<&str> = op["security"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                        .collect()
                })
                .unwrap_or_default();
            if path.starts_with("/v1/admin/") {
                assert_eq!(security, ["api_key"], "{method} {path}");
            }
        }
    }
    assert_eq!(
        doc["paths"]["/v1/envelopes"]["post"]["security"][0]["session"],
        Value::Array(vec![])
    );
    server.stop().await;
}
