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
//! Which environments exist, their apply modes, requirements and approvers always come from the
//! default branch (`authority`), never from the pull request.

use super::Mirrors;
use super::authority::{self, Authority};
use super::replan::{self, PlanSelection};
use crate::config::environment::Environment;
use crate::deploy::gates::TeamDirectory;
use crate::deploy::state::{DeployStore, NewAuditEntry};
use crate::forge::Forge;
use crate::forge::commands::{self, CommandHandler, CommandRequest, CommandResult, CommentEvent};
use crate::forge::comment::escape;
use crate::model::{Delivery, short_commit};
use crate::store::{CommandState, PendingApproval, Store, StoreResult};
use crate::terraform::{ApplyMode, ApplyRequirement, TerraformSettings};
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
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || work(store.as_ref())).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                tracing::error!(%error, "comment commands: store error");
                None
            }
            Err(error) => {
                tracing::error!(%error, "comment commands: task failed");
                None
            }
        }
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

    /// Whether `login` is among the environment's approvers, and who said so.
    async fn eligible(&self, environment: &Environment, login: &str) -> Result<String, String> {
        let approvers = &environment.gates.approvers;
        if approvers.is_empty() {
            return Ok("any person but the release's authors may approve".to_owned());
        }
        if approvers.iter().any(|allowed| allowed == login) {
            return Ok(format!("named in {}'s approvers", environment.name));
        }
        let mut why = Vec::new();
        for team in approvers.iter().filter(|allowed| allowed.starts_with('@')) {
            let membership = self.service.teams.membership(team, login).await;
            if membership.member {
                return Ok(format!("member of `{team}`, per {}", membership.source));
            }
            why.push(format!(
                "`{team}`: {}, per {}",
                membership.note.unwrap_or_else(|| "not a member".to_owned()),
                membership.source
            ));
        }
        Err(format!(
            "@{} is not among `{}`'s approvers (`{}`){}; ask one of them to approve",
            escape::inline(login),
            environment.name,
            approvers.join("`, `"),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {}", why.join("; "))
            }
        ))
    }
}

impl CommandHandler for CommandContext<'_> {
    async fn plan(&self, request: &CommandRequest, environment: Option<&str>) -> CommandResult {
        if !request.state.open {
            return Err("the pull request is closed; reopen it to plan it again".to_owned());
        }
        let authority = self.service.authority(&request.repository).await?;
        let planned: Vec<&str> = authority
            .environments
            .iter()
            .filter(|candidate| terraform_settings(candidate).is_some())
            .map(|candidate| candidate.name.as_str())
            .collect();
        if let Some(name) = environment {
            find_environment(&authority, name)?;
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
        let Ok(authority) = self.service.authority(&request.repository).await else {
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
        if !request.state.open {
            return Err("the pull request is closed; only an open pull request's plan is applied from a comment".to_owned());
        }
        let authority = self.service.authority(&request.repository).await?;
        let chosen: Vec<(String, TerraformSettings)> = match environment {
            Some(name) => {
                let found = find_environment(&authority, name)?;
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
            self.requirements_hold(request, &authority, &name, &settings, approved)
                .await?;
            answers.push(self.apply_one(request, &name, settings).await?);
        }
        Ok(answers.join("\n"))
    }

    async fn approve(
        &self,
        request: &CommandRequest,
        environment: &str,
        release: Option<&str>,
    ) -> CommandResult {
        let authority = self.service.authority(&request.repository).await?;
        let target = find_environment(&authority, environment)?.clone();
        let login = request.commenter.clone();
        let eligible = self.eligible(&target, &login).await?;
        let merged_commit = request
            .state
            .document
            .get("merged")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
            .then(|| {
                request
                    .state
                    .document
                    .get("merge_commit_sha")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            })
            .flatten();
        let wanted_release = match (release, merged_commit) {
            (Some(release), _) => Some(release.to_owned()),
            (None, Some(commit)) => {
                let store = self.service.deploy_store.clone();
                let repository = request.repository.clone();
                let releases = tokio::task::spawn_blocking(move || store.releases(&repository))
                    .await
                    .map_err(|error| error.to_string())?
                    .map_err(|error| error.to_string())?;
                let Some(found) = releases
                    .into_iter()
                    .find(|release| release.commit == commit)
                else {
                    return Err(format!(
                        "the merge `{}` of this pull request has no release yet (its runs have not all succeeded); comment again once it is cut, or approve the release by id: `/sluice approve {environment} RELEASE`",
                        short_commit(&commit)
                    ));
                };
                Some(found.id)
            }
            (None, None) => None,
        };
        if let Some(release) = wanted_release {
            let store = self.service.deploy_store.clone();
            let repository = request.repository.clone();
            let (name, approver) = (environment.to_owned(), login.clone());
            let at = chrono::Utc::now().timestamp();
            let (release_id, already) = tokio::task::spawn_blocking(move || {
                let found =
                    crate::deploy::actions::find_release(store.as_ref(), &repository, &release)?;
                let already = store
                    .approvals(&repository, &name, &found.id)?
                    .contains(&approver);
                crate::deploy::actions::approve(
                    store.as_ref(),
                    &repository,
                    &name,
                    Some(&found.id),
                    &approver,
                    at,
                )?;
                Ok::<_, crate::deploy::actions::ActionError>((found.id, already))
            })
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
            self.service.promotion_wakeup.notify_one();
            return Ok(if already {
                format!(
                    "@{} had already approved release `{release_id}` for `{environment}`.",
                    escape::inline(&login)
                )
            } else {
                format!(
                    "recorded @{}'s approval of release `{release_id}` for `{environment}` ({eligible}; write permission per GitHub).",
                    escape::inline(&login)
                )
            });
        }
        // Before the merge: the approval is for the release this head becomes.
        if !request.state.open {
            return Err(
                "the pull request is closed without a merge; there is no release to approve"
                    .to_owned(),
            );
        }
        let mut authors = self
            .service
            .forge
            .commit_authors(&request.repository, request.pull_request)
            .await
            .map_err(|error| {
                format!("cannot read the pull request's commits from GitHub: {error}")
            })?;
        if let Some(author) = &request.state.author {
            authors.push(author.clone());
        }
        if authors.contains(&login) {
            return Err(format!(
                "@{} authored this pull request or one of its commits, and a change is never approved by its own author; ask another approver",
                escape::inline(&login)
            ));
        }
        let approval = PendingApproval {
            repository: request.repository.clone(),
            environment: environment.to_owned(),
            pull_request: request.pull_request,
            head_sha: request.state.head_sha.clone(),
            approver: login.clone(),
            at: chrono::Utc::now().timestamp(),
        };
        let store = self.store();
        let stored = approval.clone();
        let new = tokio::task::spawn_blocking(move || store.add_pending_approval(&stored))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
        self.audit(
            request,
            Some(environment),
            "approve",
            "recorded",
            format!(
                "pull request #{} at {} (before its merge), by comment; {eligible}; write permission per GitHub",
                request.pull_request,
                short_commit(&request.state.head_sha)
            ),
        )
        .await;
        let head = short_commit(&request.state.head_sha);
        Ok(if new {
            format!(
                "recorded @{}'s approval for `{environment}` of the release this pull request becomes when it merges at `{head}` ({eligible}). A new push needs a new approval.",
                escape::inline(&login)
            )
        } else {
            format!(
                "@{} had already approved `{environment}` at `{head}`.",
                escape::inline(&login)
            )
        })
    }

    async fn unlock(&self, request: &CommandRequest, environment: Option<&str>) -> CommandResult {
        let authority = self.service.authority(&request.repository).await?;
        if let Some(name) = environment {
            find_environment(&authority, name)?;
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

impl CommandContext<'_> {
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

/// Approvals given in a pull request before its merge, carried to the release the merge became:
/// only when the merge contains exactly the head the approver saw (a merge commit whose parent it
/// is, or a fast-forward to it). Each is recorded in the history as carried.
pub fn carry_pull_request_approvals(
    store: &dyn Store,
    deploy_store: &dyn DeployStore,
    mirror_path: &std::path::Path,
    release: &crate::deploy::Release,
) {
    let mut heads = vec![release.commit.clone()];
    if let Some(facts) =
        crate::terraform::operations::merged_commit_facts(mirror_path, &release.commit)
    {
        heads.extend(facts.parents.into_iter().skip(1));
    }
    let approvals = match store.pending_approvals(&release.repository, &heads) {
        Ok(approvals) => approvals,
        Err(error) => {
            tracing::error!(%error, release = %release.id, "cannot read the pull request's approvals");
            return;
        }
    };
    for approval in approvals {
        if release.author.as_deref() == Some(approval.approver.as_str()) {
            continue;
        }
        let added = deploy_store.add_approval(
            &release.repository,
            &approval.environment,
            &release.id,
            &approval.approver,
            approval.at,
        );
        if let Ok(true) = added {
            let reason = format!(
                "given on pull request #{} at {} before its merge",
                approval.pull_request,
                short_commit(&approval.head_sha)
            );
            let _ = deploy_store.record_audit(&NewAuditEntry {
                repository: &release.repository,
                environment: Some(&approval.environment),
                release: Some(&release.id),
                action: "approve",
                actor: Some(&approval.approver),
                outcome: "carried",
                reason: &reason,
                at: chrono::Utc::now().timestamp(),
            });
        }
    }
}
