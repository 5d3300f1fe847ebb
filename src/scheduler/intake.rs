//! The intake worker: takes accepted deliveries in arrival order and plans each exactly once.
//! Planning a delivery and recording its runs is one store transaction, so a crash at any moment
//! either leaves the delivery pending (planned again after restart) or fully planned. A delivery
//! whose planning fails for a reason that may pass is deferred in the store with backoff and
//! tried again on its own schedule, while later deliveries are planned meanwhile; a payload that
//! can never be planned gets its error as its outcome at once.

use super::Mirrors;
use super::event::{self, EventRequest};
use super::planning_retry::{PlanningError, RetrySchedule};
use crate::model::Delivery;
use crate::store::{PendingDelivery, Store, StoreResult};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Deliveries read from the store at a time.
const BATCH: usize = 64;

/// The shortest pause before looking for due deliveries again, so that a retry time that is
/// already past can never make the worker spin.
const MIN_WAIT: Duration = Duration::from_millis(20);

pub struct IntakeWorker {
    pub store: Arc<dyn Store>,
    /// Deliveries are claimed as this replica, so that each is planned by one replica.
    pub claims: super::replica::Claims,
    pub mirrors: Arc<Mirrors>,
    /// Woken by the webhook handler after each stored delivery.
    pub wakeup: Arc<Notify>,
    /// Woken after runs were recorded, so the dispatcher starts them.
    pub dispatcher_wakeup: Arc<Notify>,
    /// When a delivery whose planning failed for a passing reason is tried again.
    pub retry: RetrySchedule,
    /// Woken after deliveries were planned, so comment commands among them are answered.
    pub commands_wakeup: Arc<Notify>,
}

impl IntakeWorker {
    /// Runs until the process ends. Deliveries left pending by a crash are planned first; those
    /// deferred before it keep their retry times.
    pub async fn run(self) {
        loop {
            let due = match self.claims.deliveries(BATCH).await {
                Some(due) => due,
                None => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if due.is_empty() {
                self.wait_for_work().await;
                continue;
            }
            for pending in due {
                self.plan_delivery(pending).await;
            }
            self.dispatcher_wakeup.notify_one();
            self.commands_wakeup.notify_one();
        }
    }

    /// Until a delivery is stored or the earliest deferred one is due, whichever comes first.
    async fn wait_for_work(&self) {
        let next_retry = self
            .with_store(|store| store.next_delivery_retry())
            .await
            .unwrap_or_else(|| Some(chrono::Utc::now() + chrono::TimeDelta::seconds(1)));
        // Deliveries another replica claimed and could not plan (it died) are looked for too.
        match next_retry {
            None => {
                tokio::select! {
                    _ = self.wakeup.notified() => {}
                    _ = tokio::time::sleep(self.claims.poll) => {}
                }
            }
            Some(due_at) => {
                let wait = (due_at - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .max(MIN_WAIT)
                    .min(self.claims.poll);
                tokio::select! {
                    _ = self.wakeup.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// Runs a store call off the async threads; `None` (logged) when it failed.
    async fn with_store<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    ) -> Option<T> {
        super::store_call(&self.store, "reading the deliveries to plan", work).await
    }

    async fn plan_delivery(&self, pending: PendingDelivery) {
        let store = self.store.clone();
        let mirrors = self.mirrors.clone();
        let retry = self.retry;
        let delivery_id = pending.delivery.id.clone();
        let result = tokio::task::spawn_blocking(move || {
            let PendingDelivery {
                delivery,
                failed_attempts,
            } = pending;
            let (outcome, runs) = match plan_delivery(&mirrors, &delivery) {
                Ok(planned) => planned,
                Err(error) => {
                    let failed_attempts = failed_attempts + 1;
                    let message = error.to_string();
                    match retry.delay_after(failed_attempts) {
                        Some(delay) if !error.is_permanent() => {
                            let now = chrono::Utc::now();
                            let next_attempt_at = chrono::TimeDelta::from_std(delay)
                                .ok()
                                .and_then(|delay| now.checked_add_signed(delay))
                                .unwrap_or(now);
                            tracing::warn!(delivery = %delivery.id, attempt = failed_attempts, retry_in = ?delay, error = %message, "planning failed; trying again later");
                            return store
                                .defer_delivery(&delivery.id, &message, next_attempt_at)
                                .map(|_| ());
                        }
                        // The payload itself is unusable: no attempt can change that.
                        _ if error.is_permanent() => {
                            tracing::warn!(delivery = %delivery.id, error = %message, "delivery cannot be planned");
                            (format!("error: {message}"), Vec::new())
                        }
                        // Still failing: the error becomes the outcome, visible and final.
                        _ => {
                            tracing::error!(delivery = %delivery.id, attempts = failed_attempts, error = %message, "planning failed; giving up");
                            (
                                format!("error: {message} (gave up after {failed_attempts} attempts)"),
                                Vec::new(),
                            )
                        }
                    }
                }
            };
            tracing::info!(delivery = %delivery.id, event = %delivery.event, %outcome, "delivery planned");
            release_locks_of_closed_pull_request(store.as_ref(), &delivery);
            record_commit_summaries(store.as_ref(), &mirrors, &runs);
            super::commands::enqueue(store.as_ref(), &delivery)?;
            store
                .complete_delivery(&delivery.id, &outcome, &runs)
                .map(|_| ())
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(delivery = %delivery_id, %error, "cannot record the planning of a delivery")
            }
            Err(error) => tracing::error!(delivery = %delivery_id, %error, "planning task failed"),
        }
    }
}

/// A pull request that closed (merged or not) gives up the Terraform locks it held, even while one
/// of its plans is still running (that plan then finds its lock lost and is not stored).
fn release_locks_of_closed_pull_request(store: &dyn crate::store::Store, delivery: &Delivery) {
    let Ok(EventRequest::PullRequest {
        repository,
        number,
        action,
        ..
    }) = event::event_from_delivery(delivery)
    else {
        return;
    };
    if action != "closed" {
        return;
    }
    match crate::terraform::locks::release_for_closed_pull_request(store, &repository, number) {
        Ok(released) if !released.is_empty() => {
            tracing::info!(
                repository,
                pull_request = number,
                locks = released.len(),
                "released the locks of a closed pull request"
            )
        }
        Ok(_) => {}
        Err(error) => {
            tracing::error!(repository, pull_request = number, %error, "cannot release the locks of a closed pull request")
        }
    }
}

/// Keeps the first line and author of each planned run's commit for the web UI. A commit the
/// mirror cannot describe is left out: a summary is a convenience, never a reason to drop runs.
fn record_commit_summaries(
    store: &dyn crate::store::Store,
    mirrors: &Mirrors,
    runs: &[crate::store::NewRun],
) {
    let mut summaries = Vec::new();
    for run in runs {
        if summaries.iter().any(|known: &crate::store::CommitSummary| {
            known.sha == run.commit && known.repository == run.repository
        }) {
            continue;
        }
        let summary = mirrors
            .get(&run.repository)
            .ok()
            .and_then(|mirror| mirror.commit_summary(&run.commit).ok());
        if let Some((title, author, committed_at)) = summary {
            summaries.push(crate::store::CommitSummary {
                repository: run.repository.clone(),
                sha: run.commit.clone(),
                title,
                author,
                committed_at,
            });
        }
    }
    if let Err(error) = store.record_commits(&summaries) {
        tracing::warn!(%error, "cannot record commit summaries");
    }
}

/// A delivery with the internal ones around it taken off, and what they said.
struct Carried {
    delivery: Delivery,
    /// Who approved an untrusted event's runs: an approval counts only outside any re-run, so a
    /// re-run of a fork's code waits for a new approval even when its first run had one.
    approved_by: Option<String>,
    rerun: Option<super::rerun::RerunSelection>,
    selection: Option<super::replan::PlanSelection>,
}

/// Takes off approvals, re-runs and re-plans, outermost first, in whatever order they nest
/// (an approval of a held re-run wraps the re-run, which may wrap an earlier approval).
fn peel(delivery: &Delivery) -> Result<Carried, PlanningError> {
    let mut carried = Carried {
        delivery: delivery.clone(),
        approved_by: None,
        rerun: None,
        selection: None,
    };
    loop {
        if let Some((inner, rerun)) = super::rerun::unwrap_rerun(&carried.delivery)? {
            carried.rerun.get_or_insert(rerun);
            carried.delivery = inner;
        } else if let Some((inner, approver)) = super::approval::unwrap_approval(&carried.delivery)?
        {
            if carried.rerun.is_none() {
                carried.approved_by.get_or_insert(approver);
            }
            carried.delivery = inner;
        } else if let Some((inner, selection)) = super::replan::unwrap_replan(&carried.delivery)? {
            carried.selection.get_or_insert(selection);
            carried.delivery = inner;
        } else {
            return Ok(carried);
        }
    }
}

/// Blocking: the whole path from a stored delivery to the runs it starts. A payload that cannot
/// be read is a `PlanningError::Payload`; anything git or the mirror does is transient.
fn plan_delivery(
    mirrors: &Mirrors,
    delivery: &Delivery,
) -> Result<(String, Vec<crate::store::NewRun>), PlanningError> {
    let Carried {
        delivery,
        approved_by,
        rerun,
        selection,
    } = peel(delivery)?;
    let delivery = &delivery;
    let request = event::event_from_delivery(delivery)?;
    if let EventRequest::Ignored(reason) = &request {
        return Ok((reason.clone(), Vec::new()));
    }
    let repository = delivery.repository.as_deref().unwrap_or_default();
    let mirror = mirrors.get(repository)?;
    let Some((mut event, files)) = event::resolve(&mirror, &request)? else {
        return Ok(("ignored".to_owned(), Vec::new()));
    };
    let authority = super::authority::read_authority(&mirror)?;
    event::classify(&mut event, authority.as_ref());
    let trust = super::authority::trust_level(event.kind, request.is_from_fork());
    let authority_commit = authority
        .as_ref()
        .map(|authority| authority.commit.as_str());
    let mut runs =
        super::plan_runs_selected(&files, &event, trust, authority_commit, selection.as_ref());
    if let Some(rerun) = &rerun {
        runs.retain(|run| run.pipeline == rerun.pipeline);
        tracing::info!(delivery = %delivery.id, pipeline = %rerun.pipeline, by = %rerun.requested_by, "re-run asked for");
    }
    if trust == crate::model::TrustLevel::Untrusted {
        match &approved_by {
            Some(approver) => {
                tracing::info!(delivery = %delivery.id, approver, "untrusted runs approved")
            }
            None => super::approval::hold(&mut runs),
        }
    }
    let why = selection
        .map(|selection| format!(" ({})", selection.reason))
        .unwrap_or_default();
    Ok((
        format!(
            "{} run(s) for {} {}{why}",
            runs.len(),
            event.kind,
            crate::model::short_commit(&event.commit)
        ),
        runs,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Instant;

    const REPOSITORY: &str = "acme/ml-platform";

    fn delivery(id: &str, event: &str, payload: serde_json::Value) -> Delivery {
        Delivery {
            id: id.to_owned(),
            event: event.to_owned(),
            repository: Some(REPOSITORY.to_owned()),
            payload: serde_json::to_vec(&payload).unwrap(),
            received_at: chrono::Utc::now(),
        }
    }

    /// Outcome kind (`pending`, `planned`, `ignored`, `error`) of each event's deliveries.
    fn outcomes(store: &dyn Store) -> BTreeMap<String, String> {
        store
            .stats()
            .unwrap()
            .deliveries_by_event
            .into_iter()
            .map(|(event, kind, _)| (event, kind))
            .collect()
    }

    fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_fetch_is_retried_later_while_the_next_deliveries_are_planned_at_once() {
        let directory = tempfile::tempdir().unwrap();
        let database = crate::store::open(&directory.path().join("sluice.db")).unwrap();
        let store: Arc<dyn Store> = database.clone();
        let replica = super::super::replica::ReplicaSettings::new(
            Duration::from_secs(15),
            Duration::from_secs(5),
        );
        super::super::replica::register(database.as_ref(), &replica, "test").unwrap();
        let unreachable = directory.path().join("no-such-repository");
        let mirrors = Arc::new(Mirrors::new(
            directory.path().join("mirrors"),
            BTreeMap::from([(REPOSITORY.to_owned(), unreachable.display().to_string())]),
        ));
        // Planning this one needs git, which fails: a reason that may pass.
        let pull_request = serde_json::json!({
            "action": "opened",
            "number": 7,
            "pull_request": {
                "head": { "sha": "1".repeat(40), "ref": "feature" },
                "base": { "ref": "main" }
            }
        });
        store
            .insert_delivery(&delivery("d-1", "pull_request", pull_request))
            .unwrap();
        // Never needs git.
        store
            .insert_delivery(&delivery("d-2", "star", serde_json::json!({})))
            .unwrap();
        // Can never be planned: no attempt may be spent on it after the first.
        let no_after = serde_json::json!({ "ref": "refs/heads/main" });
        store
            .insert_delivery(&delivery("d-3", "push", no_after))
            .unwrap();
        let started = Instant::now();
        let worker = tokio::spawn(
            IntakeWorker {
                store: store.clone(),
                claims: super::super::replica::Claims {
                    store: database.clone(),
                    replica: replica.id.clone(),
                    poll: Duration::from_secs(5),
                },
                mirrors,
                wakeup: Arc::new(Notify::new()),
                dispatcher_wakeup: Arc::new(Notify::new()),
                commands_wakeup: Arc::new(Notify::new()),
                retry: RetrySchedule {
                    first_delay: Duration::from_secs(1),
                    max_delay: Duration::from_secs(1),
                    max_attempts: 2,
                },
            }
            .run(),
        );
        let reader = store.clone();
        tokio::task::spawn_blocking(move || {
            wait_until(
                "the later deliveries are planned",
                Duration::from_secs(10),
                || {
                    let now = outcomes(reader.as_ref());
                    now.get("star").is_some_and(|kind| kind == "ignored")
                        && now.get("push").is_some_and(|kind| kind == "error")
                },
            );
            let meanwhile = outcomes(reader.as_ref());
            assert_eq!(meanwhile["pull_request"], "pending", "{meanwhile:?}");
            wait_until(
                "the retried delivery gives up",
                Duration::from_secs(10),
                || outcomes(reader.as_ref())["pull_request"] == "error",
            );
            assert_eq!(reader.next_delivery_retry().unwrap(), None);
        })
        .await
        .unwrap();
        // The second attempt waited for its time (one second), not for a wake-up or a poll.
        assert!(started.elapsed() >= Duration::from_secs(1));
        worker.abort();
    }
}
