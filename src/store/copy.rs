//! Copying an installation's history from SQLite to PostgreSQL, for `sluice migrate`. The SQLite
//! side is read in one read transaction, so the copy is one consistent moment of the file even
//! while a server keeps writing to it; the PostgreSQL side is written in one transaction, so a
//! failed copy leaves the target as it was. Tables and columns are read from SQLite's own catalogue
//! rather than listed here, so a new migration is copied without touching this file. Replica
//! leases are live state, not history, and stay behind.

use super::error::{FailureResult, StoreError};
use super::sql::{Connection, Value, params};
use super::sql_store::Backend;
use super::{PostgresStore, SqliteStore};
use std::sync::Arc;

/// Tables that hold no history: the schema's own bookkeeping, SQLite's counters behind
/// `AUTOINCREMENT`, and the replicas' leases (a copied lease would name a process that never ran
/// against the target).
const NOT_COPIED: &[&str] = &["schema_version", "sqlite_sequence", "replicas"];

/// At most this many rows go into one `INSERT`, so that a large table is sent in a few hundred
/// statements rather than one per row.
const ROWS_PER_INSERT: usize = 200;

/// PostgreSQL takes at most 65535 parameters in one statement.
const PARAMETERS_PER_INSERT: usize = 60_000;

/// How many rows one table brought over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: String,
    pub rows: u64,
}

/// Why a copy did not happen. Nothing was written to the target in any case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the target database {database} already holds {rows} rows in `{table}`; sluice migrate \
         copies only into a database without history: create an empty database (or drop this \
         one and create it again) and run sluice migrate again"
    )]
    TargetNotEmpty {
        database: String,
        table: String,
        rows: u64,
    },

    #[error(
        "the source database {source_database} has schema version {source_version} but the \
         target {target_database} has {target_version}; run the same sluice version against both \
         and try again"
    )]
    SchemaVersions {
        source_database: String,
        source_version: i64,
        target_database: String,
        target_version: i64,
    },

    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One table as read from the source.
struct TableRows {
    name: String,
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// What the source held at one moment.
struct Snapshot {
    schema_version: i64,
    tables: Vec<TableRows>,
}

/// What the target's transaction found instead of copying.
enum Refusal {
    NotEmpty { table: String, rows: u64 },
    SchemaVersion(i64),
}

/// Copies every table of `source` into `target`, which must be at the same schema version and
/// hold no history yet. Returns the rows copied per table, in the order the tables were created.
pub fn copy_sqlite_to_postgres(
    source: &SqliteStore,
    target: &PostgresStore,
) -> Result<Vec<CopiedTable>, CopyError> {
    let snapshot = source
        .backend
        .read("reading every table for the copy", read_snapshot)?;
    let source_version = snapshot.schema_version;
    let snapshot = Arc::new(snapshot);
    let outcome = target
        .backend
        .write("copying the history into the database", move |connection| {
            write_snapshot(connection, &snapshot)
        })?;
    match outcome {
        Ok(copied) => Ok(copied),
        Err(Refusal::NotEmpty { table, rows }) => Err(CopyError::TargetNotEmpty {
            database: target.backend.database().to_string(),
            table,
            rows,
        }),
        Err(Refusal::SchemaVersion(target_version)) => Err(CopyError::SchemaVersions {
            source_database: source.backend.database().to_string(),
            source_version,
            target_database: target.backend.database().to_string(),
            target_version,
        }),
    }
}

fn schema_version(connection: &Connection) -> FailureResult<i64> {
    Ok(
        connection.query_row("SELECT version FROM schema_version", params![], |row| {
            row.get(0)
        })?,
    )
}

/// `name` as an SQL identifier, for names read from the catalogue.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn read_snapshot(connection: &Connection) -> FailureResult<Snapshot> {
    let schema_version = schema_version(connection)?;
    let names = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")?
        .query_map(params![], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut tables = Vec::new();
    for name in names {
        if NOT_COPIED.contains(&name.as_str()) || name.starts_with("sqlite_") {
            continue;
        }
        tables.push(read_table(connection, name)?);
    }
    Ok(Snapshot {
        schema_version,
        tables,
    })
}

/// The whole table, in primary-key order (or insertion order where it has none). The column
/// names come from the catalogue, since an empty table has no rows to name them.
fn read_table(connection: &Connection, name: String) -> FailureResult<TableRows> {
    let described = connection
        .prepare("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid")?
        .query_map(params![name], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let columns: Vec<String> = described.iter().map(|(column, _)| column.clone()).collect();
    let mut key: Vec<&(String, i64)> = described.iter().filter(|(_, pk)| *pk > 0).collect();
    key.sort_by_key(|(_, pk)| *pk);
    let order = if key.is_empty() {
        "rowid".to_string()
    } else {
        let key: Vec<String> = key.iter().map(|(column, _)| quoted(column)).collect();
        key.join(", ")
    };
    let listed: Vec<String> = columns.iter().map(|column| quoted(column)).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {order}",
        listed.join(", "),
        quoted(&name)
    );
    let rows = connection
        .prepare(&sql)?
        .query_map(params![], |row| {
            (0..columns.len())
                .map(|index| row.get::<_, Value>(index))
                .collect::<Result<Vec<_>, _>>()
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TableRows {
        name,
        columns,
        rows,
    })
}

fn write_snapshot(
    connection: &Connection,
    snapshot: &Snapshot,
) -> FailureResult<Result<Vec<CopiedTable>, Refusal>> {
    let target_version = schema_version(connection)?;
    if target_version != snapshot.schema_version {
        return Ok(Err(Refusal::SchemaVersion(target_version)));
    }
    for table in &snapshot.tables {
        let rows: i64 = connection.query_row(
            &format!("SELECT count(*) FROM {}", quoted(&table.name)),
            params![],
            |row| row.get(0),
        )?;
        if rows > 0 {
            return Ok(Err(Refusal::NotEmpty {
                table: table.name.clone(),
                rows: rows as u64,
            }));
        }
    }
    let mut copied = Vec::with_capacity(snapshot.tables.len());
    for table in &snapshot.tables {
        insert_rows(connection, table)?;
        copied.push(CopiedTable {
            table: table.name.clone(),
            rows: table.rows.len() as u64,
        });
    }
    move_identities_past_copied_ids(connection)?;
    Ok(Ok(copied))
}

/// Inserts the table's rows with their own ids, several rows per statement.
fn insert_rows(connection: &Connection, table: &TableRows) -> FailureResult<()> {
    if table.columns.is_empty() {
        return Ok(());
    }
    let per_insert = ROWS_PER_INSERT.min(PARAMETERS_PER_INSERT / table.columns.len());
    let listed: Vec<String> = table.columns.iter().map(|column| quoted(column)).collect();
    let head = format!(
        "INSERT INTO {} ({}) VALUES ",
        quoted(&table.name),
        listed.join(", ")
    );
    for chunk in table.rows.chunks(per_insert) {
        let mut sql = head.clone();
        let mut values = Vec::with_capacity(chunk.len() * table.columns.len());
        for (row_index, row) in chunk.iter().enumerate() {
            if row_index > 0 {
                sql.push_str(", ");
            }
            let marks: Vec<String> = (1..=row.len())
                .map(|column_index| format!("?{}", values.len() + column_index))
                .collect();
            sql.push('(');
            sql.push_str(&marks.join(", "));
            sql.push(')');
            values.extend(row.iter().cloned());
        }
        connection.execute(&sql, values)?;
    }
    Ok(())
}

/// Identity columns hand out ids from a sequence that explicit ids do not move; each is set to
/// the largest copied id, so the next row the target numbers itself comes after the copied ones.
fn move_identities_past_copied_ids(connection: &Connection) -> FailureResult<()> {
    let identities = connection
        .prepare(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE is_identity = 'YES' AND table_schema = current_schema() \
             ORDER BY table_name, column_name",
        )?
        .query_map(params![], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (table, column) in identities {
        // `setval` with NULL (an empty table) changes nothing.
        connection.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence(?1, ?2), (SELECT max({}) FROM {}))",
                quoted(&column),
                quoted(&table)
            ),
            params![quoted(&table), column],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_are_quoted_as_identifiers() {
        assert_eq!(quoted("runs"), "\"runs\"");
        assert_eq!(quoted("odd\"name"), "\"odd\"\"name\"");
    }
}
