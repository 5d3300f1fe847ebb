//! Group commit: one thread owns the only writing connection and applies every write request in
//! arrival order. Requests that queue up while a transaction commits are applied together in the
//! next transaction, so one fsync makes a whole batch durable; each caller gets its answer only
//! after the transaction holding its write has committed. Each request runs inside its own
//! savepoint, so one failing request is rolled back alone and the rest of its batch commits.
//! This file knows nothing of the tables: requests are closures handed in by the store.

use super::error::{Failure, FailureResult, StoreError, StoreResult};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The most requests one transaction takes, so that a flood of writes still commits (and
/// answers its callers) regularly.
const MAX_BATCH: usize = 512;

/// How much the writer has committed since the store was opened: `writes / batches` is the
/// average number of writes that shared one transaction (and one fsync).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Transactions committed.
    pub batches: u64,
    /// Write requests committed (failed requests are not counted).
    pub writes: u64,
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    batches: AtomicU64,
    writes: AtomicU64,
}

/// One queued write, typed on the caller's side and erased here.
trait PendingWrite: Send {
    /// Runs the write inside the open transaction; returns whether it succeeded.
    fn perform(&mut self, connection: &Connection) -> bool;
    /// Answers the caller once the fate of the transaction is known.
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct TypedWrite<T, F> {
    work: Option<F>,
    outcome: Option<FailureResult<T>>,
    reply: mpsc::SyncSender<StoreResult<T>>,
    operation: &'static str,
    database: Arc<str>,
}

impl<T, F> PendingWrite for TypedWrite<T, F>
where
    T: Send,
    F: FnOnce(&super::sql::Connection) -> FailureResult<T> + Send,
{
    fn perform(&mut self, connection: &Connection) -> bool {
        let outcome = match self.work.take() {
            Some(work) => work(connection),
            None => return false,
        };
        let succeeded = outcome.is_ok();
        self.outcome = Some(outcome);
        succeeded
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let answer = match (commit, self.outcome) {
            (Err(commit_error), _) => Err(commit_error.clone()),
            (Ok(()), Some(outcome)) => {
                outcome.map_err(|failure| failure.into_store_error(&self.database, self.operation))
            }
            (Ok(()), None) => Err(StoreError::WriterStopped {
                database: self.database.to_string(),
            }),
        };
        // The caller may have gone away; nothing to do about it then.
        let _ = self.reply.send(answer);
    }
}

/// The handle callers write through. Dropping it lets the thread finish the queued requests
/// and waits for it.
pub(crate) struct Writer {
    database: Arc<str>,
    sender: Option<mpsc::Sender<Box<dyn PendingWrite>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread on a connection already configured and migrated.
    pub(crate) fn start(connection: Connection, database: &str) -> StoreResult<Writer> {
        let database: Arc<str> = Arc::from(database);
        let counters = Arc::new(Counters::default());
        let (sender, receiver) = mpsc::channel::<Box<dyn PendingWrite>>();
        let thread_database = database.clone();
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-store-writer".to_string())
            .spawn(move || run_writer(connection, receiver, &thread_counters, &thread_database))
            .map_err(|error| StoreError::Open {
                database: database.to_string(),
                message: format!("cannot start the writer thread: {error}"),
            })?;
        Ok(Writer {
            database,
            sender: Some(sender),
            thread: Some(thread),
            counters,
        })
    }

    /// Runs `work` in the writer's transaction and returns its result once that transaction
    /// has committed. `operation` names the work in error messages.
    pub(crate) fn write<T, F>(&self, operation: &'static str, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&super::sql::Connection) -> FailureResult<T> + Send + 'static,
    {
        let stopped = || StoreError::WriterStopped {
            database: self.database.to_string(),
        };
        let (reply_sender, reply_receiver) = mpsc::sync_channel(1);
        let request = Box::new(TypedWrite {
            work: Some(work),
            outcome: None,
            reply: reply_sender,
            operation,
            database: self.database.clone(),
        });
        let sender = self.sender.as_ref().ok_or_else(stopped)?;
        self.counters.submitted.fetch_add(1, Ordering::SeqCst);
        sender.send(request).map_err(|_| stopped())?;
        reply_receiver.recv().map_err(|_| stopped())?
    }

    pub(crate) fn counts(&self) -> WriteCounts {
        WriteCounts {
            batches: self.counters.batches.load(Ordering::SeqCst),
            writes: self.counters.writes.load(Ordering::SeqCst),
        }
    }

    /// Requests handed to the writer so far, committed or not.
    #[cfg(test)]
    pub(crate) fn submitted(&self) -> u64 {
        self.counters.submitted.load(Ordering::SeqCst)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_writer(
    connection: Connection,
    receiver: mpsc::Receiver<Box<dyn PendingWrite>>,
    counters: &Counters,
    database: &str,
) {
    let database_error = |operation: &'static str, error: rusqlite::Error| {
        Failure::from(error).into_store_error(database, operation)
    };
    while let Ok(first_request) = receiver.recv() {
        if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
            first_request.finish(Err(&database_error("starting a write transaction", error)));
            continue;
        }
        let mut performed: Vec<Box<dyn PendingWrite>> = Vec::new();
        let mut succeeded_count: u64 = 0;
        let mut batch_result: Result<(), StoreError> = Ok(());
        let mut next_request = Some(first_request);
        while let Some(mut request) = next_request.take() {
            match perform_in_savepoint(&connection, request.as_mut()) {
                Ok(succeeded) => succeeded_count += u64::from(succeeded),
                Err(error) => {
                    batch_result = Err(database_error("a savepoint of a write", error));
                }
            }
            performed.push(request);
            if batch_result.is_err() || performed.len() >= MAX_BATCH {
                break;
            }
            next_request = receiver.try_recv().ok();
        }
        if batch_result.is_ok() {
            batch_result = connection
                .execute_batch("COMMIT")
                .map_err(|error| database_error("committing a write transaction", error));
        }
        match &batch_result {
            Ok(()) => {
                counters.batches.fetch_add(1, Ordering::SeqCst);
                counters.writes.fetch_add(succeeded_count, Ordering::SeqCst);
            }
            Err(_) => {
                if !connection.is_autocommit() {
                    // Already failing: the rollback's own error would add nothing.
                    let _ = connection.execute_batch("ROLLBACK");
                }
            }
        }
        for request in performed {
            request.finish(batch_result.as_ref().map(|_| ()));
        }
    }
}

/// Runs one request between `SAVEPOINT` and `RELEASE`, rolling back to the savepoint when the
/// request fails. Returns whether the request succeeded; an error means the savepoint itself
/// failed and the whole transaction must be abandoned.
fn perform_in_savepoint(
    connection: &Connection,
    request: &mut dyn PendingWrite,
) -> rusqlite::Result<bool> {
    connection
        .prepare_cached("SAVEPOINT request")?
        .execute([])?;
    let succeeded = request.perform(connection);
    if !succeeded {
        connection
            .prepare_cached("ROLLBACK TO request")?
            .execute([])?;
    }
    connection.prepare_cached("RELEASE request")?.execute([])?;
    Ok(succeeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_writer(directory: &tempfile::TempDir) -> Writer {
        let path = directory.path().join("writer.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
                 CREATE TABLE numbers (number INTEGER NOT NULL);",
            )
            .unwrap();
        Writer::start(connection, &path.display().to_string()).unwrap()
    }

    fn insert_number(writer: &Writer, number: i64) -> StoreResult<()> {
        writer.write("inserting a number", move |connection| {
            connection.execute("INSERT INTO numbers (number) VALUES (?1)", [number])?;
            Ok(())
        })
    }

    fn wait_until_submitted(writer: &Writer, expected: u64) {
        while writer.submitted() < expected {
            std::thread::yield_now();
        }
    }

    /// A request that holds the transaction open until `release` is sent, so that the test
    /// decides which requests queue up behind it.
    fn blocking_request(writer: &Writer, release: mpsc::Receiver<()>) -> StoreResult<()> {
        writer.write("waiting for the test", move |_connection| {
            let _ = release.recv();
            Ok(())
        })
    }

    #[test]
    fn writes_queued_behind_an_open_transaction_commit_together_in_one_batch() {
        let directory = tempfile::tempdir().unwrap();
        let writer = open_writer(&directory);
        let (release_sender, release_receiver) = mpsc::channel();
        std::thread::scope(|scope| {
            let blocker = scope.spawn(|| blocking_request(&writer, release_receiver));
            wait_until_submitted(&writer, 1);
            let inserters: Vec<_> = (0..10)
                .map(|number| {
                    let writer = &writer;
                    scope.spawn(move || insert_number(writer, number))
                })
                .collect();
            wait_until_submitted(&writer, 11);
            release_sender.send(()).unwrap();
            blocker.join().unwrap().unwrap();
            for inserter in inserters {
                inserter.join().unwrap().unwrap();
            }
        });
        assert_eq!(
            writer.counts(),
            WriteCounts {
                batches: 1,
                writes: 11
            }
        );
    }

    #[test]
    fn a_failing_write_is_rolled_back_alone_and_its_batch_still_commits() {
        let directory = tempfile::tempdir().unwrap();
        let writer = open_writer(&directory);
        let (release_sender, release_receiver) = mpsc::channel();
        let failing_result = std::thread::scope(|scope| {
            let blocker = scope.spawn(|| blocking_request(&writer, release_receiver));
            wait_until_submitted(&writer, 1);
            let first = scope.spawn(|| insert_number(&writer, 1));
            wait_until_submitted(&writer, 2);
            let failing = scope.spawn(|| {
                writer.write("inserting twice", |connection| {
                    connection.execute("INSERT INTO numbers (number) VALUES (666)", [0_i64; 0])?;
                    connection.execute("INSERT INTO no_such_table VALUES (1)", [0_i64; 0])?;
                    Ok(())
                })
            });
            wait_until_submitted(&writer, 3);
            let last = scope.spawn(|| insert_number(&writer, 3));
            wait_until_submitted(&writer, 4);
            release_sender.send(()).unwrap();
            blocker.join().unwrap().unwrap();
            first.join().unwrap().unwrap();
            last.join().unwrap().unwrap();
            failing.join().unwrap()
        });
        let error = failing_result.unwrap_err();
        assert!(
            error.to_string().contains("inserting twice failed"),
            "{error}"
        );
        let numbers: Vec<i64> = writer
            .write("reading numbers", |connection| {
                let mut statement =
                    connection.prepare("SELECT number FROM numbers ORDER BY number")?;
                let numbers = statement
                    .query_map([0_i64; 0], |row| row.get(0))?
                    .collect::<super::super::sql::SqlResult<Vec<i64>>>()?;
                Ok(numbers)
            })
            .unwrap();
        assert_eq!(numbers, vec![1, 3]);
        assert_eq!(writer.counts().batches, 2);
    }
}
