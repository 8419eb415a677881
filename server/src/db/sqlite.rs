//! The SQLite backend, the default: one file in WAL mode, `synchronous = FULL`, one
//! writing connection and a few read-only ones beside it (WAL lets them read what is
//! committed while the writer works). Its schema steps are numbered by `PRAGMA user_version`.

use super::conn::{Backend, Conn};
use super::OpenError;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::Path;

/// Schema versions, applied in order; `PRAGMA user_version` records how far a file has come.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE orgs (id TEXT PRIMARY KEY, name TEXT);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    external_id TEXT,
    email TEXT,
    name TEXT,
    tag TEXT NOT NULL,
    ephemeral INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (org_id, tag),
    UNIQUE (org_id, external_id)
);
CREATE INDEX users_by_email ON users (org_id, email);
-- Named groups such as @support; members are user tags, so a group may name users who
-- have not signed in yet.
CREATE TABLE group_tags (org_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (org_id, name));
CREATE TABLE group_members (
    org_id TEXT NOT NULL, tag TEXT NOT NULL, member_tag TEXT NOT NULL,
    PRIMARY KEY (org_id, tag, member_tag)
);
-- Only a hash of each session token is kept: a copy of the database signs nobody in.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    expires_at INTEGER NOT NULL
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    public_key BLOB NOT NULL,
    name TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, public_key)
);
-- Envelopes wait here until their device acknowledges them.
CREATE TABLE envelopes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL REFERENCES devices(id),
    sender_user TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    accepted_at INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX envelopes_by_device ON envelopes (device_id, seq);
"#,
    r#"
-- A new browser's request to be linked to its user's running browsers (relayed, single
-- use, ten minutes). `sealed` is the approving browser's bundle, opaque to the server.
CREATE TABLE link_requests (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    ephemeral_public BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    sealed BLOB,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX link_requests_by_user ON link_requests (user_id, status);
"#,
    r#"
-- Encrypted attachments: ciphertext only; the key travels inside the sealed message.
CREATE TABLE blobs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    uploader TEXT NOT NULL REFERENCES users(id),
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    data BLOB NOT NULL
);
"#,
    r#"
-- A user's identity (public keys only) and the device list it signed. `devices` is the
-- list's device IDs, as JSON, for the send check.
CREATE TABLE identities (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    signing BLOB NOT NULL,
    agreement BLOB NOT NULL,
    device_list TEXT NOT NULL,
    signature BLOB NOT NULL,
    version INTEGER NOT NULL,
    devices TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE signed_prekeys (
    device_id TEXT PRIMARY KEY REFERENCES devices(id),
    key_id INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    signature BLOB NOT NULL
);
-- Each one-time prekey is handed out once, then deleted.
CREATE TABLE one_time_prekeys (
    device_id TEXT NOT NULL REFERENCES devices(id),
    key_id INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    PRIMARY KEY (device_id, key_id)
);
"#,
    r#"
-- Linking became commit-then-reveal (protocol v3): requests are short-lived, so the old
-- table's few open ones are dropped rather than converted.
DROP TABLE link_requests;
CREATE TABLE link_requests (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    -- The session that asked: only it may reveal its key and take the approval.
    session_hash BLOB NOT NULL,
    commitment BLOB NOT NULL,
    -- The running browser that answered, and its key; only it may approve.
    running_device TEXT,
    running_public BLOB,
    new_public BLOB,
    status TEXT NOT NULL DEFAULT 'pending',
    sealed BLOB,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX link_requests_by_user ON link_requests (user_id, status);
"#,
    r#"
-- Whether a user's email came from a sign-in token that vouches for it. Only such an email
-- finds a user at an email-only sign-in; a visitor's self-declared one never does. Emails
-- of non-visitors so far all came from tokens.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
UPDATE users SET email_verified = 1 WHERE ephemeral = 0 AND email IS NOT NULL;
"#,
    r#"
-- One-time prekeys each user has taken of each device this hour: past a few, bundles come
-- without one (X3DH then uses the signed prekey), so nobody can drain a device's stock.
CREATE TABLE prekey_claims (
    claimer TEXT NOT NULL,
    device_id TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (claimer, device_id)
);
-- Each sender's share of a recipient device's queue is counted per send.
CREATE INDEX envelopes_by_sender ON envelopes (device_id, sender_device);
"#,
    r#"
-- Quotas sum attachment bytes per uploader and per org at each upload.
CREATE INDEX blobs_by_uploader ON blobs (uploader);
CREATE INDEX blobs_by_org ON blobs (org_id);
"#,
    r#"
-- Sender shares count per sending user; the clean-up and quotas look things up by age,
-- by owner and by sender without reading whole tables.
DROP INDEX envelopes_by_sender;
CREATE INDEX envelopes_by_sender_user ON envelopes (device_id, sender_user);
CREATE INDEX envelopes_from ON envelopes (sender_user);
CREATE INDEX envelopes_by_age ON envelopes (accepted_at);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX link_requests_by_expiry ON link_requests (expires_at);
CREATE INDEX prekey_claims_by_device ON prekey_claims (device_id);
DROP INDEX blobs_by_uploader;
DROP INDEX blobs_by_org;
CREATE INDEX blobs_by_uploader ON blobs (uploader, size);
CREATE INDEX blobs_by_org ON blobs (org_id, size);
CREATE INDEX blobs_by_age ON blobs (created_at);
"#,
    r#"
-- Attachments' bytes live in the blob store (`blob_store`, a directory); `data` keeps only
-- what an earlier version stored here, until the server moves it out at start.
ALTER TABLE blobs ADD COLUMN in_store INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Emails are matched ignoring case with lower(), which both SQLite and PostgreSQL have.
DROP INDEX users_by_email;
CREATE INDEX users_by_email ON users (org_id, lower(email));
"#,
    super::OPERATOR_SCHEMA,
    super::FOLLOWERS_SCHEMA,
];

/// Opens (creating if needed) and migrates the file at `path`: the writer and `readers`
/// read-only connections. A file that a newer server migrated is refused, untouched: this
/// one would misread it.
pub(super) fn open(path: &Path, readers: usize) -> Result<(Conn, Vec<Conn>), OpenError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Before anything else touches the file (even its journal mode).
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(OpenError::Newer { found, known });
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn)?;
    let readers = (0..readers)
        .map(|_| {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            r.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(Conn::new(Backend::Sqlite(r)))
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((Conn::new(Backend::Sqlite(conn)), readers))
}

/// Applies the steps this file lacks, each in its own immediate transaction that reads
/// the version again once it holds the lock: two servers opening a new file together
/// then take turns instead of both creating the same tables.
fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    let known = MIGRATIONS.len() as i64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if current > known {
            return Err(OpenError::Newer {
                found: current,
                known,
            });
        }
        let Some(sql) = MIGRATIONS.get(current as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
        tracing::info!(version = current + 1, "database migrated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    /// The hottest reads (a session's lookup, a socket's queue) are compiled once and reused
    /// while the writer commits: SQLite 3.54 compiled a cached join again at every use, and
    /// a bound LIMIT does so at every new value, which once cost a quarter of the CPU.
    #[test]
    fn hot_reads_are_not_compiled_again_while_the_writer_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sotto.db");
        let (writer, readers) = open(&path, 1).unwrap();
        let (Backend::Sqlite(w), Backend::Sqlite(r)) = (&writer.backend, &readers[0].backend)
        else {
            unreachable!("SQLite connections")
        };
        let hot = [
            crate::auth::session::LOOKUP_SQL,
            crate::delivery::queue::PENDING_SQL,
        ];
        for i in 0..20i64 {
            w.execute("INSERT INTO orgs (id) VALUES (?1)", [format!("org{i}")])
                .unwrap();
            for sql in hot {
                let mut stmt = r.prepare_cached(sql).unwrap();
                let n = stmt.parameter_count();
                let values: Vec<Box<dyn rusqlite::ToSql>> = (1..=n)
                    .map(|k| -> Box<dyn rusqlite::ToSql> {
                        if k == 1 {
                            Box::new(format!("key{i}"))
                        } else {
                            Box::new(i)
                        }
                    })
                    .collect();
                let mut rows = stmt.query(rusqlite::params_from_iter(values)).unwrap();
                while rows.next().unwrap().is_some() {}
            }
        }
        let batch = crate::delivery::queue::PENDING_BATCH;
        assert!(crate::delivery::queue::PENDING_SQL.ends_with(&format!("LIMIT {batch}")));
        for sql in hot {
            let stmt = r.prepare_cached(sql).unwrap();
            let again = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(again, 0, "compiled again {again} times: {sql}");
        }
    }

    #[test]
    fn a_database_from_a_newer_server_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sotto.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE from_the_future (x)").unwrap();
            c.pragma_update(None, "user_version", 999).unwrap();
        }
        let err = Db::open(&path).err().expect("refused");
        assert!(
            matches!(err, OpenError::Newer { found: 999, known } if known == MIGRATIONS.len() as i64)
        );
        assert!(err.to_string().contains("newer sotto-server"), "{err}");
        let c = Connection::open(&path).unwrap();
        let version: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 999, "the file is left as it was");
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "not even switched to WAL");
        let ours: bool = c
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'orgs')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!ours, "no migration ran on it");
    }
}
