//! The durable store: webhook deliveries, runs, jobs, steps and logs, Terraform plans and locks,
//! the images builds made, personal API tokens, behind the narrow `Store` trait; releases,
//! deployments and their history behind `DeployStore`. This is the only module with SQL; it
//! maps rows to and from `crate::model` types and knows nothing of HTTP, git, planning or
//! scheduling. The trait speaks only model types so that another database (PostgreSQL, for
//! several replicas) can implement it later; methods are synchronous and async callers wrap them
//! in `tokio::task::spawn_blocking`.

mod commands;
mod copy;
mod delivery_retries;
mod deploy;
mod deploy_records;
mod drift;
mod error;
mod images;
mod migrations;
mod model_history;
mod outbox;
mod outputs;
mod postgres;
mod reads;
mod replicas;
mod rows;
mod sql;
mod sql_store;
mod sqlite;
mod sqlite_session;
mod terraform;
mod terraform_locks;
mod tokens;
mod ui;
mod writer;
mod writes;

pub use commands::{CommandRecord, CommandRecords, CommandState, PendingApproval, QueueHead};
pub use copy::{CopiedTable, CopyError, copy_sqlite_to_postgres};
pub use deploy_records::{
    AuditEntry, DeployRequest, DeployStore, Deployment, DeploymentAction, DeploymentStatus,
    EnvironmentState, NewAuditEntry, NewDeployment, RequestAction, StepPhase, StepState,
};
pub use drift::{CheckOutcome, DriftCheck, DriftRecord, DriftStore, Finding};
pub use error::{StoreError, StoreResult};
pub use images::{ImageRecord, ImageRecords, NewImageRecord};
pub use model_history::{AliasMove, AliasMoveFilter, ModelHistory, NewAliasMove, last_alias_move};
pub use outbox::{CheckRunRecord, MemoryOutbox, Outbox, OutboxEntry};
/// Where PostgreSQL's programs are, for tests and benchmarks that start a throwaway cluster.
pub use postgres::binaries as postgres_binaries;
pub use postgres::{Postgres, PostgresStore, ThrowawayCluster};
pub use replicas::{Coordination, Leadership, ReplicaRecord};
pub use sql_store::{Backend, SqlStore};
pub use sqlite::{Sqlite, SqliteStore};
pub use terraform::{
    LockHolder, LockListing, LockOutcome, LockRecord, LockRequest, NewTerraformPlan, PlanInsert,
    QueuedHolder, TerraformPlanRecord, TerraformStore, TerraformTarget,
};
pub use tokens::{ApiTokenRecord, ApiTokens, NewApiToken, TokenInsert};
pub use ui::{CommitSummary, LogChunk, NewUiSession, UiRecords, UiSession};
pub use writer::WriteCounts;

use crate::model::{Delivery, EventKind, Run, RunId, Status, StepRecord};

/// What `insert_delivery` did with a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored now, durably.
    New,
    /// A delivery with the same id was already stored; nothing was written.
    Duplicate,
}

/// A delivery not yet planned, with the planning attempts that failed so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingDelivery {
    pub delivery: Delivery,
    pub failed_attempts: u32,
}

/// One job of a run about to be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    pub name: String,
    pub needs: Vec<String>,
    pub status: Status,
    pub reason: Option<String>,
}

/// One run about to be created, with its jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRun {
    pub repository: String,
    pub commit: String,
    pub git_ref: String,
    pub event: EventKind,
    pub pipeline: String,
    pub status: Status,
    pub reason: Option<String>,
    pub concurrency_group: Option<String>,
    /// Opaque JSON the scheduler needs to resume the run after a restart.
    pub plan: String,
    pub jobs: Vec<NewJob>,
}

/// Which runs `list_runs` returns. Every field left `None` means "no restriction".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub repository: Option<String>,
    pub commit: Option<String>,
    /// A full ref (`refs/heads/main`).
    pub git_ref: Option<String>,
    pub event: Option<EventKind>,
    pub status: Option<Status>,
    /// Only runs with a smaller id: the next page of a newest-first list.
    pub before: Option<RunId>,
    pub limit: Option<usize>,
}

/// Counts for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub runs_by_status: Vec<(Status, u64)>,
    pub jobs_by_status: Vec<(Status, u64)>,
    /// `(event, outcome kind, count)`; the outcome kind is `pending`, `planned`, `ignored` or `error`.
    pub deliveries_by_event: Vec<(String, String, u64)>,
    pub pending_deliveries: u64,
}

/// The whole store, every face of it at once: what `open` returns and what the engine and the
/// command line hand around. Each part of sluice asks for the one face it needs.
pub trait Database: Store + DeployStore + ModelHistory + Outbox + Coordination {}

impl<T: Store + DeployStore + ModelHistory + Outbox + Coordination> Database for T {}

/// The environment variable naming the PostgreSQL database every `sluice` command uses instead
/// of the data directory's SQLite file.
pub const DATABASE_URL_VARIABLE: &str = "SLUICE_DATABASE_URL";

/// Opens (creating and migrating if needed) the store: the PostgreSQL database
/// `SLUICE_DATABASE_URL` names when it is set, else SQLite's file at `path`.
pub fn open(path: &std::path::Path) -> StoreResult<std::sync::Arc<dyn Database>> {
    match std::env::var(DATABASE_URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Ok(std::sync::Arc::new(PostgresStore::open(&url)?)),
        _ => Ok(std::sync::Arc::new(SqliteStore::open(path)?)),
    }
}

/// Whether `SLUICE_DATABASE_URL` names a PostgreSQL database for every command to use.
pub fn database_url_is_set() -> bool {
    std::env::var(DATABASE_URL_VARIABLE).is_ok_and(|url| !url.trim().is_empty())
}

/// Opens the store `location` names: `postgres://...` (or `postgresql://...`) a PostgreSQL
/// database; `sqlite:PATH` or a plain path SQLite's file, relative to `data_dir`.
pub fn open_location(
    location: &str,
    data_dir: &std::path::Path,
) -> StoreResult<std::sync::Arc<dyn Database>> {
    if is_postgres_url(location) {
        return Ok(std::sync::Arc::new(PostgresStore::open(location)?));
    }
    let path = location.strip_prefix("sqlite:").unwrap_or(location);
    Ok(std::sync::Arc::new(SqliteStore::open(
        &data_dir.join(path),
    )?))
}

/// A database URL without its password, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    postgres::redacted(url)
}

/// Whether `location` names a PostgreSQL database.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Everything sluice keeps between restarts. Implementations are shared between threads and
/// every method may block on IO.
pub trait Store:
    TerraformStore + ImageRecords + CommandRecords + ApiTokens + UiRecords + Send + Sync
{
    /// Durable when it returns. Same delivery id again -> `Duplicate`, nothing written.
    fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<Inserted>;

    /// Accepted deliveries not yet planned, oldest first.
    fn pending_deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>>;

    /// One stored delivery by its id, planned or not.
    fn delivery(&self, id: &str) -> StoreResult<Option<Delivery>>;

    /// Durable when it returns: planning the pending delivery failed once more with `error`; it
    /// is not due again before `next_attempt_at`. Returns the failed attempts so far. A delivery
    /// planned meanwhile is left as it is.
    fn defer_delivery(
        &self,
        delivery_id: &str,
        error: &str,
        next_attempt_at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<u32>;

    /// When the earliest deferred delivery is due; `None` when no delivery waits for a retry.
    fn next_delivery_retry(&self) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>>;

    /// In ONE transaction: mark the delivery planned with an outcome text ("2 runs", "ignored:
    /// event `star` is not handled", "error: ...") and insert its runs (with their jobs). Returns
    /// the run ids. Calling it again for a planned delivery creates nothing and returns the ids
    /// of the runs created the first time.
    fn complete_delivery(
        &self,
        delivery_id: &str,
        outcome: &str,
        runs: &[NewRun],
    ) -> StoreResult<Vec<RunId>>;

    /// Runs started without a delivery (the `sluice run` command, polling).
    fn insert_runs(&self, runs: &[NewRun]) -> StoreResult<Vec<RunId>>;

    /// Newest first (id descending); jobs come without their steps.
    fn list_runs(&self, filter: &RunFilter) -> StoreResult<Vec<Run>>;

    /// One run with its jobs and their steps.
    fn get_run(&self, id: RunId) -> StoreResult<Option<Run>>;

    /// The plan JSON stored with the run.
    fn run_plan(&self, id: RunId) -> StoreResult<Option<String>>;

    /// Runs queued or running, oldest first; jobs come without their steps.
    fn unfinished_runs(&self) -> StoreResult<Vec<Run>>;

    /// Sets the status and the reason (`None` clears it); sets `finished_at` when the status is
    /// terminal and clears it otherwise.
    fn set_run_status(&self, id: RunId, status: Status, reason: Option<&str>) -> StoreResult<()>;

    /// Sets the status and the reason (`None` clears it); sets `started_at` the first time the
    /// job is running, and `finished_at` when the status is terminal.
    fn set_job_status(
        &self,
        id: RunId,
        job: &str,
        status: Status,
        reason: Option<&str>,
    ) -> StoreResult<()>;

    /// Inserts the step, or replaces the step with the same index.
    fn upsert_step(&self, id: RunId, job: &str, step: &StepRecord) -> StoreResult<()>;

    /// Adds text at the end of the job's log.
    fn append_log(&self, id: RunId, job: &str, text: &str) -> StoreResult<()>;

    /// Records values for later jobs: each name is set to its value, replacing an earlier value
    /// of the same name; other names the job recorded before stay.
    fn set_job_outputs(
        &self,
        id: RunId,
        job: &str,
        outputs: &std::collections::BTreeMap<String, String>,
    ) -> StoreResult<()>;

    /// The job's recorded outputs; `None` if there is no such job, empty if it recorded none.
    fn job_outputs(
        &self,
        id: RunId,
        job: &str,
    ) -> StoreResult<Option<std::collections::BTreeMap<String, String>>>;

    /// The whole log of the job; `None` if there is no such job, `Some("")` if nothing was logged.
    fn job_log(&self, id: RunId, job: &str) -> StoreResult<Option<String>>;

    /// For `/metrics`: runs and jobs by status, deliveries by (event, outcome kind), pending
    /// deliveries.
    fn stats(&self) -> StoreResult<StoreStats>;

    /// For `/readyz`: the schema version the database holds (read now, so a database that does
    /// not answer is an error) and the one this build writes.
    fn schema_versions(&self) -> StoreResult<(i64, i64)>;
}
