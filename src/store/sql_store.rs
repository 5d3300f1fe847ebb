//! The store written once for both databases: `SqlStore<B>` implements every store trait on top
//! of a `Backend`, which runs a piece of work in a read transaction or a write transaction.
//! SQLite's backend (`sqlite.rs`) writes through one group-commit writer; PostgreSQL's
//! (`postgres/`) runs each write in its own serializable transaction and retries it when another
//! replica's transaction won a race, which is why a write is `Fn`, not `FnOnce`.

use super::error::{FailureResult, StoreResult};
use super::sql::{Connection, params};
use super::{
    Inserted, NewRun, RunFilter, Store, StoreStats, delivery_retries, outputs, reads, writes,
};
use crate::model::{Delivery, Run, RunId, Status, StepRecord};

/// How a database runs the store's work.
pub trait Backend: Send + Sync + 'static {
    /// The database's name in messages: a path, or a URL without its password.
    fn database(&self) -> &str;

    /// Runs `work` in one read-only transaction.
    fn read<T>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&Connection) -> FailureResult<T>,
    ) -> StoreResult<T>;

    /// Runs `work` in a write transaction and returns once it has committed; `work` may run
    /// more than once when the database asks for the transaction to be retried.
    fn write<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl Fn(&Connection) -> FailureResult<T> + Send + 'static,
    ) -> StoreResult<T>;
}

/// Every store trait, on either database.
pub struct SqlStore<B> {
    pub(super) backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub(super) fn new(backend: B) -> SqlStore<B> {
        SqlStore { backend }
    }
}

impl<B: Backend> Store for SqlStore<B> {
    fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<Inserted> {
        let delivery = delivery.clone();
        self.backend.write("storing a delivery", move |connection| {
            writes::insert_delivery(connection, &delivery)
        })
    }

    fn pending_deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.backend
            .read("listing pending deliveries", |connection| {
                reads::pending_deliveries(connection, limit)
            })
    }

    fn delivery(&self, id: &str) -> StoreResult<Option<Delivery>> {
        let id = id.to_owned();
        self.backend.read("reading a delivery", move |connection| {
            reads::delivery(connection, &id)
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
        self.backend
            .write("deferring a delivery", move |connection| {
                delivery_retries::defer_delivery(connection, &delivery_id, &error, next_attempt_at)
            })
    }

    fn next_delivery_retry(&self) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        self.backend.read(
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
        self.backend
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
        self.backend.write("creating runs", move |connection| {
            writes::insert_runs(connection, &runs, None, chrono::Utc::now())
        })
    }

    fn list_runs(&self, filter: &RunFilter) -> StoreResult<Vec<Run>> {
        self.backend.read("listing runs", |connection| {
            let mut runs = reads::list_runs(connection, filter)?;
            for run in &mut runs {
                outputs::attach_outputs(connection, run)?;
            }
            Ok(runs)
        })
    }

    fn get_run(&self, id: RunId) -> StoreResult<Option<Run>> {
        self.backend.read("reading a run", |connection| {
            let mut run = reads::get_run(connection, id)?;
            if let Some(run) = run.as_mut() {
                outputs::attach_outputs(connection, run)?;
            }
            Ok(run)
        })
    }

    fn run_plan(&self, id: RunId) -> StoreResult<Option<String>> {
        self.backend.read("reading a run plan", |connection| {
            reads::run_plan(connection, id)
        })
    }

    fn unfinished_runs(&self) -> StoreResult<Vec<Run>> {
        self.backend
            .read("listing unfinished runs", reads::unfinished_runs)
    }

    fn set_run_status(&self, id: RunId, status: Status, reason: Option<&str>) -> StoreResult<()> {
        let reason = reason.map(str::to_string);
        self.backend
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
        self.backend
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
        self.backend.write("recording a step", move |connection| {
            writes::upsert_step(connection, id, &job, &step)
        })
    }

    fn append_log(&self, id: RunId, job: &str, text: &str) -> StoreResult<()> {
        let job = job.to_string();
        let text = text.to_string();
        self.backend
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
        self.backend
            .write("recording job outputs", move |connection| {
                outputs::set_job_outputs(connection, id, &job, &values)
            })
    }

    fn job_outputs(
        &self,
        id: RunId,
        job: &str,
    ) -> StoreResult<Option<std::collections::BTreeMap<String, String>>> {
        self.backend.read("reading job outputs", |connection| {
            outputs::job_outputs(connection, id, job)
        })
    }

    fn job_log(&self, id: RunId, job: &str) -> StoreResult<Option<String>> {
        self.backend.read("reading a job log", |connection| {
            reads::job_log(connection, id, job)
        })
    }

    fn stats(&self) -> StoreResult<StoreStats> {
        self.backend
            .read("counting runs and deliveries", reads::stats)
    }

    fn schema_versions(&self) -> StoreResult<(i64, i64)> {
        self.backend
            .read("reading the schema version", |connection| {
                let found: i64 = connection.query_row(
                    "SELECT version FROM schema_version",
                    params![],
                    |row| row.get(0),
                )?;
                Ok((found, super::migrations::CURRENT_VERSION))
            })
    }
}
