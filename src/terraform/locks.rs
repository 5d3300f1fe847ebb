//! Terraform locks as people meet them: one per repository + environment + directory, held from
//! plan to apply or until the pull request closes, durable with a lease. Contention is a result
//! with a message ("locked by pull request #12; apply or unlock it there"), never an error. This
//! file holds the functions the command layer calls (`unlock`, `release_for_closed_pull_request`)
//! and the wording; the rows live in the store.

use crate::store::{
    LockHolder, LockOutcome, LockRecord, LockRequest, StoreResult, TerraformStore, TerraformTarget,
};
use chrono::{DateTime, Utc};

/// How long a lock lasts without a renewal (a plan renews it): long enough for a review.
pub const DEFAULT_LEASE: chrono::Duration = chrono::Duration::days(7);

/// The holder for a pull request, or for a run without one.
pub fn holder(pull_request: Option<u64>, fallback_label: &str) -> LockHolder {
    LockHolder {
        pull_request,
        label: match pull_request {
            Some(number) => format!("pull request #{number}"),
            None => fallback_label.to_owned(),
        },
    }
}

/// Takes or renews the lock for a plan.
pub fn acquire(
    store: &dyn TerraformStore,
    target: &TerraformTarget,
    holder: LockHolder,
    queue: bool,
    now: DateTime<Utc>,
) -> StoreResult<LockOutcome> {
    store.acquire_terraform_lock(&LockRequest {
        target: target.clone(),
        holder,
        now,
        lease: DEFAULT_LEASE,
        queue,
    })
}

/// The sentence a user sees when someone else holds the lock; `None` when the lock was acquired.
pub fn contention_message(outcome: &LockOutcome) -> Option<String> {
    match outcome {
        LockOutcome::Acquired { .. } => None,
        LockOutcome::Held { by } => Some(held_message(by)),
        LockOutcome::Queued { by, position } => Some(format!(
            "{}; queued at position {position}, the plan runs again once it is released",
            held_message(by)
        )),
    }
}

fn held_message(lock: &LockRecord) -> String {
    let place = format!(
        "{} in {} ({})",
        lock.target.environment, lock.target.repository, lock.target.dir
    );
    match lock.holder.pull_request {
        Some(number) => format!(
            "{place} is locked by pull request #{number}; apply or unlock it there (`/sluice unlock`)"
        ),
        None => format!(
            "{place} is locked by {}; wait for it to finish or unlock it with `/sluice unlock`",
            lock.holder.label
        ),
    }
}

/// `/sluice unlock`: releases the lock whoever holds it. Returns the released lock, if any.
pub fn unlock(
    store: &dyn TerraformStore,
    repository: &str,
    environment: &str,
    dir: &str,
) -> StoreResult<Option<LockRecord>> {
    store.release_terraform_lock(
        &TerraformTarget {
            repository: repository.to_owned(),
            environment: environment.to_owned(),
            dir: dir.to_owned(),
        },
        None,
    )
}

/// A `pull_request` `closed` event (merged or not): releases every lock the pull request holds,
/// even while one of its plans is still running (that plan is then discarded, not stored).
pub fn release_for_closed_pull_request(
    store: &dyn TerraformStore,
    repository: &str,
    pull_request: u64,
) -> StoreResult<Vec<LockRecord>> {
    store.release_terraform_locks_of_pull_request(repository, pull_request)
}
