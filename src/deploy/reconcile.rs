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
use crate::deploy::state::{
    DeployRequest, DeployStore, Deployment, DeploymentAction, EnvironmentState, NewAuditEntry,
    NewDeployment, RequestAction,
};
use crate::deploy::{DeployContext, Release, Target, TargetError, TargetKind};
use crate::policy::Clock;
use crate::store::StoreError;
use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;

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

/// What the gates say about a person's promotion request.
enum RequestGates {
    /// Every gate passed; their reasons.
    Passed(String),
    /// A gate holds it; the request stays pending.
    Held,
    /// An admin forced it; what was skipped and why.
    Forced(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Setup(String),
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
        for environment in promotion_order(&self.environments) {
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
        let decisions = gates::evaluate(&GateInput {
            environment,
            release: &candidate,
            previous_healthy_since: upstream_healthy_since,
            approvals: &approvals,
            teams: self.teams.as_ref(),
            now: self.clock.now(),
        });
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
            status: crate::deploy::state::DeploymentStatus::Running,
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
            Outcome::Succeeded => Some((release.id.clone(), now)),
            _ => None,
        };
        let (id, status, reason) = (
            deployment.id,
            outcome.status(),
            outcome.reason().map(str::to_owned),
        );
        blocking(&self.store, move |store| {
            store.finish_deployment(
                id,
                status,
                reason.as_deref(),
                running_now
                    .as_ref()
                    .map(|(release, at)| (release.as_str(), *at)),
            )
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
        let mut targets = self
            .targets
            .targets(&self.repository, environment)
            .map_err(|error| error.to_string())?;
        targets.sort_by_key(|target| target.kind());
        if deployment.action == DeploymentAction::Rollback {
            // Terraform only applies a plan reviewed against today's state; the plan an old
            // release carried was made against the state before it. Infrastructure goes back
            // through a pull request whose plan is reviewed like any other.
            targets.retain(|target| target.kind() != TargetKind::Terraform);
        }
        let tree = self.trees.tree(release).await?;
        let context = DeployContext {
            environment: environment.clone(),
            release: release.clone(),
            tree,
            previous,
        };
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

    /// Carries out a person's request, or leaves a promotion pending while its gates hold it.
    async fn handle_request(
        &self,
        request: DeployRequest,
        report: &mut PassReport,
    ) -> Result<(), ReconcileError> {
        let outcome = match self.request_target(&request).await? {
            Err(refusal) => {
                self.audit(
                    Some(&request.environment),
                    request.release.as_deref(),
                    "request",
                    request.actor.as_deref(),
                    "refused",
                    &refusal,
                )
                .await?;
                refusal
            }
            Ok((environment, release, current)) => {
                let actor = request.actor.as_deref();
                let mut reason = format!("requested by {}", actor.unwrap_or("a person"));
                if request.action == RequestAction::Promote {
                    match self.request_gates(&request, &environment, &release).await? {
                        RequestGates::Held => return Ok(()),
                        RequestGates::Passed(gates) => {
                            reason.push_str(&format!("; gates passed: {gates}"));
                        }
                        RequestGates::Forced(skipped) => {
                            reason.push_str(&format!("; forced past the gates: {skipped}"));
                        }
                    }
                }
                let action = match request.action {
                    RequestAction::Promote => DeploymentAction::Manual,
                    RequestAction::Rollback => DeploymentAction::Rollback,
                };
                if request.action == RequestAction::Rollback
                    && let Some(bad) = &current
                {
                    let (repository, id, why) = (
                        self.repository.clone(),
                        bad.clone(),
                        format!(
                            "rolled back in {} by {}",
                            environment.name,
                            actor.unwrap_or("a person")
                        ),
                    );
                    blocking(&self.store, move |store| {
                        store.reject_release(&repository, &id, &why)
                    })
                    .await?;
                    self.audit(
                        Some(&environment.name),
                        Some(bad),
                        "reject",
                        actor,
                        "recorded",
                        "rolled back: automatic promotion will not pick it again",
                    )
                    .await?;
                }
                self.start(
                    &environment,
                    &release,
                    current,
                    action,
                    actor,
                    &reason,
                    report,
                )
                .await?;
                format!("{} {} in {}", action.as_str(), release.id, environment.name)
            }
        };
        let id = request.id;
        blocking(&self.store, move |store| {
            store.complete_request(id, &outcome)
        })
        .await?;
        Ok(())
    }

    /// The gates of a requested promotion: passed, held (recorded once per reason, the request
    /// stays pending and is tried again on every pass), or skipped because an admin forced it
    /// (recorded with who, each gate skipped with its reason at that moment, and why).
    async fn request_gates(
        &self,
        request: &DeployRequest,
        environment: &Environment,
        release: &Release,
    ) -> Result<RequestGates, ReconcileError> {
        let (repository, name, id) = (
            self.repository.clone(),
            environment.name.clone(),
            release.id.clone(),
        );
        let approvals = blocking(&self.store, move |store| {
            store.approvals(&repository, &name, &id)
        })
        .await?;
        let mut decisions = Vec::new();
        let upstream = self.upstream_healthy_since(environment, release).await?;
        let previous_healthy_since = match upstream {
            Ok(since) => since,
            Err(not_there) => {
                decisions.push(gates::GateDecision {
                    gate: "soak",
                    passed: false,
                    reason: not_there,
                });
                None
            }
        };
        decisions.extend(gates::evaluate(&GateInput {
            environment,
            release,
            previous_healthy_since,
            approvals: &approvals,
            teams: self.teams.as_ref(),
            now: self.clock.now(),
        }));
        let described =
            |decision: &gates::GateDecision| format!("{}: {}", decision.gate, decision.reason);
        let blocked: Vec<String> = decisions
            .iter()
            .filter(|decision| !decision.passed)
            .map(described)
            .collect();
        let actor = request.actor.as_deref();
        if let Some(why) = &request.force_reason {
            let skipped = if blocked.is_empty() {
                "none (every gate passed)".to_owned()
            } else {
                blocked.join(" | ")
            };
            let reason = format!("forced with reason \"{why}\"; skipped {skipped}");
            self.audit(
                Some(&environment.name),
                Some(&release.id),
                "gate",
                actor,
                "skipped",
                &reason,
            )
            .await?;
            return Ok(RequestGates::Forced(reason));
        }
        if blocked.is_empty() {
            let passed: Vec<String> = decisions.iter().map(described).collect();
            let reason = if passed.is_empty() {
                "no gates".to_owned()
            } else {
                passed.join(" | ")
            };
            self.audit(
                Some(&environment.name),
                Some(&release.id),
                "gate",
                actor,
                "passed",
                &reason,
            )
            .await?;
            return Ok(RequestGates::Passed(reason));
        }
        let mut held = blocked;
        held.push(format!(
            "promotion requested by {}; it waits for these gates, or an admin skips them with `sluice promote {} {} --force --reason TEXT`",
            actor.unwrap_or("a person"),
            environment.name,
            release.id
        ));
        self.audit_gate_once(environment, release, actor, &held)
            .await?;
        Ok(RequestGates::Held)
    }

    /// When the environment before this one became healthy with `release`: `Ok(None)` for the
    /// first environment, `Err(why)` when it never ran the release (a soak cannot start then).
    async fn upstream_healthy_since(
        &self,
        environment: &Environment,
        release: &Release,
    ) -> Result<Result<Option<DateTime<Utc>>, String>, StoreError> {
        let Some(after) = &environment.after else {
            return Ok(Ok(None));
        };
        if environment.gates.soak.is_none() {
            return Ok(Ok(None));
        }
        let states = self.states().await?;
        if let Some(state) = states
            .iter()
            .find(|state| &state.environment == after && state.release == release.id)
        {
            return Ok(Ok(Some(Self::time(state.healthy_since))));
        }
        let (repository, name) = (self.repository.clone(), after.clone());
        let deployments = blocking(&self.store, move |store| {
            store.deployments(&repository, Some(&name))
        })
        .await?;
        let since = deployments
            .iter()
            .filter(|deployment| {
                deployment.release == release.id
                    && deployment.status == crate::deploy::state::DeploymentStatus::Succeeded
            })
            .filter_map(|deployment| deployment.finished_at)
            .min();
        Ok(match since {
            Some(since) => Ok(Some(Self::time(since))),
            None => Err(format!(
                "{} has not been healthy in {after}, so its soak has not started; promote it to {after} first",
                release.id
            )),
        })
    }

    /// The environment, the release and what runs now for a request, or why it cannot be done.
    async fn request_target(
        &self,
        request: &DeployRequest,
    ) -> Result<Result<(Environment, Release, Option<String>), String>, ReconcileError> {
        let Some(environment) = self.environment(&request.environment) else {
            return Ok(Err(format!(
                "refused: no environment `{}`",
                request.environment
            )));
        };
        let states = self.states().await?;
        let current = states
            .iter()
            .find(|state| state.environment == environment.name)
            .map(|state| state.release.clone());
        let release_id = match (&request.release, request.action) {
            (Some(id), _) => id.clone(),
            (None, RequestAction::Promote) => {
                return Ok(Err("refused: name the release to promote".to_owned()));
            }
            (None, RequestAction::Rollback) => {
                match self
                    .release_before(&environment.name, current.as_deref())
                    .await?
                {
                    Some(id) => id,
                    None => {
                        return Ok(Err(format!(
                            "refused: {} has no earlier release to roll back to",
                            environment.name
                        )));
                    }
                }
            }
        };
        let Some(release) = self.release(&release_id).await? else {
            return Ok(Err(format!(
                "refused: no release `{release_id}`; `sluice releases` lists them"
            )));
        };
        if request.action == RequestAction::Promote && self.rejected().await?.contains(&release.id)
        {
            return Ok(Err(format!(
                "refused: release {} was rejected; roll back to it explicitly if you mean it",
                release.id
            )));
        }
        if current.as_deref() == Some(release.id.as_str()) {
            return Ok(Err(format!(
                "nothing to do: {} already runs {}",
                environment.name, release.id
            )));
        }
        if request.action == RequestAction::Promote
            && let Some(current) = &current
            && let Some(running) = self.release(current).await?
            && running.sequence >= release.sequence
        {
            return Ok(Err(format!(
                "refused: {} runs {}, which is newer than {}; promotion only goes forward, so go back with `sluice rollback {} --to {}`",
                environment.name, running.id, release.id, environment.name, release.id
            )));
        }
        Ok(Ok((environment, release, current)))
    }

    /// The release the environment ran successfully before `current`.
    async fn release_before(
        &self,
        environment: &str,
        current: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let (repository, name) = (self.repository.clone(), environment.to_owned());
        let deployments = blocking(&self.store, move |store| {
            store.deployments(&repository, Some(&name))
        })
        .await?;
        Ok(deployments
            .iter()
            .rev()
            .filter(|deployment| {
                deployment.status == crate::deploy::state::DeploymentStatus::Succeeded
            })
            .map(|deployment| deployment.release.clone())
            .find(|release| Some(release.as_str()) != current))
    }
}
