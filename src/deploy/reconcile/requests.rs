//! People's requests to the reconciler: a promotion or a rollback asked for by name. A promotion
//! passes the environment's gates for the release it names (the soak counted from when the
//! environment before became healthy with that release) and stays pending until they pass; an
//! admin's forced request skips them and history records who, what and why. Neither goes back
//! in git order: that is a rollback, which passes no gates.

use super::{PassReport, ReconcileError, Reconciler};
use crate::config::environment::Environment;
use crate::deploy::Release;
use crate::deploy::execute::blocking;
use crate::deploy::gates::{self, GateInput};
use crate::store::StoreError;
use crate::store::{DeployRequest, DeploymentAction, RequestAction};
use chrono::{DateTime, Utc};

/// What the gates say about a person's promotion request.
enum RequestGates {
    /// Every gate passed; their reasons.
    Passed(String),
    /// A gate holds it; the request stays pending.
    Held,
    /// An admin forced it; what was skipped and why.
    Forced(String),
}

impl Reconciler {
    /// Carries out a person's request, or leaves a promotion pending while its gates hold it.
    pub(super) async fn handle_request(
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
        let memberships =
            gates::resolve_memberships(environment, &approvals, self.teams.as_ref()).await;
        decisions.extend(gates::evaluate(&GateInput {
            environment,
            release,
            previous_healthy_since,
            approvals: &approvals,
            memberships: &memberships,
            now: self.clock.now(),
        }));
        if request.force_reason.is_none() && decisions.iter().all(|decision| decision.passed) {
            let previous = self.running_release(&environment.name).await?;
            decisions.push(
                self.policy_decision(environment, release, previous, &approvals)
                    .await,
            );
            if decisions.iter().all(|decision| decision.passed) {
                decisions.push(self.drift_decision(environment).await?);
            }
        }
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
                    && deployment.status == crate::store::DeploymentStatus::Succeeded
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
            .filter(|deployment| deployment.status == crate::store::DeploymentStatus::Succeeded)
            .map(|deployment| deployment.release.clone())
            .find(|release| Some(release.as_str()) != current))
    }
}
