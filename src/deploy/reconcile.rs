//! The promotion reconciler for one repository: for each environment, in promotion order, compare
//! the release it should run with the one it runs, check the gates, and deploy through the targets.
//! Git order rules: the newest healthy release upstream is the candidate (a newer one supersedes an
//! older one waiting at a gate) and an older release never replaces a newer one except by an
//! explicit rollback. One deployment per environment at a time (the store's running-deployment
//! lock); a deployment found running at start is resumed from its recorded steps. A person's
//! promotion request passes the same gates and stays pending until they pass, unless an admin
//! forced it with a reason; it never goes back in git order (that is a rollback).

use crate::config::environment::Environment;
use crate::deploy::execute::{Execution, HealthSettings, Outcome, blocking};
use crate::deploy::gates::{self, GateInput, TeamDirectory};
use crate::deploy::{DeployContext, Release, Target, TargetError};
use crate::policy::Clock;
use crate::store::StoreError;
use crate::store::{
    DeployStore, Deployment, DeploymentAction, EnvironmentState, NewAuditEntry, NewDeployment,
};
use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;

pub mod drift;
mod policy_gate;
mod requests;

/// The targets an environment deploys to, in apply order.
pub trait TargetFactory: Send + Sync {
    fn targets(
        &self,
        repository: &str,
        environment: &Environment,
    ) -> Result<Vec<Arc<dyn Target>>, TargetError>;
}

/// A checkout of a release's commit for the targets to read.
pub trait TreeSource: Send + Sync {
    fn tree<'a>(&'a self, release: &'a Release) -> BoxFuture<'a, Result<PathBuf, String>>;

    /// The `policies/` folder that judges `release`: the default branch's at the release's
    /// `config_commit`, never the release's own. `None`: no policies, the policy gate passes.
    fn policies<'a>(
        &'a self,
        _release: &'a Release,
    ) -> BoxFuture<'a, Result<Option<PathBuf>, String>> {
        Box::pin(async { Ok(None) })
    }
}

pub struct Reconciler {
    pub store: Arc<dyn DeployStore>,
    pub repository: String,
    /// Every environment of the repository (any order; the reconciler sorts them by `after`).
    pub environments: Vec<Environment>,
    pub targets: Arc<dyn TargetFactory>,
    pub trees: Arc<dyn TreeSource>,
    pub clock: Arc<dyn Clock + Send + Sync>,
    pub teams: Arc<dyn TeamDirectory>,
    pub health: HealthSettings,
}

/// What one pass did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// `(environment, release, outcome)` for each deployment finished in this pass.
    pub deployments: Vec<(String, String, String)>,
    /// `(environment, release, reasons)` for each candidate held at a gate.
    pub blocked: Vec<(String, String, Vec<String>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Setup(String),
    /// A person's request that cannot be carried out as asked; the message says what to do.
    #[error("{0}")]
    Refused(String),
}

/// Environments sorted so that each comes after the one named in its `after`.
pub fn promotion_order(environments: &[Environment]) -> Vec<Environment> {
    let mut ordered: Vec<Environment> = Vec::new();
    let mut remaining: Vec<Environment> = environments.to_vec();
    remaining.sort_by(|one, two| one.name.cmp(&two.name));
    while !remaining.is_empty() {
        let ready = remaining
            .iter()
            .position(|environment| match &environment.after {
                None => true,
                Some(after) => {
                    ordered.iter().any(|done| &done.name == after)
                        || !environments.iter().any(|known| &known.name == after)
                }
            });
        // A cycle is reported by `sluice validate`; here the rest keeps its name order.
        let index = ready.unwrap_or(0);
        ordered.push(remaining.remove(index));
    }
    ordered
}

impl Reconciler {
    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn time(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
    }

    async fn audit(
        &self,
        environment: Option<&str>,
        release: Option<&str>,
        action: &str,
        actor: Option<&str>,
        outcome: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let owned = (
            self.repository.clone(),
            environment.map(str::to_owned),
            release.map(str::to_owned),
            action.to_owned(),
            actor.map(str::to_owned),
            outcome.to_owned(),
            reason.to_owned(),
            self.now(),
        );
        blocking(&self.store, move |store| {
            store.record_audit(&NewAuditEntry {
                repository: &owned.0,
                environment: owned.1.as_deref(),
                release: owned.2.as_deref(),
                action: &owned.3,
                actor: owned.4.as_deref(),
                outcome: &owned.5,
                reason: &owned.6,
                at: owned.7,
            })
        })
        .await
    }

    /// One pass over every environment: finish interrupted deployments, carry out requests, then
    /// promote. Safe to call at any time and from a loop.
    pub async fn pass(&self) -> Result<PassReport, ReconcileError> {
        let mut report = PassReport::default();
        let repository = self.repository.clone();
        let running = blocking(&self.store, move |store| {
            store.running_deployments(&repository)
        })
        .await?;
        for deployment in running {
            let Some(environment) = self.environment(&deployment.environment) else {
                continue;
            };
            tracing::info!(environment = %environment.name, release = %deployment.release, "resuming an interrupted deployment");
            self.carry_out(&environment, deployment, &mut report)
                .await?;
        }
        let repository = self.repository.clone();
        let requests = blocking(&self.store, move |store| {
            store.pending_requests(&repository)
        })
        .await?;
        for request in requests {
            self.handle_request(request, &mut report).await?;
        }
        let ordered = promotion_order(&self.environments);
        let names: Vec<String> = ordered
            .iter()
            .map(|environment| environment.name.clone())
            .collect();
        let repository = self.repository.clone();
        blocking(&self.store, move |store| {
            store.record_environment_order(&repository, &names)
        })
        .await?;
        for environment in ordered {
            self.promote(&environment, &mut report).await?;
        }
        Ok(report)
    }

    fn environment(&self, name: &str) -> Option<Environment> {
        self.environments
            .iter()
            .find(|environment| environment.name == name)
            .cloned()
    }

    async fn states(&self) -> Result<Vec<EnvironmentState>, StoreError> {
        let repository = self.repository.clone();
        blocking(&self.store, move |store| {
            store.environment_states(&repository)
        })
        .await
    }

    async fn release(&self, id: &str) -> Result<Option<Release>, StoreError> {
        let (repository, id) = (self.repository.clone(), id.to_owned());
        blocking(&self.store, move |store| store.release(&repository, &id)).await
    }

    async fn rejected(&self) -> Result<Vec<String>, StoreError> {
        let repository = self.repository.clone();
        let rejected = blocking(&self.store, move |store| {
            store.rejected_releases(&repository)
        })
        .await?;
        Ok(rejected.into_iter().map(|(id, _)| id).collect())
    }

    /// The release the environment should run next by automatic promotion, if any.
    async fn candidate(
        &self,
        environment: &Environment,
        states: &[EnvironmentState],
    ) -> Result<Option<(Release, Option<DateTime<Utc>>)>, StoreError> {
        let rejected = self.rejected().await?;
        match &environment.after {
            None => {
                let repository = self.repository.clone();
                let releases =
                    blocking(&self.store, move |store| store.releases(&repository)).await?;
                Ok(releases
                    .into_iter()
                    .find(|release| {
                        release.branch == environment.deploy_branch()
                            && !rejected.contains(&release.id)
                    })
                    .map(|release| (release, None)))
            }
            Some(after) => {
                let Some(upstream) = states.iter().find(|state| &state.environment == after) else {
                    return Ok(None);
                };
                if rejected.contains(&upstream.release) {
                    return Ok(None);
                }
                let release = self.release(&upstream.release).await?;
                Ok(release.map(|release| (release, Some(Self::time(upstream.healthy_since)))))
            }
        }
    }

    async fn promote(
        &self,
        environment: &Environment,
        report: &mut PassReport,
    ) -> Result<(), ReconcileError> {
        let states = self.states().await?;
        let Some((candidate, upstream_healthy_since)) =
            self.candidate(environment, &states).await?
        else {
            return Ok(());
        };
        let current = states
            .iter()
            .find(|state| state.environment == environment.name)
            .map(|state| state.release.clone());
        let current_release = match &current {
            Some(id) => self.release(id).await?,
            None => None,
        };
        if let Some(current_release) = &current_release
            && candidate.sequence <= current_release.sequence
        {
            // Already there, or older than what runs: only a rollback goes back in git order.
            return Ok(());
        }
        let (repository, name, id) = (
            self.repository.clone(),
            environment.name.clone(),
            candidate.id.clone(),
        );
        let approvals = blocking(&self.store, move |store| {
            store.approvals(&repository, &name, &id)
        })
        .await?;
        let memberships =
            gates::resolve_memberships(environment, &approvals, self.teams.as_ref()).await;
        let decisions = gates::evaluate(&GateInput {
            environment,
            release: &candidate,
            previous_healthy_since: upstream_healthy_since,
            approvals: &approvals,
            memberships: &memberships,
            now: self.clock.now(),
        });
        let mut decisions = decisions;
        if decisions.iter().all(|decision| decision.passed) {
            decisions.push(
                self.policy_decision(environment, &candidate, current_release.clone(), &approvals)
                    .await,
            );
            if decisions.iter().all(|decision| decision.passed) {
                decisions.push(self.drift_decision(environment).await?);
            }
        }
        let blocked: Vec<String> = decisions
            .iter()
            .filter(|decision| !decision.passed)
            .map(|decision| format!("{}: {}", decision.gate, decision.reason))
            .collect();
        if !blocked.is_empty() {
            self.audit_gate_once(environment, &candidate, None, &blocked)
                .await?;
            report
                .blocked
                .push((environment.name.clone(), candidate.id.clone(), blocked));
            return Ok(());
        }
        let passed: Vec<String> = decisions
            .iter()
            .map(|decision| format!("{}: {}", decision.gate, decision.reason))
            .collect();
        let reason = if passed.is_empty() {
            "automatic".to_owned()
        } else {
            passed.join(" | ")
        };
        self.audit(
            Some(&environment.name),
            Some(&candidate.id),
            "gate",
            None,
            "passed",
            &reason,
        )
        .await?;
        self.start(
            environment,
            &candidate,
            current,
            DeploymentAction::Promote,
            None,
            &reason,
            report,
        )
        .await
    }

    /// Records a gate that holds a release once per distinct reason and asker (`None`: automatic
    /// promotion), not on every pass. A soak's countdown changes every pass and is not a new reason.
    async fn audit_gate_once(
        &self,
        environment: &Environment,
        release: &Release,
        actor: Option<&str>,
        blocked: &[String],
    ) -> Result<(), StoreError> {
        let key = |reason: &str| -> Vec<String> {
            reason
                .split(" | ")
                .map(|line| {
                    if line.starts_with("soak:") {
                        "soak".to_owned()
                    } else {
                        line.to_owned()
                    }
                })
                .collect()
        };
        let reason = blocked.join(" | ");
        let (repository, name) = (self.repository.clone(), environment.name.clone());
        let history = blocking(&self.store, move |store| {
            store.audit(&repository, Some(&name))
        })
        .await?;
        let last_gate = history.iter().rev().find(|entry| {
            // Automatic promotion and a person's request for the same release are told apart
            // by who asked, so that each is recorded once per reason.
            entry.action == "gate"
                && entry.release.as_deref() == Some(&release.id)
                && entry.actor.as_deref() == actor
        });
        let same = last_gate
            .is_some_and(|entry| entry.outcome == "blocked" && key(&entry.reason) == key(&reason));
        if !same {
            self.audit(
                Some(&environment.name),
                Some(&release.id),
                "gate",
                actor,
                "blocked",
                &reason,
            )
            .await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        environment: &Environment,
        release: &Release,
        previous: Option<String>,
        action: DeploymentAction,
        actor: Option<&str>,
        reason: &str,
        report: &mut PassReport,
    ) -> Result<(), ReconcileError> {
        let new = NewDeployment {
            repository: self.repository.clone(),
            environment: environment.name.clone(),
            release: release.id.clone(),
            previous,
            action,
            actor: actor.map(str::to_owned),
            reason: Some(reason.to_owned()),
            at: self.now(),
        };
        let started = blocking(&self.store, {
            let new = new.clone();
            move |store| store.start_deployment(&new)
        })
        .await?;
        let Some(id) = started else {
            // Another reconciler holds the environment; it will finish what it started.
            return Ok(());
        };
        self.audit(
            Some(&environment.name),
            Some(&release.id),
            action.as_str(),
            actor,
            "started",
            reason,
        )
        .await?;
        let deployment = Deployment {
            id,
            repository: new.repository,
            environment: new.environment,
            release: new.release,
            previous: new.previous,
            action,
            status: crate::store::DeploymentStatus::Running,
            actor: new.actor,
            reason: new.reason,
            started_at: new.at,
            finished_at: None,
        };
        self.carry_out(environment, deployment, report).await
    }

    /// Runs (or resumes) a deployment to its end and records the outcome.
    async fn carry_out(
        &self,
        environment: &Environment,
        deployment: Deployment,
        report: &mut PassReport,
    ) -> Result<(), ReconcileError> {
        let release = self.release(&deployment.release).await?.ok_or_else(|| {
            ReconcileError::Setup(format!(
                "deployment {} names an unknown release {}",
                deployment.id, deployment.release
            ))
        })?;
        let previous = match &deployment.previous {
            Some(id) => self.release(id).await?,
            None => None,
        };
        let outcome = match self
            .execute(environment, &deployment, &release, previous)
            .await
        {
            Ok(outcome) => outcome,
            Err(problem) => Outcome::Failed(problem),
        };
        let now = self.now();
        let running_now = match &outcome {
            Outcome::Succeeded => Some(release.id.clone()),
            _ => None,
        };
        let (id, status, reason) = (
            deployment.id,
            outcome.status(),
            outcome.reason().map(str::to_owned),
        );
        blocking(&self.store, move |store| {
            store.finish_deployment_at(id, status, reason.as_deref(), now, running_now.as_deref())
        })
        .await?;
        let action = deployment.action.as_str();
        match &outcome {
            Outcome::Succeeded => {
                self.audit(
                    Some(&environment.name),
                    Some(&release.id),
                    action,
                    deployment.actor.as_deref(),
                    "succeeded",
                    "every target healthy",
                )
                .await?;
            }
            Outcome::RolledBack(reason) | Outcome::Failed(reason) => {
                let outcome_word = status.as_str();
                self.audit(
                    Some(&environment.name),
                    Some(&release.id),
                    action,
                    deployment.actor.as_deref(),
                    outcome_word,
                    reason,
                )
                .await?;
                if deployment.action != DeploymentAction::Rollback {
                    let (repository, id, why) = (
                        self.repository.clone(),
                        release.id.clone(),
                        format!("failed in {}: {reason}", environment.name),
                    );
                    blocking(&self.store, move |store| {
                        store.reject_release(&repository, &id, &why)
                    })
                    .await?;
                    self.audit(
                        Some(&environment.name),
                        Some(&release.id),
                        "reject",
                        None,
                        "recorded",
                        "a failed deployment rejects the release; promotion stops here",
                    )
                    .await?;
                }
            }
        }
        report.deployments.push((
            environment.name.clone(),
            release.id.clone(),
            status.as_str().to_owned(),
        ));
        Ok(())
    }

    async fn execute(
        &self,
        environment: &Environment,
        deployment: &Deployment,
        release: &Release,
        previous: Option<Release>,
    ) -> Result<Outcome, String> {
        let (mut targets, context) = self
            .targets_and_context(environment, release, previous)
            .await?;
        if deployment.action == DeploymentAction::Rollback {
            // Terraform only applies a plan reviewed against today's state; the plan an old
            // release carried was made against the state before it. Infrastructure goes back
            // through a pull request whose plan is reviewed like any other.
            targets.retain(|target| target.kind().joins_rollbacks());
        }
        let clock = self.clock.clone();
        let now = move || clock.now().timestamp();
        let execution = Execution {
            store: &self.store,
            deployment: deployment.id,
            targets: &targets,
            context: &context,
            health: self.health,
            now: &now,
            undo_on_failure: deployment.action != DeploymentAction::Rollback,
        };
        execution.run().await.map_err(|error| error.to_string())
    }

    /// The environment's targets in deploy order and a context for deploying `release` there,
    /// with a checkout of its commit.
    async fn targets_and_context(
        &self,
        environment: &Environment,
        release: &Release,
        previous: Option<Release>,
    ) -> Result<(Vec<Arc<dyn Target>>, DeployContext), String> {
        let mut targets = self
            .targets
            .targets(&self.repository, environment)
            .map_err(|error| error.to_string())?;
        targets.sort_by_key(|target| target.kind());
        let tree = self.trees.tree(release).await?;
        let context = DeployContext {
            environment: environment.clone(),
            release: release.clone(),
            tree,
            previous,
            applied: Default::default(),
        };
        Ok((targets, context))
    }
}
