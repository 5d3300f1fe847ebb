//! `/sluice approve`: an approval bound to one environment and one release (the merged pull
//! request's, or one named), or before the merge to the head the approver saw, carried to the
//! release that head's merge becomes. Approvers come from the default branch; team approvers are
//! asked of the team directory (GitHub's memberships when GitHub is configured).

use super::{CommandContext, find_environment};
use crate::config::environment::Environment;
use crate::forge::commands::{CommandRequest, CommandResult};
use crate::forge::comment::escape;
use crate::model::short_commit;
use crate::store::{DeployStore, NewAuditEntry};
use crate::store::{PendingApproval, Store};

impl CommandContext<'_> {
    /// Whether `login` is among the environment's approvers, and who said so.
    pub(super) async fn eligible(
        &self,
        environment: &Environment,
        login: &str,
    ) -> Result<String, String> {
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

    pub(super) async fn approve_command(
        &self,
        request: &CommandRequest,
        environment: &str,
        release: Option<&str>,
    ) -> CommandResult {
        let authority = self.authority(&request.repository).await?;
        let target = find_environment(authority, environment)?.clone();
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
                    &crate::model::access::Principal::github(&approver),
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
        // The release's author and everyone whose commit it carries never approve it.
        if release.is_contributor(&approval.approver) {
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
