//! `SqliteStore`: the embedded store in one SQLite file in WAL mode. Writes go through the
//! group-commit writer (`writer.rs`) on one connection with `synchronous = FULL`, so a write is
//! on disk when its method returns. Reads use a small pool of separate connections, which in WAL
//! mode read a committed snapshot without waiting for the writer.

use super::error::{Failure, FailureResult, StoreError, StoreResult};
use super::writer::{WriteCounts, Writer};
use super::{
    Inserted, NewRun, PendingDelivery, RunFilter, Store, StoreStats, delivery_retries, migrations,
    outputs, reads, writes,
};
use crate::model::{Delivery, Run, RunId, Status, StepRecord};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long a connection waits for a lock held by another process on the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reader connections kept open between reads; more are opened when reads overlap.
const IDLE_READERS: usize = 8;

pub struct SqliteStore {
    path: PathBuf,
    database: String,
    pub(super) writer: Writer,
    idle_readers: Mutex<Vec<Connection>>,
}

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
        let mut connection = Connection::open(path).map_err(open_error)?;
        configure_writer(&connection, &database)?;
        migrations::migrate(&mut connection, &database)?;
        let writer = Writer::start(connection, &database)?;
        let store = SqliteStore {
            path: path.to_path_buf(),
            database,
            writer,
            idle_readers: Mutex::new(Vec::new()),
        };
        // Open one reader now so that a file that cannot be read fails here, not on first use.
        let reader = store.open_reader().map_err(open_error)?;
        store.return_reader(reader);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Transactions and writes committed since opening; for metrics, and to see group commit
    /// at work.
    pub fn write_counts(&self) -> WriteCounts {
        self.writer.counts()
    }

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

    /// Runs `work` in one read transaction on a reader connection.
    pub(super) fn read<T>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&Connection) -> FailureResult<T>,
    ) -> StoreResult<T> {
        let to_store_error = |failure: Failure| failure.into_store_error(&self.database, operation);
        let connection = self
            .take_reader()
            .map_err(|error| to_store_error(error.into()))?;
        let outcome = connection
            .unchecked_transaction()
            .map_err(Failure::from)
            .and_then(|transaction| work(&transaction));
        self.return_reader(connection);
        outcome.map_err(to_store_error)
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

impl Store for SqliteStore {
    fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<Inserted> {
        let delivery = delivery.clone();
        self.writer.write("storing a delivery", move |connection| {
            writes::insert_delivery(connection, &delivery)
        })
    }

    fn pending_deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.read("listing pending deliveries", |connection| {
            reads::pending_deliveries(connection, limit)
        })
    }

    fn delivery(&self, id: &str) -> StoreResult<Option<Delivery>> {
        let id = id.to_owned();
        self.read("reading a delivery", move |connection| {
            reads::delivery(connection, &id)
        })
    }

    fn due_deliveries(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> StoreResult<Vec<PendingDelivery>> {
        self.read("listing deliveries due for planning", |connection| {
            delivery_retries::due_deliveries(connection, now, limit)
        })
    }

    fn defer_delivery(
        &self,
        delivery_id: &str,
        error: &str,
        next_attempt_at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<u32> {
        let delivery_id = delivery_id.to_string();
        let error = error.to_string();
        self.writer
            .write("deferring a delivery", move |connection| {
                delivery_retries::defer_delivery(connection, &delivery_id, &error, next_attempt_at)
            })
    }

    fn next_delivery_retry(&self) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        self.read(
            "finding the next delivery retry",
            delivery_retries::next_delivery_retry,
        )
    }

    fn complete_delivery(
        &self,
        delivery_id: &str,
        outcome: &str,
        runs: &[NewRun],
    ) -> StoreResult<Vec<RunId>> {
        let delivery_id = delivery_id.to_string();
        let outcome = outcome.to_string();
        let runs = runs.to_vec();
        self.writer
            .write("completing a delivery", move |connection| {
                writes::complete_delivery(
                    connection,
                    &delivery_id,
                    &outcome,
                    &runs,
                    chrono::Utc::now(),
                )
            })
    }

    fn insert_runs(&self, runs: &[NewRun]) -> StoreResult<Vec<RunId>> {
        let runs = runs.to_vec();
        self.writer.write("creating runs", move |connection| {
            writes::insert_runs(connection, &runs, None, chrono::Utc::now())
        })
    }

    fn list_runs(&self, filter: &RunFilter) -> StoreResult<Vec<Run>> {
        self.read("listing runs", |connection| {
            let mut runs = reads::list_runs(connection, filter)?;
            for run in &mut runs {
                outputs::attach_outputs(connection, run)?;
            }
            Ok(runs)
        })
    }

    fn get_run(&self, id: RunId) -> StoreResult<Option<Run>> {
        self.read("reading a run", |connection| {
            let mut run = reads::get_run(connection, id)?;
            if let Some(run) = run.as_mut() {
                outputs::attach_outputs(connection, run)?;
            }
            Ok(run)
        })
    }

    fn run_plan(&self, id: RunId) -> StoreResult<Option<String>> {
        self.read("reading a run plan", |connection| {
            reads::run_plan(connection, id)
        })
    }

    fn unfinished_runs(&self) -> StoreResult<Vec<Run>> {
        self.read("listing unfinished runs", reads::unfinished_runs)
    }

    fn set_run_status(&self, id: RunId, status: Status, reason: Option<&str>) -> StoreResult<()> {
        let reason = reason.map(str::to_string);
        self.writer
            .write("setting a run status", move |connection| {
                writes::set_run_status(
                    connection,
                    id,
                    status,
                    reason.as_deref(),
                    chrono::Utc::now(),
                )
            })
    }

    fn set_job_status(
        &self,
        id: RunId,
        job: &str,
        status: Status,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        let job = job.to_string();
        let reason = reason.map(str::to_string);
        self.writer
            .write("setting a job status", move |connection| {
                writes::set_job_status(
                    connection,
                    id,
                    &job,
                    status,
                    reason.as_deref(),
                    chrono::Utc::now(),
                )
            })
    }

    fn upsert_step(&self, id: RunId, job: &str, step: &StepRecord) -> StoreResult<()> {
        let job = job.to_string();
        let step = step.clone();
        self.writer.write("recording a step", move |connection| {
            writes::upsert_step(connection, id, &job, &step)
        })
    }

    fn append_log(&self, id: RunId, job: &str, text: &str) -> StoreResult<()> {
        let job = job.to_string();
        let text = text.to_string();
        self.writer
            .write("appending to a job log", move |connection| {
                writes::append_log(connection, id, &job, &text)
            })
    }

    fn set_job_outputs(
        &self,
        id: RunId,
        job: &str,
        values: &std::collections::BTreeMap<String, String>,
    ) -> StoreResult<()> {
        let job = job.to_string();
        let values = values.clone();
        self.writer
            .write("recording job outputs", move |connection| {
                outputs::set_job_outputs(connection, id, &job, &values)
            })
    }

    fn job_outputs(
        &self,
        id: RunId,
        job: &str,
    ) -> StoreResult<Option<std::collections::BTreeMap<String, String>>> {
        self.read("reading job outputs", |connection| {
            outputs::job_outputs(connection, id, job)
        })
    }

    fn job_log(&self, id: RunId, job: &str) -> StoreResult<Option<String>> {
        self.read("reading a job log", |connection| {
            reads::job_log(connection, id, job)
        })
    }

    fn stats(&self) -> StoreResult<StoreStats> {
        self.read("counting runs and deliveries", reads::stats)
    }

    fn schema_versions(&self) -> StoreResult<(i64, i64)> {
        self.read("reading the schema version", |connection| {
            let found: i64 =
                connection.query_row("SELECT version FROM schema_version", [], |row| row.get(0))?;
            Ok((found, super::migrations::CURRENT_VERSION))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                    .writer
                    .write("holding the transaction open", move |connection| {
                        connection.execute("DELETE FROM deliveries", [])?;
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
