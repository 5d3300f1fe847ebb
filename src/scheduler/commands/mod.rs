//! Pull-request comment commands, answered by the server. The intake worker records each
//! `issue_comment` delivery that holds a command (`enqueue`); the `CommandService` takes them in
//! order, marks each as acting before it does anything (so a restart never carries one out twice:
//! a command found acting after a restart is answered as interrupted), and lets
//! `forge::commands::handle_comment` acknowledge it, ask GitHub for the commenter's permission and
//! call back here for the work:
//! - `plan`: an internal re-plan delivery of the pull request as GitHub describes it now;
//! - `apply`: the pull request's reviewed plan, exactly, where the default branch's environment
//!   says `terraform.apply: on-comment` and its `apply_requirements` hold;
//! - `approve`: an approval bound to one environment and one release (a merged pull request's
//!   release, a named one, or, before the merge, the head the approver saw);
//! - `unlock`: the Terraform locks the pull request holds (the plan queued behind one runs next);
//! - `run`: an approval of a fork's waiting runs.
//!
//! `apply.rs` holds the apply path, `approve.rs` approvals and their carrying over to releases.
//!
//! Which environments exist, their apply modes, requirements and approvers always come from the
//! default branch (`authority`), never from the pull request.

mod apply;
mod approve;

pub use approve::carry_pull_request_approvals;

use super::Mirrors;
use super::authority::{self, Authority};
use super::replan::{self, PlanSelection};
use crate::config::environment::Environment;
use crate::deploy::gates::TeamDirectory;
use crate::forge::Forge;
use crate::forge::commands::{self, CommandHandler, CommandRequest, CommandResult, CommentEvent};
use crate::forge::comment::escape;
use crate::model::{Delivery, short_commit};
use crate::store::{CommandState, Store, StoreResult};
use crate::store::{DeployStore, NewAuditEntry};
use crate::terraform::{ApplyRequirement, TerraformSettings};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A command older than this when first looked at (the server was down, or had no GitHub) is
/// not carried out: what it asked for may no longer be wanted.
const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Records the command of an `issue_comment` delivery for the command service; nothing for any
/// other delivery. Idempotent: planning the same delivery again records nothing new.
pub fn enqueue(store: &dyn Store, delivery: &Delivery) -> StoreResult<()> {
    if delivery.event != "issue_comment" {
        return Ok(());
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&delivery.payload) else {
        return Ok(());
    };
    if let Some((event, _)) = commands::command_of(&payload) {
        store.enqueue_command(
            &delivery.id,
            &event.repository,
            event.pull_request,
            delivery.received_at,
        )?;
    }
    Ok(())
}

/// Everything the commands reach.
pub struct CommandService {
    pub store: Arc<dyn Store>,
    pub deploy_store: Arc<dyn DeployStore>,
    pub forge: Arc<Forge>,
    pub mirrors: Arc<Mirrors>,
    pub teams: Arc<dyn TeamDirectory>,
    pub data_dir: PathBuf,
    /// Woken by the intake worker after it recorded a command.
    pub wakeup: Arc<Notify>,
    pub intake_wakeup: Arc<Notify>,
    pub promotion_wakeup: Arc<Notify>,
    /// Woken after a lock was released, so the plan queued behind it starts.
    pub lock_wakeup: Arc<Notify>,
}

impl CommandService {
    pub async fn run(self: Arc<Self>) {
        self.answer_interrupted().await;
        loop {
            let pending = self
                .blocking(|store| store.commands_in_state(CommandState::Pending))
                .await
                .unwrap_or_default();
            for delivery_id in pending {
                // One at a time and in order: commands on one pull request act in the order
                // they were written.
                self.carry_out(&delivery_id).await;
            }
            tokio::select! {
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    ) -> Option<T> {
        super::store_call(&self.store, "comment commands", work).await
    }

    /// Commands that were acting when the server stopped: they may or may not have taken
    /// effect, so they are not done again; the pull request is told.
    async fn answer_interrupted(&self) {
        let acting = self
            .blocking(|store| store.commands_in_state(CommandState::Acting))
            .await
            .unwrap_or_default();
        for delivery_id in acting {
            let Some((event, _)) = self.comment_of(&delivery_id).await else {
                continue;
            };
            let text = "sluice restarted while carrying out this command, so it may or may not have taken effect. Check the plan comment and `sluice status`, then comment the command again if it is still needed.";
            let _ = self
                .forge
                .react(&event.repository, event.comment_id, "confused")
                .await;
            let answered = commands::answer(&self.forge, &event, text).await.is_ok();
            let id = delivery_id.clone();
            self.blocking(move |store| {
                store.finish_command(
                    &id,
                    CommandState::Interrupted,
                    "interrupted by a restart",
                    answered.then(chrono::Utc::now),
                )
            })
            .await;
        }
    }

    async fn comment_of(&self, delivery_id: &str) -> Option<(CommentEvent, Delivery)> {
        let id = delivery_id.to_owned();
        let delivery = self.blocking(move |store| store.delivery(&id)).await??;
        let payload: serde_json::Value = serde_json::from_slice(&delivery.payload).ok()?;
        let (event, _) = commands::command_of(&payload)?;
        Some((event, delivery))
    }

    async fn carry_out(&self, delivery_id: &str) {
        let id = delivery_id.to_owned();
        let claimed = self
            .blocking(move |store| {
                store.move_command(&id, CommandState::Pending, CommandState::Acting)
            })
            .await
            .unwrap_or(false);
        if !claimed {
            return;
        }
        let (state, outcome) = match self.comment_of(delivery_id).await {
            None => (
                CommandState::Answered,
                "unreadable: no command found".to_owned(),
            ),
            Some((_, delivery)) if chrono::Utc::now() - delivery.received_at > STALE_AFTER => (
                CommandState::Answered,
                "not carried out: received more than an hour before it could be answered"
                    .to_owned(),
            ),
            Some((event, _)) => {
                let context = CommandContext {
                    service: self,
                    delivery_id: delivery_id.to_owned(),
                    authority: tokio::sync::OnceCell::new(),
                };
                match commands::handle_comment(&self.forge, &context, &event).await {
                    Ok(outcome) => {
                        tracing::info!(
                            delivery = delivery_id,
                            repository = %event.repository,
                            pull_request = event.pull_request,
                            commenter = %event.commenter,
                            outcome = %outcome.summary(),
                            "comment command answered"
                        );
                        (CommandState::Answered, outcome.summary())
                    }
                    Err(error) => {
                        tracing::error!(delivery = delivery_id, %error, "cannot answer a comment command");
                        (
                            CommandState::Answered,
                            format!("github error while answering: {error}"),
                        )
                    }
                }
            }
        };
        let id = delivery_id.to_owned();
        self.blocking(move |store| {
            store.finish_command(&id, state, &outcome, Some(chrono::Utc::now()))
        })
        .await;
    }

    /// The default branch's configuration, after a fetch so it is current.
    async fn authority(&self, repository: &str) -> Result<Authority, String> {
        let mirror = self
            .mirrors
            .get(repository)
            .map_err(|error| format!("sluice cannot reach the repository: {error}"))?;
        tokio::task::spawn_blocking(move || {
            mirror
                .fetch()
                .map_err(|error| format!("sluice cannot fetch the repository: {error}"))?;
            authority::read_authority(&mirror)
                .map_err(|error| format!("cannot read the default branch: {error}"))?
                .ok_or_else(|| "the repository has no default branch yet".to_owned())
        })
        .await
        .map_err(|error| error.to_string())?
    }
}

/// The handler for one command: the service plus the command's delivery id (which makes what
/// the command stores idempotent).
struct CommandContext<'a> {
    service: &'a CommandService,
    delivery_id: String,
    /// The default branch's configuration, fetched once per command (`apply` asks for the
    /// requirements first and applies after).
    authority: tokio::sync::OnceCell<Authority>,
}

fn environment_names(authority: &Authority) -> String {
    authority
        .environments
        .iter()
        .map(|environment| environment.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn find_environment<'a>(authority: &'a Authority, name: &str) -> Result<&'a Environment, String> {
    authority
        .environments
        .iter()
        .find(|environment| environment.name == name)
        .ok_or_else(|| {
            format!(
                "there is no environment `{}` on {} (environments: {})",
                escape::inline(name),
                authority.branch,
                environment_names(authority)
            )
        })
}

fn terraform_settings(environment: &Environment) -> Option<TerraformSettings> {
    TerraformSettings::from_environment(environment)
        .ok()
        .flatten()
}

impl CommandContext<'_> {
    fn store(&self) -> Arc<dyn Store> {
        self.service.store.clone()
    }

    /// The default branch's configuration for this command's repository, fetched on first use.
    async fn authority(&self, repository: &str) -> Result<&Authority, String> {
        self.authority
            .get_or_try_init(|| self.service.authority(repository))
            .await
    }

    /// Records what the commenter did in the history.
    async fn audit(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
        action: &'static str,
        outcome: &'static str,
        reason: String,
    ) {
        let store = self.service.deploy_store.clone();
        let (repository, environment, actor) = (
            request.repository.clone(),
            environment.map(str::to_owned),
            request.commenter.clone(),
        );
        let recorded = tokio::task::spawn_blocking(move || {
            store.record_audit(&NewAuditEntry {
                repository: &repository,
                environment: environment.as_deref(),
                release: None,
                action,
                actor: Some(&actor),
                outcome,
                reason: &reason,
                at: chrono::Utc::now().timestamp(),
            })
        })
        .await;
        if !matches!(recorded, Ok(Ok(()))) {
            tracing::error!("cannot record a comment command in the history");
        }
    }
}

impl CommandHandler for CommandContext<'_> {
    async fn plan(&self, request: &CommandRequest, environment: Option<&str>) -> CommandResult {
        if !request.state.open {
            return Err("the pull request is closed; reopen it to plan it again".to_owned());
        }
        let authority = self.authority(&request.repository).await?;
        let planned: Vec<&str> = authority
            .environments
            .iter()
            .filter(|candidate| terraform_settings(candidate).is_some())
            .map(|candidate| candidate.name.as_str())
            .collect();
        if let Some(name) = environment {
            find_environment(authority, name)?;
            if !planned.contains(&name) {
                return Err(format!(
                    "`{name}` has no `terraform:` section on {}, so there is nothing to plan (environments with Terraform: {})",
                    authority.branch,
                    planned.join(", ")
                ));
            }
        }
        let selection = PlanSelection {
            environment: environment.map(str::to_owned),
            reason: format!(
                "`/sluice plan{}` by {}",
                environment
                    .map(|name| format!(" {name}"))
                    .unwrap_or_default(),
                request.commenter
            ),
        };
        let delivery = replan::replan_delivery(
            format!("replan:{}", self.delivery_id),
            &request.repository,
            &request.state.document,
            &selection,
        );
        let store = self.store();
        tokio::task::spawn_blocking(move || store.insert_delivery(&delivery))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| format!("sluice could not record the plan: {error}"))?;
        self.service.intake_wakeup.notify_one();
        let what = match environment {
            Some(name) => format!("`{name}`"),
            None => format!("every environment ({})", planned.join(", ")),
        };
        let fork = if request.state.from_fork {
            " This pull request comes from a fork: its runs wait for `/sluice run` by someone with write permission."
        } else {
            ""
        };
        Ok(format!(
            "planning {what} again at `{}`; the plan comment is updated when it finishes.{fork}",
            short_commit(&request.state.head_sha)
        ))
    }

    async fn apply_requirements(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
    ) -> Vec<ApplyRequirement> {
        let Ok(authority) = self.authority(&request.repository).await else {
            return Vec::new();
        };
        authority
            .environments
            .iter()
            .filter(|candidate| environment.is_none_or(|name| candidate.name == name))
            .filter_map(terraform_settings)
            .flat_map(|settings| settings.apply_requirements)
            .collect()
    }

    async fn apply(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
        approved: bool,
    ) -> CommandResult {
        self.apply_command(request, environment, approved).await
    }

    async fn approve(
        &self,
        request: &CommandRequest,
        environment: &str,
        release: Option<&str>,
    ) -> CommandResult {
        self.approve_command(request, environment, release).await
    }

    async fn unlock(&self, request: &CommandRequest, environment: Option<&str>) -> CommandResult {
        let authority = self.authority(&request.repository).await?;
        if let Some(name) = environment {
            find_environment(authority, name)?;
        }
        let targets: Vec<crate::store::TerraformTarget> = authority
            .environments
            .iter()
            .filter(|candidate| environment.is_none_or(|name| candidate.name == name))
            .filter_map(terraform_settings)
            .map(|settings| crate::store::TerraformTarget {
                repository: request.repository.clone(),
                environment: settings.environment,
                dir: settings.dir,
            })
            .collect();
        let store = self.store();
        let number = request.pull_request;
        let (released, others) = tokio::task::spawn_blocking(move || {
            let mut released = Vec::new();
            let mut others = Vec::new();
            for target in targets {
                match store.terraform_lock(&target)? {
                    Some(lock) if lock.holder.pull_request == Some(number) => {
                        if let Some(lock) = store.release_terraform_lock(&target, Some(number))? {
                            released.push(lock);
                        }
                    }
                    Some(lock) => others.push(lock),
                    None => {}
                }
            }
            StoreResult::Ok((released, others))
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
        if released.is_empty() {
            let held: Vec<String> = others
                .iter()
                .map(|lock| {
                    format!(
                        "`{}` is held by {} (unlock it there, or an admin runs `sluice unlock {}`)",
                        lock.target.environment, lock.holder.label, lock.target.environment
                    )
                })
                .collect();
            return Err(format!(
                "this pull request holds no Terraform lock{}{}",
                environment
                    .map(|name| format!(" on `{name}`"))
                    .unwrap_or_default(),
                if held.is_empty() {
                    String::new()
                } else {
                    format!("; {}", held.join("; "))
                }
            ));
        }
        for lock in &released {
            self.audit(
                request,
                Some(&lock.target.environment),
                "unlock",
                "released",
                format!(
                    "terraform lock on {} held by {} since {}, by comment",
                    lock.target.dir,
                    lock.holder.label,
                    lock.acquired_at.to_rfc3339()
                ),
            )
            .await;
        }
        self.service.lock_wakeup.notify_one();
        let names: Vec<String> = released
            .iter()
            .map(|lock| format!("`{}` ({})", lock.target.environment, lock.target.dir))
            .collect();
        Ok(format!(
            "released the lock on {}; a plan waiting in its queue runs now, and this pull request's stored plan for it can no longer be applied until it is planned again.",
            names.join(", ")
        ))
    }

    async fn run(&self, request: &CommandRequest) -> CommandResult {
        let store = self.store();
        let repository = request.repository.clone();
        let head = request.state.head_sha.clone();
        let number = request.pull_request;
        let approver = request.commenter.clone();
        let (approved, earlier) =
            tokio::task::spawn_blocking(move || -> StoreResult<(Vec<i64>, Vec<i64>)> {
                let runs = store.list_runs(&crate::store::RunFilter {
                    repository: Some(repository),
                    commit: Some(head),
                    limit: Some(200),
                    ..Default::default()
                })?;
                let mut approved = Vec::new();
                let mut earlier = Vec::new();
                for run in runs {
                    let waiting = run
                        .reason
                        .as_deref()
                        .is_some_and(|reason| reason.starts_with(super::approval::WAITING));
                    let of_this_pull_request = store
                        .run_plan(run.id)?
                        .and_then(|text| serde_json::from_str::<super::StoredPlan>(&text).ok())
                        .is_some_and(|plan| plan.event.pull_request == Some(number));
                    if !(waiting && of_this_pull_request) {
                        continue;
                    }
                    let Some(delivery_id) = &run.delivery else {
                        continue;
                    };
                    let Some(original) = store.delivery(delivery_id)? else {
                        continue;
                    };
                    let approval = super::approval::approval_delivery(&original, run.id, &approver);
                    match store.insert_delivery(&approval)? {
                        crate::store::Inserted::New => approved.push(run.id),
                        crate::store::Inserted::Duplicate => earlier.push(run.id),
                    }
                }
                Ok((approved, earlier))
            })
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
        if approved.is_empty() {
            let already = if earlier.is_empty() {
                String::new()
            } else {
                format!(
                    " (run {} was approved already)",
                    earlier
                        .iter()
                        .map(|id| format!("#{id}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(format!(
                "no run of this pull request waits for approval at `{}`{already}; only the runs of a pull request from a fork wait, and each new push waits again",
                short_commit(&request.state.head_sha)
            ));
        }
        self.service.intake_wakeup.notify_one();
        let runs: Vec<String> = approved.iter().map(|id| format!("#{id}")).collect();
        Ok(format!(
            "approved run {} at `{}`: it starts now, still without secrets, Terraform or image pushes (a fork's code stays untrusted).",
            runs.join(", "),
            short_commit(&request.state.head_sha)
        ))
    }
}
