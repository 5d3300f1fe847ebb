//! Job outputs as SQL: named values a job's steps record for later jobs (a build's `digest` and
//! `image`), in the `job_outputs` table. Writes run inside the writer's transaction; reads on a
//! reader connection. Knows nothing of what the values mean.

use super::error::{Failure, FailureResult};
use super::reads::job_id;
use super::sql::{Connection, params};
use crate::model::{Run, RunId};
use std::collections::BTreeMap;

/// Sets each name to its value; names not given keep their earlier value.
pub(crate) fn set_job_outputs(
    connection: &Connection,
    run_id: RunId,
    job: &str,
    values: &BTreeMap<String, String>,
) -> FailureResult<()> {
    let job_id = job_id(connection, run_id, job)?;
    let mut statement = connection.prepare_cached(
        "INSERT INTO job_outputs (job_id, name, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (job_id, name) DO UPDATE SET value = excluded.value",
    )?;
    for (name, value) in values {
        statement.execute(params![job_id, name, value])?;
    }
    Ok(())
}

/// `None` when there is no such run or job.
pub(crate) fn job_outputs(
    connection: &Connection,
    run_id: RunId,
    job: &str,
) -> FailureResult<Option<BTreeMap<String, String>>> {
    let job_id = match job_id(connection, run_id, job) {
        Ok(job_id) => job_id,
        Err(Failure::UnknownRun(_) | Failure::UnknownJob(..)) => return Ok(None),
        Err(failure) => return Err(failure),
    };
    outputs_of(connection, job_id).map(Some)
}

/// Fills `outputs` of every job of the run, in one query.
pub(crate) fn attach_outputs(connection: &Connection, run: &mut Run) -> FailureResult<()> {
    let mut statement = connection.prepare_cached(
        "SELECT jobs.name, job_outputs.name, job_outputs.value
         FROM job_outputs JOIN jobs ON jobs.id = job_outputs.job_id
         WHERE jobs.run_id = ?1",
    )?;
    let rows = statement
        .query_map([run.id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    for (job_name, name, value) in rows {
        if let Some(job) = run.jobs.iter_mut().find(|job| job.name == job_name) {
            job.outputs.insert(name, value);
        }
    }
    Ok(())
}

fn outputs_of(connection: &Connection, job_id: i64) -> FailureResult<BTreeMap<String, String>> {
    let mut statement = connection
        .prepare_cached("SELECT name, value FROM job_outputs WHERE job_id = ?1 ORDER BY name")?;
    let values = statement
        .query_map([job_id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<super::sql::SqlResult<BTreeMap<String, String>>>()?;
    Ok(values)
}
