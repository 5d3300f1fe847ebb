//! PostgreSQL as a `Session`: one client, its prepared statements kept by query text, values
//! converted to and from the types PostgreSQL inferred for each parameter and column. Calls
//! block the calling thread until the answer arrives; the connection itself is driven by the
//! backend's own runtime, so a caller on an async worker thread blocks only itself, as it does
//! on SQLite.

use super::dialect;
use crate::store::sql::{Dialect, PostgresError, Row, Session, SqlError, SqlResult, Value};
use bytes::BytesMut;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Statement};

pub(crate) fn postgres_error(error: tokio_postgres::Error) -> SqlError {
    let code = error.code().map(|state| state.code().to_string());
    let message = match error.as_db_error() {
        Some(database) => database.to_string(),
        None => error.to_string(),
    };
    SqlError::Postgres(PostgresError { code, message })
}

type Boxed = Box<dyn std::error::Error + Sync + Send>;

#[derive(Debug)]
struct Parameter<'v>(&'v Value);

impl ToSql for Parameter<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Boxed> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(number) => integer_to_sql(*number, ty, out),
            Value::Real(number) => match *ty {
                Type::FLOAT8 => number.to_sql(ty, out),
                Type::FLOAT4 => (*number as f32).to_sql(ty, out),
                _ => number.to_string().as_str().to_sql(ty, out),
            },
            Value::Text(text) => match *ty {
                Type::INT8 | Type::INT4 | Type::INT2 | Type::BOOL => {
                    let number: i64 = text.parse().map_err(|_| {
                        format!("`{text}` is not a number, but the query wants {ty}")
                    })?;
                    integer_to_sql(number, ty, out)
                }
                Type::BYTEA => text.as_bytes().to_sql(ty, out),
                _ => text.as_str().to_sql(ty, out),
            },
            Value::Blob(bytes) => match *ty {
                Type::BYTEA => bytes.as_slice().to_sql(ty, out),
                _ => std::str::from_utf8(bytes)?.to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn integer_to_sql(number: i64, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Boxed> {
    match *ty {
        Type::INT8 => number.to_sql(ty, out),
        Type::INT4 => i32::try_from(number)?.to_sql(ty, out),
        Type::INT2 => i16::try_from(number)?.to_sql(ty, out),
        Type::BOOL => (number != 0).to_sql(ty, out),
        Type::FLOAT8 => (number as f64).to_sql(ty, out),
        _ => number.to_string().as_str().to_sql(ty, out),
    }
}

struct Column(Value);

impl<'a> FromSql<'a> for Column {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Column, Boxed> {
        Ok(Column(match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::OID => Value::Integer(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Integer(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            Type::NUMERIC => {
                return Err("a NUMERIC column; cast it to BIGINT in the query".into());
            }
            _ => Value::Text(String::from_sql(ty, raw)?),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Column, Boxed> {
        Ok(Column(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// One client and the statements prepared on it.
pub(crate) struct PgSession {
    pub(crate) client: Client,
    statements: RefCell<HashMap<String, Statement>>,
}

impl PgSession {
    pub(crate) fn new(client: Client) -> PgSession {
        PgSession {
            client,
            statements: RefCell::new(HashMap::new()),
        }
    }

    fn statement(&self, sql: &str) -> SqlResult<Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = futures_executor::block_on(self.client.prepare(&dialect::parameters(sql)))
            .map_err(postgres_error)?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// Runs `call` with the values as PostgreSQL parameters.
fn with_parameters<T>(values: &[Value], call: impl FnOnce(&[&(dyn ToSql + Sync)]) -> T) -> T {
    let parameters: Vec<Parameter<'_>> = values.iter().map(Parameter).collect();
    let references: Vec<&(dyn ToSql + Sync)> = parameters
        .iter()
        .map(|parameter| parameter as &(dyn ToSql + Sync))
        .collect();
    call(&references)
}

impl Session for PgSession {
    fn run(&self, sql: &str, values: Vec<Value>) -> SqlResult<usize> {
        let statement = self.statement(sql)?;
        let changed = with_parameters(&values, |references| {
            futures_executor::block_on(self.client.execute(&statement, references))
        })
        .map_err(postgres_error)?;
        Ok(changed as usize)
    }

    fn fetch(&self, sql: &str, values: Vec<Value>) -> SqlResult<Vec<Row>> {
        let statement = self.statement(sql)?;
        let rows = with_parameters(&values, |references| {
            futures_executor::block_on(self.client.query(&statement, references))
        })
        .map_err(postgres_error)?;
        let columns: Arc<[String]> = statement
            .columns()
            .iter()
            .map(|column| column.name().to_string())
            .collect();
        rows.iter()
            .map(|row| {
                let values = (0..columns.len())
                    .map(|index| {
                        row.try_get::<_, Column>(index)
                            .map(|column| column.0)
                            .map_err(postgres_error)
                    })
                    .collect::<SqlResult<Vec<_>>>()?;
                Ok(Row::new(columns.clone(), values))
            })
            .collect()
    }

    fn batch(&self, sql: &str) -> SqlResult<()> {
        futures_executor::block_on(self.client.batch_execute(sql)).map_err(postgres_error)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}
