//! Terraform locks as people meet them: one per repository + environment + directory, held from
//! plan to apply or until the pull request closes, durable with a lease. Contention is a result
//! with a message ("locked by pull request #12; apply or unlock it there"), never an error. This
//! file holds the functions the command layer calls (`unlock`, `release_for_closed_pull_request`,
//! `list`, `unlock_one`) and the wording; the rows live in the store. Releasing a lock leaves its
//! queue as it is: the queue's head is planned again by whoever watches for free locks.

use crate::store::{
    LockHolder, LockListing, LockOutcome, LockRecord, LockRequest, StoreError, StoreResult,
    TerraformStore, TerraformTarget,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

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

/// A lock as `sluice locks --json` and `GET /api/locks` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockView {
    pub repository: String,
    pub environment: String,
    pub dir: String,
    pub holder: HolderView,
    pub acquired_at: DateTime<Utc>,
    pub age_seconds: i64,
    pub lease_expires_at: DateTime<Utc>,
    /// Whether the lease ran out (the next plan may take the lock).
    pub expired: bool,
    pub queue: Vec<QueuedView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HolderView {
    pub pull_request: Option<u64>,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueuedView {
    pub pull_request: Option<u64>,
    pub label: String,
    pub enqueued_at: DateTime<Utc>,
}

impl LockView {
    pub fn of(listing: &LockListing, now: DateTime<Utc>) -> LockView {
        let lock = &listing.lock;
        LockView {
            repository: lock.target.repository.clone(),
            environment: lock.target.environment.clone(),
            dir: lock.target.dir.clone(),
            holder: HolderView {
                pull_request: lock.holder.pull_request,
                label: lock.holder.label.clone(),
            },
            acquired_at: lock.acquired_at,
            age_seconds: (now - lock.acquired_at).num_seconds().max(0),
            lease_expires_at: lock.lease_expires_at,
            expired: lock.lease_expires_at <= now,
            queue: listing
                .queue
                .iter()
                .map(|waiting| QueuedView {
                    pull_request: waiting.holder.pull_request,
                    label: waiting.holder.label.clone(),
                    enqueued_at: waiting.enqueued_at,
                })
                .collect(),
        }
    }
}

/// Every lock with its queue, as people see it at `now`.
pub fn list(store: &dyn TerraformStore, now: DateTime<Utc>) -> StoreResult<Vec<LockView>> {
    Ok(store
        .terraform_locks()?
        .iter()
        .map(|listing| LockView::of(listing, now))
        .collect())
}

/// Which lock to release: the environment, and what narrows it down when several match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnlockWanted<'a> {
    pub repository: Option<&'a str>,
    pub environment: &'a str,
    pub pull_request: Option<u64>,
    pub dir: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    /// No lock matches; the message says what is locked instead.
    #[error("{0}")]
    NotFound(String),
    /// Several locks match; the message lists them and how to choose.
    #[error("{0}")]
    Ambiguous(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The one lock `wanted` names among `locks`, or why there is not exactly one. Pure.
pub fn choose<'a>(
    locks: &'a [LockListing],
    wanted: &UnlockWanted<'_>,
) -> Result<&'a LockListing, UnlockError> {
    let matching: Vec<&LockListing> = locks
        .iter()
        .filter(|listing| {
            let lock = &listing.lock;
            lock.target.environment == wanted.environment
                && wanted
                    .repository
                    .is_none_or(|repository| lock.target.repository == repository)
                && wanted.dir.is_none_or(|dir| lock.target.dir == dir)
                && wanted
                    .pull_request
                    .is_none_or(|number| lock.holder.pull_request == Some(number))
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => {
            let mut asked = format!("environment `{}`", wanted.environment);
            if let Some(repository) = wanted.repository {
                asked.push_str(&format!(" of {repository}"));
            }
            if let Some(dir) = wanted.dir {
                asked.push_str(&format!(" in dir `{dir}`"));
            }
            if let Some(number) = wanted.pull_request {
                asked.push_str(&format!(" held by pull request #{number}"));
            }
            Err(UnlockError::NotFound(format!(
                "no terraform lock for {asked}; `sluice locks` lists the locks there are"
            )))
        }
        many => Err(UnlockError::Ambiguous(format!(
            "{} locks match: {}; choose one with --repo, --dir or --pull-request (API: `dir`, `pull_request`)",
            many.len(),
            many.iter()
                .map(|listing| {
                    let lock = &listing.lock;
                    format!(
                        "{} {} {} (held by {})",
                        lock.target.repository,
                        lock.target.environment,
                        lock.target.dir,
                        lock.holder.label
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

/// Releases the one lock `wanted` names, whoever holds it, and leaves its queue intact. Returns
/// the lock as it was, with the queue still waiting behind it.
pub fn unlock_one(
    store: &dyn TerraformStore,
    wanted: &UnlockWanted<'_>,
) -> Result<LockListing, UnlockError> {
    let locks = store.terraform_locks()?;
    let chosen = choose(&locks, wanted)?.clone();
    let target = &chosen.lock.target;
    store
        .release_terraform_lock(target, chosen.lock.holder.pull_request)?
        .ok_or_else(|| {
            UnlockError::NotFound(format!(
                "the lock on {} {} {} was released meanwhile",
                target.repository, target.environment, target.dir
            ))
        })?;
    Ok(chosen)
}

/// The sentence that confirms a release.
pub fn unlocked_message(lock: &LockRecord, queued: usize) -> String {
    let mut message = format!(
        "released the lock on {} in {} ({}) held by {}",
        lock.target.environment, lock.target.repository, lock.target.dir, lock.holder.label
    );
    if queued > 0 {
        message.push_str(&format!(
            "; {queued} waiting in its queue, the first is planned again next"
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LockHolder, QueuedHolder};

    fn listing(repository: &str, environment: &str, dir: &str, pull_request: u64) -> LockListing {
        let at = DateTime::from_timestamp(1_000, 0).unwrap();
        LockListing {
            lock: LockRecord {
                target: TerraformTarget {
                    repository: repository.into(),
                    environment: environment.into(),
                    dir: dir.into(),
                },
                holder: holder(Some(pull_request), ""),
                generation: 1,
                acquired_at: at,
                lease_expires_at: at + DEFAULT_LEASE,
            },
            queue: vec![QueuedHolder {
                holder: LockHolder {
                    pull_request: Some(99),
                    label: "pull request #99".into(),
                },
                enqueued_at: at,
            }],
        }
    }

    #[test]
    fn one_matching_lock_is_chosen_and_several_or_none_are_refused_with_what_to_do() {
        let locks = [
            listing("acme/platform", "production", "infra/network", 12),
            listing("acme/platform", "production", "infra/data", 13),
            listing("acme/platform", "staging", "infra/network", 14),
        ];
        let wanted = |dir: Option<&'static str>, pull_request: Option<u64>| UnlockWanted {
            repository: None,
            environment: "production",
            pull_request,
            dir,
        };
        let ambiguous = choose(&locks, &wanted(None, None)).unwrap_err().to_string();
        assert!(
            ambiguous.contains("2 locks match")
                && ambiguous.contains("infra/network")
                && ambiguous.contains("infra/data")
                && ambiguous.contains("--dir"),
            "{ambiguous}"
        );
        let by_dir = choose(&locks, &wanted(Some("infra/data"), None)).unwrap();
        assert_eq!(by_dir.lock.holder.pull_request, Some(13));
        let by_pull_request = choose(&locks, &wanted(None, Some(12))).unwrap();
        assert_eq!(by_pull_request.lock.target.dir, "infra/network");
        let missing = choose(&locks, &wanted(None, Some(7))).unwrap_err();
        assert!(matches!(missing, UnlockError::NotFound(_)));
        assert!(missing.to_string().contains("pull request #7"), "{missing}");
    }

    #[test]
    fn a_view_shows_the_holder_its_age_and_the_queue_behind_it() {
        let now = DateTime::from_timestamp(1_000 + 3_600, 0).unwrap();
        let view = LockView::of(&listing("acme/platform", "production", "infra", 12), now);
        assert_eq!(view.holder.label, "pull request #12");
        assert_eq!(view.age_seconds, 3_600);
        assert!(!view.expired);
        assert_eq!(view.queue[0].pull_request, Some(99));
    }
}
