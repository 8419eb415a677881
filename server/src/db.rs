//! SQLite storage: one file, opened in WAL mode and migrated on start. Every query runs on
//! tokio's blocking pool through [`Db::call`], so a slow disk never stalls the async workers.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Schema versions, applied in order; `PRAGMA user_version` records how far a file has come.
const MIGRATIONS: &[&str] = &[
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
];

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Db> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static + From<rusqlite::Error>,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .expect("database task panicked")
    }
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    now_millis() / 1000
}

/// Unix milliseconds now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A random identifier with a readable prefix, e.g. `u_3f9a…` (128 bits of randomness).
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("no random source");
    let mut out = String::with_capacity(prefix.len() + 33);
    out.push_str(prefix);
    out.push('_');
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
