//! The write operations as SQL, each run by the writer thread inside its transaction (see
//! `writer.rs`). They know the tables and nothing of threads, batching or durability.

use super::error::{Failure, FailureResult};
use super::reads::job_id;
use super::rows::{needs_text, timestamp_text};
use super::sql::{Connection, OptionalExtension, params};
use super::{Inserted, NewRun};
use crate::model::{Delivery, RunId, Status, StepRecord};
use chrono::{DateTime, Utc};

pub(crate) fn insert_delivery(
    connection: &Connection,
    delivery: &Delivery,
) -> FailureResult<Inserted> {
    let inserted_rows = connection
        .prepare_cached(
            "INSERT INTO deliveries (id, event, repository, payload, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            delivery.id,
            delivery.event,
            delivery.repository,
            delivery.payload,
            timestamp_text(delivery.received_at),
        ])?;
    Ok(if inserted_rows == 0 {
        Inserted::Duplicate
    } else {
        Inserted::New
    })
}

/// Marks the delivery planned and creates its runs, unless it was planned before: then the runs
/// created that first time are returned and nothing is written.
pub(crate) fn complete_delivery(
    connection: &Connection,
    delivery_id: &str,
    outcome: &str,
    runs: &[NewRun],
    now: DateTime<Utc>,
) -> FailureResult<Vec<RunId>> {
    let planned_at: Option<Option<String>> = connection
        .prepare_cached("SELECT planned_at FROM deliveries WHERE id = ?1")?
        .query_row([delivery_id], |row| row.get(0))
        .optional()?;
    match planned_at {
        None => Err(Failure::UnknownDelivery(delivery_id.to_string())),
        Some(Some(_)) => {
            let mut statement = connection
                .prepare_cached("SELECT id FROM runs WHERE delivery_id = ?1 ORDER BY id")?;
            let run_ids = statement
                .query_map([delivery_id], |row| row.get(0))?
                .collect::<super::sql::SqlResult<Vec<RunId>>>()?;
            Ok(run_ids)
        }
        Some(None) => {
            connection
                .prepare_cached(
                    "UPDATE deliveries SET planned_at = ?1, outcome = ?2 WHERE id = ?3",
                )?
                .execute(params![timestamp_text(now), outcome, delivery_id])?;
            insert_runs(connection, runs, Some(delivery_id), now)
        }
    }
}

pub(crate) fn insert_runs(
    connection: &Connection,
    runs: &[NewRun],
    delivery_id: Option<&str>,
    now: DateTime<Utc>,
) -> FailureResult<Vec<RunId>> {
    let now_text = timestamp_text(now);
    let finished_at = |status: Status| status.is_terminal().then(|| now_text.clone());
    let started_at = |status: Status| (status == Status::Running).then(|| now_text.clone());
    let mut run_statement = connection.prepare_cached(
        "INSERT INTO runs (repository, commit_sha, git_ref, event, pipeline, status, reason,
                           concurrency_group, delivery_id, plan, created_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
    )?;
    let mut job_statement = connection.prepare_cached(
        "INSERT INTO jobs (run_id, name, needs, status, reason, started_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut run_ids = Vec::with_capacity(runs.len());
    for run in runs {
        let run_id: i64 = run_statement.query_row(
            params![
                run.repository,
                run.commit,
                run.git_ref,
                run.event.as_str(),
                run.pipeline,
                run.status.as_str(),
                run.reason,
                run.concurrency_group,
                delivery_id,
                run.plan,
                now_text,
                finished_at(run.status),
            ],
            |row| row.get(0),
        )?;
        for job in &run.jobs {
            job_statement.execute(params![
                run_id,
                job.name,
                needs_text(&job.needs),
                job.status.as_str(),
                job.reason,
                started_at(job.status),
                finished_at(job.status),
            ])?;
        }
        run_ids.push(run_id);
    }
    Ok(run_ids)
}

pub(crate) fn set_run_status(
    connection: &Connection,
    run_id: RunId,
    status: Status,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> FailureResult<()> {
    let finished_at = status.is_terminal().then(|| timestamp_text(now));
    let changed_rows = connection
        .prepare_cached("UPDATE runs SET status = ?1, reason = ?2, finished_at = ?3 WHERE id = ?4")?
        .execute(params![status.as_str(), reason, finished_at, run_id])?;
    if changed_rows == 0 {
        return Err(Failure::UnknownRun(run_id));
    }
    Ok(())
}

pub(crate) fn set_job_status(
    connection: &Connection,
    run_id: RunId,
    job: &str,
    status: Status,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> FailureResult<()> {
    let job_id = job_id(connection, run_id, job)?;
    let now_text = timestamp_text(now);
    let started_at = (status == Status::Running).then(|| now_text.clone());
    let finished_at = status.is_terminal().then_some(now_text);
    connection
        .prepare_cached(
            "UPDATE jobs SET status = ?1, reason = ?2,
                             started_at = coalesce(started_at, ?3), finished_at = ?4
             WHERE id = ?5",
        )?
        .execute(params![
            status.as_str(),
            reason,
            started_at,
            finished_at,
            job_id
        ])?;
    Ok(())
}

pub(crate) fn upsert_step(
    connection: &Connection,
    run_id: RunId,
    job: &str,
    step: &StepRecord,
) -> FailureResult<()> {
    let job_id = job_id(connection, run_id, job)?;
    // The store's clock times a step: it starts when first recorded as anything but queued, and
    // ends when recorded finished.
    let now = timestamp_text(Utc::now());
    let started_at = (step.status != Status::Queued).then(|| now.clone());
    let finished_at = step.status.is_terminal().then_some(now);
    connection
        .prepare_cached(
            "INSERT INTO steps (job_id, step_index, name, status, exit_code, reason,
                                started_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (job_id, step_index) DO UPDATE SET
                 name = excluded.name, status = excluded.status,
                 exit_code = excluded.exit_code, reason = excluded.reason,
                 started_at = COALESCE(steps.started_at, excluded.started_at),
                 finished_at = excluded.finished_at",
        )?
        .execute(params![
            job_id,
            step.index as i64,
            step.name,
            step.status.as_str(),
            step.exit_code,
            step.reason,
            started_at,
            finished_at,
        ])?;
    Ok(())
}

pub(crate) fn append_log(
    connection: &Connection,
    run_id: RunId,
    job: &str,
    text: &str,
) -> FailureResult<()> {
    let job_id = job_id(connection, run_id, job)?;
    if !text.is_empty() {
        connection
            .prepare_cached("INSERT INTO log_chunks (job_id, text) VALUES (?1, ?2)")?
            .execute(params![job_id, text])?;
    }
    Ok(())
}
