//! `/sluice apply`: where the default branch's environment says `terraform.apply: on-comment`,
//! once its `apply_requirements` hold, the pull request's reviewed plan is applied exactly, with
//! the server's own Terraform, as the merge would.

use super::{CommandContext, find_environment, terraform_settings};
use crate::forge::commands::{CommandRequest, CommandResult};
use crate::model::short_commit;
use crate::scheduler::authority::Authority;
use crate::store::StoreResult;
use crate::terraform::{ApplyMode, ApplyRequirement, TerraformSettings};

impl CommandContext<'_> {
    pub(super) async fn apply_command(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
        approved: bool,
    ) -> CommandResult {
        if !request.state.open {
            return Err("the pull request is closed; only an open pull request's plan is applied from a comment".to_owned());
        }
        let authority = self.authority(&request.repository).await?;
        let chosen: Vec<(String, TerraformSettings)> = match environment {
            Some(name) => {
                let found = find_environment(authority, name)?;
                let settings = terraform_settings(found).ok_or_else(|| {
                    format!(
                        "`{name}` has no `terraform:` section on {}",
                        authority.branch
                    )
                })?;
                if settings.apply != ApplyMode::OnComment {
                    return Err(format!(
                        "`{name}` applies only after the merge (`terraform.apply` on {} is not `on-comment`); merge the pull request to apply its reviewed plan",
                        authority.branch
                    ));
                }
                vec![(name.to_owned(), settings)]
            }
            None => authority
                .environments
                .iter()
                .filter_map(|candidate| {
                    terraform_settings(candidate)
                        .filter(|settings| settings.apply == ApplyMode::OnComment)
                        .map(|settings| (candidate.name.clone(), settings))
                })
                .collect(),
        };
        if chosen.is_empty() {
            return Err(format!(
                "no environment on {} applies from a pull request (none says `terraform.apply: on-comment`); merge the pull request to apply its reviewed plans",
                authority.branch
            ));
        }
        let mut answers = Vec::new();
        for (name, settings) in chosen {
            self.requirements_hold(request, authority, &name, &settings, approved)
                .await?;
            answers.push(self.apply_one(request, &name, settings).await?);
        }
        Ok(answers.join("\n"))
    }

    /// Atlantis' apply requirements, each unmet one named with what would make it pass.
    async fn requirements_hold(
        &self,
        request: &CommandRequest,
        authority: &Authority,
        environment: &str,
        settings: &TerraformSettings,
        approved: bool,
    ) -> Result<(), String> {
        let mut unmet = Vec::new();
        for requirement in &settings.apply_requirements {
            match requirement {
                ApplyRequirement::Approved if !approved => unmet.push(
                    "approved: it has no approving review (or a reviewer requested changes)"
                        .to_owned(),
                ),
                ApplyRequirement::Mergeable => match request.state.mergeable {
                    Some(true) => {}
                    Some(false) => unmet.push(
                        "mergeable: GitHub says it cannot be merged (conflicts or failing required checks)"
                            .to_owned(),
                    ),
                    None => unmet.push(
                        "mergeable: GitHub is still working out whether it can be merged; try again in a moment"
                            .to_owned(),
                    ),
                },
                ApplyRequirement::Undiverged => {
                    if let Some(problem) = self.diverged(request, authority).await? {
                        unmet.push(problem);
                    }
                }
                ApplyRequirement::Approved => {}
            }
        }
        if unmet.is_empty() {
            return Ok(());
        }
        Err(format!(
            "`{environment}` requires {} before an apply; not yet: {}",
            settings
                .apply_requirements
                .iter()
                .map(|requirement| requirement.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            unmet.join("; ")
        ))
    }

    /// `Some(why)` when the base branch has commits the pull request's head does not contain.
    async fn diverged(
        &self,
        request: &CommandRequest,
        authority: &Authority,
    ) -> Result<Option<String>, String> {
        let mirror = self
            .service
            .mirrors
            .get(&request.repository)
            .map_err(|error| error.to_string())?;
        let base = if request.state.base_ref.is_empty() {
            authority.branch.clone()
        } else {
            request.state.base_ref.clone()
        };
        let head = request.state.head_sha.clone();
        tokio::task::spawn_blocking(move || {
            let base_head = mirror
                .resolve(&format!("refs/heads/{base}"))
                .map_err(|error| format!("cannot read `{base}`: {error}"))?;
            if !mirror.has_commit(&head) {
                return Err(format!(
                    "sluice has not fetched the head `{}` yet; try again in a moment",
                    short_commit(&head)
                ));
            }
            let merge_base = mirror
                .merge_base(&head, &base_head)
                .map_err(|error| error.to_string())?;
            Ok((merge_base.as_deref() != Some(base_head.as_str())).then(|| {
                format!(
                    "undiverged: `{base}` moved to `{}` since the branch left it; merge or rebase `{base}` into the branch and plan again",
                    short_commit(&base_head)
                )
            }))
        })
        .await
        .map_err(|error| error.to_string())?
    }

    /// Applies exactly the reviewed plan this pull request stored for the environment, as the
    /// merge would, with the server's own Terraform and credentials.
    async fn apply_one(
        &self,
        request: &CommandRequest,
        environment: &str,
        settings: TerraformSettings,
    ) -> Result<String, String> {
        let target = crate::store::TerraformTarget {
            repository: request.repository.clone(),
            environment: settings.environment.clone(),
            dir: settings.dir.clone(),
        };
        let store = self.store();
        let (lookup_target, workspace) = (target.clone(), settings.workspace.clone());
        let number = request.pull_request;
        let (plan, lock) = tokio::task::spawn_blocking(move || {
            let plans = store.terraform_plans(&lookup_target, &workspace)?;
            let plan = plans.into_iter().rev().find(|plan| {
                plan.pull_request == Some(number)
                    && plan.superseded_by.is_none()
                    && plan.applied_at.is_none()
            });
            let lock = store.terraform_lock(&lookup_target)?;
            StoreResult::Ok((plan, lock))
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
        let Some(plan) = plan else {
            return Err(format!(
                "this pull request has no reviewed plan for `{environment}` that is still current; `/sluice plan {environment}` first"
            ));
        };
        if plan.commit != request.state.head_sha {
            return Err(format!(
                "the reviewed plan for `{environment}` is of `{}`, but the head is `{}`; `/sluice plan {environment}` to plan the head",
                short_commit(&plan.commit),
                short_commit(&request.state.head_sha)
            ));
        }
        match lock {
            Some(lock) if lock.holder.pull_request == Some(number) => {}
            Some(lock) => {
                return Err(format!(
                    "`{environment}` is locked by {}; the plan can be applied once this pull request holds the lock again (`/sluice plan {environment}`)",
                    lock.holder.label
                ));
            }
            None => {
                return Err(format!(
                    "this pull request no longer holds the lock on `{environment}` (it was released); `/sluice plan {environment}` to take it and plan again"
                ));
            }
        }
        let key = crate::terraform::PlanKey::from_env().map_err(|error| error.to_string())?;
        let mirror = self
            .service
            .mirrors
            .get(&request.repository)
            .map_err(|error| error.to_string())?;
        let checkouts = self.service.data_dir.join("releases").join("applies");
        let checkout = tempfile::Builder::new()
            .prefix("apply-")
            .tempdir_in({
                std::fs::create_dir_all(&checkouts).map_err(|error| error.to_string())?;
                &checkouts
            })
            .map_err(|error| format!("cannot make a checkout directory: {error}"))?;
        let commit = plan.commit.clone();
        let destination = checkout.path().to_path_buf();
        tokio::task::spawn_blocking(move || mirror.checkout(&commit, &destination))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| {
                format!("cannot check out `{}`: {error}", short_commit(&plan.commit))
            })?;
        let job = crate::terraform::TerraformJob {
            settings,
            repository: request.repository.clone(),
            checkout: checkout.path().to_path_buf(),
            data_dir: self.service.data_dir.clone(),
            env: crate::terraform::runner::operator_environment(),
            log: None,
            cancel: tokio_util::sync::CancellationToken::new(),
            container: None,
        };
        let outcome =
            crate::terraform::operations::apply_stored(&job, self.store().as_ref(), &key, &plan)
                .await;
        let text = match outcome {
            Ok(crate::terraform::ApplyOutcome::Applied {
                sha256, summary, ..
            }) => {
                self.audit(
                    request,
                    Some(environment),
                    "apply",
                    "applied",
                    format!(
                        "terraform plan {sha256} of pull request #{} at {} ({summary}), by comment",
                        request.pull_request,
                        short_commit(&plan.commit)
                    ),
                )
                .await;
                format!(
                    "applied the reviewed plan `{}` of `{}` to `{environment}` ({summary}). The merge will find it applied and apply nothing twice.",
                    &sha256[..12.min(sha256.len())],
                    short_commit(&plan.commit)
                )
            }
            Ok(crate::terraform::ApplyOutcome::AlreadyApplied { sha256 }) => {
                format!("the plan `{sha256}` was applied already; nothing to do")
            }
            Ok(crate::terraform::ApplyOutcome::Refused(why)) => return Err(why),
            Err(error) => {
                self.audit(
                    request,
                    Some(environment),
                    "apply",
                    "failed",
                    format!(
                        "terraform apply of pull request #{}: {error}",
                        request.pull_request
                    ),
                )
                .await;
                return Err(format!(
                    "terraform apply of `{environment}` failed: {error}; fix the cause, then `/sluice plan {environment}` and apply again"
                ));
            }
        };
        Ok(text)
    }
}
