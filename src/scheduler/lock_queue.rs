//! Plans that waited in a Terraform lock's queue run when the lock is free. Whatever released
//! the lock (an apply, a closed pull request, `/sluice unlock`, `sluice unlock`, the API, an
//! expired lease), this task finds queue heads whose lock is free and plans their pull request
//! again at its newest head (the newest `pull_request` delivery sluice stored for it), keeping only
//! the queued environment's plan. The queue entry stays until the plan takes the lock (the lock
//! goes to the queue's head first); a head asked once is asked again only after `RETRY`, should
//! its plan never have reached the lock.

use super::replan::{self, PlanSelection};
use crate::store::{QueueHead, Store, StoreResult};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a queue head that was asked to plan may take to reach the lock before it is asked
/// again.
const RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

pub struct LockQueue {
    pub store: Arc<dyn Store>,
    /// Woken when a lock was released here (commands, API); other releases are seen on the tick.
    pub wakeup: Arc<Notify>,
    pub intake_wakeup: Arc<Notify>,
    pub interval: Duration,
}

impl LockQueue {
    pub async fn run(self) {
        loop {
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || start_queued_plans(store.as_ref())).await {
                Ok(Ok(started)) if started > 0 => self.intake_wakeup.notify_one(),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot start the plans waiting for locks")
                }
                Err(error) => tracing::error!(%error, "lock queue task failed"),
            }
            tokio::select! {
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}

/// One look at the queues: a re-plan delivery for each head whose lock is free. Returns how many
/// were stored.
pub fn start_queued_plans(store: &dyn Store) -> StoreResult<usize> {
    let now = chrono::Utc::now();
    let mut started = 0;
    for head in store.queue_heads_to_plan(now, now - RETRY)? {
        if plan_again(store, &head, now)? {
            started += 1;
        }
        store.mark_queue_head_asked(&head, now)?;
    }
    Ok(started)
}

fn plan_again(
    store: &dyn Store,
    head: &QueueHead,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<bool> {
    let Some(delivery) =
        store.latest_pull_request_delivery(&head.target.repository, head.pull_request)?
    else {
        tracing::warn!(repository = %head.target.repository, pull_request = head.pull_request, "a queued plan has no pull_request delivery to plan again");
        return Ok(false);
    };
    let Some(document) = serde_json::from_slice::<serde_json::Value>(&delivery.payload)
        .ok()
        .and_then(|payload| payload.get("pull_request").cloned())
    else {
        return Ok(false);
    };
    let selection = PlanSelection {
        environment: Some(head.target.environment.clone()),
        reason: format!(
            "the lock on {} was released; pull request #{} was next in its queue",
            head.target.environment, head.pull_request
        ),
    };
    let replan = replan::replan_delivery(
        format!(
            "queue:{}:{}:{}#{}@{}",
            head.target.repository,
            head.target.environment,
            head.target.dir,
            head.pull_request,
            now.timestamp_millis()
        ),
        &head.target.repository,
        &document,
        &selection,
    );
    tracing::info!(repository = %head.target.repository, environment = %head.target.environment, pull_request = head.pull_request, "planning the next pull request in the lock's queue");
    store.insert_delivery(&replan)?;
    Ok(true)
}
