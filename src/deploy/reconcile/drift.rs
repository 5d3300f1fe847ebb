//! Drift checks for the reconciler: compare an environment with the release it runs through each
//! configured target, heal the domains the environment opts into (recording it in the history),
//! store what remains, and answer the drift gate. The environment's own `drift:` section (read
//! from the default branch like every gate) decides healing and blocking; a check that cannot
//! reach its system is stored as "could not check" and keeps what was found before.

use super::{ReconcileError, Reconciler};
use crate::config::environment::Environment;
use crate::deploy::execute::blocking;
use crate::deploy::gates::GateDecision;
use crate::deploy::{DeployContext, DriftReport, Release, Target};
use crate::store::{CheckOutcome, DeploymentStatus, DriftRecord, Finding, StepPhase};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one check of one domain found and did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainDrift {
    pub domain: String,
    pub outcome: CheckOutcome,
    /// What differs after healing (if any was done).
    pub drifts: Vec<crate::deploy::Drift>,
    /// Why the check could not run.
    pub reason: Option<String>,
    /// What healing put back: the objects it found and the apply's summary.
    pub healed: Option<Healed>,
    /// Kept for a person to review (Terraform's plan).
    pub review: Option<serde_json::Value>,
    pub calls: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Healed {
    pub drifts: Vec<crate::deploy::Drift>,
    pub summary: String,
}

/// One environment's check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvironmentDrift {
    pub environment: String,
    /// The release it was compared with; `None` when nothing is deployed yet (nothing to check).
    pub release: Option<String>,
    /// Set when the check did not run at all: a deployment is running, nothing deployed.
    pub skipped: Option<String>,
    pub domains: Vec<DomainDrift>,
}

impl Reconciler {
    /// Checks every environment (`None`) or the one named, in promotion order; `actor` is the
    /// person who asked, recorded with any heal.
    pub async fn check_drift(
        &self,
        only: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Vec<EnvironmentDrift>, ReconcileError> {
        if let Some(name) = only
            && self.environment(name).is_none()
        {
            let known: Vec<&str> = self
                .environments
                .iter()
                .map(|environment| environment.name.as_str())
                .collect();
            return Err(ReconcileError::Setup(format!(
                "no environment `{name}` in {}; environments: {}",
                self.repository,
                known.join(", ")
            )));
        }
        let mut checked = Vec::new();
        for environment in super::promotion_order(&self.environments) {
            if only.is_none_or(|name| name == environment.name) {
                checked.push(self.check_environment(&environment, actor).await?);
            }
        }
        Ok(checked)
    }

    /// Checks the environments whose last check is older than their `drift.interval` (or that
    /// were never checked) and those named in `also` (just deployed).
    pub async fn check_due_drift(
        &self,
        also: &[String],
    ) -> Result<Vec<EnvironmentDrift>, ReconcileError> {
        let repository = self.repository.clone();
        let checks = blocking(&self.store, move |store| {
            store.drift_checks(Some(&repository))
        })
        .await?;
        let now = self.now();
        let mut checked = Vec::new();
        for environment in super::promotion_order(&self.environments) {
            let last = checks
                .iter()
                .filter(|check| check.environment == environment.name)
                .map(|check| check.checked_at)
                .min();
            let due = match (environment.drift.interval(), last) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(interval), Some(last)) => now - last >= interval.as_secs() as i64,
            };
            if due || also.contains(&environment.name) {
                let found = self.check_environment(&environment, None).await?;
                if found.skipped.is_none() {
                    checked.push(found);
                }
            }
        }
        Ok(checked)
    }

    async fn check_environment(
        &self,
        environment: &Environment,
        actor: Option<&str>,
    ) -> Result<EnvironmentDrift, ReconcileError> {
        let mut result = EnvironmentDrift {
            environment: environment.name.clone(),
            release: None,
            skipped: None,
            domains: Vec::new(),
        };
        let repository = self.repository.clone();
        let running = blocking(&self.store, move |store| {
            store.running_deployments(&repository)
        })
        .await?;
        if running
            .iter()
            .any(|deployment| deployment.environment == environment.name)
        {
            result.skipped = Some("a deployment is running; checked after it".to_owned());
            return Ok(result);
        }
        let Some(release) = self.running_release(&environment.name).await? else {
            result.skipped = Some("nothing is deployed here yet".to_owned());
            return Ok(result);
        };
        result.release = Some(release.id.clone());
        let (targets, mut context) =
            match self.targets_and_context(environment, &release, None).await {
                Ok(prepared) => prepared,
                Err(reason) => {
                    // Nothing could be asked: every configured domain could not be checked.
                    for name in environment.targets.configured_names() {
                        let domain = self
                            .record_domain(environment, &release, name, Err(reason.clone()))
                            .await?;
                        result.domains.push(domain);
                    }
                    return Ok(result);
                }
            };
        context.applied = self.applied_outputs(environment, &release).await?;
        for target in &targets {
            let domain = self
                .check_target(environment, &release, target, &context, actor)
                .await?;
            result.domains.push(domain);
        }
        Ok(result)
    }

    /// What each target reported when the environment's last successful deployment of
    /// `release` applied it: the context a diff of that same release sees.
    async fn applied_outputs(
        &self,
        environment: &Environment,
        release: &Release,
    ) -> Result<BTreeMap<String, serde_json::Value>, ReconcileError> {
        let (repository, name, id) = (
            self.repository.clone(),
            environment.name.clone(),
            release.id.clone(),
        );
        let outputs = blocking(&self.store, move |store| {
            let deployments = store.deployments(&repository, Some(&name))?;
            let Some(deployment) = deployments.iter().rev().find(|deployment| {
                deployment.release == id && deployment.status == DeploymentStatus::Succeeded
            }) else {
                return Ok(BTreeMap::new());
            };
            Ok(store
                .steps(deployment.id)?
                .into_iter()
                .filter(|step| matches!(step.phase, StepPhase::Applied | StepPhase::Healthy))
                .map(|step| (step.target, step.outputs))
                .collect())
        })
        .await?;
        Ok(outputs)
    }

    async fn check_target(
        &self,
        environment: &Environment,
        release: &Release,
        target: &Arc<dyn Target>,
        context: &DeployContext,
        actor: Option<&str>,
    ) -> Result<DomainDrift, ReconcileError> {
        let kind = target.kind();
        let found = target
            .drift(context)
            .await
            .map_err(|error| error.to_string());
        let Ok(report) = &found else {
            return self
                .record_domain(environment, release, kind.as_str(), found)
                .await;
        };
        if report.is_clean() || !environment.drift.heals(kind.as_str()) {
            self.audit_new_drift(environment, release, kind.as_str(), report)
                .await?;
            return self
                .record_domain(environment, release, kind.as_str(), found)
                .await;
        }
        match self
            .heal(environment, release, target, context, report, actor)
            .await?
        {
            Ok(healed) => Ok(healed),
            Err(_) => {
                self.record_domain(environment, release, kind.as_str(), found)
                    .await
            }
        }
    }

    /// Heals what `report` found, records it in the history (healed or failed, with `actor`),
    /// checks the domain again and stores that; `Err` with the reason when the heal failed.
    async fn heal(
        &self,
        environment: &Environment,
        release: &Release,
        target: &Arc<dyn Target>,
        context: &DeployContext,
        report: &DriftReport,
        actor: Option<&str>,
    ) -> Result<Result<DomainDrift, String>, ReconcileError> {
        let domain = target.kind().as_str();
        let objects = objects_text(report);
        let applied = match target.heal(context, report).await {
            Ok(applied) => applied,
            Err(error) => {
                self.audit(
                    Some(&environment.name),
                    Some(&release.id),
                    "drift-heal",
                    actor,
                    "failed",
                    &format!("{domain}: {objects}; {error}"),
                )
                .await?;
                return Ok(Err(error.to_string()));
            }
        };
        self.audit(
            Some(&environment.name),
            Some(&release.id),
            "drift-heal",
            actor,
            "healed",
            &format!("{domain}: {objects}; {}", applied.summary),
        )
        .await?;
        let after = target
            .drift(context)
            .await
            .map_err(|error| error.to_string());
        let mut healed = self
            .record_domain(environment, release, domain, after)
            .await?;
        healed.healed = Some(Healed {
            drifts: report.drifts.clone(),
            summary: applied.summary,
        });
        Ok(Ok(healed))
    }

    /// A person heals one domain of an environment now, opted in or not: Terraform only by
    /// naming the plan kept for review (`plan`), which must be the one the check keeps now.
    pub async fn heal_by_hand(
        &self,
        name: &str,
        domain: &str,
        plan: Option<&str>,
        actor: &str,
    ) -> Result<EnvironmentDrift, ReconcileError> {
        let refused = |message: String| Err(ReconcileError::Refused(message));
        let Some(environment) = self.environment(name) else {
            return refused(format!("no environment `{name}` in {}", self.repository));
        };
        let Some(release) = self.running_release(name).await? else {
            return refused(format!(
                "nothing is deployed to {name}, so nothing can drift"
            ));
        };
        let (targets, mut context) = self
            .targets_and_context(&environment, &release, None)
            .await
            .map_err(ReconcileError::Setup)?;
        let Some(target) = targets
            .iter()
            .find(|target| target.kind().as_str() == domain)
        else {
            let configured: Vec<&str> = targets
                .iter()
                .map(|target| target.kind().as_str())
                .collect();
            return refused(format!(
                "{name} has no {domain} target; it has {}",
                configured.join(", ")
            ));
        };
        context.applied = self.applied_outputs(&environment, &release).await?;
        let report = target
            .drift(&context)
            .await
            .map_err(|error| ReconcileError::Refused(format!("cannot check {domain}: {error}")))?;
        let domain_name = target.kind().as_str();
        let checked = if report.is_clean() {
            self.record_domain(&environment, &release, domain_name, Ok(report))
                .await?
        } else {
            let kept = report
                .review
                .as_ref()
                .and_then(|review| review["plan"].as_str());
            match (kept, plan) {
                (Some(kept), Some(named)) if kept != named => {
                    return refused(format!(
                        "the plan kept for review of {name} is now {kept}, not {named}; read it with `sluice drift {name}` and name it"
                    ));
                }
                (Some(kept), None) => {
                    return refused(format!(
                        "{domain} is healed only by applying the plan kept for review: name it with `--apply-plan {kept}` after reading it"
                    ));
                }
                _ => {}
            }
            let healed = self
                .heal(
                    &environment,
                    &release,
                    target,
                    &context,
                    &report,
                    Some(actor),
                )
                .await?;
            match healed {
                Ok(healed) => healed,
                Err(error) => {
                    return refused(format!("healing {domain} in {name} failed: {error}"));
                }
            }
        };
        Ok(EnvironmentDrift {
            environment: name.to_owned(),
            release: Some(release.id),
            skipped: None,
            domains: vec![checked],
        })
    }

    /// Records a domain's drift in the history when what differs changed since the last check,
    /// not on every check.
    async fn audit_new_drift(
        &self,
        environment: &Environment,
        release: &Release,
        domain: &str,
        report: &DriftReport,
    ) -> Result<(), ReconcileError> {
        if report.is_clean() {
            return Ok(());
        }
        let known = self.recorded_drift(&environment.name).await?;
        let mut before: Vec<(&str, &str)> = known
            .iter()
            .filter(|record| record.domain == domain)
            .map(|record| (record.object.as_str(), record.actual.as_str()))
            .collect();
        let mut now: Vec<(&str, &str)> = report
            .drifts
            .iter()
            .map(|drift| (drift.object.as_str(), drift.actual.as_str()))
            .collect();
        before.sort();
        now.sort();
        if before != now {
            self.audit(
                Some(&environment.name),
                Some(&release.id),
                "drift",
                None,
                "found",
                &format!("{domain}: {}", objects_text(report)),
            )
            .await?;
        }
        Ok(())
    }

    async fn record_domain(
        &self,
        environment: &Environment,
        release: &Release,
        domain: &'static str,
        found: Result<DriftReport, String>,
    ) -> Result<DomainDrift, ReconcileError> {
        let finding = match &found {
            Ok(report) => Finding::Checked {
                drifts: report
                    .drifts
                    .iter()
                    .map(|drift| {
                        (
                            drift.object.clone(),
                            drift.expected.clone(),
                            drift.actual.clone(),
                        )
                    })
                    .collect(),
                review: report.review.clone(),
            },
            Err(reason) => Finding::CouldNotCheck(reason.clone()),
        };
        let (repository, name, domain, id, now) = (
            self.repository.clone(),
            environment.name.clone(),
            domain,
            release.id.clone(),
            self.now(),
        );
        let stored = finding.clone();
        blocking(&self.store, move |store| {
            store.record_drift_check(&repository, &name, domain, &id, &stored, now)
        })
        .await?;
        Ok(match found {
            Ok(report) => DomainDrift {
                domain: domain.to_owned(),
                outcome: if report.is_clean() {
                    CheckOutcome::Clean
                } else {
                    CheckOutcome::Drifted
                },
                drifts: report.drifts,
                reason: None,
                healed: None,
                review: report.review,
                calls: report.calls,
            },
            Err(reason) => DomainDrift {
                domain: domain.to_owned(),
                outcome: CheckOutcome::CouldNotCheck,
                drifts: Vec::new(),
                reason: Some(reason),
                healed: None,
                review: None,
                calls: BTreeMap::new(),
            },
        })
    }

    async fn recorded_drift(&self, environment: &str) -> Result<Vec<DriftRecord>, ReconcileError> {
        let (repository, name) = (self.repository.clone(), environment.to_owned());
        Ok(blocking(&self.store, move |store| {
            store.drift(Some(&repository), Some(&name))
        })
        .await?)
    }

    /// The drift gate, asked once the other gates passed: the environment is checked now (and
    /// healed where it may be), and a release does not enter while drift remains, unless the
    /// environment says `drift.block: false`. A domain that could not be checked does not hold
    /// it: the deployment itself meets that system and retries.
    pub(super) async fn drift_decision(
        &self,
        environment: &Environment,
    ) -> Result<GateDecision, ReconcileError> {
        self.check_environment(environment, None).await?;
        let recorded = self.recorded_drift(&environment.name).await?;
        let mut decision = GateDecision {
            gate: "drift",
            passed: true,
            reason: "no drift".to_owned(),
        };
        if recorded.is_empty() {
            return Ok(decision);
        }
        let mut by_domain: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for record in &recorded {
            by_domain
                .entry(record.domain.as_str())
                .or_default()
                .push(record.object.as_str());
        }
        let listed: Vec<String> = by_domain
            .iter()
            .map(|(domain, objects)| format!("{domain}: {}", objects.join(", ")))
            .collect();
        let what = format!(
            "{} the release it runs ({})",
            differ(recorded.len()),
            listed.join("; ")
        );
        if environment.drift.block {
            decision.passed = false;
            decision.reason = format!(
                "{what}; put them back (or heal them with `drift.heal`) and run `sluice drift {}`, or set `drift.block: false`",
                environment.name
            );
        } else {
            decision.reason = format!("{what}; recorded, not blocking (`drift.block: false`)");
        }
        Ok(decision)
    }
}

/// `1 object differs from` or `3 objects differ from`.
pub fn differ(count: usize) -> String {
    if count == 1 {
        "1 object differs from".to_owned()
    } else {
        format!("{count} objects differ from")
    }
}

fn objects_text(report: &DriftReport) -> String {
    report
        .drifts
        .iter()
        .map(|drift| {
            format!(
                "{} (expected {}, found {})",
                drift.object, drift.expected, drift.actual
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
