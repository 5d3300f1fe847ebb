//! `SqliteStore`: the embedded store in one SQLite file in WAL mode. Writes go through the
//! group-commit writer (`writer.rs`) on one connection with `synchronous = FULL`, so a write is
//! on disk when its method returns. Reads use a small pool of separate connections, which in WAL
//! mode read a committed snapshot without waiting for the writer.

use super::error::{Failure, FailureResult, StoreError, StoreResult};
use super::migrations;
use super::sql_store::{Backend, SqlStore};
use super::writer::{WriteCounts, Writer};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long a connection waits for a lock held by another process on the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reader connections kept open between reads; more are opened when reads overlap.
const IDLE_READERS: usize = 8;

/// The SQLite file behind `SqliteStore`: the group-commit writer and the idle readers.
pub struct Sqlite {
    path: PathBuf,
    database: String,
    pub(super) writer: Writer,
    idle_readers: Mutex<Vec<Connection>>,
}

/// The embedded store.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its parent directories if needed,
    /// and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let database = path.display().to_string();
        if let Some(directory) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(directory).map_err(|error| StoreError::CreateDirectory {
                database: database.clone(),
                directory: directory.display().to_string(),
                message: error.to_string(),
            })?;
        }
        let open_error = |error: rusqlite::Error| StoreError::Open {
            database: path.display().to_string(),
            message: error.to_string(),
        };
        let connection = Connection::open(path).map_err(open_error)?;
        configure_writer(&connection, &database)?;
        migrations::migrate(&connection, &database)?;
        let writer = Writer::start(connection, &database)?;
        let backend = Sqlite {
            path: path.to_path_buf(),
            database,
            writer,
            idle_readers: Mutex::new(Vec::new()),
        };
        // Open one reader now so that a file that cannot be read fails here, not on first use.
        let reader = backend.open_reader().map_err(open_error)?;
        backend.return_reader(reader);
        Ok(SqlStore::new(backend))
    }

    pub fn path(&self) -> &Path {
        &self.backend.path
    }

    /// Transactions and writes committed since opening; for metrics, and to see group commit
    /// at work.
    pub fn write_counts(&self) -> WriteCounts {
        self.backend.writer.counts()
    }
}

impl Sqlite {
    fn open_reader(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.execute_batch("PRAGMA query_only = ON")?;
        Ok(connection)
    }

    fn take_reader(&self) -> rusqlite::Result<Connection> {
        let idle = self.lock_idle_readers().pop();
        match idle {
            Some(connection) => Ok(connection),
            None => self.open_reader(),
        }
    }

    fn return_reader(&self, connection: Connection) {
        let mut idle_readers = self.lock_idle_readers();
        if idle_readers.len() < IDLE_READERS {
            idle_readers.push(connection);
        }
    }

    fn lock_idle_readers(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock leaves only a list of idle connections behind.
        self.idle_readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Backend for Sqlite {
    fn database(&self) -> &str {
        &self.database
    }

    /// Runs `work` in one read transaction on a reader connection.
    fn read<T>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&super::sql::Connection) -> FailureResult<T>,
    ) -> StoreResult<T> {
        let to_store_error = |failure: Failure| failure.into_store_error(&self.database, operation);
        let connection = self
            .take_reader()
            .map_err(|error| to_store_error(error.into()))?;
        let outcome = connection
            .unchecked_transaction()
            .map_err(Failure::from)
            .and_then(|transaction| work(&*transaction));
        self.return_reader(connection);
        outcome.map_err(to_store_error)
    }

    fn write<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl Fn(&super::sql::Connection) -> FailureResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.writer.write(operation, work)
    }
}

/// WAL so that readers never wait for the writer; `synchronous = FULL` so that a commit is on
/// disk (the WAL fsynced) before the writer answers.
fn configure_writer(connection: &Connection, database: &str) -> StoreResult<()> {
    let open_error = |message: String| StoreError::Open {
        database: database.to_string(),
        message,
    };
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|error| open_error(error.to_string()))?;
    let journal_mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|error| open_error(error.to_string()))?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(open_error(format!(
            "it cannot use write-ahead logging (its journal mode stays `{journal_mode}`)"
        )));
    }
    connection
        .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(|error| open_error(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Delivery;
    use crate::store::Store;
    use crate::store::sql::params;
    use std::sync::mpsc;

    #[test]
    fn reads_answer_while_the_writer_holds_its_transaction_open() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&directory.path().join("sluice.db")).unwrap();
        let delivery = Delivery {
            id: "d-1".to_string(),
            event: "push".to_string(),
            repository: None,
            payload: b"{}".to_vec(),
            received_at: chrono::Utc::now(),
        };
        store.insert_delivery(&delivery).unwrap();
        let (holding_sender, holding_receiver) = mpsc::channel();
        let (release_sender, release_receiver) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let held_write = scope.spawn(|| {
                store
                    .backend
                    .writer
                    .write("holding the transaction open", move |connection| {
                        connection.execute("DELETE FROM deliveries", params![])?;
                        holding_sender.send(()).unwrap();
                        let _ = release_receiver.recv();
                        Ok(())
                    })
            });
            holding_receiver.recv().unwrap();
            // The uncommitted delete is invisible and does not block the reader.
            assert_eq!(
                store.pending_deliveries(10).unwrap(),
                vec![delivery.clone()]
            );
            assert_eq!(store.stats().unwrap().pending_deliveries, 1);
            release_sender.send(()).unwrap();
            held_write.join().unwrap().unwrap();
        });
        assert!(store.pending_deliveries(10).unwrap().is_empty());
    }
}
