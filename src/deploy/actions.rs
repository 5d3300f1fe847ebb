//! What people do to promotion, shared by the CLI, the HTTP API and pull-request commands: approve
//! a release for an environment, ask for a promotion or a rollback, and read the status. Requests
//! are recorded durably and carried out by the reconciler on its next pass. Every action names the
//! principal acting and checks its role here, so the command line, the API and pull-request
//! commands refuse the same things with the same words.

use crate::deploy::Release;
use crate::model::access::{Principal, Role};
use crate::store::StoreError;
use crate::store::{AuditEntry, DeployRequest, DeployStore, Deployment, RequestAction};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The request is wrong: the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// The principal's role or identity does not allow it: the message says what would.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The repository to act on: the one given, else the only one with releases.
pub fn repository(store: &dyn DeployStore, given: Option<&str>) -> Result<String, ActionError> {
    if let Some(given) = given {
        return Ok(given.to_owned());
    }
    let repositories = store.release_repositories()?;
    match repositories.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(ActionError::Refused(
            "no releases yet: a release is cut when a merge's runs succeed".to_owned(),
        )),
        many => Err(ActionError::Refused(format!(
            "several repositories have releases ({}); choose one with --repo OWNER/NAME",
            many.join(", ")
        ))),
    }
}

/// A release by id or by (a prefix of) its commit sha.
pub fn find_release(
    store: &dyn DeployStore,
    repository: &str,
    wanted: &str,
) -> Result<Release, ActionError> {
    let releases = store.releases(repository)?;
    releases
        .iter()
        .find(|release| release.id == wanted)
        .or_else(|| {
            (wanted.len() >= 7)
                .then(|| {
                    releases
                        .iter()
                        .find(|release| release.commit.starts_with(wanted))
                })
                .flatten()
        })
        .cloned()
        .ok_or_else(|| {
            ActionError::Refused(format!(
                "no release `{wanted}` in {repository}; `sluice releases` lists them"
            ))
        })
}

/// The release waiting at the environment's gate, else the newest release.
fn waiting_release(
    store: &dyn DeployStore,
    repository: &str,
    environment: &str,
) -> Result<Release, ActionError> {
    let waiting = store
        .audit(repository, Some(environment))?
        .into_iter()
        .rev()
        .find(|entry| entry.action == "gate" && entry.outcome == "blocked")
        .and_then(|entry| entry.release);
    match waiting {
        Some(id) => find_release(store, repository, &id),
        None => store
            .releases(repository)?
            .into_iter()
            .next()
            .ok_or_else(|| ActionError::Refused("no releases yet".to_owned())),
    }
}

/// Refuses a principal whose role is below `needed`, naming the action and the role it needs.
pub fn require(principal: &Principal, needed: Role, what: &str) -> Result<(), ActionError> {
    if principal.role.allows(needed) {
        return Ok(());
    }
    Err(ActionError::Forbidden(format!(
        "{what} needs the {needed} role; {} has {}; ask an admin for a token with `--role {needed}`",
        principal.recorded_as(),
        principal.role
    )))
}

/// The sentence that refuses approving with no person behind the token.
pub const APPROVAL_NEEDS_A_PERSON: &str = "an approval needs a person; create a personal token with `sluice token create NAME --role approver`";

/// Refuses `release` for `environment` when the environment already runs it or a newer release:
/// promotion only goes forward in git order, and going back is a rollback.
fn forward_only(
    store: &dyn DeployStore,
    repository: &str,
    environment: &str,
    release: &Release,
    doing: &str,
) -> Result<(), ActionError> {
    let Some(current) = store
        .environment_states(repository)?
        .into_iter()
        .find(|state| state.environment == environment)
    else {
        return Ok(());
    };
    if current.release == release.id {
        return Err(ActionError::Refused(format!(
            "{environment} already runs {}; there is nothing to {doing}",
            release.id
        )));
    }
    let running = store.release(repository, &current.release)?;
    if running.is_some_and(|running| running.sequence >= release.sequence) {
        return Err(ActionError::Refused(format!(
            "{environment} runs {}, which is newer than {}; promotion only goes forward, so go back with `sluice rollback {environment} --to {}`",
            current.release, release.id, release.id
        )));
    }
    Ok(())
}

/// Records the principal's approval of a release for an environment. Refused for a token with no
/// person, below the approver role, for the release's author and for anyone who wrote, committed
/// or pushed what it carries, and for a release the environment already runs or is past.
pub fn approve(
    store: &dyn DeployStore,
    repository: &str,
    environment: &str,
    release: Option<&str>,
    approver: &Principal,
    at: i64,
) -> Result<String, ActionError> {
    require(approver, Role::Approver, "approving a release")?;
    let Some(login) = approver.person.as_deref() else {
        return Err(ActionError::Forbidden(APPROVAL_NEEDS_A_PERSON.to_owned()));
    };
    let release = match release {
        Some(wanted) => find_release(store, repository, wanted)?,
        None => waiting_release(store, repository, environment)?,
    };
    if release.author.as_deref() == Some(login) {
        return Err(ActionError::Forbidden(format!(
            "{login} is the author of {} and cannot approve it; ask someone who did not write it",
            release.id
        )));
    }
    if release.contributors.contains(login) {
        return Err(ActionError::Forbidden(format!(
            "{login} wrote, committed or pushed a commit in {} and cannot approve it; ask someone who did not",
            release.id
        )));
    }
    forward_only(store, repository, environment, &release, "approve")?;
    let recorded = approver.recorded_as();
    let new = store.add_approval(repository, environment, &release.id, &recorded, at)?;
    store.record_audit(&crate::store::NewAuditEntry {
        repository,
        environment: Some(environment),
        release: Some(&release.id),
        action: "approve",
        actor: Some(&recorded),
        outcome: "recorded",
        reason: "",
        at,
    })?;
    Ok(if new {
        format!("{recorded} approved {} for {environment}", release.id)
    } else {
        format!(
            "{recorded} had already approved {} for {environment}",
            release.id
        )
    })
}

/// A promotion forced past the gates: only an admin, only with a reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Force<'a> {
    pub force: bool,
    pub reason: Option<&'a str>,
}

/// What a person does to an environment, through the HTTP API or the web UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvironmentAction {
    Approve,
    Promote,
    Rollback,
}

impl EnvironmentAction {
    /// `approve`, `promote` or `rollback`, as the API's and the UI's paths name them.
    pub fn parse(text: &str) -> Result<EnvironmentAction, ActionError> {
        match text {
            "approve" => Ok(EnvironmentAction::Approve),
            "promote" => Ok(EnvironmentAction::Promote),
            "rollback" => Ok(EnvironmentAction::Rollback),
            other => Err(ActionError::Refused(format!(
                "unknown action `{other}`; use approve, promote or rollback"
            ))),
        }
    }
}

/// Carries out `action`: an approval (`force` plays no part), or a promotion or rollback request.
#[allow(clippy::too_many_arguments)]
pub fn perform(
    store: &dyn DeployStore,
    repository: &str,
    environment: &str,
    action: EnvironmentAction,
    release: Option<&str>,
    actor: &Principal,
    force: Force<'_>,
    at: i64,
) -> Result<String, ActionError> {
    let request_action = match action {
        EnvironmentAction::Approve => {
            return approve(store, repository, environment, release, actor, at);
        }
        EnvironmentAction::Promote => RequestAction::Promote,
        EnvironmentAction::Rollback => RequestAction::Rollback,
    };
    request(
        store,
        repository,
        environment,
        request_action,
        release,
        actor,
        force,
        at,
    )
}

/// Asks the reconciler to deploy `release` to `environment` (promote) or to go back (rollback;
/// `release` `None` = the release before the current one). A promotion is carried out once the
/// environment's gates pass for the release, unless an admin forced it with a reason; it never
/// goes back in git order.
#[allow(clippy::too_many_arguments)]
pub fn request(
    store: &dyn DeployStore,
    repository: &str,
    environment: &str,
    action: RequestAction,
    release: Option<&str>,
    actor: &Principal,
    force: Force<'_>,
    at: i64,
) -> Result<String, ActionError> {
    let verb = match action {
        RequestAction::Promote => "promoting a release",
        RequestAction::Rollback => "rolling an environment back",
    };
    require(actor, Role::Approver, verb)?;
    let reason = force
        .reason
        .map(str::trim)
        .filter(|reason| !reason.is_empty());
    if force.force {
        if action == RequestAction::Rollback {
            return Err(ActionError::Refused(
                "a rollback passes no gates, so there is nothing to force; leave out --force"
                    .to_owned(),
            ));
        }
        require(actor, Role::Admin, "forcing a promotion past its gates")?;
        if reason.is_none() {
            return Err(ActionError::Refused(
                "a forced promotion needs a reason for the history: add `--reason TEXT` (API: \"reason\")".to_owned(),
            ));
        }
    }
    let release = match release {
        Some(wanted) => Some(find_release(store, repository, wanted)?),
        None if action == RequestAction::Promote => {
            return Err(ActionError::Refused(
                "name the release to promote: `sluice promote ENV RELEASE`".to_owned(),
            ));
        }
        None => None,
    };
    if action == RequestAction::Promote
        && let Some(release) = &release
    {
        forward_only(store, repository, environment, release, "promote")?;
    }
    let release = release.map(|release| release.id);
    let recorded = actor.recorded_as();
    let force_reason = if force.force {
        reason.map(str::to_owned)
    } else {
        None
    };
    store.add_request(&DeployRequest {
        id: 0,
        repository: repository.to_owned(),
        environment: environment.to_owned(),
        release: release.clone(),
        action,
        actor: Some(recorded.clone()),
        at,
        outcome: None,
        force_reason: force_reason.clone(),
    })?;
    let audit_reason = match (action, &force_reason, reason) {
        (RequestAction::Rollback, _, None) => "rollback".to_owned(),
        (RequestAction::Rollback, _, Some(reason)) => format!("rollback: {reason}"),
        (RequestAction::Promote, Some(reason), _) => format!("promote --force: {reason}"),
        (RequestAction::Promote, None, None) => "promote".to_owned(),
        (RequestAction::Promote, None, Some(reason)) => format!("promote: {reason}"),
    };
    store.record_audit(&crate::store::NewAuditEntry {
        repository,
        environment: Some(environment),
        release: release.as_deref(),
        action: "request",
        actor: Some(&recorded),
        outcome: "recorded",
        reason: &audit_reason,
        at,
    })?;
    let what = release.unwrap_or_else(|| "the previous release".to_owned());
    Ok(match (action, force_reason.is_some()) {
        (RequestAction::Promote, true) => format!(
            "forced promotion of {what} to {environment} requested; its gates are skipped and the history records why"
        ),
        (RequestAction::Promote, false) => format!(
            "promotion of {what} to {environment} requested; it is carried out once {environment}'s gates pass (`sluice status` shows what it waits for)"
        ),
        (RequestAction::Rollback, _) => format!("rollback of {environment} to {what} requested"),
    })
}

/// One environment in `sluice status`.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentStatus {
    pub environment: String,
    pub release: Option<String>,
    pub healthy_since: Option<i64>,
    /// The deployment holding the environment's lock, if any.
    pub deploying: Option<Deployment>,
    /// The release held at a gate and why, from the newest gate decision.
    pub waiting: Option<(String, String)>,
}

pub fn status(
    store: &dyn DeployStore,
    repository: &str,
    environments: &[String],
) -> Result<Vec<EnvironmentStatus>, ActionError> {
    let history = store.audit(repository, None)?;
    status_from(store, repository, environments, &history)
}

/// `status`, for a caller that has read the repository's whole history already.
pub fn status_from(
    store: &dyn DeployStore,
    repository: &str,
    environments: &[String],
    history: &[AuditEntry],
) -> Result<Vec<EnvironmentStatus>, ActionError> {
    let states = store.environment_states(repository)?;
    let running = store.running_deployments(repository)?;
    // Promotion order: as given, else as promotion last read it from the default branch.
    let mut names: Vec<String> = if environments.is_empty() {
        store.environment_order(repository)?
    } else {
        environments.to_vec()
    };
    let seen = states
        .iter()
        .map(|state| state.environment.clone())
        .chain(history.iter().filter_map(|entry| entry.environment.clone()));
    for name in seen {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names
        .into_iter()
        .map(|name| {
            let state = states.iter().find(|state| state.environment == name);
            let last_gate = history.iter().rev().find(|entry| {
                entry.environment.as_deref() == Some(&name) && entry.action == "gate"
            });
            let waiting = last_gate
                .filter(|entry| entry.outcome == "blocked")
                .filter(|entry| {
                    entry.release.as_deref() != state.map(|state| state.release.as_str())
                })
                .and_then(|entry| Some((entry.release.clone()?, entry.reason.clone())));
            EnvironmentStatus {
                release: state.map(|state| state.release.clone()),
                healthy_since: state.map(|state| state.healthy_since),
                deploying: running
                    .iter()
                    .find(|deployment| deployment.environment == name)
                    .cloned(),
                waiting,
                environment: name,
            }
        })
        .collect())
}
