//! One database connection, SQLite or PostgreSQL, behind the small rusqlite-like surface
//! the domain modules use: `execute`, `query_row`, `query_map`, statements, and
//! transactions that nest as savepoints. Every
//! method takes `&self`, so a transaction hands itself to the same functions a plain
//! connection does.

use super::postgres::PgConn;
use super::value::{Column, ToValue, Value};
use std::cell::Cell;

/// A storage error: either backend's, or a row that is missing or holds the wrong type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("the query returned no rows")]
    NoRows,
    #[error("a stored value has the wrong type: {0}")]
    Type(String),
    /// The runtime stopped before the query ran (the server is shutting down).
    #[error("the database task was stopped")]
    Stopped,
    /// A statement in the transaction failed, so PostgreSQL aborted all of it: the commit
    /// rolled back instead.
    #[error("a statement in the transaction failed, so it was rolled back")]
    Aborted,
    /// The database setting cannot be used as it is (a TLS option, a CA file).
    #[error("{0}")]
    Setting(String),
}

impl Error {
    /// Whether a unique key refused the write: two requests raced to make the same thing.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            Error::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}

/// What PostgreSQL said, not only "db error".
fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            // "error connecting to server" says little without its cause.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `query_row(…).optional()`: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

pub(super) enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConn>),
}

/// One connection, with how deep its open transactions are nested.
pub struct Conn {
    pub(super) backend: Backend,
    depth: Cell<u32>,
    /// The transaction depth at which a PostgreSQL statement failed, if one did (see
    /// [`Conn::noted`]).
    failed_at: Cell<Option<u32>>,
}

/// A row being read; columns by position.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    pub fn get<T: Column>(&self, i: usize) -> Result<T> {
        match self {
            Row::Sqlite(r) => T::from_sqlite(r.get_ref(i)?),
            Row::Postgres(r) => T::from_postgres(r, i),
        }
    }
}

/// A SQLite parameter: our value in rusqlite's terms.
struct SqliteValue<'a>(Value<'a>);

impl rusqlite::ToSql for SqliteValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(n),
            Value::Bool(b) => ValueRef::Integer(i64::from(b)),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_params<'a>(
    params: &'a [&'a dyn ToValue],
) -> rusqlite::ParamsFromIter<impl Iterator<Item = SqliteValue<'a>>> {
    rusqlite::params_from_iter(params.iter().map(|p| SqliteValue(p.to_value())))
}

impl Conn {
    pub(super) fn new(backend: Backend) -> Conn {
        Conn {
            backend,
            depth: Cell::new(0),
            failed_at: Cell::new(None),
        }
    }

    /// Passes a PostgreSQL statement's result on, noting a failure inside a transaction:
    /// PostgreSQL then aborts the whole transaction, every later statement fails, and its
    /// COMMIT quietly rolls back. So committing what holds the failure is an error
    /// ([`Error::Aborted`]), never a false success; rolling back past it clears the note.
    fn noted<T>(&self, result: Result<T>) -> Result<T> {
        let depth = self.depth.get();
        if result.is_err() && depth > 0 && self.failed_at.get().is_none() {
            self.failed_at.set(Some(depth));
        }
        result
    }

    /// Whether this is a PostgreSQL connection (for the few statements that differ).
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Holds the lock named `what` and `id` until the transaction ends, so that a count
    /// taken under it and the insert it allows are not raced by another node's (a quota
    /// of devices, prekeys, link requests or attachment space). An advisory lock, not a
    /// row's: it holds up no other write to the row (the queue writer locks device rows).
    /// Only PostgreSQL needs it: SQLite has one writer.
    pub fn lock_quota(&self, what: &'static str, id: &str) -> Result<()> {
        if self.is_postgres() {
            self.query_map(
                "SELECT pg_advisory_xact_lock(hashtextextended(?1, 0))::TEXT",
                crate::params![format!("{what}:{id}")],
                |_| Ok(()),
            )?
            .for_each(drop);
        }
        Ok(())
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> Result<usize> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(sqlite_params(params))?),
            Backend::Postgres(c) => self.noted(c.execute(sql, params)).map(|n| n as usize),
        }
    }

    /// Runs statements without parameters (schema changes, transaction control).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Backend::Postgres(c) => self.noted(c.batch(sql)),
        }
    }

    /// The first row of a query, read by `f`; [`Error::NoRows`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(sqlite_params(params))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(Error::NoRows),
                }
            }
            Backend::Postgres(c) => match self.noted(c.query(sql, params))?.first() {
                Some(r) => f(&Row::Postgres(r)),
                None => Err(Error::NoRows),
            },
        }
    }

    /// Every row of a query, each read by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(sqlite_params(params))?;
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r)));
                }
            }
            Backend::Postgres(c) => {
                for r in self.noted(c.query(sql, params))? {
                    out.push(f(&Row::Postgres(&r)));
                }
            }
        }
        Ok(out.into_iter())
    }

    /// A statement to run more than once (the backend caches what it prepared).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(Stmt {
            conn: self,
            sql: sql.to_owned(),
        })
    }

    /// The same as [`Conn::prepare`]: every statement is cached.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        self.prepare(sql)
    }

    /// Opens a transaction, or a savepoint inside the one already open. Dropped without
    /// [`Tx::commit`], it rolls back.
    pub fn transaction(&self) -> Result<Tx<'_>> {
        let depth = self.depth.get();
        if depth == 0 {
            // SQLite takes the write lock at once: a transaction that read first and then
            // found another process writing could only fail, not wait (two nodes or a tool
            // on one file). PostgreSQL locks rows as it goes.
            self.execute_batch(match self.backend {
                Backend::Sqlite(_) => "BEGIN IMMEDIATE",
                Backend::Postgres(_) => "BEGIN",
            })?;
        } else {
            self.execute_batch(&format!("SAVEPOINT sp{depth}"))?;
        }
        self.depth.set(depth + 1);
        Ok(Tx {
            conn: self,
            depth,
            open: true,
        })
    }

    /// A savepoint inside the open transaction.
    pub fn savepoint(&self) -> Result<Tx<'_>> {
        self.transaction()
    }

    /// Whether the connection was lost (a PostgreSQL server that restarted or went away).
    pub(super) fn is_broken(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => false,
            Backend::Postgres(c) => c.is_closed(),
        }
    }
}

/// A statement bound to its connection.
pub struct Stmt<'c> {
    conn: &'c Conn,
    sql: String,
}

impl Stmt<'_> {
    pub fn execute(&mut self, params: &[&dyn ToValue]) -> Result<usize> {
        self.conn.execute(&self.sql, params)
    }
    pub fn query_row<T>(
        &mut self,
        params: &[&dyn ToValue],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.conn.query_row(&self.sql, params, f)
    }
    pub fn query_map<T>(
        &mut self,
        params: &[&dyn ToValue],
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        self.conn.query_map(&self.sql, params, f)
    }
    /// Whether the query returns any row.
    pub fn exists(&mut self, params: &[&dyn ToValue]) -> Result<bool> {
        match self.conn.query_row(&self.sql, params, |_| Ok(())) {
            Ok(()) => Ok(true),
            Err(Error::NoRows) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// An open transaction (or savepoint); it derefs to its connection.
pub struct Tx<'c> {
    conn: &'c Conn,
    depth: u32,
    open: bool,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Tx<'_> {
    /// Makes the transaction's writes durable (or folds a savepoint into its parent).
    pub fn commit(mut self) -> Result<()> {
        // A failed statement inside this transaction or savepoint: dropping it rolls back.
        if self.conn.failed_at.get().is_some_and(|f| f > self.depth) {
            drop(self);
            return Err(Error::Aborted);
        }
        let sql = if self.depth == 0 {
            "COMMIT".to_owned()
        } else {
            format!("RELEASE sp{}", self.depth)
        };
        self.conn.execute_batch(&sql)?;
        self.open = false;
        self.conn.depth.set(self.depth);
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let sql = if self.depth == 0 {
            "ROLLBACK".to_owned()
        } else {
            format!("ROLLBACK TO sp{0}; RELEASE sp{0}", self.depth)
        };
        if let Err(e) = self.conn.execute_batch(&sql) {
            tracing::warn!(error = %e, "rollback failed");
        }
        self.conn.depth.set(self.depth);
        // Rolled back to before the failure: the transaction (or its parent) works again.
        if self.conn.failed_at.get().is_some_and(|f| f > self.depth) {
            self.conn.failed_at.set(None);
        }
    }
}
