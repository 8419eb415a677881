//! The storage layer on whichever backend the suite runs against (SQLite, or PostgreSQL
//! with `SOTTO_TEST_POSTGRES`): reads beside a running write, migrations that run once
//! when nodes start together, and a database from a newer server refused untouched.

mod common;

use common::*;
use sotto_server::db::{Db, OpenError};

/// A read does not wait for the writer: it finishes while a write is still running, and
/// sees only what was committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_on_beside_a_running_write() {
    let (_dir, test_db) = temp_db();
    let db = Db::connect(&test_db.location).await.unwrap();
    db.call(|c| c.execute("INSERT INTO orgs (id, name) VALUES ('o', 'Org')", params![]))
        .await
        .unwrap();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, writing) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            db.call(move |c| {
                let tx = c.transaction()?;
                tx.execute("UPDATE orgs SET name = 'Renamed' WHERE id = 'o'", params![])?;
                let _ = started.send(());
                let _ = held.recv();
                tx.commit()
            })
            .await
        })
    };
    writing.await.unwrap();
    let read = |db: Db| async move {
        db.read(|c| {
            c.query_row("SELECT name FROM orgs WHERE id = 'o'", params![], |r| {
                r.get::<String>(0)
            })
        })
        .await
        .unwrap()
    };
    let name = tokio::time::timeout(std::time::Duration::from_secs(10), read(db.clone()))
        .await
        .expect("the read did not wait for the writer");
    assert_eq!(
        name, "Org",
        "a read sees what was committed, not a write in progress"
    );
    release.send(()).unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(read(db).await, "Renamed", "and the commit once it is done");
}

/// A transaction that is dropped undoes its writes; a savepoint inside one undoes only
/// its own.
#[tokio::test]
async fn a_dropped_savepoint_undoes_only_its_own_writes() {
    let (_dir, test_db) = temp_db();
    let db = Db::connect(&test_db.location).await.unwrap();
    let names = db
        .call(|c| {
            let tx = c.transaction()?;
            tx.execute("INSERT INTO orgs (id) VALUES ('kept')", params![])?;
            {
                let sp = tx.savepoint()?;
                sp.execute("INSERT INTO orgs (id) VALUES ('undone')", params![])?;
                // A failing statement inside the savepoint (PostgreSQL then refuses
                // everything until it is rolled back).
                assert!(sp
                    .execute("INSERT INTO orgs (id) VALUES ('kept')", params![])
                    .is_err());
            }
            let sp = tx.savepoint()?;
            sp.execute("INSERT INTO orgs (id) VALUES ('also kept')", params![])?;
            sp.commit()?;
            tx.commit()?;
            {
                let _dropped = c.transaction()?;
                c.execute("INSERT INTO orgs (id) VALUES ('never')", params![])?;
            }
            c.query_map("SELECT id FROM orgs ORDER BY id", params![], |r| r.get(0))?
                .collect::<sotto_server::db::Result<Vec<String>>>()
        })
        .await
        .unwrap();
    assert_eq!(names, ["also kept", "kept"]);
}

/// A commit never reports success for writes it did not keep. PostgreSQL aborts a whole
/// transaction when one statement in it fails and then answers COMMIT by rolling back, so
/// there the commit is an error; SQLite keeps the transaction, and the write before it.
#[tokio::test]
async fn a_commit_after_a_failed_statement_is_not_a_false_success() {
    let (_dir, test_db) = temp_db();
    let db = Db::connect(&test_db.location).await.unwrap();
    let (committed, names) = db
        .call(|c| {
            let tx = c.transaction()?;
            tx.execute("INSERT INTO orgs (id) VALUES ('first')", params![])?;
            // The failure is seen and passed over, as code that tolerates one might.
            assert!(tx
                .execute("INSERT INTO orgs (id) VALUES ('first')", params![])
                .is_err());
            let committed = tx.commit();
            let names = c
                .query_map("SELECT id FROM orgs", params![], |r| r.get(0))?
                .collect::<sotto_server::db::Result<Vec<String>>>()?;
            Ok::<_, sotto_server::db::Error>((committed, names))
        })
        .await
        .unwrap();
    match committed {
        Ok(()) => assert_eq!(names, ["first"], "a commit that succeeded kept its write"),
        Err(e) => {
            assert!(matches!(e, sotto_server::db::Error::Aborted), "{e}");
            assert!(names.is_empty(), "{names:?}");
        }
    }
    // The connection works on: a new transaction commits.
    db.call(|c| {
        let tx = c.transaction()?;
        tx.execute("INSERT INTO orgs (id) VALUES ('second')", params![])?;
        tx.commit()
    })
    .await
    .unwrap();
}

/// A write a unique key refuses (two requests making the same thing at once) is told
/// apart from other failures, and becomes a 409, not a 500, on both backends.
#[tokio::test]
async fn a_unique_key_refusal_is_a_conflict() {
    let (_dir, test_db) = temp_db();
    let db = Db::connect(&test_db.location).await.unwrap();
    let err = db
        .call(|c| {
            c.execute("INSERT INTO orgs (id) VALUES ('twice')", params![])?;
            c.execute("INSERT INTO orgs (id) VALUES ('twice')", params![])
        })
        .await
        .unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    let api: sotto_server::error::ApiError = err.into();
    assert_eq!((api.status.as_u16(), api.code), (409, "conflict"));
    let other = db
        .call(|c| c.execute("INSERT INTO no_such_table (id) VALUES (1)", params![]))
        .await
        .unwrap_err();
    assert!(!other.is_unique_violation());
}

/// Nodes that start together against one new database migrate it once, and both run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let (_dir, test_db) = temp_db();
    let (a, b) = tokio::join!(
        Db::connect(&test_db.location),
        Db::connect(&test_db.location)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    a.call(|c| c.execute("INSERT INTO orgs (id) VALUES ('o')", params![]))
        .await
        .unwrap();
    let seen: i64 = b
        .read(|c| c.query_row("SELECT COUNT(*) FROM orgs", params![], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(seen, 1);
}

/// A database that a newer sotto-server migrated is refused with a message that says
/// so, and nothing in it changes.
#[tokio::test]
async fn a_database_from_a_newer_server_is_refused_untouched() {
    let (_dir, test_db) = temp_db();
    let mark = match &test_db.location {
        Location::Sqlite(_) => {
            "PRAGMA user_version = 999; CREATE TABLE from_the_future (x INTEGER)"
        }
        Location::Postgres(_) => {
            "CREATE TABLE sotto_schema (version BIGINT NOT NULL);
             INSERT INTO sotto_schema VALUES (999);
             CREATE TABLE from_the_future (x INTEGER)"
        }
    };
    let location = test_db.location.clone();
    std::thread::spawn(move || {
        Conn::connect(&location)
            .unwrap()
            .execute_batch(mark)
            .unwrap()
    })
    .join()
    .unwrap();
    let err = Db::connect(&test_db.location).await.err().expect("refused");
    assert!(matches!(err, OpenError::Newer { found: 999, .. }), "{err}");
    assert!(err.to_string().contains("newer sotto-server"), "{err}");
    assert_eq!(
        count(
            &test_db.location,
            "SELECT COUNT(*) FROM from_the_future",
            params![]
        ),
        0
    );
    // No table of ours was made.
    let ours = match &test_db.location {
        Location::Sqlite(_) => "SELECT COUNT(*) FROM sqlite_master WHERE name = 'orgs'",
        Location::Postgres(_) => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'orgs'"
        }
    };
    assert_eq!(
        count(&test_db.location, ours, params![]),
        0,
        "no migration ran"
    );
}
