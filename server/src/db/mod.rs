//! Storage: the database every node of a site shares, on one of two backends. SQLite (one
//! file, the default) or PostgreSQL (a `postgres://` URL, for several nodes). Domain
//! modules write each query once, in SQL both understand, against [`Conn`]; this module
//! opens the backend, migrates it, and runs every query on tokio's blocking pool, so a slow
//! disk or network never stalls the async workers: writes (and reads that must see their
//! own transaction) through [`Db::call`] on the one writing connection, plain reads through
//! [`Db::read`] on a small pool of connections beside it.

mod conn;
pub mod copy;
mod postgres;
mod sqlite;
mod tls;
mod value;

pub use conn::{Conn, Error, OptionalExtension, Result, Row, Stmt, Tx};
pub use value::{Column, OwnedValue, ToValue, Value};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Who follows which group: a user who resolved an expression naming a group hears when
/// the group changes, since their threads made from it follow it (`directory::follow`).
pub(crate) const FOLLOWERS_SCHEMA: &str = r#"
CREATE TABLE group_followers (
    org_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    followed_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, group_name, user_id)
);
CREATE INDEX group_followers_by_user ON group_followers (user_id);
CREATE INDEX group_followers_by_age ON group_followers (followed_at);
"#;

/// The operators' tables (API keys, sign-in keys and visitor tokens added at run time, the
/// audit log, webhooks and their outbox) and disabled users: one schema step that reads the same on both
/// backends (text and BIGINT columns only), so it is written once.
pub(crate) const OPERATOR_SCHEMA: &str = r#"
ALTER TABLE users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN attributes TEXT;
-- An org created through the admin API keeps its sign-in settings here (JSON); an org of
-- the configuration file keeps them in the file.
ALTER TABLE orgs ADD COLUMN settings TEXT;
ALTER TABLE orgs ADD COLUMN created_at BIGINT;
-- Only the SHA-256 of each key is kept. org_id NULL: an operator key for every org.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT,
    scope TEXT NOT NULL,
    name TEXT,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);
-- Sign-in keys added at run time, beside the configuration file's; `material` is the PEM
-- public key, or the HS256 secret (which verifying needs as it is).
CREATE TABLE signing_keys (
    org_id TEXT NOT NULL,
    kid TEXT NOT NULL,
    alg TEXT NOT NULL,
    material TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    PRIMARY KEY (org_id, kid)
);
CREATE TABLE visitor_tokens (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    org_id TEXT,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    details TEXT
);
CREATE INDEX audit_log_by_org ON audit_log (org_id, at_ms);
-- Webhooks and their outbox: a row per delivery still to make (see `webhooks.rs`).
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_by_org ON webhooks (org_id);
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at);
CREATE INDEX webhook_deliveries_by_org ON webhook_deliveries (org_id);
CREATE TABLE offline_notices (
    user_id TEXT NOT NULL,
    sender_user TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (user_id, sender_user)
);
-- Marks that the nodes move together, by conditional update (the offline scan's).
CREATE TABLE server_marks (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
-- Rate limits counted across nodes (see `auth/shared_limit.rs`), by hashed key.
CREATE TABLE rate_windows (key TEXT PRIMARY KEY, window_start BIGINT NOT NULL, count BIGINT NOT NULL);
"#;

/// Connections beside the writer, for reads.
const READERS: usize = 4;

/// Where the database is: a SQLite file, or a PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// A `postgres://` (or `postgresql://`) URL, else a file path.
    pub fn parse(setting: &str) -> Location {
        if setting.starts_with("postgres://") || setting.starts_with("postgresql://") {
            Location::Postgres(setting.to_owned())
        } else {
            Location::Sqlite(PathBuf::from(setting))
        }
    }
}

impl std::fmt::Display for Location {
    /// The file, or the server and database without the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&crate::config::without_credentials(url)),
        }
    }
}

#[derive(Clone)]
pub struct Db {
    location: Arc<Location>,
    conn: Arc<Mutex<Conn>>,
    readers: Arc<Vec<Mutex<Conn>>>,
    /// Which reader a read waits for when all are busy: each in turn.
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
}

/// Why a database cannot be opened.
#[derive(Debug)]
pub enum OpenError {
    Store(Error),
    /// The database was migrated by a newer sotto-server than this one.
    Newer {
        found: i64,
        known: i64,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Store(e) => e.fmt(f),
            OpenError::Newer { found, known } => write!(
                f,
                "its schema is version {found}, written by a newer sotto-server; this one knows \
                 up to version {known}. Run that newer version (or a later one) on it, or \
                 restore a backup made for this version"
            ),
        }
    }
}

impl From<Error> for OpenError {
    fn from(e: Error) -> Self {
        OpenError::Store(e)
    }
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        OpenError::Store(e.into())
    }
}

impl Db {
    /// Opens (creating if needed) and migrates the SQLite file at `path`.
    pub fn open(path: &Path) -> std::result::Result<Db, OpenError> {
        let location = Location::Sqlite(path.to_owned());
        let (writer, readers) = sqlite::open(path, READERS)?;
        Ok(Db::with(location, writer, readers))
    }

    /// Opens and migrates the database at `location`, whichever backend it is on. A
    /// database that a newer server migrated is refused, untouched.
    pub async fn connect(location: &Location) -> std::result::Result<Db, OpenError> {
        let location = location.clone();
        tokio::task::spawn_blocking(move || match &location {
            Location::Sqlite(path) => Db::open(path),
            Location::Postgres(url) => {
                let writer = postgres::PgConn::connect(url)?;
                postgres::migrate(&writer)?;
                let readers = (0..READERS)
                    .map(|_| {
                        postgres::PgConn::connect(url)
                            .map(conn::Backend::Postgres)
                            .map(Conn::new)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let writer = Conn::new(conn::Backend::Postgres(writer));
                Ok(Db::with(location.clone(), writer, readers))
            }
        })
        .await
        .expect("database task panicked")
    }

    fn with(location: Location, writer: Conn, readers: Vec<Conn>) -> Db {
        Db {
            location: Arc::new(location),
            conn: Arc::new(Mutex::new(writer)),
            readers: Arc::new(readers.into_iter().map(Mutex::new).collect()),
            next_reader: Default::default(),
        }
    }

    /// Where this database is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Runs the read-only `f` on one of the read connections (the first free one, else it
    /// waits for one, each in turn), beside the writer. It sees everything committed before it began.
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&Conn) -> std::result::Result<T, E> + Send + 'static,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static + From<Error>,
    {
        let readers = self.readers.clone();
        let location = self.location.clone();
        let turn = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % readers.len();
        tokio::task::spawn_blocking(move || {
            let mut guard = readers
                .iter()
                .find_map(|r| r.try_lock().ok())
                .unwrap_or_else(|| readers[turn].lock().unwrap_or_else(|p| p.into_inner()));
            reconnect_if_lost(&mut guard, &location)?;
            f(&guard)
        })
        .await
        .unwrap_or_else(stopped)
    }

    /// [`Db::read`] for the short, fixed-size reads on the delivery path (a session, a
    /// socket's checks, a small send's checks). On SQLite with a read connection free, `f` runs
    /// here and now: such a read takes microseconds from the page cache, while handing it to
    /// the blocking pool and back costs two thread wake-ups, which under load were most of
    /// the server's CPU time. PostgreSQL reads wait on the network and always go to the pool.
    pub async fn read_now<T, E>(
        &self,
        f: impl FnOnce(&Conn) -> std::result::Result<T, E> + Send + 'static,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static + From<Error>,
    {
        if matches!(*self.location, Location::Sqlite(_)) {
            if let Some(guard) = self.readers.iter().find_map(|r| r.try_lock().ok()) {
                return f(&guard);
            }
        }
        self.read(f).await
    }

    /// Runs `f` with the writing connection on the blocking pool.
    pub async fn call<T, E>(
        &self,
        f: impl FnOnce(&mut Conn) -> std::result::Result<T, E> + Send + 'static,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static + From<Error>,
    {
        let conn = self.conn.clone();
        let location = self.location.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            reconnect_if_lost(&mut guard, &location)?;
            f(&mut guard)
        })
        .await
        .unwrap_or_else(stopped)
    }
}

impl Conn {
    /// One connection of its own to an existing database, for tools and tests; no
    /// migration runs (the server's start does that).
    pub fn connect(location: &Location) -> Result<Conn> {
        Ok(match location {
            Location::Sqlite(path) => {
                let c = rusqlite::Connection::open(path)?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                Conn::new(conn::Backend::Sqlite(c))
            }
            Location::Postgres(url) => {
                Conn::new(conn::Backend::Postgres(postgres::PgConn::connect(url)?))
            }
        })
    }
}

/// A blocking task that did not finish: a panic goes on as a panic; a task the runtime
/// dropped while shutting down is an error for its caller.
fn stopped<T, E: From<Error>>(e: tokio::task::JoinError) -> std::result::Result<T, E> {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic());
    }
    Err(Error::Stopped.into())
}

/// A PostgreSQL connection that broke (the server restarted, the network dropped) is
/// opened again before its next use; the failed query itself was already reported.
fn reconnect_if_lost(conn: &mut Conn, location: &Location) -> Result<()> {
    if let (true, Location::Postgres(url)) = (conn.is_broken(), location) {
        tracing::warn!(database = %location, "database connection lost; reconnecting");
        *conn = Conn::new(conn::Backend::Postgres(postgres::PgConn::connect(url)?));
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
