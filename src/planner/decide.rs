//! Whether a job runs once every job it needs has finished, by GitHub's rules: a failed, skipped
//! or cancelled need skips the job unless its `if` calls a status function that lets it run
//! (`always()`, `failure()`, `cancelled()`, `!success()`...). Knows the planned job, its needs'
//! statuses and the expression context; nothing of how jobs run.

use super::PlannedJob;
use crate::config::expr::{self, StatusFunctions};
use crate::model::Status;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// Whether a job runs, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobDecision {
    Run,
    /// The reason, e.g. "need `build` failed" or "condition `event == 'merge'` is false".
    Skip(String),
}

/// Decides, once every need is finished, whether a job runs. The context is the run's
/// expression context; each need's outcome is added as `needs.<id>.result` (`success`,
/// `failure`, `cancelled` or `skipped`, as on GitHub) unless the context already has it.
/// A condition that cannot be evaluated skips the job with the error as the reason.
pub fn decide_job(
    job: &PlannedJob,
    need_statuses: &BTreeMap<String, Status>,
    context: &Json,
) -> JobDecision {
    let mut status = StatusFunctions {
        success: true,
        failure: false,
        cancelled: false,
    };
    let mut need_problems = Vec::new();
    for need in &job.needs {
        match need_statuses.get(need) {
            Some(Status::Succeeded) => {}
            Some(Status::Failed) => {
                status.failure = true;
                need_problems.push(format!("need `{need}` failed"));
            }
            Some(Status::Cancelled) => {
                status.cancelled = true;
                need_problems.push(format!("need `{need}` was cancelled"));
            }
            Some(Status::Skipped) => need_problems.push(format!("need `{need}` was skipped")),
            Some(unfinished @ (Status::Queued | Status::Running)) => {
                return JobDecision::Skip(format!(
                    "need `{need}` has not finished (it is {unfinished}); decide once every need is finished"
                ));
            }
            None => {
                return JobDecision::Skip(format!(
                    "need `{need}` has no status; it is not a job of this run"
                ));
            }
        }
    }
    status.success = need_problems.is_empty();
    let condition = job.condition.as_deref().unwrap_or("").trim();
    let needs_reason = need_problems.join("; ");
    if condition.is_empty() || !expr::uses_status_function(condition) {
        if !status.success {
            return JobDecision::Skip(needs_reason);
        }
        if condition.is_empty() {
            return JobDecision::Run;
        }
    }
    let values = with_need_results(context, &job.needs, need_statuses);
    match expr::evaluate_condition_with(condition, &values, status) {
        Ok(true) => JobDecision::Run,
        Ok(false) if needs_reason.is_empty() => {
            JobDecision::Skip(format!("condition `{condition}` is false"))
        }
        Ok(false) => {
            JobDecision::Skip(format!("condition `{condition}` is false ({needs_reason})"))
        }
        Err(problem) => JobDecision::Skip(format!(
            "condition `{condition}` cannot be evaluated: {problem}"
        )),
    }
}

/// GitHub's word for a finished job's outcome in `needs.<id>.result`.
fn result_word(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "success",
        Status::Failed => "failure",
        Status::Cancelled => "cancelled",
        Status::Skipped | Status::Queued | Status::Running => "skipped",
    }
}

fn with_need_results(
    context: &Json,
    needs: &[String],
    need_statuses: &BTreeMap<String, Status>,
) -> Json {
    let mut values = match context {
        Json::Object(object) => object.clone(),
        _ => Map::new(),
    };
    let needs_object = values
        .entry("needs")
        .or_insert_with(|| Json::Object(Map::new()));
    if let Json::Object(needs_object) = needs_object {
        for need in needs {
            let Some(status) = need_statuses.get(need) else {
                continue;
            };
            let entry = needs_object
                .entry(need.clone())
                .or_insert_with(|| Json::Object(Map::new()));
            if let Json::Object(entry) = entry {
                entry
                    .entry("result")
                    .or_insert_with(|| Json::String(result_word(*status).to_string()));
            }
        }
    }
    Json::Object(values)
}
