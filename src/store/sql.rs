//! One way for the store's queries to reach either database: values, rows and a `Connection`
//! (a session inside one transaction) that SQLite and PostgreSQL both implement. Queries are
//! written once, with numbered parameters (`?1`), in the SQL both databases accept; the
//! PostgreSQL session rewrites the parameter marks (`postgres/dialect.rs`). Values cross as five
//! plain kinds, so no driver type leaks beyond the two implementations.

use std::sync::Arc;

/// A column or parameter value, whichever database it came from or goes to.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What a query can run into, before the store names the database and the operation.
#[derive(Debug)]
pub enum SqlError {
    Sqlite(rusqlite::Error),
    Postgres(PostgresError),
    /// `query_row` found no row.
    NoRows,
    /// A column held a value the caller cannot read as the type it asked for.
    Conversion {
        column: String,
        message: String,
    },
}

/// A PostgreSQL error as text, with its SQLSTATE code when the server sent one.
#[derive(Debug)]
pub struct PostgresError {
    pub code: Option<String>,
    pub message: String,
}

impl PostgresError {
    /// A transaction that lost a race with another one and may be retried as a whole.
    pub fn is_retryable(&self) -> bool {
        matches!(self.code.as_deref(), Some("40001" | "40P01"))
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::Sqlite(error) => write!(formatter, "{error}"),
            SqlError::Postgres(error) => write!(formatter, "{}", error.message),
            SqlError::NoRows => write!(formatter, "the query returned no rows"),
            SqlError::Conversion { column, message } => {
                write!(formatter, "column `{column}`: {message}")
            }
        }
    }
}

impl From<rusqlite::Error> for SqlError {
    fn from(error: rusqlite::Error) -> SqlError {
        match error {
            rusqlite::Error::QueryReturnedNoRows => SqlError::NoRows,
            other => SqlError::Sqlite(other),
        }
    }
}

pub type SqlResult<T> = Result<T, SqlError>;

pub fn conversion_error(column: &str, message: impl Into<String>) -> SqlError {
    SqlError::Conversion {
        column: column.to_string(),
        message: message.into(),
    }
}

/// Turns "no row" into `None`, like rusqlite's extension of the same name.
pub trait OptionalExtension<T> {
    fn optional(self) -> SqlResult<Option<T>>;
}

impl<T> OptionalExtension<T> for SqlResult<T> {
    fn optional(self) -> SqlResult<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(SqlError::NoRows) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// A value that can be a parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! integer_to_value {
    ($($kind:ty),*) => {$(
        impl ToValue for $kind {
            fn to_value(&self) -> Value {
                Value::Integer(*self as i64)
            }
        }
    )*};
}
integer_to_value!(i64, i32, u32, u64, usize, u16, u8);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(value) => value.to_value(),
            None => Value::Null,
        }
    }
}

/// The parameters of one query: `params![...]`, an array of one type, or a list of values.
pub trait Params {
    fn into_values(self) -> Vec<Value>;
}

impl Params for &[&dyn ToValue] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(|value| value.to_value()).collect()
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(ToValue::to_value).collect()
    }
}

impl Params for Vec<Value> {
    fn into_values(self) -> Vec<Value> {
        self
    }
}

/// `params![a, b]`: parameters of different types, numbered from 1 in order.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::sql::ToValue]
    };
    ($($value:expr),+ $(,)?) => {
        &[$(&$value as &dyn $crate::store::sql::ToValue),+] as &[&dyn $crate::store::sql::ToValue]
    };
}
pub(crate) use params;

/// A value a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: &Value, column: &str) -> SqlResult<Self>;
}

fn wrong_kind(column: &str, wanted: &str, found: &Value) -> SqlError {
    conversion_error(column, format!("expected {wanted}, found {found:?}"))
}

impl FromValue for i64 {
    fn from_value(value: &Value, column: &str) -> SqlResult<i64> {
        match value {
            Value::Integer(number) => Ok(*number),
            other => Err(wrong_kind(column, "an integer", other)),
        }
    }
}

macro_rules! narrow_integer_from_value {
    ($($kind:ty),*) => {$(
        impl FromValue for $kind {
            fn from_value(value: &Value, column: &str) -> SqlResult<$kind> {
                let wide = i64::from_value(value, column)?;
                <$kind>::try_from(wide).map_err(|_| {
                    conversion_error(column, format!("{wide} is out of range"))
                })
            }
        }
    )*};
}
narrow_integer_from_value!(i32, u32, u64, usize, u16, u8);

impl FromValue for bool {
    fn from_value(value: &Value, column: &str) -> SqlResult<bool> {
        Ok(i64::from_value(value, column)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value, column: &str) -> SqlResult<f64> {
        match value {
            Value::Real(number) => Ok(*number),
            Value::Integer(number) => Ok(*number as f64),
            other => Err(wrong_kind(column, "a number", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value, column: &str) -> SqlResult<String> {
        match value {
            Value::Text(text) => Ok(text.clone()),
            Value::Blob(bytes) => String::from_utf8(bytes.clone())
                .map_err(|_| conversion_error(column, "the bytes are not UTF-8 text")),
            other => Err(wrong_kind(column, "text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value, column: &str) -> SqlResult<Vec<u8>> {
        match value {
            Value::Blob(bytes) => Ok(bytes.clone()),
            Value::Text(text) => Ok(text.as_bytes().to_vec()),
            other => Err(wrong_kind(column, "bytes", other)),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value, _column: &str) -> SqlResult<Value> {
        Ok(value.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value, column: &str) -> SqlResult<Option<T>> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other, column).map(Some),
        }
    }
}

/// One result row: its values and the names of its columns.
#[derive(Debug)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

/// A column by its position (from 0) or its name.
pub trait RowIndex {
    fn position(&self, columns: &[String]) -> SqlResult<usize>;
}

impl RowIndex for usize {
    fn position(&self, columns: &[String]) -> SqlResult<usize> {
        if *self < columns.len() {
            Ok(*self)
        } else {
            Err(conversion_error(
                &self.to_string(),
                format!("the row has only {} columns", columns.len()),
            ))
        }
    }
}

impl RowIndex for &str {
    fn position(&self, columns: &[String]) -> SqlResult<usize> {
        columns
            .iter()
            .position(|name| name.eq_ignore_ascii_case(self))
            .ok_or_else(|| conversion_error(self, "the query returns no such column"))
    }
}

impl Row {
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { columns, values }
    }

    pub fn get<I: RowIndex, T: FromValue>(&self, index: I) -> SqlResult<T> {
        let position = index.position(&self.columns)?;
        T::from_value(&self.values[position], &self.columns[position])
    }
}

/// Which SQL a session speaks where the two differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One session inside a transaction. The store's modules take `&Connection` and call the
/// generic helpers below; each database implements these four.
pub trait Session {
    fn run(&self, sql: &str, values: Vec<Value>) -> SqlResult<usize>;
    fn fetch(&self, sql: &str, values: Vec<Value>) -> SqlResult<Vec<Row>>;
    fn batch(&self, sql: &str) -> SqlResult<()>;
    fn dialect(&self) -> Dialect;
}

pub type Connection = dyn Session;

impl dyn Session + '_ {
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> SqlResult<usize> {
        self.run(sql, params.into_values())
    }

    pub fn execute_batch(&self, sql: &str) -> SqlResult<()> {
        self.batch(sql)
    }

    /// The first row through `map`, or `SqlError::NoRows`.
    pub fn query_row<P: Params, T>(
        &self,
        sql: &str,
        params: P,
        map: impl FnOnce(&Row) -> SqlResult<T>,
    ) -> SqlResult<T> {
        let rows = self.fetch(sql, params.into_values())?;
        rows.first().map(map).unwrap_or(Err(SqlError::NoRows))
    }

    pub fn prepare_cached<'s>(&'s self, sql: &str) -> SqlResult<Statement<'s>> {
        Ok(Statement {
            session: self,
            sql: sql.to_string(),
        })
    }

    pub fn prepare<'s>(&'s self, sql: &str) -> SqlResult<Statement<'s>> {
        self.prepare_cached(sql)
    }
}

/// A query kept for running with parameters, like a prepared statement.
pub struct Statement<'s> {
    session: &'s (dyn Session + 's),
    sql: String,
}

impl Statement<'_> {
    pub fn execute<P: Params>(&mut self, params: P) -> SqlResult<usize> {
        self.session.run(&self.sql, params.into_values())
    }

    pub fn query_map<P: Params, T>(
        &mut self,
        params: P,
        map: impl FnMut(&Row) -> SqlResult<T>,
    ) -> SqlResult<std::vec::IntoIter<SqlResult<T>>> {
        let rows = self.session.fetch(&self.sql, params.into_values())?;
        Ok(rows.iter().map(map).collect::<Vec<_>>().into_iter())
    }

    pub fn query_row<P: Params, T>(
        &mut self,
        params: P,
        map: impl FnOnce(&Row) -> SqlResult<T>,
    ) -> SqlResult<T> {
        self.session.query_row(&self.sql, params, map)
    }

    pub fn query<P: Params>(&mut self, params: P) -> SqlResult<Vec<Row>> {
        self.session.fetch(&self.sql, params.into_values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_read_as_the_wrong_kind_names_the_column() {
        let row = Row::new(
            Arc::from(vec!["status".to_string()]),
            vec![Value::Integer(3)],
        );
        let error = row.get::<_, String>("status").unwrap_err().to_string();
        assert!(error.contains("`status`"), "{error}");
        assert_eq!(row.get::<_, i64>(0).unwrap(), 3);
        assert!(row.get::<_, i64>("missing").is_err());
    }

    #[test]
    fn optional_turns_only_a_missing_row_into_none() {
        assert_eq!(Err::<i64, _>(SqlError::NoRows).optional().unwrap(), None);
        assert!(
            Err::<i64, _>(conversion_error("x", "bad"))
                .optional()
                .is_err()
        );
    }
}
