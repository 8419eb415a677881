//! `sotto-server copy-database --to postgres://…`: moves a site from its SQLite file to
//! PostgreSQL when it outgrows one node. Every table is copied row for row, in one
//! PostgreSQL transaction, parents before the tables whose foreign keys name them; queued
//! envelopes keep their sequence numbers, and the target's counters continue after them.
//! Run it with the server stopped; the target must be a new, empty database (this binary
//! creates its schema), so nothing there is overwritten.

use super::conn::Backend;
use super::{Conn, Db, Error, Location, OwnedValue, ToValue};

/// Why a copy did not happen. Nothing was written to the target when it fails.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("copy from a SQLite file to a postgres:// URL")]
    Backends,
    #[error("the target already holds data (table {0}); copy into a new, empty database")]
    NotEmpty(String),
    #[error("the target's table {0} does not have the source's columns (a table sotto-server did not make, or another version's schema)")]
    Schema(String),
    #[error("table {0} holds a value sotto-server never writes (a real number or text that is not UTF-8); the file was changed by hand")]
    Value(String),
    #[error("there is no SQLite file at {0}")]
    NoSource(String),
    #[error(transparent)]
    Store(#[from] Error),
}

/// Copies everything `source` (SQLite) holds into `target` (PostgreSQL, migrated and
/// empty). Returns each table with the rows copied, in the order copied.
pub async fn copy(source: &Db, target: &Db) -> Result<Vec<(String, u64)>, CopyError> {
    let from = source.conn.clone();
    target
        .call(move |to| {
            let from = from.lock().unwrap_or_else(|p| p.into_inner());
            copy_tables(&from, to)
        })
        .await
}

fn copy_tables(from: &Conn, to: &mut Conn) -> Result<Vec<(String, u64)>, CopyError> {
    let (Backend::Sqlite(src), Backend::Postgres(_)) = (&from.backend, &to.backend) else {
        return Err(CopyError::Backends);
    };
    // A transaction on the source (SQLite takes its write lock): a consistent snapshot,
    // and no server can write to the file while the copy runs.
    let snapshot = from.transaction()?;
    let tables = tables_in_order(src)?;
    let tx = to.transaction()?;
    for (table, columns) in &tables {
        if !same_columns(&tx, table, columns)? {
            return Err(CopyError::Schema(table.clone()));
        }
        let holds: bool = tx.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM {table})"),
            crate::params![],
            |r| r.get(0),
        )?;
        if holds {
            return Err(CopyError::NotEmpty(table.clone()));
        }
    }
    let mut copied = Vec::new();
    for (table, columns) in &tables {
        let list = columns.join(", ");
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        // OVERRIDING SYSTEM VALUE: identity columns (the queue's seq) keep their values.
        let insert = format!(
            "INSERT INTO {table} ({list}) OVERRIDING SYSTEM VALUE VALUES ({})",
            marks.join(", ")
        );
        let mut read = src
            .prepare(&format!("SELECT {list} FROM {table}"))
            .map_err(Error::from)?;
        let mut rows = read.query([]).map_err(Error::from)?;
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(Error::from)? {
            let values = (0..columns.len())
                .map(|i| {
                    use rusqlite::types::ValueRef;
                    Ok(match row.get_ref(i)? {
                        ValueRef::Null => OwnedValue::Null,
                        ValueRef::Integer(v) => OwnedValue::Int(v),
                        ValueRef::Real(_) => return Ok(None),
                        ValueRef::Text(t) => match std::str::from_utf8(t) {
                            Ok(t) => OwnedValue::Text(t.to_owned()),
                            Err(_) => return Ok(None),
                        },
                        ValueRef::Blob(b) => OwnedValue::Blob(b.to_vec()),
                    }
                    .into())
                })
                .collect::<rusqlite::Result<Option<Vec<OwnedValue>>>>()
                .map_err(Error::from)?
                .ok_or_else(|| CopyError::Value(table.clone()))?;
            let params: Vec<&dyn ToValue> = values.iter().map(|v| v as &dyn ToValue).collect();
            tx.execute(&insert, &params)?;
            n += 1;
        }
        // SQLite's AUTOINCREMENT high-water mark: numbers handed out before (an envelope
        // delivered and deleted) are never handed out again, on PostgreSQL either.
        let floor: Option<i64> = src
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .ok();
        continue_identities(&tx, table, floor.unwrap_or(0))?;
        copied.push((table.clone(), n));
    }
    tx.commit()?;
    drop(snapshot);
    Ok(copied)
}

/// The source's tables with their columns, each after every table its foreign keys name.
fn tables_in_order(src: &rusqlite::Connection) -> Result<Vec<(String, Vec<String>)>, Error> {
    let names: Vec<String> = src
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut pending: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for name in names {
        let columns: Vec<String> = src
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([&name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let parents: Vec<String> = src
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")?
            .query_map([&name], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?
            .into_iter()
            .filter(|p| *p != name)
            .collect();
        pending.push((name, columns, parents));
    }
    let mut ordered: Vec<(String, Vec<String>)> = Vec::new();
    while !pending.is_empty() {
        let ready = pending.iter().position(|(_, _, parents)| {
            parents
                .iter()
                .all(|p| ordered.iter().any(|(done, _)| done == p))
        });
        // A cycle (none in Sotto's schema) is copied as it comes.
        let (name, columns, _) = pending.remove(ready.unwrap_or(0));
        ordered.push((name, columns));
    }
    Ok(ordered)
}

/// Whether the target's `table` has exactly the source's `columns`.
fn same_columns(tx: &Conn, table: &str, columns: &[String]) -> Result<bool, Error> {
    let mut source = columns.to_vec();
    let mut target: Vec<String> = tx
        .query_map(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1",
            crate::params![table],
            |r| r.get(0),
        )?
        .collect::<Result<_, Error>>()?;
    source.sort();
    target.sort();
    Ok(source == target)
}

/// Moves the target's identity counters of `table` past the values copied and past
/// `floor` (the highest the source ever handed out), so new rows (the next envelope's seq)
/// follow every old one.
fn continue_identities(tx: &Conn, table: &str, floor: i64) -> Result<(), Error> {
    let identities: Vec<String> = tx
        .query_map(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1 AND is_identity = 'YES'",
            crate::params![table],
            |r| r.get(0),
        )?
        .collect::<Result<_, Error>>()?;
    for column in identities {
        tx.query_row(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), top)
                 FROM (SELECT GREATEST(MAX({column}), ?1) AS top FROM {table}) m WHERE top > 0"
            ),
            crate::params![floor],
            |_| Ok(()),
        )
        .or_else(|e| match e {
            Error::NoRows => Ok(()),
            e => Err(e),
        })?;
    }
    Ok(())
}

/// Opens both databases (migrating each to this binary's schema) and copies.
pub async fn run(source: &Location, target: &Location) -> Result<Vec<(String, u64)>, String> {
    let (Location::Sqlite(path), Location::Postgres(_)) = (source, target) else {
        return Err(CopyError::Backends.to_string());
    };
    // Opening would create an empty file, and copy nothing with success.
    if !path.is_file() {
        return Err(CopyError::NoSource(path.display().to_string()).to_string());
    }
    let from = Db::connect(source)
        .await
        .map_err(|e| format!("the source {source}: {e}"))?;
    let to = Db::connect(target)
        .await
        .map_err(|e| format!("the target {target}: {e}"))?;
    copy(&from, &to).await.map_err(|e| e.to_string())
}
