//! `sluice migrate --from sqlite:PATH --to postgres://...`: copies an installation's history from
//! its SQLite file into an empty PostgreSQL database, printing the rows copied per table. The
//! copying itself is the store's (`store::copy_sqlite_to_postgres`); this file checks the two
//! locations and never prints a password.

use crate::store::{
    PostgresStore, SqliteStore, copy_sqlite_to_postgres, is_postgres_url, redacted_url,
};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The SQLite database to copy from: `sqlite:PATH` or a plain path (the data directory's
    /// `sluice.db`). It may be in use by a running server; the copy is one consistent moment of it.
    #[arg(long)]
    pub from: String,
    /// The PostgreSQL database to copy into: `postgres://USER:PASSWORD@HOST:PORT/NAME`. Its schema
    /// is brought up to date first; it must hold no history yet.
    #[arg(long)]
    pub to: String,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<bool> {
    if !is_postgres_url(&args.to) {
        anyhow::bail!(
            "--to `{}` is not a PostgreSQL URL; pass postgres://USER:PASSWORD@HOST:PORT/NAME",
            redacted_url(&args.to)
        );
    }
    let source_path = source_path(&args.from)?;
    let target_name = redacted_url(&args.to);
    let source = SqliteStore::open(&source_path)?;
    let target = PostgresStore::open(&args.to)?;
    let copied = copy_sqlite_to_postgres(&source, &target)?;
    let width = copied
        .iter()
        .map(|table| table.table.len())
        .max()
        .unwrap_or(0);
    for table in &copied {
        println!("{:<width$}  {:>9} rows", table.table, table.rows);
    }
    let total: u64 = copied.iter().map(|table| table.rows).sum();
    println!(
        "copied {total} rows in {} tables from {} to {target_name}",
        copied.len(),
        source_path.display()
    );
    Ok(true)
}

/// The SQLite file `--from` names. It must exist: opening a missing path would create an empty
/// database and copy nothing.
fn source_path(from: &str) -> anyhow::Result<PathBuf> {
    if is_postgres_url(from) {
        anyhow::bail!(
            "--from `{}` is a PostgreSQL URL; sluice migrate copies from a SQLite file: pass \
             sqlite:PATH or the path of the data directory's sluice.db",
            redacted_url(from)
        );
    }
    let path = PathBuf::from(from.strip_prefix("sqlite:").unwrap_or(from));
    if !path.is_file() {
        anyhow::bail!(
            "--from {}: no such SQLite file; pass the sluice.db in the data directory \
             `sluice serve` uses",
            path.display()
        );
    }
    Ok(path)
}
