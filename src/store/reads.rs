//! The read operations as SQL, each run on a reader connection inside one read transaction, so
//! that a run, its jobs and their steps come from the same snapshot. They know the tables and
//! nothing of connection pooling.

use super::error::{Failure, FailureResult};
use super::rows;
use super::sql::Value;
use super::sql::{Connection, OptionalExtension, Row, params};
use super::{RunFilter, StoreStats};
use crate::model::{Delivery, JobRecord, Run, RunId, Status, StepRecord};

const RUN_COLUMNS: &str = "id, repository, commit_sha, git_ref, event, pipeline, status, reason, \
                           created_at, finished_at, concurrency_group, delivery_id";

pub(crate) fn pending_deliveries(
    connection: &Connection,
    limit: usize,
) -> FailureResult<Vec<Delivery>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, event, repository, payload, received_at FROM deliveries
         WHERE planned_at IS NULL ORDER BY sequence LIMIT ?1",
    )?;
    let deliveries = statement
        .query_map([limit_value(Some(limit))], delivery_from_row)?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    Ok(deliveries)
}

/// A delivery from a row of `deliveries` selecting at least id, event, repository, payload and
/// received_at.
pub(crate) fn delivery_from_row(row: &super::sql::Row) -> super::sql::SqlResult<Delivery> {
    Ok(Delivery {
        id: row.get("id")?,
        event: row.get("event")?,
        repository: row.get("repository")?,
        payload: row.get("payload")?,
        received_at: rows::timestamp(row, "received_at")?,
    })
}

pub(crate) fn delivery(connection: &Connection, id: &str) -> FailureResult<Option<Delivery>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, event, repository, payload, received_at FROM deliveries WHERE id = ?1",
    )?;
    let mut rows = statement.query_map([id], delivery_from_row)?;
    Ok(rows.next().transpose()?)
}

pub(crate) fn list_runs(connection: &Connection, filter: &RunFilter) -> FailureResult<Vec<Run>> {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    if let Some(repository) = &filter.repository {
        conditions.push("repository = ?");
        values.push(Value::Text(repository.clone()));
    }
    if let Some(commit) = &filter.commit {
        conditions.push("commit_sha = ?");
        values.push(Value::Text(commit.clone()));
    }
    if let Some(git_ref) = &filter.git_ref {
        conditions.push("git_ref = ?");
        values.push(Value::Text(git_ref.clone()));
    }
    if let Some(event) = filter.event {
        conditions.push("event = ?");
        values.push(Value::Text(event.as_str().to_owned()));
    }
    if let Some(status) = filter.status {
        conditions.push("status = ?");
        values.push(Value::Text(status.as_str().to_owned()));
    }
    if let Some(before) = filter.before {
        conditions.push("id < ?");
        values.push(Value::Integer(before));
    }
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    values.push(Value::Integer(limit_value(filter.limit)));
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs {where_clause} ORDER BY id DESC LIMIT ?");
    let mut runs = connection
        .prepare_cached(&sql)?
        .query_map(values, run_from_row)?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    attach_jobs(connection, &mut runs, false)?;
    Ok(runs)
}

pub(crate) fn get_run(connection: &Connection, run_id: RunId) -> FailureResult<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
    let run = connection
        .prepare_cached(&sql)?
        .query_row([run_id], run_from_row)
        .optional()?;
    let mut runs: Vec<Run> = run.into_iter().collect();
    attach_jobs(connection, &mut runs, true)?;
    Ok(runs.pop())
}

pub(crate) fn run_plan(connection: &Connection, run_id: RunId) -> FailureResult<Option<String>> {
    let plan = connection
        .prepare_cached("SELECT plan FROM runs WHERE id = ?1")?
        .query_row([run_id], |row| row.get(0))
        .optional()?;
    Ok(plan)
}

pub(crate) fn unfinished_runs(connection: &Connection) -> FailureResult<Vec<Run>> {
    unfinished_runs_where(connection, "", Vec::new())
}

/// The unfinished runs `replica` holds.
pub(crate) fn unfinished_runs_of(
    connection: &Connection,
    replica: &str,
) -> FailureResult<Vec<Run>> {
    unfinished_runs_where(
        connection,
        "AND replica = ?1",
        vec![Value::Text(replica.to_string())],
    )
}

fn unfinished_runs_where(
    connection: &Connection,
    condition: &str,
    values: Vec<Value>,
) -> FailureResult<Vec<Run>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('{}', '{}') {condition} ORDER BY id",
        Status::Queued.as_str(),
        Status::Running.as_str()
    );
    let mut runs = connection
        .prepare_cached(&sql)?
        .query_map(values, run_from_row)?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    attach_jobs(connection, &mut runs, false)?;
    Ok(runs)
}

pub(crate) fn job_log(
    connection: &Connection,
    run_id: RunId,
    job: &str,
) -> FailureResult<Option<String>> {
    let job_id = match job_id(connection, run_id, job) {
        Ok(job_id) => job_id,
        Err(Failure::UnknownRun(_) | Failure::UnknownJob(..)) => return Ok(None),
        Err(failure) => return Err(failure),
    };
    let mut statement =
        connection.prepare_cached("SELECT text FROM log_chunks WHERE job_id = ?1 ORDER BY id")?;
    let chunks = statement.query([job_id])?;
    let mut log = String::new();
    for row in &chunks {
        let chunk: String = row.get(0)?;
        log.push_str(&chunk);
    }
    Ok(Some(log))
}

pub(crate) fn stats(connection: &Connection) -> FailureResult<StoreStats> {
    let runs_by_status = counts_by_status(connection, "runs")?;
    let jobs_by_status = counts_by_status(connection, "jobs")?;
    let mut statement = connection.prepare_cached(
        "SELECT event,
                CASE WHEN planned_at IS NULL THEN 'pending'
                     WHEN outcome LIKE 'ignored%' THEN 'ignored'
                     WHEN outcome LIKE 'error%' THEN 'error'
                     ELSE 'planned' END AS outcome_kind,
                count(*)
         FROM deliveries GROUP BY event, outcome_kind ORDER BY event, outcome_kind",
    )?;
    let deliveries_by_event = statement
        .query_map(params![], |row| {
            Ok((row.get(0)?, row.get(1)?, count(row, 2)?))
        })?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    let pending_deliveries = connection
        .prepare_cached("SELECT count(*) FROM deliveries WHERE planned_at IS NULL")?
        .query_row(params![], |row| count(row, 0))?;
    Ok(StoreStats {
        runs_by_status,
        jobs_by_status,
        deliveries_by_event,
        pending_deliveries,
    })
}

fn counts_by_status(connection: &Connection, table: &str) -> FailureResult<Vec<(Status, u64)>> {
    let sql = format!("SELECT status, count(*) FROM {table} GROUP BY status ORDER BY status");
    let counts = connection
        .prepare_cached(&sql)?
        .query_map(params![], |row| {
            Ok((rows::status(row, "status")?, count(row, 1)?))
        })?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    Ok(counts)
}

fn count(row: &Row, index: usize) -> super::sql::SqlResult<u64> {
    let count: i64 = row.get(index)?;
    Ok(count.max(0) as u64)
}

/// SQLite reads a negative limit as "no limit".
fn limit_value(limit: Option<usize>) -> i64 {
    limit.map_or(i64::MAX, |limit| i64::try_from(limit).unwrap_or(i64::MAX))
}

fn run_from_row(row: &Row) -> super::sql::SqlResult<Run> {
    Ok(Run {
        id: row.get("id")?,
        repository: row.get("repository")?,
        commit: row.get("commit_sha")?,
        git_ref: row.get("git_ref")?,
        event: rows::event_kind(row, "event")?,
        pipeline: row.get("pipeline")?,
        status: rows::status(row, "status")?,
        reason: row.get("reason")?,
        created_at: rows::timestamp(row, "created_at")?,
        finished_at: rows::optional_timestamp(row, "finished_at")?,
        concurrency_group: row.get("concurrency_group")?,
        delivery: row.get("delivery_id")?,
        jobs: Vec::new(),
    })
}

/// Fills each run's jobs in creation order, with their steps when `with_steps`.
fn attach_jobs(connection: &Connection, runs: &mut [Run], with_steps: bool) -> FailureResult<()> {
    let mut job_statement = connection.prepare_cached(
        "SELECT id, name, needs, status, reason, started_at, finished_at FROM jobs
         WHERE run_id = ?1 ORDER BY id",
    )?;
    let mut step_statement = connection.prepare_cached(
        "SELECT step_index, name, status, exit_code, reason, started_at, finished_at FROM steps
         WHERE job_id = ?1 ORDER BY step_index",
    )?;
    for run in runs {
        let jobs = job_statement
            .query_map([run.id], |row| {
                let job_id: i64 = row.get("id")?;
                let job = JobRecord {
                    name: row.get("name")?,
                    status: rows::status(row, "status")?,
                    reason: row.get("reason")?,
                    needs: rows::needs(row, "needs")?,
                    started_at: rows::optional_timestamp(row, "started_at")?,
                    finished_at: rows::optional_timestamp(row, "finished_at")?,
                    steps: Vec::new(),
                    outputs: Default::default(),
                };
                Ok((job_id, job))
            })?
            .collect::<super::sql::SqlResult<Vec<_>>>()?;
        for (job_id, mut job) in jobs {
            if with_steps {
                job.steps = step_statement
                    .query_map(params![job_id], step_from_row)?
                    .collect::<super::sql::SqlResult<Vec<_>>>()?;
            }
            run.jobs.push(job);
        }
    }
    Ok(())
}

fn step_from_row(row: &Row) -> super::sql::SqlResult<StepRecord> {
    let index: i64 = row.get("step_index")?;
    Ok(StepRecord {
        index: index.max(0) as usize,
        name: row.get("name")?,
        status: rows::status(row, "status")?,
        exit_code: row.get("exit_code")?,
        reason: row.get("reason")?,
        started_at: rows::optional_timestamp(row, "started_at")?,
        finished_at: rows::optional_timestamp(row, "finished_at")?,
    })
}

/// The row id of the job, or which of run and job is missing.
pub(crate) fn job_id(connection: &Connection, run_id: RunId, job: &str) -> FailureResult<i64> {
    let found: Option<i64> = connection
        .prepare_cached("SELECT id FROM jobs WHERE run_id = ?1 AND name = ?2")?
        .query_row(params![run_id, job], |row| row.get(0))
        .optional()?;
    if let Some(job_id) = found {
        return Ok(job_id);
    }
    let run_exists: bool = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)")?
        .query_row([run_id], |row| row.get(0))?;
    Err(if run_exists {
        Failure::UnknownJob(run_id, job.to_string())
    } else {
        Failure::UnknownRun(run_id)
    })
}
