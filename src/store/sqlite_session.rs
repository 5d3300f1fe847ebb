//! SQLite as a `Session`: a rusqlite connection (or a transaction on one) running the store's
//! queries through its statement cache.

use super::sql::{Dialect, Row, Session, SqlResult, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::sync::Arc;

struct Parameter<'v>(&'v Value);

impl rusqlite::ToSql for Parameter<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(number) => ToSqlOutput::Borrowed(ValueRef::Integer(*number)),
            Value::Real(number) => ToSqlOutput::Borrowed(ValueRef::Real(*number)),
            Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Blob(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

fn value(reference: ValueRef<'_>) -> Value {
    match reference {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(number) => Value::Integer(number),
        ValueRef::Real(number) => Value::Real(number),
        ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

impl Session for rusqlite::Connection {
    fn run(&self, sql: &str, values: Vec<Value>) -> SqlResult<usize> {
        let mut statement = self.prepare_cached(sql)?;
        let parameters = values.iter().map(Parameter);
        Ok(statement.execute(rusqlite::params_from_iter(parameters))?)
    }

    fn fetch(&self, sql: &str, values: Vec<Value>) -> SqlResult<Vec<Row>> {
        let mut statement = self.prepare_cached(sql)?;
        let columns: Arc<[String]> = statement
            .column_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let parameters = values.iter().map(Parameter);
        let mut rows = statement.query(rusqlite::params_from_iter(parameters))?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns.len())
                .map(|index| row.get_ref(index).map(value))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            found.push(Row::new(columns.clone(), values));
        }
        Ok(found)
    }

    fn batch(&self, sql: &str) -> SqlResult<()> {
        Ok(self.execute_batch(sql)?)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}
