//! Turns accepted events into runs and runs into finished jobs. Owns the intake worker (deliveries
//! -> planned runs, exactly once), the dispatcher (jobs in `needs` order under a concurrency limit,
//! `if`, timeouts, concurrency groups, cancellation) and crash recovery. Reaches git through
//! `git::Mirror`, configuration through `config`, decisions through the pure `planner`, and steps
//! through `steps::StepRunner`; it knows nothing of HTTP.

pub mod contributions;
mod dispatch;
pub mod event;
pub mod forge_feedback;
mod intake;
mod job;
mod mirrors;
mod poll;
pub mod promotion;
pub mod releases;

pub use dispatch::{Dispatcher, RunUpdate};
pub use event::{EventRequest, event_from_delivery};
pub use forge_feedback::{ForgeFeedback, answer_comment_delivery};
pub use intake::IntakeWorker;
pub use mirrors::Mirrors;
pub use poll::Poller;

use crate::config::{self, SourceFile};
use crate::model::{Event, Status};
use crate::planner::{self, PlannedRun};
use crate::store::{NewJob, NewRun};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Settings shared by the intake worker and the dispatcher.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub data_dir: PathBuf,
    /// Jobs running at once across all runs.
    pub max_parallel_jobs: usize,
    /// Secrets available to steps as `${{ secrets.NAME }}`, from `SLUICE_SECRET_<NAME>` variables.
    pub secrets: std::collections::BTreeMap<String, String>,
}

impl EngineSettings {
    pub fn new(data_dir: PathBuf) -> EngineSettings {
        let secrets = std::env::vars()
            .filter_map(|(name, value)| {
                name.strip_prefix("SLUICE_SECRET_")
                    .map(|secret| (secret.to_owned(), value))
            })
            .collect();
        EngineSettings {
            data_dir,
            max_parallel_jobs: 4,
            secrets,
        }
    }

    pub fn workspaces_dir(&self) -> PathBuf {
        self.data_dir.join("workspaces")
    }

    pub fn mirrors_dir(&self) -> PathBuf {
        self.data_dir.join("mirrors")
    }
}

/// What the dispatcher needs to run (or resume) a run: stored with the run as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredPlan {
    pub event: Event,
    pub run: PlannedRun,
    /// A pull request from a fork: its steps see no secrets.
    #[serde(default)]
    pub from_fork: bool,
}

/// Reads the configuration at the event's commit and plans the runs. Pipeline files that do not
/// load become failed runs whose reason lists every problem, so a broken file is visible where the
/// runs are, not only in a server log.
pub fn plan_runs(files: &[SourceFile], event: &Event) -> Vec<NewRun> {
    plan_runs_for(files, event, false)
}

/// `plan_runs`, telling whether the event is a pull request from a fork (its runs then get no
/// secrets).
pub fn plan_runs_for(files: &[SourceFile], event: &Event, from_fork: bool) -> Vec<NewRun> {
    let project = config::load_project(files);
    let mut runs = Vec::new();
    let mut broken_files: Vec<&str> = project
        .diagnostics
        .iter()
        .map(|diagnostic| diagnostic.path.as_str())
        .filter(|path| path.starts_with("workflows/"))
        .collect();
    broken_files.dedup();
    for path in broken_files {
        let problems: Vec<String> = project
            .diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.path == path)
            .map(|diagnostic| diagnostic.to_string())
            .collect();
        runs.push(NewRun {
            repository: event.repository.clone(),
            commit: event.commit.clone(),
            git_ref: event.git_ref.clone(),
            event: event.kind,
            pipeline: path.to_owned(),
            status: Status::Failed,
            reason: Some(format!(
                "pipeline file is invalid:\n{}",
                problems.join("\n")
            )),
            concurrency_group: None,
            plan: String::new(),
            jobs: Vec::new(),
        });
    }
    for planned in planner::plan(&project.workflows, event) {
        runs.push(new_run(
            event,
            supersede_on_new_push(event, planned),
            from_fork,
        ));
    }
    runs
}

/// A new push to a pull request cancels the previous run of the same pipeline for it: a pull
/// request's run without a `concurrency` of its own gets one per pull request and pipeline.
fn supersede_on_new_push(event: &Event, mut planned: PlannedRun) -> PlannedRun {
    if let (Some(number), None) = (event.pull_request, &planned.concurrency) {
        planned.concurrency = Some(planner::PlannedConcurrency {
            group: format!(
                "pull_request:{}#{number}:{}",
                event.repository, planned.pipeline
            ),
            cancel_in_progress: true,
        });
    }
    planned
}

fn new_run(event: &Event, planned: PlannedRun, from_fork: bool) -> NewRun {
    let skipped = planned.skipped_reason.clone();
    let status = if skipped.is_some() {
        Status::Skipped
    } else {
        Status::Queued
    };
    let jobs = planned
        .jobs
        .iter()
        .map(|job| NewJob {
            name: job.id.clone(),
            needs: job.needs.clone(),
            status,
            reason: skipped.clone(),
        })
        .collect();
    let plan = serde_json::to_string(&StoredPlan {
        event: event.clone(),
        run: planned.clone(),
        from_fork,
    })
    .expect("plans serialise");
    NewRun {
        repository: event.repository.clone(),
        commit: event.commit.clone(),
        git_ref: event.git_ref.clone(),
        event: event.kind,
        pipeline: planned.pipeline.clone(),
        status,
        reason: skipped,
        concurrency_group: planned
            .concurrency
            .as_ref()
            .map(|concurrency| concurrency.group.clone()),
        plan,
        jobs,
    }
}
