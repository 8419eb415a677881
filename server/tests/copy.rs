//! `sotto-server copy-database`: a site on one SQLite node moves to PostgreSQL with its
//! accounts, sessions and queued envelopes, and carries on there. Needs PostgreSQL
//! (`SOTTO_TEST_POSTGRES`); `scripts/service-tests.sh` runs it.

mod common;

use common::*;

/// Runs the real `sotto-server copy-database` from `from` to `to`: (exit code, stdout,
/// stderr).
fn copy_database(from: &TestDb, to: &TestDb) -> (i32, String, String) {
    let target = database_setting(&to.location);
    server_command(&from.location, &["copy-database", "--to", &target])
}

#[tokio::test]
#[ignore = "needs PostgreSQL: SOTTO_TEST_POSTGRES (scripts/service-tests.sh sets it)"]
async fn a_sqlite_site_moves_to_postgresql_with_its_sessions_and_queue() {
    assert!(
        std::env::var(POSTGRES_ENV).is_ok(),
        "this test needs PostgreSQL: set {POSTGRES_ENV}"
    );
    let (_sqlite_dir, sqlite) = sqlite_db();
    let (_pg_dir, postgres) = temp_db();
    // A site on SQLite: Bob is away, so Alice's message waits in his queue.
    let old = TestServer::start(config(&sqlite)).await;
    let alice = old.user_with_device("alice", [1; 32]).await;
    let bob = old.user_with_device("bob", [2; 32]).await;
    let (status, receipt) = send(&old, &alice, &[&bob], "sent before the move").await;
    assert_eq!(status, 200, "{receipt}");
    let queued_seq = receipt["seqs"][0].as_i64().unwrap();
    // A later one was delivered and acknowledged there: its number is gone from the
    // queue, but must never be handed out again.
    let (status, receipt) = send(&old, &alice, &[&bob], "delivered before the move").await;
    assert_eq!(status, 200, "{receipt}");
    let delivered_seq = receipt["seqs"][0].as_i64().unwrap();
    let mut bob_ws = connect(&old, &bob).await;
    next_of_type(&mut bob_ws, "envelope").await;
    assert_eq!(
        next_of_type(&mut bob_ws, "envelope").await["seq"].as_i64(),
        Some(delivered_seq)
    );
    ack(&mut bob_ws, delivered_seq).await;
    drop(bob_ws);
    for _ in 0..50 {
        if old.queued() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(old.queued(), 1);
    old.stop().await;

    let (code, out, err) = copy_database(&sqlite, &postgres);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("envelopes: 1 rows"), "{out}");

    // The same site on PostgreSQL: Bob's session still works and his queue is there.
    let new = TestServer::start(config(&postgres)).await;
    let mut bob_ws = connect(&new, &bob).await;
    let frame = next_of_type(&mut bob_ws, "envelope").await;
    assert_eq!(frame["seq"].as_i64(), Some(queued_seq));
    let payload = sotto_core::b64::decode(frame["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, b"sent before the move");
    ack(&mut bob_ws, queued_seq).await;
    // New envelopes are numbered after every number the old site handed out.
    let (status, receipt) = send(&new, &alice, &[&bob], "after").await;
    assert_eq!(status, 200, "{receipt}");
    assert!(receipt["seqs"][0].as_i64().unwrap() > delivered_seq);
    assert_eq!(
        next_of_type(&mut bob_ws, "envelope").await["seq"],
        receipt["seqs"][0]
    );
    new.stop().await;

    // A second copy into the same database is refused, and changes nothing there.
    let (code, out, err) = copy_database(&sqlite, &postgres);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("already holds data"), "{err}");
    assert_eq!(
        count(&postgres.location, "SELECT COUNT(*) FROM envelopes", &[]),
        1
    );

    // A mistyped source is refused, not created empty and copied with success.
    let (_other_dir, missing) = sqlite_db();
    let (code, out, err) = copy_database(&missing, &postgres);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no SQLite file"), "{err}");
    assert!(!std::path::Path::new(&database_setting(&missing.location)).exists());
}
