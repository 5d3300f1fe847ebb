//! Carrying out one deployment: each target in the registry's order (`crate::targets`),
//! apply, record the rollback data, wait for health, record it; on failure undo what was applied,
//! newest first. Every step is recorded before the next call, so a deployment interrupted by a
//! crash resumes where it stopped and never applies a target twice.

use crate::deploy::{DeployContext, Health, Target, TargetError};
use crate::store::{DeployStore, DeploymentStatus, StepPhase, StepState};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How health is awaited after an apply.
#[derive(Clone, Copy, Debug)]
pub struct HealthSettings {
    pub poll: Duration,
    pub timeout: Duration,
}

impl Default for HealthSettings {
    fn default() -> HealthSettings {
        HealthSettings {
            poll: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
        }
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
        for target in self.targets {
            let kind = target.kind();
            let earlier = recorded.iter().find(|step| step.target == kind.as_str());
            let mut step = match earlier {
                Some(step) if step.phase == StepPhase::Healthy => continue,
                Some(step) if step.phase == StepPhase::Applied => step.clone(),
                _ => match target.apply(self.context).await {
                    Ok(applied) => {
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
            match self.await_health(target.as_ref()).await {
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

    async fn record(&self, step: &StepState) -> Result<(), crate::store::StoreError> {
        let (deployment, step) = (self.deployment, step.clone());
        blocking(self.store, move |store| {
            store.record_step(deployment, &step)
        })
        .await
    }

    async fn await_health(&self, target: &dyn Target) -> Result<(), String> {
        let kind = target.kind().as_str();
        let started = Instant::now();
        loop {
            match target.health(self.context).await {
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
