//! The dispatcher: one task that owns the in-memory view of unfinished runs and starts their jobs
//! in `needs` order under a global limit. Every change is written to the store before it is acted
//! on, so after a crash the store alone says where each run stands.

use super::job::{JobContext, execute_job};
use super::{EngineSettings, Mirrors, StoredPlan};
use crate::model::{Run, RunId, Status};
use crate::planner::{self, JobDecision};
use crate::steps::StepRunner;
use crate::store::Store;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::{Notify, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Progress, for whoever watches (the `run` command's live view, the demo, the web UI on any
/// replica).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum RunUpdate {
    RunStatus {
        run: RunId,
        status: Status,
        reason: Option<String>,
    },
    JobStatus {
        run: RunId,
        job: String,
        status: Status,
        reason: Option<String>,
    },
    LogLine {
        run: RunId,
        job: String,
        line: String,
    },
}

pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    /// The runs this replica holds, and whether it still holds a run when a job is to start.
    pub claims: super::replica::Claims,
    pub mirrors: Arc<Mirrors>,
    pub runner: Arc<dyn StepRunner>,
    pub settings: EngineSettings,
    pub wakeup: Arc<Notify>,
    pub updates: broadcast::Sender<RunUpdate>,
}

struct ActiveRun {
    run: Run,
    plan: StoredPlan,
    /// Jobs started and not yet finished, with the token that cancels each.
    running: HashMap<String, CancellationToken>,
    /// Set when a newer run of the same concurrency group cancelled this one.
    cancel_reason: Option<String>,
    /// Another replica took the run over (this one's lease had run out): it is dropped here.
    lost: bool,
}

/// Job-level concurrency groups: the group's name -> the run, job and cancel token holding it.
type JobGroups = HashMap<String, (RunId, String, CancellationToken)>;

struct JobDone {
    run: RunId,
    job: String,
    status: Status,
    /// The job did not start: another replica holds its run now.
    lost: bool,
}

impl Dispatcher {
    pub async fn run(self) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.settings.max_parallel_jobs.max(1)));
        let (done_sender, mut done_receiver) = mpsc::unbounded_channel::<JobDone>();
        let mut active: BTreeMap<RunId, ActiveRun> = BTreeMap::new();
        let mut job_groups: JobGroups = HashMap::new();
        loop {
            if let Err(error) = this.admit(&mut active, permits.available_permits()).await {
                tracing::error!(%error, "cannot load unfinished runs");
            }
            if let Err(error) = this.cancel_requested(&mut active).await {
                tracing::error!(%error, "cannot read requests to cancel runs");
            }
            if this
                .advance(&mut active, &mut job_groups, &permits, &done_sender)
                .await
            {
                // A run finished: a run waiting for its concurrency group may now be admitted.
                continue;
            }
            tokio::select! {
                _ = this.wakeup.notified() => {}
                // Runs other replicas left behind, and runs recorded by another replica.
                _ = tokio::time::sleep(this.claims.poll) => {}
                Some(done) = done_receiver.recv() => {
                    finish_job(&mut active, &mut job_groups, done);
                    // Drain whatever else finished meanwhile before re-planning.
                    while let Ok(done) = done_receiver.try_recv() {
                        finish_job(&mut active, &mut job_groups, done);
                    }
                }
            }
        }
    }

    /// Cancels the active runs a person asked to cancel (the web UI records the request, then
    /// wakes the dispatcher): running jobs are stopped, queued ones never start.
    async fn cancel_requested(
        &self,
        active: &mut BTreeMap<RunId, ActiveRun>,
    ) -> anyhow::Result<()> {
        let candidates: Vec<RunId> = active
            .values()
            .filter(|active_run| active_run.cancel_reason.is_none())
            .map(|active_run| active_run.run.id)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let requests =
            tokio::task::spawn_blocking(move || store.run_cancel_requests(&candidates)).await??;
        for (run_id, by) in requests {
            if let Some(active_run) = active.get_mut(&run_id) {
                cancel(active_run, format!("cancelled by {by}"));
            }
        }
        Ok(())
    }

    /// Claims runs while jobs may start (up to `capacity`), brings the runs this replica holds
    /// into memory and applies concurrency groups. A run claimed from a replica that died has
    /// the jobs it was running marked interrupted by the claim: they never run twice.
    async fn admit(
        &self,
        active: &mut BTreeMap<RunId, ActiveRun>,
        capacity: usize,
    ) -> anyhow::Result<()> {
        let Some(held) = self.claims.runs(capacity).await else {
            anyhow::bail!("cannot claim or list this replica's runs");
        };
        for run in held {
            if active.contains_key(&run.id) {
                continue;
            }
            let store = self.store.clone();
            let run_id = run.id;
            let plan_text = tokio::task::spawn_blocking(move || store.run_plan(run_id)).await??;
            let plan = match plan_text.as_deref().map(serde_json::from_str::<StoredPlan>) {
                Some(Ok(plan)) => plan,
                _ => {
                    self.finish_run(
                        run.id,
                        Status::Failed,
                        Some(
                            "the run's plan is missing or unreadable; push again to re-plan"
                                .to_owned(),
                        ),
                    )
                    .await;
                    continue;
                }
            };
            if let Some(concurrency) = &plan.run.concurrency {
                let older_in_group: Vec<RunId> = active
                    .values()
                    .filter(|other| {
                        other.run.concurrency_group.as_deref() == Some(concurrency.group.as_str())
                            && other.run.id < run.id
                            && other.cancel_reason.is_none()
                    })
                    .map(|other| other.run.id)
                    .collect();
                if !older_in_group.is_empty() {
                    if concurrency.cancel_in_progress {
                        for older in older_in_group {
                            let reason = format!(
                                "cancelled: superseded by run {} in concurrency group `{}`",
                                run.id, concurrency.group
                            );
                            if let Some(older_run) = active.get_mut(&older) {
                                cancel(older_run, reason);
                            }
                        }
                    } else {
                        // Waits until the older run of its group finishes.
                        continue;
                    }
                }
            }
            active.insert(
                run.id,
                ActiveRun {
                    run,
                    plan,
                    running: HashMap::new(),
                    cancel_reason: None,
                    lost: false,
                },
            );
        }
        Ok(())
    }

    /// Starts every job whose needs are finished, skips those that should not run, and closes
    /// runs whose jobs are all finished.
    async fn advance(
        &self,
        active: &mut BTreeMap<RunId, ActiveRun>,
        job_groups: &mut JobGroups,
        permits: &Arc<Semaphore>,
        done: &mpsc::UnboundedSender<JobDone>,
    ) -> bool {
        let mut finished_runs = Vec::new();
        active.retain(|run_id, active_run| {
            if active_run.lost && active_run.running.is_empty() {
                tracing::warn!(run = run_id, "another replica took this run over");
            }
            !(active_run.lost && active_run.running.is_empty())
        });
        for (run_id, active_run) in active.iter_mut() {
            if active_run.lost {
                continue;
            }
            if let Some(reason) = active_run.cancel_reason.clone() {
                for job in active_run.run.jobs.clone() {
                    if job.status == Status::Queued && !active_run.running.contains_key(&job.name) {
                        self.record_job(
                            *run_id,
                            &job.name,
                            Status::Cancelled,
                            Some(reason.clone()),
                        )
                        .await;
                        set_memory_status(&mut active_run.run, &job.name, Status::Cancelled);
                    }
                }
            } else {
                self.start_ready_jobs(active_run, job_groups, permits, done)
                    .await;
            }
            let all_finished = active_run
                .run
                .jobs
                .iter()
                .all(|job| job.status.is_terminal());
            if all_finished && active_run.running.is_empty() {
                finished_runs.push(*run_id);
            }
        }
        let any_finished = !finished_runs.is_empty();
        for run_id in finished_runs {
            if let Some(active_run) = active.remove(&run_id) {
                let (status, reason) = match active_run.cancel_reason {
                    Some(reason) => (Status::Cancelled, Some(reason)),
                    None => (overall_status(&active_run.run), None),
                };
                self.finish_run(run_id, status, reason).await;
            }
        }
        any_finished
    }

    async fn start_ready_jobs(
        &self,
        active_run: &mut ActiveRun,
        job_groups: &mut JobGroups,
        permits: &Arc<Semaphore>,
        done: &mpsc::UnboundedSender<JobDone>,
    ) {
        let statuses: BTreeMap<String, Status> = active_run
            .run
            .jobs
            .iter()
            .map(|job| (job.name.clone(), job.status))
            .collect();
        for planned_job in active_run.plan.run.jobs.clone() {
            let status = statuses
                .get(&planned_job.id)
                .copied()
                .unwrap_or(Status::Queued);
            if status != Status::Queued || active_run.running.contains_key(&planned_job.id) {
                continue;
            }
            let need_statuses: BTreeMap<String, Status> = planned_job
                .needs
                .iter()
                .map(|need| {
                    (
                        need.clone(),
                        statuses.get(need).copied().unwrap_or(Status::Skipped),
                    )
                })
                .collect();
            if !need_statuses.values().all(|status| status.is_terminal()) {
                continue;
            }
            let context = planner::expression_context(
                &active_run.plan.event,
                &active_run.plan.run.pipeline,
                &planned_job.env,
            );
            match planner::decide_job(&planned_job, &need_statuses, &context) {
                JobDecision::Skip(reason) => {
                    self.record_job(
                        active_run.run.id,
                        &planned_job.id,
                        Status::Skipped,
                        Some(reason),
                    )
                    .await;
                    set_memory_status(&mut active_run.run, &planned_job.id, Status::Skipped);
                }
                JobDecision::Run => {
                    if let Some(concurrency) = &planned_job.concurrency {
                        if let Some((_, _, holder)) = job_groups.get(&concurrency.group) {
                            // The group is busy: a newer job cancels the holder when asked,
                            // and starts once the holder has finished.
                            if concurrency.cancel_in_progress {
                                holder.cancel();
                            }
                            continue;
                        }
                    }
                    if active_run.run.status == Status::Queued {
                        active_run.run.status = Status::Running;
                        self.record_run(active_run.run.id, Status::Running, None)
                            .await;
                    }
                    let token = CancellationToken::new();
                    active_run
                        .running
                        .insert(planned_job.id.clone(), token.clone());
                    if let Some(concurrency) = &planned_job.concurrency {
                        job_groups.insert(
                            concurrency.group.clone(),
                            (active_run.run.id, planned_job.id.clone(), token.clone()),
                        );
                    }
                    let job_context = JobContext {
                        store: self.store.clone(),
                        mirrors: self.mirrors.clone(),
                        runner: self.runner.clone(),
                        settings: EngineSettings {
                            secrets: self.settings.secrets_for_run(active_run.plan.trust),
                            ..self.settings.clone()
                        },
                        updates: self.updates.clone(),
                        run_id: active_run.run.id,
                        plan: active_run.plan.clone(),
                        job: planned_job.clone(),
                        needs: need_statuses.clone(),
                        cancel: token,
                    };
                    let permits = permits.clone();
                    let done = done.clone();
                    let claims = self.claims.clone();
                    tokio::spawn(async move {
                        let run_id = job_context.run_id;
                        let job_name = job_context.job.id.clone();
                        let cancel = job_context.cancel.clone();
                        let mut lost = false;
                        let status = tokio::select! {
                            permit = permits.acquire_owned() => {
                                let _permit = permit.expect("the semaphore is never closed");
                                // Started only while this replica still holds the run, so a run
                                // another replica took over never starts a job here.
                                if claims.start_job(run_id, job_name.clone()).await {
                                    execute_job(job_context).await
                                } else {
                                    lost = true;
                                    Status::Queued
                                }
                            }
                            _ = cancel.cancelled() => {
                                job_context.record(Status::Cancelled, Some("cancelled before it started".to_owned())).await;
                                Status::Cancelled
                            }
                        };
                        let _ = done.send(JobDone {
                            run: run_id,
                            job: job_name,
                            status,
                            lost,
                        });
                    });
                }
            }
        }
    }

    async fn record_job(&self, run: RunId, job: &str, status: Status, reason: Option<String>) {
        record_job_status(&self.store, &self.updates, run, job, status, reason).await;
    }

    async fn record_run(&self, run: RunId, status: Status, reason: Option<String>) {
        let store = self.store.clone();
        let stored_reason = reason.clone();
        let result = tokio::task::spawn_blocking(move || {
            store.set_run_status(run, status, stored_reason.as_deref())
        })
        .await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::error!(run, "cannot record the run's status");
        }
        let _ = self.updates.send(RunUpdate::RunStatus {
            run,
            status,
            reason,
        });
    }

    async fn finish_run(&self, run: RunId, status: Status, reason: Option<String>) {
        tracing::info!(run, %status, "run finished");
        self.record_run(run, status, reason).await;
    }
}

/// A job ended (or could not start because another replica holds its run now).
fn finish_job(active: &mut BTreeMap<RunId, ActiveRun>, job_groups: &mut JobGroups, done: JobDone) {
    job_groups.retain(|_, holder| !(holder.0 == done.run && holder.1 == done.job));
    if let Some(active_run) = active.get_mut(&done.run) {
        active_run.running.remove(&done.job);
        if done.lost {
            active_run.lost = true;
        } else {
            set_memory_status(&mut active_run.run, &done.job, done.status);
        }
    }
}

/// Writes a job's status to the store and tells the watchers; the one path for every job change.
pub(super) async fn record_job_status(
    store: &Arc<dyn Store>,
    updates: &broadcast::Sender<RunUpdate>,
    run: RunId,
    job: &str,
    status: Status,
    reason: Option<String>,
) {
    let store = store.clone();
    let job_name = job.to_owned();
    let stored_reason = reason.clone();
    let result = tokio::task::spawn_blocking(move || {
        store.set_job_status(run, &job_name, status, stored_reason.as_deref())
    })
    .await;
    if !matches!(result, Ok(Ok(()))) {
        tracing::error!(run, job, "cannot record the job's status");
    }
    let _ = updates.send(RunUpdate::JobStatus {
        run,
        job: job.to_owned(),
        status,
        reason,
    });
}

fn cancel(active_run: &mut ActiveRun, reason: String) {
    for token in active_run.running.values() {
        token.cancel();
    }
    active_run.cancel_reason = Some(reason);
}

fn set_memory_status(run: &mut Run, job: &str, status: Status) {
    if let Some(record) = run.jobs.iter_mut().find(|record| record.name == job) {
        record.status = status;
    }
}

/// Failed if any job failed, cancelled if any was cancelled, skipped if every job was skipped,
/// otherwise succeeded.
pub(crate) fn overall_status(run: &Run) -> Status {
    let statuses: Vec<Status> = run.jobs.iter().map(|job| job.status).collect();
    if statuses.contains(&Status::Failed) {
        Status::Failed
    } else if statuses.contains(&Status::Cancelled) {
        Status::Cancelled
    } else if !statuses.is_empty() && statuses.iter().all(|status| *status == Status::Skipped) {
        Status::Skipped
    } else {
        Status::Succeeded
    }
}
