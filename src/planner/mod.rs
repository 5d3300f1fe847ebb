//! The planner: which pipelines an event starts and the job graph of each, and whether a job
//! runs once its needs have finished. Pure: pipelines and an event in, plans out; no IO, no
//! async, no clock. It does not know how pipelines were loaded, how jobs run or where runs are
//! recorded.
//!
//! Trigger rules follow GitHub Actions (see [`plan`]); a pipeline whose ref filters match but
//! whose path filters do not is still returned, marked skipped, so that it can report "skipped"
//! instead of staying silent.

mod context;
mod decide;
mod graph;
mod triggers;

pub use context::{classify_push, expression_context};
pub use decide::{JobDecision, decide_job};
pub use triggers::NO_MATCHING_PATHS;

use crate::config::Loaded;
use crate::config::expr;
use crate::config::workflow::{Concurrency, Step, Workflow};
use crate::model::Event;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use triggers::TriggerOutcome;

/// One pipeline an event starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// `Workflow::name`.
    pub pipeline: String,
    /// The file the pipeline came from, e.g. `workflows/platform.yaml`.
    pub file: String,
    /// Set when the run is to be reported as skipped instead of run: `"no matching paths"` when
    /// the ref or type matched but the path filters did not, or what is wrong with the pipeline
    /// (an invalid filter, a cycle in `needs`, a concurrency group that cannot be rendered).
    pub skipped_reason: Option<String>,
    /// The pipeline's `concurrency`, with the group rendered for this event.
    pub concurrency: Option<PlannedConcurrency>,
    /// In a topological order of `needs`, file order as the tie-break.
    pub jobs: Vec<PlannedJob>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedConcurrency {
    pub group: String,
    pub cancel_in_progress: bool,
}

/// One job of a planned run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedJob {
    /// The key under `jobs:`.
    pub id: String,
    /// The display name, or the id when none is given.
    pub name: String,
    pub needs: Vec<String>,
    /// The `if:` as written; decided by [`decide_job`] once the needs have finished.
    pub condition: Option<String>,
    pub timeout: Option<std::time::Duration>,
    /// The pipeline's env overlaid by the job's env.
    pub env: BTreeMap<String, String>,
    /// The job's `concurrency`, with the group rendered for this event and the job's env.
    pub concurrency: Option<PlannedConcurrency>,
    /// The job's `image:` for steps that name none.
    #[serde(default)]
    pub image: Option<String>,
    pub steps: Vec<Step>,
}

/// Which pipelines this event starts, and their job graphs. Trigger rules as on GitHub:
/// - push (and merge, which answers `on.push`): `branches`/`branches-ignore` against the branch,
///   `tags`/`tags-ignore` against the tag; with only branch filters tag pushes do not match and
///   vice versa; with neither every push matches; path filters are not applied to tag pushes;
/// - pull_request: `types` (default `opened`, `synchronize`, `reopened`) against the action,
///   `branches`/`branches-ignore` against the *base* branch;
/// - both: `paths` needs one changed path to match, `paths-ignore` needs one changed path it
///   does not match; unknown changed paths (`None`) match.
///
/// A deleted branch (the commit is all zeros) plans nothing.
pub fn plan(workflows: &[Loaded<Workflow>], event: &Event) -> Vec<PlannedRun> {
    if is_deletion(event) {
        return Vec::new();
    }
    workflows
        .iter()
        .filter_map(
            |loaded| match triggers::match_event(&loaded.value.on, event) {
                TriggerOutcome::NotTriggered => None,
                TriggerOutcome::Triggered { skipped_reason } => {
                    Some(plan_run(loaded, event, skipped_reason))
                }
            },
        )
        .collect()
}

fn is_deletion(event: &Event) -> bool {
    !event.commit.is_empty() && event.commit.chars().all(|character| character == '0')
}

fn plan_run(
    loaded: &Loaded<Workflow>,
    event: &Event,
    trigger_reason: Option<String>,
) -> PlannedRun {
    let workflow = &loaded.value;
    let (order, mut problems) = graph::order(&workflow.jobs);
    let concurrency = workflow.concurrency.as_ref().and_then(|concurrency| {
        let context = expression_context(event, &workflow.name, &workflow.env);
        render_concurrency(concurrency, context, "the pipeline", &mut problems)
    });
    let jobs = order
        .into_iter()
        .filter_map(|id| workflow.jobs.get(id).map(|job| (id, job)))
        .map(|(id, job)| {
            let mut env = workflow.env.clone();
            env.extend(
                job.env
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone())),
            );
            let timeout = job.timeout.as_ref().and_then(|spec| {
                spec.to_duration()
                    .map_err(|problem| problems.push(format!("job `{id}` timeout: {problem}")))
                    .ok()
            });
            let concurrency = job.concurrency.as_ref().and_then(|concurrency| {
                let context = expression_context(event, &workflow.name, &env);
                render_concurrency(concurrency, context, &format!("job `{id}`"), &mut problems)
            });
            PlannedJob {
                id: id.to_string(),
                name: job.name.clone().unwrap_or_else(|| id.to_string()),
                needs: job.needs.0.clone(),
                condition: job.condition.clone(),
                timeout,
                env,
                concurrency,
                image: job.image.clone(),
                steps: job.steps.clone(),
            }
        })
        .collect();
    let skipped_reason =
        trigger_reason.or_else(|| (!problems.is_empty()).then(|| problems.join("; ")));
    PlannedRun {
        pipeline: workflow.name.clone(),
        file: loaded.path.clone(),
        skipped_reason,
        concurrency,
        jobs,
    }
}

fn render_concurrency(
    concurrency: &Concurrency,
    values: serde_json::Value,
    owner: &str,
    problems: &mut Vec<String>,
) -> Option<PlannedConcurrency> {
    let context = expr::Context {
        values,
        job_status: expr::JobStatusView::default(),
    };
    match expr::render(concurrency.group(), &context) {
        Ok(group) => Some(PlannedConcurrency {
            group,
            cancel_in_progress: concurrency.cancel_in_progress(),
        }),
        Err(problem) => {
            problems.push(format!(
                "concurrency group of {owner} `{}` cannot be rendered: {problem}",
                concurrency.group()
            ));
            None
        }
    }
}
