//! `PostgresStore`: the store on PostgreSQL, for several `sluice serve` replicas on one
//! database. Each read runs in a read-only snapshot, each write in its own `SERIALIZABLE`
//! transaction, retried when PostgreSQL reports that it lost a race with another replica
//! (SQLSTATE 40001 or 40P01), so every method keeps the meaning it has on SQLite's single writer.
//! Connections are pooled; a small runtime of the store's own drives them, so store methods stay
//! synchronous like SQLite's.

mod cluster;
mod dialect;
mod replicas;
mod session;

pub use cluster::{ThrowawayCluster, binaries};

pub(crate) use session::PgSession;

use super::error::{Failure, FailureResult, StoreError, StoreResult};
use super::migrations;
use super::sql::{Connection, SqlError, SqlResult};
use super::sql_store::{Backend, SqlStore};
use std::sync::Mutex;

/// The most pooled connections a replica opens; more work at once waits for one to be free. The
/// leader's lock, `NOTIFY` and each `LISTEN` have a connection of their own besides.
const MAX_CONNECTIONS: usize = 16;

/// How often a write that lost a race is tried again before its caller hears of it.
const WRITE_ATTEMPTS: u32 = 20;

/// The key of the session advisory lock held while the schema is brought up to date.
const MIGRATION_LOCK: i64 = 0x736c_7569_6365_0001;

/// Connections open and those idle now.
#[derive(Default)]
struct Pool {
    open: usize,
    idle: Vec<PgSession>,
}

/// The PostgreSQL database behind `PostgresStore`.
pub struct Postgres {
    url: String,
    database: String,
    runtime: Option<tokio::runtime::Runtime>,
    pool: Mutex<Pool>,
    returned: std::sync::Condvar,
    /// The connection `NOTIFY` goes through, opened on first use.
    publisher: Mutex<Option<PgSession>>,
    /// The connection this replica renews its lease on, opened on first use.
    leases: Mutex<Option<PgSession>>,
}

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<Postgres>;

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST:PORT/NAME`) and brings
    /// its schema up to date; replicas starting at once take turns.
    pub fn open(url: &str) -> StoreResult<PostgresStore> {
        let database = redacted(url);
        let open_error = |message: String| StoreError::Open {
            database: database.clone(),
            message,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-postgres")
            .enable_all()
            .build()
            .map_err(|error| open_error(format!("cannot start its connection thread: {error}")))?;
        let backend = Postgres {
            url: url.to_string(),
            database: database.clone(),
            runtime: Some(runtime),
            pool: Mutex::new(Pool::default()),
            returned: std::sync::Condvar::new(),
            publisher: Mutex::new(None),
            leases: Mutex::new(None),
        };
        let session = backend
            .take()
            .map_err(|error| open_error(error.to_string()))?;
        let connection: &Connection = &session;
        connection
            .execute("SELECT pg_advisory_lock(?1)", [MIGRATION_LOCK])
            .map_err(|error| open_error(error.to_string()))?;
        let migrated = migrations::migrate(connection, &database);
        let _ = connection.execute("SELECT pg_advisory_unlock(?1)", [MIGRATION_LOCK]);
        migrated?;
        backend.give_back(session);
        Ok(SqlStore::new(backend))
    }

    /// The URL this store connects to, password included (for the replicas' own connections).
    pub fn url(&self) -> &str {
        &self.backend.url
    }
}

impl Postgres {
    /// A new connection, driven on the store's runtime.
    pub(crate) fn connect(&self) -> SqlResult<PgSession> {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the store");
        let url = self.url.clone();
        let connecting = runtime.spawn(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                // It ends when the client is dropped or the server goes away; the next use of
                // the client then fails and the session is not pooled again.
                let _ = connection.await;
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = futures_executor::block_on(connecting)
            .map_err(|error| {
                SqlError::Postgres(super::sql::PostgresError {
                    code: None,
                    message: format!("the connection task failed: {error}"),
                })
            })?
            .map_err(session::postgres_error)?;
        Ok(PgSession::new(client))
    }

    /// A pooled connection: an idle one, a new one while fewer than `MAX_CONNECTIONS` are open,
    /// else the next one given back.
    fn take(&self) -> SqlResult<PgSession> {
        let mut pool = self.lock_pool();
        loop {
            if let Some(session) = pool.idle.pop() {
                return Ok(session);
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                drop(pool);
                let connected = self.connect();
                if connected.is_err() {
                    self.lock_pool().open -= 1;
                    self.returned.notify_one();
                }
                return connected;
            }
            pool = self
                .returned
                .wait(pool)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Back to the pool; a connection the server closed is dropped and its place freed.
    fn give_back(&self, session: PgSession) {
        let mut pool = self.lock_pool();
        if session.client.is_closed() {
            pool.open -= 1;
        } else {
            pool.idle.push(session);
        }
        drop(pool);
        self.returned.notify_one();
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` between `begin` and `COMMIT` on a pooled connection; rolls back on failure.
    fn transaction<T>(
        &self,
        session: &PgSession,
        begin: &str,
        work: impl FnOnce(&Connection) -> FailureResult<T>,
    ) -> FailureResult<T> {
        let connection: &Connection = session;
        connection.execute_batch(begin)?;
        match work(connection) {
            Ok(value) => {
                connection.execute_batch("COMMIT")?;
                Ok(value)
            }
            Err(failure) => {
                // Already failing: the rollback's own error would add nothing.
                let _ = connection.execute_batch("ROLLBACK");
                Err(failure)
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.lock_pool().idle.clear();
        if let Ok(mut publisher) = self.publisher.lock() {
            publisher.take();
        }
        if let Ok(mut leases) = self.leases.lock() {
            leases.take();
        }
        if let Some(runtime) = self.runtime.take() {
            // The store may be dropped on an async worker thread, where a runtime cannot be
            // dropped in place.
            runtime.shutdown_background();
        }
    }
}

fn retryable(failure: &Failure) -> bool {
    matches!(failure, Failure::Sql(SqlError::Postgres(error)) if error.is_retryable())
}

impl Backend for Postgres {
    fn database(&self) -> &str {
        &self.database
    }

    fn read<T>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&Connection) -> FailureResult<T>,
    ) -> StoreResult<T> {
        let to_store_error = |failure: Failure| failure.into_store_error(&self.database, operation);
        let session = self.take().map_err(|error| to_store_error(error.into()))?;
        let outcome = self.transaction(
            &session,
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            work,
        );
        self.give_back(session);
        outcome.map_err(to_store_error)
    }

    fn write<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl Fn(&Connection) -> FailureResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let to_store_error = |failure: Failure| failure.into_store_error(&self.database, operation);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let session = self.take().map_err(|error| to_store_error(error.into()))?;
            let outcome = self.transaction(&session, "BEGIN ISOLATION LEVEL SERIALIZABLE", &work);
            self.give_back(session);
            match outcome {
                Err(failure) if retryable(&failure) && attempt < WRITE_ATTEMPTS => {
                    // Another replica's transaction won; a short random pause lets it finish.
                    let pause = rand::random_range(1..=5 * u64::from(attempt));
                    std::thread::sleep(std::time::Duration::from_millis(pause));
                }
                other => return other.map_err(to_store_error),
            }
        }
    }
}

/// The URL without its password, for messages and logs.
pub(crate) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
