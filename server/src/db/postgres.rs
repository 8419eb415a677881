//! The PostgreSQL backend, for sites that run several nodes on one database: a
//! synchronous `postgres` client per connection (it runs on tokio's blocking pool, as the
//! SQLite connections do, so both backends share one implementation of every query),
//! statements prepared once per connection, and its own migrations, applied under an
//! advisory lock so that nodes starting together migrate once.

use super::conn::{Error, Result};
use super::value::{ToValue, Value};
use super::OpenError;
use postgres::types::{IsNull, ToSql, Type};
use postgres::{Client, Statement};
use std::cell::RefCell;
use std::collections::HashMap;

/// Schema versions, applied in order; `sotto_schema` records how far a database has come.
/// Version 1 is the whole schema that SQLite reached in its ten steps: integers are
/// BIGINT and flags are integers, so that the same SQL reads the same on both.
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
    ephemeral BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    email_verified BIGINT NOT NULL DEFAULT 0,
    UNIQUE (org_id, tag),
    UNIQUE (org_id, external_id)
);
-- lower() of the "C" collation folds ASCII only, as SQLite's does: a locale's Unicode
-- folding would make look-alike addresses (KELVIN SIGN, dotted I) equal.
CREATE INDEX users_by_email ON users (org_id, lower(email COLLATE "C"));
CREATE TABLE group_tags (org_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (org_id, name));
CREATE TABLE group_members (
    org_id TEXT NOT NULL, tag TEXT NOT NULL, member_tag TEXT NOT NULL,
    PRIMARY KEY (org_id, tag, member_tag)
);
CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    public_key BYTEA NOT NULL,
    name TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, public_key)
);
CREATE TABLE envelopes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    sender_user TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    payload BYTEA NOT NULL
);
CREATE INDEX envelopes_by_device ON envelopes (device_id, seq);
CREATE INDEX envelopes_by_sender_user ON envelopes (device_id, sender_user);
CREATE INDEX envelopes_from ON envelopes (sender_user);
CREATE INDEX envelopes_by_age ON envelopes (accepted_at);
CREATE TABLE link_requests (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    session_hash BYTEA NOT NULL,
    commitment BYTEA NOT NULL,
    running_device TEXT,
    running_public BYTEA,
    new_public BYTEA,
    status TEXT NOT NULL DEFAULT 'pending',
    sealed BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX link_requests_by_user ON link_requests (user_id, status);
CREATE INDEX link_requests_by_expiry ON link_requests (expires_at);
CREATE TABLE blobs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    uploader TEXT NOT NULL REFERENCES users(id),
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    data BYTEA NOT NULL,
    in_store BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX blobs_by_uploader ON blobs (uploader, size);
CREATE INDEX blobs_by_org ON blobs (org_id, size);
CREATE INDEX blobs_by_age ON blobs (created_at);
CREATE TABLE identities (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    signing BYTEA NOT NULL,
    agreement BYTEA NOT NULL,
    device_list TEXT NOT NULL,
    signature BYTEA NOT NULL,
    version BIGINT NOT NULL,
    devices TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE signed_prekeys (
    device_id TEXT PRIMARY KEY REFERENCES devices(id),
    key_id BIGINT NOT NULL,
    public_key BYTEA NOT NULL,
    signature BYTEA NOT NULL
);
CREATE TABLE one_time_prekeys (
    device_id TEXT NOT NULL REFERENCES devices(id),
    key_id BIGINT NOT NULL,
    public_key BYTEA NOT NULL,
    PRIMARY KEY (device_id, key_id)
);
CREATE TABLE prekey_claims (
    claimer TEXT NOT NULL,
    device_id TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (claimer, device_id)
);
CREATE INDEX prekey_claims_by_device ON prekey_claims (device_id);
"#,
    super::OPERATOR_SCHEMA,
    super::FOLLOWERS_SCHEMA,
];

/// Any value of ours that PostgreSQL asks for, converted to the type the statement wants
/// there (an integer parameter may meet an INT4 function argument or a BOOL).
#[derive(Debug)]
struct PgValue<'a>(Value<'a>);

impl ToSql for PgValue<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => int_to_sql(n, ty, out),
            Value::Bool(b) => int_to_sql(i64::from(b), ty, out),
            // A number given as text, where the statement wants a number.
            Value::Text(s) if [Type::INT8, Type::INT4, Type::INT2].contains(ty) => {
                int_to_sql(s.trim().parse()?, ty, out)
            }
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn int_to_sql(
    n: i64,
    ty: &Type,
    out: &mut bytes::BytesMut,
) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
    if *ty == Type::INT4 {
        i32::try_from(n)?.to_sql(ty, out)
    } else if *ty == Type::INT2 {
        i16::try_from(n)?.to_sql(ty, out)
    } else if *ty == Type::BOOL {
        (n != 0).to_sql(ty, out)
    } else {
        n.to_sql(ty, out)
    }
}

/// SQLite's numbered parameters (`?1`) as PostgreSQL's (`$1`), outside quoted text.
fn dialect(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// One PostgreSQL connection and the statements it has prepared.
pub struct PgConn {
    /// Always `Some` until dropped (see the `Drop` impl).
    client: RefCell<Option<Client>>,
    statements: RefCell<HashMap<String, Statement>>,
}

impl PgConn {
    pub fn connect(url: &str) -> Result<Box<PgConn>> {
        let (url, tls) = super::tls::split(url).map_err(Error::Setting)?;
        let mut config: postgres::Config = url.parse()?;
        // What is left must not carry a TLS setting of its own that the split missed.
        if config.get_ssl_mode() != postgres::config::SslMode::Prefer {
            return Err(Error::Setting(
                "the database URL's sslmode could not be read".into(),
            ));
        }
        config.ssl_mode(tls.postgres_mode());
        // A peer that vanished mid-transaction is noticed in about a minute, not hours.
        config
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(30))
            .connect_timeout(std::time::Duration::from_secs(10));
        let connector = super::tls::connector(&tls).map_err(Error::Setting)?;
        let mut client = match config.connect(connector.clone()) {
            // As libpq: `prefer` goes on without TLS when the handshake fails (a server
            // certificate rustls cannot read, say), which only a listener could exploit.
            Err(e)
                if tls.mode == super::tls::Mode::Prefer && super::tls::is_handshake_failure(&e) =>
            {
                tracing::warn!(error = %e, "TLS to the database failed; sslmode=prefer goes on without it");
                config.ssl_mode(postgres::config::SslMode::Disable);
                config.connect(connector)?
            }
            other => other?,
        };
        // Each node writes through one connection: a lock someone else holds too long, or a
        // transaction left open, must fail that one write rather than stall the node.
        client.batch_execute(
            "SET lock_timeout = '5s'; SET statement_timeout = '30s';
             SET idle_in_transaction_session_timeout = '60s'",
        )?;
        Ok(Box::new(PgConn {
            client: RefCell::new(Some(client)),
            statements: RefCell::default(),
        }))
    }

    fn client(&self) -> std::cell::RefMut<'_, Client> {
        std::cell::RefMut::map(self.client.borrow_mut(), |c| {
            c.as_mut().expect("a connection is used only until dropped")
        })
    }

    pub fn is_closed(&self) -> bool {
        self.client.borrow().as_ref().is_none_or(Client::is_closed)
    }

    fn statement(&self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.client().prepare(&dialect(sql))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Runs `run` with the prepared statement for `sql` and `params` in the driver's terms.
    fn bound<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        run: impl FnOnce(&mut Client, &Statement, &[&(dyn ToSql + Sync)]) -> Result<T, postgres::Error>,
    ) -> Result<T> {
        let stmt = self.statement(sql)?;
        let values: Vec<PgValue<'_>> = params.iter().map(|p| PgValue(p.to_value())).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        Ok(run(&mut self.client(), &stmt, &refs)?)
    }

    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> Result<u64> {
        self.bound(sql, params, |c, stmt, refs| c.execute(stmt, refs))
    }

    pub fn query(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<postgres::Row>> {
        self.bound(sql, params, |c, stmt, refs| c.query(stmt, refs))
    }

    pub fn batch(&self, sql: &str) -> Result<()> {
        Ok(self.client().batch_execute(sql)?)
    }
}

impl Drop for PgConn {
    /// The client's own drop waits on its runtime, which must not happen on one of
    /// tokio's async threads (a server that fails to start drops its database there).
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(client));
            }
        }
    }
}

/// Creates the schema or brings it up to date; a database that a newer sotto-server
/// migrated is refused before anything changes. Nodes that start together take turns
/// (an advisory lock), so each step runs once.
pub(super) fn migrate(conn: &PgConn) -> std::result::Result<(), OpenError> {
    let known = MIGRATIONS.len() as i64;
    conn.batch(
        "SELECT pg_advisory_lock(7303); CREATE TABLE IF NOT EXISTS sotto_schema (version BIGINT NOT NULL)",
    )?;
    let result = (|| {
        let rows = conn.query("SELECT version FROM sotto_schema", &[])?;
        let found: i64 = match rows.first() {
            Some(r) => r.try_get(0).map_err(Error::from)?,
            None => {
                conn.execute("INSERT INTO sotto_schema (version) VALUES (0)", &[])?;
                0
            }
        };
        if found > known {
            return Err(OpenError::Newer { found, known });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            conn.batch("BEGIN")?;
            let step = conn.batch(sql).and_then(|_| {
                conn.execute(
                    "UPDATE sotto_schema SET version = ?1",
                    crate::params![(i + 1) as i64],
                )
            });
            match step {
                Ok(_) => conn.batch("COMMIT")?,
                Err(e) => {
                    let _ = conn.batch("ROLLBACK");
                    return Err(e.into());
                }
            }
            tracing::info!(version = i + 1, "database migrated");
        }
        Ok(())
    })();
    let _ = conn.batch("SELECT pg_advisory_unlock(7303)");
    result
}

#[cfg(test)]
mod tests {
    use super::dialect;

    #[test]
    fn numbered_parameters_become_dollars_outside_quotes() {
        assert_eq!(
            dialect("SELECT '?1' FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1' FROM t WHERE a = $1 AND b = $12"
        );
    }
}
