//! Telling GitHub about runs as they change: a task that follows the dispatcher's updates and
//! the store. Every job reports a commit status (pending, then success or failure; jobs skipped
//! by path filters report success), or a check run when sluice is a GitHub App; a finished
//! pull-request run edits its comment, and a new run for a pull request marks the previous
//! comment stale (comment commands are `scheduler::commands`'). Nothing here can fail a run: the forge keeps what GitHub does not
//! take in its outbox, and this task retries the outbox.

use super::{RunUpdate, StoredPlan};
use crate::forge::report::{self, Contributions};
use crate::forge::{Forge, OutboxItem};
use crate::model::{EventKind, Run, RunId, Status};
use crate::store::{RunFilter, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

pub struct ForgeFeedback {
    pub store: Arc<dyn Store>,
    pub forge: Arc<Forge>,
    pub updates: broadcast::Receiver<RunUpdate>,
    pub contributions: Arc<dyn Contributions>,
    /// How often the store is read for new runs (runs skipped by path filters never reach the
    /// dispatcher, so no update announces them).
    pub scan_interval: Duration,
    /// How often undelivered comments and statuses are tried again.
    pub outbox_interval: Duration,
}

impl ForgeFeedback {
    pub async fn run(mut self) {
        let mut last_seen = self.newest_run_id().await.unwrap_or(0);
        let mut pull_requests: HashMap<RunId, Option<u64>> = HashMap::new();
        let mut scan = tokio::time::interval(self.scan_interval);
        let mut outbox = tokio::time::interval(self.outbox_interval);
        loop {
            tokio::select! {
                update = self.updates.recv() => match update {
                    Ok(update) => self.on_update(update, &mut pull_requests).await,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "forge feedback fell behind; some statuses are reported late");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = scan.tick() => last_seen = self.report_new_runs(last_seen, &mut pull_requests).await,
                _ = outbox.tick() => {
                    self.forge.retry_outbox().await;
                }
            }
        }
    }

    async fn newest_run_id(&self) -> Option<RunId> {
        let store = self.store.clone();
        let filter = RunFilter {
            limit: Some(1),
            ..RunFilter::default()
        };
        let runs = tokio::task::spawn_blocking(move || store.list_runs(&filter))
            .await
            .ok()?
            .ok()?;
        runs.first().map(|run| run.id)
    }

    async fn load(&self, run_id: RunId) -> Option<Run> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.get_run(run_id)).await {
            Ok(Ok(run)) => run,
            _ => {
                tracing::error!(run = run_id, "cannot read the run to report it to github");
                None
            }
        }
    }

    async fn pull_request_of(
        &self,
        run: &Run,
        cache: &mut HashMap<RunId, Option<u64>>,
    ) -> Option<u64> {
        if run.event != EventKind::PullRequest {
            return None;
        }
        if let Some(known) = cache.get(&run.id) {
            return *known;
        }
        let store = self.store.clone();
        let run_id = run.id;
        let plan = tokio::task::spawn_blocking(move || store.run_plan(run_id))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let number = plan
            .and_then(|text| serde_json::from_str::<StoredPlan>(&text).ok())
            .and_then(|plan| plan.event.pull_request);
        cache.insert(run.id, number);
        number
    }

    async fn on_update(&self, update: RunUpdate, cache: &mut HashMap<RunId, Option<u64>>) {
        match update {
            RunUpdate::JobStatus {
                run,
                job,
                status,
                reason,
            } => {
                let Some(record) = self.load(run).await else {
                    return;
                };
                let report = self
                    .forge
                    .job_report(&record, &job, status, reason.as_deref());
                self.forge.send(report).await;
            }
            RunUpdate::RunStatus { run, status, .. } if status.is_terminal() => {
                let Some(record) = self.load(run).await else {
                    return;
                };
                if let Some(number) = self.pull_request_of(&record, cache).await {
                    self.post_comment(&record, number).await;
                }
                cache.remove(&run);
            }
            _ => {}
        }
    }

    async fn post_comment(&self, run: &Run, pull_request: u64) {
        let (sections, policies) = self.contributions.for_run(run);
        let parts = report::render_run_comment(run, sections, policies, self.forge.run_url(run.id));
        self.forge
            .send(OutboxItem::Comment {
                repository: run.repository.clone(),
                pull_request,
                pipeline: run.pipeline.clone(),
                parts,
            })
            .await;
    }

    /// Runs recorded since `last_seen`: their jobs' first statuses, and for a pull request the
    /// previous comment marked stale. Returns the newest run id seen.
    async fn report_new_runs(
        &self,
        last_seen: RunId,
        cache: &mut HashMap<RunId, Option<u64>>,
    ) -> RunId {
        let store = self.store.clone();
        let filter = RunFilter {
            limit: Some(100),
            ..RunFilter::default()
        };
        let runs = match tokio::task::spawn_blocking(move || store.list_runs(&filter)).await {
            Ok(Ok(runs)) => runs,
            _ => return last_seen,
        };
        let mut newest = last_seen;
        let mut new_runs: Vec<Run> = runs.into_iter().filter(|run| run.id > last_seen).collect();
        new_runs.sort_by_key(|run| run.id);
        for run in new_runs {
            newest = newest.max(run.id);
            // The list holds no job outputs; a job already finished reports its findings.
            let run = if run.jobs.iter().any(|job| job.status.is_terminal()) {
                self.load(run.id).await.unwrap_or(run)
            } else {
                run
            };
            for job in &run.jobs {
                let report =
                    self.forge
                        .job_report(&run, &job.name, job.status, job.reason.as_deref());
                self.forge.send(report).await;
            }
            if let Some(number) = self.pull_request_of(&run, cache).await
                && run.status != Status::Skipped
            {
                self.forge
                    .send(OutboxItem::Stale {
                        repository: run.repository.clone(),
                        pull_request: number,
                        pipeline: run.pipeline.clone(),
                        newer_commit: run.commit.clone(),
                    })
                    .await;
            }
        }
        newest
    }
}
