//! Carrying out one deployment: each target in the registry's order (`crate::targets`),
//! apply, record the rollback data, wait for health, record it; on failure undo what was applied,
//! newest first. Every step is recorded before the next call, so a deployment interrupted by a
//! crash resumes where it stopped and never applies a target twice.

use crate::deploy::{DeployContext, Health, Target, TargetError};
use crate::store::{DeployStore, DeploymentStatus, StepPhase, StepState};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How health is awaited after an apply, and how an apply that met a transient error is retried.
#[derive(Clone, Copy, Debug)]
pub struct HealthSettings {
    pub poll: Duration,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for HealthSettings {
    fn default() -> HealthSettings {
        HealthSettings {
            poll: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
        }
    }
}

/// Retrying an apply that failed with `TargetError::Unavailable` (the target's system could not be
/// reached or answered 5xx), like kube-runtime's error policy: requeue after an exponentially
/// growing backoff, bounded in attempts, each retry recorded in the history. A definite failure
/// (`Rejected`, `Configuration`) and the last attempt's error roll back and reject the release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Applies in all, the first included (1 = never retry).
    pub attempts: u32,
    /// The wait before the first retry; doubled before each next one.
    pub backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): `backoff · 2^(attempt-1)`, at most `max_backoff`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// How a deployment ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Failed; what was applied was undone. The reason names the target and what it said.
    RolledBack(String),
    /// Failed and could not be undone completely.
    Failed(String),
}

pub struct Execution<'a> {
    pub store: &'a Arc<dyn DeployStore>,
    pub deployment: i64,
    pub targets: &'a [Arc<dyn Target>],
    pub context: &'a DeployContext,
    pub health: HealthSettings,
    /// Unix seconds now (the reconciler's clock).
    pub now: &'a (dyn Fn() -> i64 + Send + Sync),
    /// Whether a failure undoes what was applied (not for a rollback, which has nothing to return to).
    pub undo_on_failure: bool,
}

impl Execution<'_> {
    pub async fn run(&self) -> Result<Outcome, crate::store::StoreError> {
        let recorded = blocking(self.store, {
            let deployment = self.deployment;
            move |store| store.steps(deployment)
        })
        .await?;
        // Each target sees what the ones before it applied in this deployment, resumed or not.
        let mut context = self.context.clone();
        for step in &recorded {
            if matches!(step.phase, StepPhase::Applied | StepPhase::Healthy) {
                context
                    .applied
                    .insert(step.target.clone(), step.outputs.clone());
            }
        }
        for target in self.targets {
            let kind = target.kind();
            let earlier = recorded.iter().find(|step| step.target == kind.as_str());
            let mut step = match earlier {
                Some(step) if step.phase == StepPhase::Healthy => continue,
                Some(step) if step.phase == StepPhase::Applied => step.clone(),
                _ => match self.apply_with_retries(target.as_ref(), &context).await? {
                    Ok(applied) => {
                        context
                            .applied
                            .insert(kind.as_str().to_owned(), applied.outputs.clone());
                        let step = StepState {
                            target: kind.as_str().to_owned(),
                            phase: StepPhase::Applied,
                            summary: applied.summary,
                            rollback: applied.rollback,
                            outputs: applied.outputs,
                            at: (self.now)(),
                        };
                        self.record(&step).await?;
                        step
                    }
                    Err(error) => {
                        let reason = format!("{} apply failed: {error}", kind.as_str());
                        return self.fail(reason, Some(kind)).await;
                    }
                },
            };
            match self.await_health(target.as_ref(), &context).await {
                Ok(()) => {
                    step.phase = StepPhase::Healthy;
                    step.at = (self.now)();
                    self.record(&step).await?;
                }
                Err(reason) => {
                    step.phase = StepPhase::Failed;
                    step.at = (self.now)();
                    self.record(&step).await?;
                    return self.fail(reason, None).await;
                }
            }
        }
        Ok(Outcome::Succeeded)
    }

    /// Applies, retrying transient errors per the retry policy; each retry is recorded in the
    /// history with the error and the wait. Returns the last attempt's result.
    async fn apply_with_retries(
        &self,
        target: &dyn Target,
        context: &DeployContext,
    ) -> Result<Result<crate::deploy::Applied, TargetError>, crate::store::StoreError> {
        let retry = self.health.retry;
        let mut attempt = 1;
        loop {
            match target.apply(context).await {
                Err(TargetError::Unavailable(reason)) if attempt < retry.attempts.max(1) => {
                    let wait = retry.delay(attempt);
                    let kind = target.kind().as_str();
                    tracing::warn!(target = kind, attempt, ?wait, %reason, "apply met a transient error; retrying");
                    self.audit_retry(&format!(
                        "{kind} apply attempt {attempt} of {} failed: {reason}; retrying in {}",
                        retry.attempts,
                        wait_text(wait)
                    ))
                    .await?;
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(TargetError::Unavailable(reason)) if attempt > 1 => {
                    return Ok(Err(TargetError::Unavailable(format!(
                        "{reason} (after {attempt} attempts)"
                    ))));
                }
                other => return Ok(other),
            }
        }
    }

    async fn audit_retry(&self, reason: &str) -> Result<(), crate::store::StoreError> {
        let entry = (
            self.context.release.repository.clone(),
            self.context.environment.name.clone(),
            self.context.release.id.clone(),
            reason.to_owned(),
            (self.now)(),
        );
        blocking(self.store, move |store| {
            store.record_audit(&crate::store::NewAuditEntry {
                repository: &entry.0,
                environment: Some(&entry.1),
                release: Some(&entry.2),
                action: "retry",
                actor: None,
                outcome: "requeued",
                reason: &entry.3,
                at: entry.4,
            })
        })
        .await
    }

    async fn record(&self, step: &StepState) -> Result<(), crate::store::StoreError> {
        let (deployment, step) = (self.deployment, step.clone());
        blocking(self.store, move |store| {
            store.record_step(deployment, &step)
        })
        .await
    }

    async fn await_health(
        &self,
        target: &dyn Target,
        context: &DeployContext,
    ) -> Result<(), String> {
        let kind = target.kind().as_str();
        let started = Instant::now();
        loop {
            match target.health(context).await {
                Ok(Health::Healthy) => return Ok(()),
                Ok(Health::Degraded(reason)) => return Err(format!("{kind} unhealthy: {reason}")),
                Ok(Health::Progressing(reason)) if started.elapsed() >= self.health.timeout => {
                    return Err(format!(
                        "{kind} not healthy after {}s: {reason}",
                        self.health.timeout.as_secs()
                    ));
                }
                Err(TargetError::Unavailable(reason))
                    if started.elapsed() < self.health.timeout =>
                {
                    tracing::warn!(target = kind, %reason, "health check failed; asking again");
                }
                Err(error) => return Err(format!("{kind} health check failed: {error}")),
                Ok(Health::Progressing(_)) => {}
            }
            tokio::time::sleep(self.health.poll).await;
        }
    }

    /// Undoes every applied step of this deployment, newest first. `failed_apply` is a target whose
    /// apply returned an error: it may have written part of its change, so it is undone too when it
    /// recorded nothing (there is no rollback data then, and the target gets `null`).
    async fn fail(
        &self,
        reason: String,
        failed_apply: Option<crate::deploy::TargetKind>,
    ) -> Result<Outcome, crate::store::StoreError> {
        if !self.undo_on_failure {
            return Ok(Outcome::Failed(reason));
        }
        let recorded = blocking(self.store, {
            let deployment = self.deployment;
            move |store| store.steps(deployment)
        })
        .await?;
        let mut undo_problems = Vec::new();
        for target in self.targets.iter().rev() {
            let kind = target.kind();
            let step = recorded.iter().find(|step| step.target == kind.as_str());
            let rollback_data = match step {
                Some(step) if step.phase != StepPhase::RolledBack => step.rollback.clone(),
                None if failed_apply == Some(kind) => serde_json::Value::Null,
                _ => continue,
            };
            match target.rollback(self.context, &rollback_data).await {
                Ok(undone) => {
                    let state = StepState {
                        target: kind.as_str().to_owned(),
                        phase: StepPhase::RolledBack,
                        summary: undone.summary,
                        rollback: rollback_data,
                        outputs: undone.outputs,
                        at: (self.now)(),
                    };
                    self.record(&state).await?;
                }
                Err(error) => {
                    undo_problems.push(format!("{} rollback failed: {error}", kind.as_str()))
                }
            }
        }
        if undo_problems.is_empty() {
            Ok(Outcome::RolledBack(reason))
        } else {
            Ok(Outcome::Failed(format!(
                "{reason}; {}",
                undo_problems.join("; ")
            )))
        }
    }
}

impl Outcome {
    pub fn status(&self) -> DeploymentStatus {
        match self {
            Outcome::Succeeded => DeploymentStatus::Succeeded,
            Outcome::RolledBack(_) => DeploymentStatus::RolledBack,
            Outcome::Failed(_) => DeploymentStatus::Failed,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Succeeded => None,
            Outcome::RolledBack(reason) | Outcome::Failed(reason) => Some(reason),
        }
    }
}

/// `250ms`, `4s`, `1m04s`.
fn wait_text(wait: Duration) -> String {
    if wait < Duration::from_secs(1) {
        format!("{}ms", wait.as_millis())
    } else {
        crate::deploy::gates::human(wait)
    }
}

/// Runs a store call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &Arc<dyn DeployStore>,
    work: impl FnOnce(&dyn DeployStore) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, crate::store::StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || work(store.as_ref()))
        .await
        .expect("store calls do not panic")
}
