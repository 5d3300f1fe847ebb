//! The Terraform target: an environment's infrastructure, changed only by reviewed plans. `apply`
//! applies the stored plan the release carries for the environment (`Release.plans`), or, when
//! it carries none, the reviewed plan matched to the release's commit; `diff` is that plan's
//! summary; `health` is `Healthy` once the plan was applied; `rollback` is refused, because going
//! back needs a new reviewed plan. Knows the store's plan records and the operations in
//! `crate::terraform`; nothing of promotion order, gates or other targets.

mod drift;

use super::registry::{BuildContext, Registration, ReleaseSource};
use crate::config::environment::Environment;
use crate::deploy::{
    Applied, Change, ChangeAction, DeployContext, Health, Release, Target, TargetDiff, TargetError,
    TargetFuture, TargetKind,
};
use crate::policy::{PolicyContext, SystemClock};
use crate::store::{Store, TerraformPlanRecord, TerraformTarget as PlanTarget};
use crate::terraform::summary::{self, Action};
use crate::terraform::{
    ApplyOutcome, MergedCommit, PlanKey, TerraformJob, TerraformSection, TerraformSettings,
    operations,
};
use std::path::PathBuf;
use std::sync::Arc;

pub struct TerraformTarget {
    settings: TerraformSettings,
    repository: String,
    data_dir: PathBuf,
    store: Arc<dyn Store>,
    key: PlanKey,
}

/// The target for `environment`, or `None` when it has no `terraform:` section. Refuses without
/// a plan key (`SLUICE_PLAN_KEY` or `SLUICE_PLAN_KEY_FILE`).
pub fn from_environment(
    environment: &Environment,
    repository: &str,
    data_dir: &std::path::Path,
    store: Arc<dyn Store>,
) -> Result<Option<Box<dyn Target>>, TargetError> {
    let Some(settings) = TerraformSettings::from_environment(environment)
        .map_err(|problems| TargetError::Configuration(problems.join("; ")))?
    else {
        return Ok(None);
    };
    let key = PlanKey::from_env().map_err(|error| TargetError::Configuration(error.to_string()))?;
    let target: Box<dyn Target> = Box::new(TerraformTarget::new(
        settings, repository, data_dir, store, key,
    ));
    Ok(Some(target))
}

/// The Terraform target in the registry (`crate::targets::TARGETS`).
pub struct Terraform;

impl Registration for Terraform {
    const NAME: &'static str = "terraform";
    /// Terraform applies only a plan reviewed against today's state; the plan an old release
    /// carried was made against the state before it. Infrastructure goes back through a pull
    /// request whose plan is reviewed like any other.
    const JOINS_ROLLBACKS: bool = false;
    type Section = TerraformSection;

    fn build(
        environment: &Environment,
        _section: &TerraformSection,
        context: &BuildContext<'_>,
    ) -> Result<Option<Box<dyn Target>>, TargetError> {
        let Some(store) = context.store else {
            return Ok(None);
        };
        from_environment(
            environment,
            context.repository,
            context.data_dir,
            store.clone(),
        )
    }

    /// The release carries the sha256 of the plan reviewed on the pull request this merge
    /// landed, when there is one to apply as it is (otherwise the target says why at deploy).
    fn add_to_release(
        environment: &Environment,
        section: &TerraformSection,
        source: &ReleaseSource<'_>,
        release: &mut Release,
    ) -> anyhow::Result<()> {
        let Ok(settings) = TerraformSettings::from_section(&environment.name, section) else {
            return Ok(());
        };
        let target = PlanTarget {
            repository: source.repository.to_owned(),
            environment: settings.environment.clone(),
            dir: settings.dir.clone(),
        };
        let Ok(plans) = source.store.terraform_plans(&target, &settings.workspace) else {
            return Ok(());
        };
        let Some(merged) = operations::merged_commit_facts(source.mirror.path(), source.commit)
        else {
            return Ok(());
        };
        if let crate::terraform::review::Decision::Apply(plan) =
            crate::terraform::review::decide(&plans, &merged, &settings.environment)
        {
            release
                .plans
                .insert(environment.name.clone(), plan.sha256.clone());
        }
        Ok(())
    }
}

impl TerraformTarget {
    pub fn new(
        settings: TerraformSettings,
        repository: &str,
        data_dir: &std::path::Path,
        store: Arc<dyn Store>,
        key: PlanKey,
    ) -> TerraformTarget {
        TerraformTarget {
            settings,
            repository: repository.to_owned(),
            data_dir: data_dir.to_owned(),
            store,
            key,
        }
    }

    fn plan_target(&self) -> PlanTarget {
        PlanTarget {
            repository: self.repository.clone(),
            environment: self.settings.environment.clone(),
            dir: self.settings.dir.clone(),
        }
    }

    fn job(&self, context: &DeployContext) -> TerraformJob {
        TerraformJob {
            settings: self.settings.clone(),
            repository: self.repository.clone(),
            checkout: context.tree.clone(),
            data_dir: self.data_dir.clone(),
            env: crate::terraform::runner::operator_environment(),
            log: None,
            cancel: Default::default(),
            container: None,
        }
    }

    fn merged_commit(&self, context: &DeployContext) -> MergedCommit {
        let mirror = self.repository.split_once('/').map(|(owner, name)| {
            self.data_dir
                .join("mirrors")
                .join(owner)
                .join(format!("{name}.git"))
        });
        mirror
            .and_then(|mirror| operations::merged_commit_facts(&mirror, &context.release.commit))
            .or_else(|| operations::merged_commit_facts(&context.tree, &context.release.commit))
            .unwrap_or_else(|| MergedCommit {
                commit: context.release.commit.clone(),
                parents: Vec::new(),
                tree: None,
            })
    }

    /// The plan the release carries for this environment, checked to belong here.
    fn release_plan(
        &self,
        context: &DeployContext,
    ) -> Result<Option<TerraformPlanRecord>, TargetError> {
        let Some(sha256) = context.release.plans.get(&self.settings.environment) else {
            return Ok(None);
        };
        let plan = self
            .store
            .terraform_plan_by_sha256(sha256)
            .map_err(|error| TargetError::Unavailable(error.to_string()))?
            .ok_or_else(|| {
                TargetError::Rejected(format!(
                    "release {} names plan {sha256} for {}, but no such plan is stored; re-plan and review",
                    context.release.id, self.settings.environment
                ))
            })?;
        if plan.target != self.plan_target() || plan.workspace != self.settings.workspace {
            return Err(TargetError::Rejected(format!(
                "plan {sha256} was made for {} ({}), not for {} ({}); re-plan for this environment",
                plan.target.environment,
                plan.target.dir,
                self.settings.environment,
                self.settings.dir
            )));
        }
        Ok(Some(plan))
    }

    /// The release's plan, or the reviewed plan matched to its commit.
    fn reviewed_plan(&self, context: &DeployContext) -> Result<TerraformPlanRecord, TargetError> {
        if let Some(plan) = self.release_plan(context)? {
            return Ok(plan);
        }
        let plans = self
            .store
            .terraform_plans(&self.plan_target(), &self.settings.workspace)
            .map_err(|error| TargetError::Unavailable(error.to_string()))?;
        let merged = self.merged_commit(context);
        match crate::terraform::review::decide(&plans, &merged, &self.settings.environment) {
            crate::terraform::Decision::Apply(plan)
            | crate::terraform::Decision::AlreadyApplied(plan) => Ok(plan.clone()),
            crate::terraform::Decision::Refuse(refusal) => {
                Err(TargetError::Rejected(refusal.to_string()))
            }
        }
    }
}

fn change_action(action: Action) -> ChangeAction {
    match action {
        Action::Create => ChangeAction::Create,
        Action::Update => ChangeAction::Update,
        Action::Delete | Action::Forget => ChangeAction::Delete,
        Action::Replace(_) => ChangeAction::Replace,
        Action::Read | Action::NoOp => ChangeAction::NoOp,
    }
}

impl Target for TerraformTarget {
    fn kind(&self) -> TargetKind {
        crate::targets::registry::kind::<Terraform>()
    }

    fn diff<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, TargetDiff> {
        Box::pin(async move {
            let plan = self.reviewed_plan(context)?;
            let plan_json = operations::open_plan_json(&self.key, &plan)
                .map_err(|error| TargetError::Rejected(error.to_string()))?;
            let plan_summary = summary::summarize(&plan_json)
                .map_err(|error| TargetError::Rejected(error.to_string()))?;
            let changes = plan_summary
                .resources
                .iter()
                .filter(|resource| resource.action != Action::NoOp)
                .map(|resource| Change {
                    address: resource.address.clone(),
                    action: change_action(resource.action),
                    detail: Some(resource.action.describe().to_owned()),
                })
                .collect();
            // `input.terraform` is the reviewed plan exactly as `terraform show -json` printed it.
            Ok(TargetDiff {
                changes,
                facts: plan_json,
            })
        })
    }

    fn apply<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            let job = self.job(context);
            let outcome = match self.release_plan(context)? {
                Some(plan) if plan.apply_status.as_deref() == Some("applied") => {
                    ApplyOutcome::AlreadyApplied {
                        sha256: plan.sha256,
                    }
                }
                Some(plan) if plan.superseded_by.is_some() => {
                    return Err(TargetError::Rejected(format!(
                        "plan {} was superseded by a newer plan; apply the newer plan's release or re-plan",
                        plan.sha256
                    )));
                }
                Some(plan) => operations::apply_stored(&job, &*self.store, &self.key, &plan)
                    .await
                    .map_err(|error| TargetError::Unavailable(error.to_string()))?,
                None => {
                    let mut policy_context = PolicyContext::at(&SystemClock);
                    policy_context.environment = Some(self.settings.environment.clone());
                    policy_context.event = Some("merge".to_owned());
                    policy_context.author = context.release.author.clone();
                    policy_context.commit = Some(context.release.commit.clone());
                    policy_context.release = Some(context.release.id.clone());
                    operations::apply_after_merge(
                        &job,
                        &*self.store,
                        &self.key,
                        &self.merged_commit(context),
                        &context.tree.join("policies"),
                        &policy_context,
                    )
                    .await
                    .map_err(|error| TargetError::Unavailable(error.to_string()))?
                }
            };
            match outcome {
                ApplyOutcome::Applied {
                    sha256,
                    summary,
                    outputs,
                } => Ok(Applied {
                    summary: format!(
                        "applied plan {} ({summary})",
                        crate::model::short_commit(&sha256)
                    ),
                    rollback: serde_json::json!({"plan_sha256": sha256}),
                    outputs,
                }),
                ApplyOutcome::AlreadyApplied { sha256 } => Ok(Applied {
                    summary: format!(
                        "plan {} was applied already",
                        crate::model::short_commit(&sha256)
                    ),
                    rollback: serde_json::json!({"plan_sha256": sha256}),
                    outputs: serde_json::Value::Null,
                }),
                ApplyOutcome::Refused(reason) => Err(TargetError::Rejected(reason)),
            }
        })
    }

    fn health<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Health> {
        Box::pin(async move {
            let plan = self.reviewed_plan(context)?;
            Ok(match plan.apply_status.as_deref() {
                Some("applied") => Health::Healthy,
                Some(other) => Health::Degraded(format!(
                    "applying plan {} {other}; read the apply log, fix the change and re-plan",
                    plan.sha256
                )),
                None => Health::Progressing(format!("plan {} is not applied yet", plan.sha256)),
            })
        })
    }

    fn current<'a>(&'a self, _environment: &'a Environment) -> TargetFuture<'a, serde_json::Value> {
        Box::pin(async move {
            let plans = self
                .store
                .terraform_plans(&self.plan_target(), &self.settings.workspace)
                .map_err(|error| TargetError::Unavailable(error.to_string()))?;
            let Some(applied) = plans
                .iter()
                .find(|plan| plan.apply_status.as_deref() == Some("applied"))
            else {
                return Ok(serde_json::Value::Null);
            };
            let outputs: serde_json::Value = applied
                .apply_outputs
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default();
            Ok(serde_json::json!({
                "plan_sha256": applied.sha256,
                "commit": applied.commit,
                "applied_at": applied.applied_at.map(|time| time.to_rfc3339()),
                "outputs": outputs,
            }))
        })
    }

    fn rollback<'a>(
        &'a self,
        _context: &'a DeployContext,
        _rollback: &'a serde_json::Value,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            Err(TargetError::Rejected(format!(
                "terraform in {} cannot be rolled back without a reviewed plan; revert the change in a pull request, review its plan and merge it",
                self.settings.environment
            )))
        })
    }

    fn drift<'a>(
        &'a self,
        context: &'a DeployContext,
    ) -> TargetFuture<'a, crate::deploy::DriftReport> {
        Box::pin(self.check_drift(context))
    }

    /// Only ever asked for by a person naming the plan kept for review; promotion never heals
    /// Terraform (`DriftSettings::heals`).
    fn heal<'a>(
        &'a self,
        context: &'a DeployContext,
        found: &'a crate::deploy::DriftReport,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(self.apply_review(context, found))
    }
}
