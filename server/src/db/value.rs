//! What crosses between the server's SQL and its backends: parameters ([`ToValue`], the
//! [`params!`](crate::params) macro) and column values ([`Column`]). Domain modules write
//! each query once; these types let the same call run on SQLite and on PostgreSQL, whose
//! drivers each want their own.

use super::Error;

/// One SQL parameter, borrowed from the caller where it can be.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A parameter copied, so it can outlive what it was read from (cross to the database
/// thread, or go from one backend's row to another's statement).
#[derive(Debug, Clone)]
pub enum OwnedValue {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<Value<'_>> for OwnedValue {
    fn from(v: Value<'_>) -> Self {
        match v {
            Value::Null => OwnedValue::Null,
            Value::Int(n) => OwnedValue::Int(n),
            Value::Bool(b) => OwnedValue::Int(i64::from(b)),
            Value::Text(s) => OwnedValue::Text(s.into()),
            Value::Blob(b) => OwnedValue::Blob(b.into()),
        }
    }
}

impl ToValue for OwnedValue {
    fn to_value(&self) -> Value<'_> {
        match self {
            OwnedValue::Null => Value::Null,
            OwnedValue::Int(n) => Value::Int(*n),
            OwnedValue::Text(s) => Value::Text(s),
            OwnedValue::Blob(b) => Value::Blob(b),
        }
    }
}

/// Anything that can be bound as a parameter.
pub trait ToValue {
    fn to_value(&self) -> Value<'_>;
}

impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl ToValue for i64 {
    fn to_value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}
impl ToValue for u32 {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Bool(*self)
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

/// Parameters for a query, as `params![a, b, c]` (bound to `?1`, `?2`, `?3`).
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::db::ToValue] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::db::ToValue),+] as &[&dyn $crate::db::ToValue] };
}

/// A column value read back, whichever backend stored it. SQLite keeps flags as integers
/// and PostgreSQL as booleans; sums and counts come back in each one's own integer type.
pub trait Column: Sized {
    fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Error>;
    fn from_postgres(row: &postgres::Row, i: usize) -> Result<Self, Error>;
}

fn mismatch(wanted: &str, found: impl std::fmt::Debug) -> Error {
    Error::Type(format!("expected {wanted}, found {found:?}"))
}

impl Column for i64 {
    fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Error> {
        v.as_i64()
            .map_err(|_| mismatch("an integer", v.data_type()))
    }
    fn from_postgres(row: &postgres::Row, i: usize) -> Result<Self, Error> {
        use postgres::types::Type;
        let ty = row.columns()[i].type_().clone();
        let v = if ty == Type::INT8 {
            row.try_get::<_, i64>(i)?
        } else if ty == Type::INT4 {
            i64::from(row.try_get::<_, i32>(i)?)
        } else if ty == Type::INT2 {
            i64::from(row.try_get::<_, i16>(i)?)
        } else if ty == Type::BOOL {
            i64::from(row.try_get::<_, bool>(i)?)
        } else {
            return Err(mismatch("an integer", ty));
        };
        Ok(v)
    }
}

impl Column for u32 {
    fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Error> {
        u32::try_from(i64::from_sqlite(v)?).map_err(|e| mismatch("a 32-bit count", e))
    }
    fn from_postgres(row: &postgres::Row, i: usize) -> Result<Self, Error> {
        u32::try_from(i64::from_postgres(row, i)?).map_err(|e| mismatch("a 32-bit count", e))
    }
}

impl Column for bool {
    fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Error> {
        i64::from_sqlite(v).map(|n| n != 0)
    }
    fn from_postgres(row: &postgres::Row, i: usize) -> Result<Self, Error> {
        i64::from_postgres(row, i).map(|n| n != 0)
    }
}

impl Column for String {
    fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Error> {
        v.as_str()
            .map(str::to_owned)
            .map_err(|_| mismatch("text", v.data_type()))
    }
    fn from_postgres(row: &postgres::Row, i: usize) -> Result<Self, Error> {
        Ok(row.try_get::<_, String>(i)?)
    }
}

impl Column for Vec<u8> {
    fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Error> {
        v.as_blob()
            .map(<[u8]>::to_vec)
            .map_err(|_| mismatch("bytes", v.data_type()))
    }
    fn from_postgres(row: &postgres::Row, i: usize) -> Result<Self, Error> {
        Ok(row.try_get::<_, Vec<u8>>(i)?)
    }
}

impl<T: Column> Column for Option<T> {
    fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Error> {
        match v {
            rusqlite::types::ValueRef::Null => Ok(None),
            v => T::from_sqlite(v).map(Some),
        }
    }
    fn from_postgres(row: &postgres::Row, i: usize) -> Result<Self, Error> {
        // A NULL of any type reads as None; anything else as T.
        if row
            .try_get::<_, Option<RawNull>>(i)
            .map(|v| v.is_none())
            .unwrap_or(false)
        {
            return Ok(None);
        }
        T::from_postgres(row, i).map(Some)
    }
}

/// Reads nothing of a PostgreSQL value but whether it is NULL.
struct RawNull;

impl<'a> postgres::types::FromSql<'a> for RawNull {
    fn from_sql(
        _: &postgres::types::Type,
        _: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawNull)
    }
    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
}
