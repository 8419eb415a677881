//! Attachments' bytes live in the blob store (a directory), not in the database; the
//! database keeps who uploaded what. Bytes an earlier version kept in the database are
//! served all the same and moved out at start; clean-up deletes the bytes with the row.

mod common;

use common::*;

fn row(db: &TestDb, id: &str) -> (bool, i64) {
    (
        count(
            &db.location,
            "SELECT in_store FROM blobs WHERE id = ?1",
            params![id],
        ) != 0,
        count(
            &db.location,
            "SELECT length(data) FROM blobs WHERE id = ?1",
            params![id],
        ),
    )
}

#[tokio::test]
async fn attachment_bytes_live_in_the_blob_store_and_go_with_their_row() {
    let (_dir, db) = temp_db();
    let cfg = sweeping_every_second(&db);
    let store = db.blob_dir.clone();
    // Bytes a crash left without a row, two hours ago, and bytes of a moment ago (an upload
    // whose row is about to follow): clean-up takes the first only.
    std::fs::create_dir_all(&store).unwrap();
    let orphan = store.join("b_0123456789abcdef0123456789abcdef");
    std::fs::write(&orphan, b"x").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
        .unwrap();
    let in_flight = store.join("b_fedcba9876543210fedcba9876543210");
    std::fs::write(&in_flight, b"y").unwrap();
    let server = TestServer::start(cfg).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while orphan.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphaned bytes stayed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(in_flight.exists(), "bytes younger than an hour stay");
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let id = upload(&server, &alice.token, bytes.clone()).await;
    assert_eq!(
        std::fs::read(store.join(&id)).unwrap(),
        bytes,
        "in the store"
    );
    assert_eq!(row(&db, &id), (true, 0), "and not in the database");
    assert_eq!(download(&server, &bob.token, &id).await, (200, bytes));

    // A month on, clean-up takes the row and then the bytes.
    exec(
        &db.location,
        "UPDATE blobs SET created_at = created_at - 31 * 86400 WHERE id = ?1",
        params![id],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.join(&id).exists() {
        assert!(std::time::Instant::now() < deadline, "the bytes stayed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(download(&server, &bob.token, &id).await.0, 404);
}

#[tokio::test]
async fn bytes_an_earlier_version_kept_in_the_database_are_served_and_moved_out() {
    let (_dir, db) = temp_db();
    let cfg = config(&db);
    let store = db.blob_dir.clone();
    let server = TestServer::start(cfg.clone()).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    server.stop().await;
    // As 0.1 stored it: the bytes in the row.
    exec(
        &db.location,
        "INSERT INTO blobs (id, org_id, uploader, size, created_at, data)
         SELECT 'b_old', org_id, id, 3, ?2, ?3 FROM users WHERE id = ?1",
        params![alice.user_id, now(), vec![1u8, 2, 3]],
    );
    let server = TestServer::start(cfg).await;
    assert_eq!(
        download(&server, &bob.token, "b_old").await,
        (200, vec![1, 2, 3])
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while row(&db, "b_old") != (true, 0) {
        assert!(std::time::Instant::now() < deadline, "not moved");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read(store.join("b_old")).unwrap(), vec![1, 2, 3]);
    assert_eq!(
        download(&server, &bob.token, "b_old").await,
        (200, vec![1, 2, 3])
    );
}

/// A blob store that cannot be written stops the server at start, with a message that
/// names it, rather than failing every upload later.
#[tokio::test]
async fn a_blob_store_that_cannot_be_written_refuses_to_start() {
    let (dir, db) = temp_db();
    let mut cfg = config(&db);
    let in_the_way = dir.path().join("a-file");
    std::fs::write(&in_the_way, b"not a directory").unwrap();
    cfg.blob_store = sotto_server::blob_store::StoreLocation::Directory(in_the_way.clone());
    let refused = sotto_server::serve(cfg, async {}, |_| {})
        .await
        .expect_err("refused");
    assert!(refused.contains("blob store"), "{refused}");
    assert!(
        refused.contains(&in_the_way.display().to_string()),
        "{refused}"
    );
}

/// A download's ID comes from the URL: whatever it names, only a blob row of the caller's
/// org leads to the store, so a path cannot reach other files there or beside it.
#[tokio::test]
async fn a_crafted_blob_id_reaches_no_file() {
    let (_dir, db) = temp_db();
    let cfg = config(&db);
    let store = db.blob_dir.clone();
    let server = TestServer::start(cfg).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let id = upload(&server, &alice.token, vec![7; 10]).await;
    std::fs::write(store.join("b_planted"), b"no row names this").unwrap();
    for crafted in [
        "b_planted".to_owned(),
        "..%2Fsotto.db".to_owned(),
        "%2E%2E".to_owned(),
        format!(
            "..%2F{}%2F{id}",
            store.file_name().unwrap().to_str().unwrap()
        ),
        format!("{id}%2F..%2F..%2Fsotto.db"),
    ] {
        let (status, body) = server
            .get(&format!("/v1/blobs/{crafted}"), Some(&alice.token))
            .await;
        assert_eq!(status, 404, "{crafted}: {body}");
        // ".." may leave the route altogether (the URL is normalized): no route, no file.
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code == "unknown_blob" || code == "not_found",
            "{crafted}: {body}"
        );
    }
    assert_eq!(
        download(&server, &alice.token, &id).await,
        (200, vec![7; 10])
    );
}
