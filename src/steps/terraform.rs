//! The `terraform` step kind: `terraform: { environment: dev, command: plan }` plans the
//! environment's Terraform at the job's commit, prints the summary and the policy findings,
//! records them as job outputs (`plan_sha256`, `summary`, `counts`, `denials`, `warnings`,
//! `findings`, and `finding_locations`: each finding placed at the `.tf` file and line of its
//! resource where that can be found) and stores the plan encrypted under the environment's lock; any deny fails the step.
//! `command: apply` runs on a merge and applies exactly the reviewed plan for the merged commit,
//! recording `plan_sha256` and `terraform_outputs`. The work is `crate::terraform::operations`';
//! this file resolves the environment, key, commit facts and policy context from the `StepContext`.

use super::{StepContext, StepOutcome};
use crate::config::workflow::{TerraformCommand, TerraformStep};
use crate::model::{EventKind, TrustLevel};
use crate::policy::{PolicyContext, SystemClock};
use crate::terraform::container::TerraformContainer;
use crate::terraform::{
    ApplyOutcome, MergedCommit, PlanKey, PlanOrigin, PlanOutcome, TerraformJob, TerraformSettings,
    operations,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub async fn execute(step: &TerraformStep, context: &StepContext) -> StepOutcome {
    if context.trust < TrustLevel::Member {
        return StepOutcome::NotStarted(format!(
            "terraform does not run for {} events (a pull request from a fork); a maintainer can plan it from a branch of this repository",
            context.trust
        ));
    }
    if step.command == TerraformCommand::Apply && context.trust < TrustLevel::Trusted {
        return StepOutcome::NotStarted(format!(
            "terraform apply runs only for trusted events (a push to a deploy branch the default branch's environments/ name); this event is {}",
            context.trust
        ));
    }
    // The environment's settings and the policies come from the default branch, so a change
    // cannot point its plan elsewhere or weaken the policy that judges it.
    let configuration_root = context
        .authority_tree
        .as_deref()
        .unwrap_or(&context.workspace);
    let settings = match load_settings(configuration_root, &step.environment) {
        Ok(settings) => settings,
        Err(message) => return StepOutcome::NotStarted(format!("terraform step: {message}")),
    };
    let key = match PlanKey::from_env() {
        Ok(key) => key,
        Err(error) => return StepOutcome::NotStarted(format!("terraform step: {error}")),
    };
    let container = match terraform_container(context) {
        Ok(container) => container,
        Err(message) => return StepOutcome::NotStarted(format!("terraform step: {message}")),
    };
    let job = TerraformJob {
        settings,
        repository: context.event.repository.clone(),
        checkout: context.workspace.clone(),
        data_dir: context.data_dir.clone(),
        env: context.env.clone(),
        log: Some(context.log.clone()),
        cancel: context.cancel.clone(),
        container,
    };
    let mut policy_context = PolicyContext::at(&SystemClock);
    policy_context.environment = Some(step.environment.clone());
    policy_context.event = Some(context.event.kind.as_str().to_owned());
    policy_context.author = context.event.actor.clone();
    policy_context.commit = Some(context.event.commit.clone());
    let policies_dir = configuration_root.join("policies");
    let facts = commit_facts(context);
    match step.command {
        TerraformCommand::Plan => {
            let origin = PlanOrigin {
                commit: context.event.commit.clone(),
                tree: facts.as_ref().and_then(|facts| facts.tree.clone()),
                base_commit: context.event.before.clone(),
                pull_request: context.event.pull_request,
                holder_label: format!("{} of {}", context.event.kind, context.event.git_ref),
            };
            let outcome = operations::plan_and_store(
                &job,
                &*context.store,
                &key,
                &origin,
                &policies_dir,
                &policy_context,
            )
            .await;
            match outcome {
                Ok(PlanOutcome::Planned { change, stored_id }) => {
                    let mut outputs = change.outputs();
                    outputs.insert("environment".to_owned(), step.environment.clone());
                    // The workspace is gone once the job ends, so the findings are placed in
                    // the sources now, for the annotations of the job's check run.
                    let locations = crate::terraform::locate::locate_findings(
                        &context.workspace,
                        &job.settings.dir,
                        &change.evaluation.findings,
                    );
                    outputs.insert(
                        "finding_locations".to_owned(),
                        serde_json::to_string(&locations).unwrap_or_default(),
                    );
                    if let Some(proposed) = context
                        .authority_tree
                        .as_deref()
                        .and_then(|tree| super::proposed::describe(tree, &context.workspace))
                    {
                        let _ = context.log.send(format!("sluice: {proposed}\n"));
                        outputs.insert("proposed_configuration".to_owned(), proposed);
                    }
                    record_outputs(context, outputs).await;
                    match stored_id {
                        Some(_) => StepOutcome::Exited(0),
                        None => StepOutcome::Failed(format!(
                            "the plan for {} was denied by {} polic{}; fix the change or the policy, then push again",
                            step.environment,
                            change.evaluation.denials().count() + change.evaluation.errors.len(),
                            if change.evaluation.denials().count() + change.evaluation.errors.len()
                                == 1
                            {
                                "y"
                            } else {
                                "ies"
                            }
                        )),
                    }
                }
                Ok(PlanOutcome::Locked(message)) | Ok(PlanOutcome::LockLost(message)) => {
                    record_outputs(
                        context,
                        BTreeMap::from([("locked".to_owned(), message.clone())]),
                    )
                    .await;
                    StepOutcome::Failed(message)
                }
                Err(error) => {
                    StepOutcome::Failed(format!("terraform plan for {}: {error}", step.environment))
                }
            }
        }
        TerraformCommand::Apply => {
            if context.event.kind != EventKind::Merge {
                return StepOutcome::NotStarted(format!(
                    "terraform apply runs only for merges (this event is `{}`); guard the job with `if: event == 'merge'`",
                    context.event.kind
                ));
            }
            let merged = facts.unwrap_or_else(|| MergedCommit {
                commit: context.event.commit.clone(),
                parents: context.event.before.clone().into_iter().collect(),
                tree: None,
            });
            let outcome = operations::apply_after_merge(
                &job,
                &*context.store,
                &key,
                &merged,
                &policies_dir,
                &policy_context,
            )
            .await;
            match outcome {
                Ok(ApplyOutcome::Applied {
                    sha256, outputs, ..
                }) => {
                    record_outputs(
                        context,
                        BTreeMap::from([
                            ("plan_sha256".to_owned(), sha256),
                            ("terraform_outputs".to_owned(), outputs.to_string()),
                        ]),
                    )
                    .await;
                    StepOutcome::Exited(0)
                }
                Ok(ApplyOutcome::AlreadyApplied { sha256 }) => {
                    record_outputs(
                        context,
                        BTreeMap::from([("plan_sha256".to_owned(), sha256)]),
                    )
                    .await;
                    StepOutcome::Exited(0)
                }
                Ok(ApplyOutcome::Refused(reason)) => StepOutcome::Failed(reason),
                Err(error) => StepOutcome::Failed(format!(
                    "terraform apply for {}: {error}",
                    step.environment
                )),
            }
        }
    }
}

/// Terraform of a pipeline is code under review: it runs in a container from the server's step
/// image (which must hold `terraform`) as the step user, reading the state and the plugin cache
/// and writing them only for a trusted run; on the host only where the run may use the host.
fn terraform_container(context: &StepContext) -> Result<Option<TerraformContainer>, String> {
    let isolation = &context.isolation;
    if isolation.host {
        return Ok(None);
    }
    let image = isolation.default_image.clone().ok_or(
        "Terraform runs in a container and the server names no image; set `steps.image` in the server configuration to an image with terraform (scripts/setup-step-image.sh builds one)",
    )?;
    Ok(Some(TerraformContainer {
        image,
        user: isolation.step_user(),
        writable_state: context.trust == TrustLevel::Trusted,
        cpus: isolation.cpus,
        memory_bytes: isolation.memory_bytes,
    }))
}

/// The environment's Terraform settings from `environments/*.yaml` in the checkout.
pub fn load_settings(checkout: &Path, environment: &str) -> Result<TerraformSettings, String> {
    match TerraformSettings::from_environment(&load_environment(checkout, environment)?) {
        Ok(Some(settings)) => Ok(settings),
        Ok(None) => Err(format!(
            "environments/{environment}.yaml has no `terraform:` section; add one with at least `dir:`"
        )),
        Err(problems) => Err(problems.join("; ")),
    }
}

/// The environment `name` as the checkout's `environments/` define it.
pub(super) fn load_environment(
    checkout: &Path,
    name: &str,
) -> Result<crate::config::environment::Environment, String> {
    let files = crate::config::read_project_dir(checkout)
        .map_err(|error| format!("cannot read environments/ in the checkout: {error}"))?;
    crate::config::load_project(&files)
        .environments
        .into_iter()
        .map(|loaded| loaded.value)
        .find(|environment| environment.name == name)
        .ok_or_else(|| {
            format!(
                "no environment `{name}` in environments/ (or its file has problems; run `sluice validate`)"
            )
        })
}

/// Parents and tree of the job's commit from the repository's mirror, when there is one.
fn commit_facts(context: &StepContext) -> Option<MergedCommit> {
    let (owner, name) = context.event.repository.split_once('/')?;
    let mirror: PathBuf = context
        .data_dir
        .join("mirrors")
        .join(owner)
        .join(format!("{name}.git"));
    operations::merged_commit_facts(&mirror, &context.event.commit)
}

pub(super) async fn record_outputs(context: &StepContext, outputs: BTreeMap<String, String>) {
    let store = context.store.clone();
    let run = context.run_id;
    let job = context.job.clone();
    let recorded =
        tokio::task::spawn_blocking(move || store.set_job_outputs(run, &job, &outputs)).await;
    if let Ok(Err(error)) = recorded {
        let _ = context.log.send(format!(
            "sluice: cannot record the step's outputs: {error}\n"
        ));
    }
}
