//! Attachments on an S3-compatible store (moto's server in the tests): the bytes go to the
//! bucket and nowhere else, two nodes share them, clean-up empties the bucket of what no
//! row names, and a bucket that cannot be written stops the server at start.
//!
//! They need an S3 server, so they are ignored in a plain `cargo test`;
//! scripts/service-tests.sh starts moto and runs them.

mod common;

use common::*;
use sotto_server::blob_store::{BlobStore, StoreLocation};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an S3 server (SOTTO_TEST_S3): scripts/service-tests.sh runs it"]
async fn attachments_live_in_the_bucket_shared_by_nodes_and_go_with_their_row() {
    let (_dir, db) = temp_db();
    let bucket = StoreLocation::S3(s3_bucket().await);
    let mut cfg = sweeping_every_second(&db);
    cfg.blob_store = bucket.clone();
    let a = TestServer::start(cfg.clone()).await;
    let b = TestServer::start(cfg).await;
    let alice = a.user_with_device("alice", [1; 32]).await;
    let bob = a.user_with_device("bob", [2; 32]).await;
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let id = upload(&a, &alice.token, bytes.clone()).await;

    let store = BlobStore::open(&bucket).await.unwrap();
    assert!(
        store.contains(&id).await.unwrap(),
        "the bytes are in the bucket"
    );
    assert_eq!(store.get(&id).await.unwrap().to_vec(), bytes);
    assert_eq!(
        count(
            &db.location,
            "SELECT length(data) FROM blobs WHERE id = ?1",
            params![id]
        ),
        0,
        "and not in the database"
    );
    assert_eq!(
        download(&b, &bob.token, &id).await,
        (200, bytes),
        "node B serves it"
    );

    // A month on, clean-up takes the row and then the bytes.
    exec(
        &db.location,
        "UPDATE blobs SET created_at = created_at - 31 * 86400 WHERE id = ?1",
        params![id],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while store.contains(&id).await.unwrap() {
        assert!(std::time::Instant::now() < deadline, "the bytes stayed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(download(&b, &bob.token, &id).await.0, 404);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an S3 server (SOTTO_TEST_S3): scripts/service-tests.sh runs it"]
async fn bytes_in_the_bucket_that_no_row_names_are_swept() {
    let (_dir, db) = temp_db();
    let bucket = StoreLocation::S3(s3_bucket().await);
    let mut cfg = config(&db);
    cfg.blob_store = bucket.clone();
    let server = TestServer::start(cfg).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let kept = upload(&server, &alice.token, vec![7; 100]).await;
    let store = BlobStore::open(&bucket).await.unwrap();
    let lost = "b_0123456789abcdef0123456789abcdef";
    store
        .put(lost, bytes::Bytes::from_static(b"x"))
        .await
        .unwrap();
    // Something else in the same place that is not the server's (a name no blob has).
    store
        .put("site-backup-2026-12-01", bytes::Bytes::from_static(b"y"))
        .await
        .unwrap();
    let database = sotto_server::db::Db::connect(&db.location).await.unwrap();
    let swept = sotto_server::blobs::sweep_orphans(&database, &store, 0)
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert!(!store.contains(lost).await.unwrap());
    assert!(store.contains(&kept).await.unwrap(), "named bytes stay");
    assert!(
        store.contains("site-backup-2026-12-01").await.unwrap(),
        "and what is not a blob is not touched"
    );
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs an S3 server (SOTTO_TEST_S3): scripts/service-tests.sh runs it"]
async fn a_bucket_that_cannot_be_written_refuses_to_start() {
    let (_dir, db) = temp_db();
    let _ = s3_bucket().await;
    let mut cfg = config(&db);
    cfg.blob_store = StoreLocation::S3("s3://no-such-bucket-for-sotto".into());
    let refused = sotto_server::serve(cfg, async {}, |_| {})
        .await
        .expect_err("refused");
    assert!(refused.contains("blob store"), "{refused}");
    assert!(
        refused.contains("s3://no-such-bucket-for-sotto"),
        "{refused}"
    );
}
