//! The intake worker: takes accepted deliveries in arrival order and plans each exactly once.
//! Planning a delivery and recording its runs is one store transaction, so a crash at any moment
//! either leaves the delivery pending (planned again after restart) or fully planned.

use super::Mirrors;
use super::event::{self, EventRequest};
use crate::model::Delivery;
use crate::store::Store;
use std::sync::Arc;
use tokio::sync::Notify;

/// How many times a delivery is planned before its error becomes its outcome.
const PLANNING_ATTEMPTS: u32 = 4;

pub struct IntakeWorker {
    pub store: Arc<dyn Store>,
    pub mirrors: Arc<Mirrors>,
    /// Woken by the webhook handler after each stored delivery.
    pub wakeup: Arc<Notify>,
    /// Woken after runs were recorded, so the dispatcher starts them.
    pub dispatcher_wakeup: Arc<Notify>,
}

impl IntakeWorker {
    /// Runs until the process ends. Deliveries left pending by a crash are planned first.
    pub async fn run(self) {
        loop {
            let store = self.store.clone();
            let pending =
                match tokio::task::spawn_blocking(move || store.pending_deliveries(64)).await {
                    Ok(Ok(pending)) => pending,
                    Ok(Err(error)) => {
                        tracing::error!(%error, "cannot read pending deliveries; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(%error, "intake task failed");
                        continue;
                    }
                };
            if pending.is_empty() {
                self.wakeup.notified().await;
                continue;
            }
            for delivery in pending {
                self.plan_delivery(delivery).await;
            }
            self.dispatcher_wakeup.notify_one();
        }
    }

    async fn plan_delivery(&self, delivery: Delivery) {
        let store = self.store.clone();
        let mirrors = self.mirrors.clone();
        let delivery_id = delivery.id.clone();
        let result = tokio::task::spawn_blocking(move || {
            // A remote can be briefly unreachable, or GitHub can deliver before the pushed commit
            // is fetchable: try a few times with growing pauses before giving up. Deliveries stay
            // in order meanwhile, which keeps runs in git order.
            let mut attempt = 0;
            let (outcome, runs) = loop {
                attempt += 1;
                match plan_delivery(&mirrors, &delivery) {
                    Ok(planned) => break planned,
                    Err(error) if attempt < PLANNING_ATTEMPTS => {
                        tracing::warn!(delivery = %delivery.id, attempt, error = %format!("{error:#}"), "planning failed; retrying");
                        std::thread::sleep(std::time::Duration::from_millis(500 << attempt));
                    }
                    // Still failing: the delivery is completed with the error as its outcome,
                    // so it is visible and never retried forever.
                    Err(error) => {
                        tracing::error!(delivery = %delivery.id, error = %format!("{error:#}"), "planning failed; giving up");
                        break (format!("error: {error:#}"), Vec::new());
                    }
                }
            };
            tracing::info!(delivery = %delivery.id, event = %delivery.event, %outcome, "delivery planned");
            release_locks_of_closed_pull_request(store.as_ref(), &delivery);
            store.complete_delivery(&delivery.id, &outcome, &runs)
        })
        .await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(delivery = %delivery_id, %error, "cannot record the planned runs")
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

/// Blocking: the whole path from a stored delivery to the runs it starts.
fn plan_delivery(
    mirrors: &Mirrors,
    delivery: &Delivery,
) -> anyhow::Result<(String, Vec<crate::store::NewRun>)> {
    let request = event::event_from_delivery(delivery).map_err(anyhow::Error::msg)?;
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
    let runs = super::plan_runs_for(&files, &event, trust, authority_commit);
    Ok((
        format!(
            "{} run(s) for {} {}",
            runs.len(),
            event.kind,
            crate::model::short_commit(&event.commit)
        ),
        runs,
    ))
}
