//! Turns accepted events into runs and runs into finished jobs. Owns the intake worker (deliveries
//! -> planned runs, exactly once), the dispatcher (jobs in `needs` order under a concurrency limit,
//! `if`, timeouts, concurrency groups, cancellation) and crash recovery. Reaches git through
//! `git::Mirror`, configuration through `config`, decisions through the pure `planner`, and steps
//! through `steps::StepRunner`; it knows nothing of HTTP.

pub mod approval;
pub mod authority;
pub mod commands;
pub mod contributions;
mod dispatch;
pub mod event;
pub mod forge_feedback;
mod intake;
mod job;
mod job_pod;
pub mod lock_queue;
mod mirrors;
pub mod planning_retry;
mod poll;
mod preview_sections;
pub mod promotion;
pub mod releases;
pub mod replan;
pub mod replica;
pub mod rerun;

pub use dispatch::{Dispatcher, RunUpdate};
pub use event::{EventRequest, PayloadError, event_from_delivery};
pub use forge_feedback::ForgeFeedback;
pub use intake::IntakeWorker;
pub use mirrors::Mirrors;
pub use poll::Poller;

use crate::config::{self, SourceFile};
use crate::model::{Event, Status, TrustLevel};
use crate::planner::{self, PlannedRun};
use crate::store::{NewJob, NewRun};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Runs a store call off the async threads; `None` when it failed, logged with `what` (the
/// background tasks try again on their next turn).
pub(crate) async fn store_call<T: Send + 'static>(
    store: &std::sync::Arc<dyn crate::store::Store>,
    what: &'static str,
    work: impl FnOnce(&dyn crate::store::Store) -> crate::store::StoreResult<T> + Send + 'static,
) -> Option<T> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || work(store.as_ref())).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            tracing::error!(%error, "{what}: store error");
            None
        }
        Err(error) => {
            tracing::error!(%error, "{what}: task failed");
            None
        }
    }
}

/// Settings shared by the intake worker and the dispatcher.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub data_dir: PathBuf,
    /// Jobs running at once across all runs.
    pub max_parallel_jobs: usize,
    /// Secrets available to steps as `${{ secrets.NAME }}`, from `SLUICE_SECRET_<NAME>` variables.
    /// A job gets only those its run's trust level may have (`secrets_for_run`).
    pub secrets: std::collections::BTreeMap<String, String>,
    /// Secrets that member events (pushes to other branches, pull requests from the repository)
    /// may have too: the server configuration's `secrets.NAME.pull-requests: true`.
    pub pull_request_secrets: std::collections::BTreeSet<String>,
    /// Every value that must never appear in a log: all secrets, whether or not a job has them,
    /// and the server's own credentials (webhook secret, API token, plan key, GitHub and git
    /// tokens).
    pub redacted: Vec<String>,
    /// How `run:` steps are isolated (containers by default); whether a step may run on the host
    /// is decided per run by `host_steps` and its trust level.
    pub isolation: crate::steps::Isolation,
    pub host_steps: HostSteps,
    /// The deploy targets `preview` steps ask; `None` where no server runs (`sluice run`).
    pub deploy_targets: Option<DeployTargets>,
}

/// The server's deploy targets, shared by promotion and the `preview` step.
#[derive(Clone)]
pub struct DeployTargets(pub std::sync::Arc<dyn crate::deploy::reconcile::TargetFactory>);

impl std::fmt::Debug for DeployTargets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("DeployTargets")
    }
}

/// Which repositories' runs may execute `run:` steps as host processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSteps {
    /// Those the server configuration opts in with `host-steps: true`.
    Repositories(std::collections::BTreeSet<String>),
    /// Every repository: `sluice run`, where the operator runs a commit on their own machine.
    Everywhere,
}

impl Default for HostSteps {
    fn default() -> HostSteps {
        HostSteps::Repositories(Default::default())
    }
}

/// The server's own credentials, redacted from every log even though no step is given them.
const SERVER_CREDENTIALS: [&str; 5] = [
    "SLUICE_WEBHOOK_SECRET",
    "SLUICE_API_TOKEN",
    "SLUICE_PLAN_KEY",
    "SLUICE_GITHUB_TOKEN",
    "SLUICE_GIT_TOKEN",
];

impl EngineSettings {
    pub fn new(data_dir: PathBuf) -> EngineSettings {
        let secrets: std::collections::BTreeMap<String, String> = std::env::vars()
            .filter_map(|(name, value)| {
                name.strip_prefix("SLUICE_SECRET_")
                    .map(|secret| (secret.to_owned(), value))
            })
            .collect();
        let redacted = secrets
            .values()
            .cloned()
            .chain(
                SERVER_CREDENTIALS
                    .iter()
                    .filter_map(|name| std::env::var(name).ok()),
            )
            .filter(|value| !value.trim().is_empty())
            .collect();
        EngineSettings {
            data_dir,
            max_parallel_jobs: 4,
            secrets,
            pull_request_secrets: Default::default(),
            redacted,
            isolation: crate::steps::Isolation::default(),
            host_steps: HostSteps::default(),
            deploy_targets: None,
        }
    }

    /// The isolation of a run's `run:` steps: host processes only where the repository opted in
    /// and the run is not untrusted; containers otherwise.
    pub fn isolation_for_run(
        &self,
        repository: &str,
        trust: TrustLevel,
    ) -> crate::steps::Isolation {
        let opted_in = match &self.host_steps {
            HostSteps::Everywhere => true,
            HostSteps::Repositories(repositories) => repositories.contains(repository),
        };
        crate::steps::Isolation {
            host: opted_in && trust >= TrustLevel::Member,
            ..self.isolation.clone()
        }
    }

    /// `isolation_for_run` for one job: the job's `image:` replaces the server's default image.
    pub fn isolation_for_job(
        &self,
        repository: &str,
        trust: TrustLevel,
        job_image: Option<&str>,
    ) -> crate::steps::Isolation {
        let mut isolation = self.isolation_for_run(repository, trust);
        if let Some(image) = job_image {
            isolation.default_image = Some(image.to_owned());
        }
        isolation
    }

    /// The secrets a run at this trust level may see: all for trusted events, those marked for
    /// pull requests for member events, none for untrusted ones.
    pub fn secrets_for_run(&self, trust: TrustLevel) -> std::collections::BTreeMap<String, String> {
        match trust {
            TrustLevel::Trusted => self.secrets.clone(),
            TrustLevel::Member => self
                .secrets
                .iter()
                .filter(|(name, _)| self.pull_request_secrets.contains(*name))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            TrustLevel::Untrusted => Default::default(),
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
#[serde(from = "StoredPlanFields")]
pub struct StoredPlan {
    pub event: Event,
    pub run: PlannedRun,
    /// What the run's code may reach (`docs/security.md`); decided at intake from verified facts.
    pub trust: TrustLevel,
    /// The default branch's head when the run was planned: its `environments/` and `policies/`
    /// judge the run's plans, whatever the commit under test says.
    pub authority_commit: Option<String>,
}

/// A stored plan as any version wrote it. Plans written before trust levels existed carry
/// `from_fork` instead: a fork's run stays untrusted, any other ran as a member.
#[derive(Deserialize)]
struct StoredPlanFields {
    event: Event,
    run: PlannedRun,
    #[serde(default)]
    from_fork: bool,
    #[serde(default)]
    trust: Option<TrustLevel>,
    #[serde(default)]
    authority_commit: Option<String>,
}

impl From<StoredPlanFields> for StoredPlan {
    fn from(fields: StoredPlanFields) -> StoredPlan {
        let trust = fields.trust.unwrap_or(if fields.from_fork {
            TrustLevel::Untrusted
        } else {
            TrustLevel::Member
        });
        StoredPlan {
            event: fields.event,
            run: fields.run,
            trust,
            authority_commit: fields.authority_commit,
        }
    }
}

/// Reads the configuration at the event's commit and plans the runs. Pipeline files that do not
/// load become failed runs whose reason lists every problem, so a broken file is visible where the
/// runs are, not only in a server log.
pub fn plan_runs(files: &[SourceFile], event: &Event) -> Vec<NewRun> {
    let trust = match event.kind {
        crate::model::EventKind::Merge => TrustLevel::Trusted,
        _ => TrustLevel::Member,
    };
    plan_runs_for(files, event, trust, None)
}

/// `plan_runs` at a trust level decided by the caller from verified facts (an untrusted run's
/// steps get no secrets and its Terraform and builds do not run).
pub fn plan_runs_for(
    files: &[SourceFile],
    event: &Event,
    trust: TrustLevel,
    authority_commit: Option<&str>,
) -> Vec<NewRun> {
    plan_runs_selected(files, event, trust, authority_commit, None)
}

/// `plan_runs_for`, keeping only the Terraform plans `selection` asks for (a re-plan); runs
/// without such a plan are not recorded.
pub fn plan_runs_selected(
    files: &[SourceFile],
    event: &Event,
    trust: TrustLevel,
    authority_commit: Option<&str>,
    selection: Option<&replan::PlanSelection>,
) -> Vec<NewRun> {
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
    for mut planned in planner::plan(&project.workflows, event) {
        if let Some(selection) = selection
            && (planned.skipped_reason.is_some()
                || !replan::select_plan_jobs(&mut planned, selection))
        {
            continue;
        }
        let mut planned = supersede_on_new_push(event, planned);
        if selection.is_some()
            && let Some(concurrency) = &mut planned.concurrency
        {
            // A re-plan waits for the pull request's running run instead of cancelling it.
            concurrency.cancel_in_progress = false;
        }
        runs.push(new_run(event, planned, trust, authority_commit));
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

fn new_run(
    event: &Event,
    planned: PlannedRun,
    trust: TrustLevel,
    authority_commit: Option<&str>,
) -> NewRun {
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
        trust,
        authority_commit: authority_commit.map(str::to_owned),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Pull request 3 of `acme/ml` from `branch`, at commit `aaaa…`.
    pub(crate) fn pull_request_event(branch: &str, action: &str) -> Event {
        Event {
            kind: crate::model::EventKind::PullRequest,
            repository: "acme/ml".to_owned(),
            git_ref: format!("refs/heads/{branch}"),
            commit: "a".repeat(40),
            before: None,
            base_branch: Some("main".to_owned()),
            action: Some(action.to_owned()),
            pull_request: Some(3),
            actor: None,
            changed_paths: None,
        }
    }

    #[test]
    fn a_plan_stored_before_trust_levels_keeps_a_fork_untrusted() {
        let event = pull_request_event("outside", "opened");
        let files = [SourceFile {
            path: "workflows/ci.yaml".to_owned(),
            contents: b"name: ci\non: { pull_request: {} }\njobs:\n  a:\n    steps:\n      - run: 'true'\n".to_vec(),
        }];
        let runs = plan_runs_for(&files, &event, TrustLevel::Trusted, None);
        let mut stored: serde_json::Value = serde_json::from_str(&runs[0].plan).unwrap();
        let fields = stored.as_object_mut().unwrap();
        fields.remove("trust");
        for (from_fork, expected) in [(true, TrustLevel::Untrusted), (false, TrustLevel::Member)] {
            fields.insert("from_fork".to_owned(), from_fork.into());
            let plan: StoredPlan =
                serde_json::from_value(serde_json::Value::Object(fields.clone())).unwrap();
            assert_eq!(plan.trust, expected);
        }
        let current: StoredPlan = serde_json::from_str(&runs[0].plan).unwrap();
        assert_eq!(current.trust, TrustLevel::Trusted);
    }

    #[test]
    fn a_replan_waits_for_the_pull_request_s_running_run_instead_of_cancelling_it() {
        let event = pull_request_event("feature", "synchronize");
        let files = [SourceFile {
            path: "workflows/ci.yaml".to_owned(),
            contents: b"name: ci\non: { pull_request: {} }\njobs:\n  test:\n    steps: [{ run: 'true' }]\n  plan:\n    steps: [{ terraform: { environment: dev, command: plan } }]\n".to_vec(),
        }];
        let concurrency = |selection: Option<&replan::PlanSelection>| {
            let runs = plan_runs_selected(&files, &event, TrustLevel::Member, None, selection);
            let plan: StoredPlan = serde_json::from_str(&runs[0].plan).unwrap();
            (
                plan.run.jobs.len(),
                plan.run.concurrency.unwrap().cancel_in_progress,
            )
        };
        assert_eq!(concurrency(None), (2, true));
        assert_eq!(
            concurrency(Some(&replan::PlanSelection::default())),
            (1, false)
        );
    }
}
