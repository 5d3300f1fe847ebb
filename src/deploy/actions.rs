//! What people do to promotion, shared by the CLI, the HTTP API and pull-request commands: approve
//! a release for an environment, ask for a promotion or a rollback, and read the status. Requests
//! are recorded durably and carried out by the reconciler on its next pass.

use crate::deploy::Release;
use crate::deploy::state::{DeployRequest, DeployStore, Deployment, RequestAction};
use crate::store::StoreError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The request is wrong: the message says what to do.
    #[error("{0}")]
    Refused(String),
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

/// Records `approver`'s approval of a release for an environment. The release's author may
/// approve, but the gate does not count it.
pub fn approve(
    store: &dyn DeployStore,
    repository: &str,
    environment: &str,
    release: Option<&str>,
    approver: &str,
    at: i64,
) -> Result<String, ActionError> {
    let release = match release {
        Some(wanted) => find_release(store, repository, wanted)?,
        None => waiting_release(store, repository, environment)?,
    };
    let new = store.add_approval(repository, environment, &release.id, approver, at)?;
    let note = if release.author.as_deref() == Some(approver) {
        " (as the release's author, this approval does not count toward the gate)"
    } else {
        ""
    };
    store.record_audit(&crate::deploy::state::NewAuditEntry {
        repository,
        environment: Some(environment),
        release: Some(&release.id),
        action: "approve",
        actor: Some(approver),
        outcome: "recorded",
        reason: note.trim(),
        at,
    })?;
    Ok(if new {
        format!("{approver} approved {} for {environment}{note}", release.id)
    } else {
        format!(
            "{approver} had already approved {} for {environment}",
            release.id
        )
    })
}

/// Asks the reconciler to deploy `release` to `environment` (promote) or to go back (rollback;
/// `release` `None` = the release before the current one).
pub fn request(
    store: &dyn DeployStore,
    repository: &str,
    environment: &str,
    action: RequestAction,
    release: Option<&str>,
    actor: &str,
    at: i64,
) -> Result<String, ActionError> {
    let release = match release {
        Some(wanted) => Some(find_release(store, repository, wanted)?.id),
        None if action == RequestAction::Promote => {
            return Err(ActionError::Refused(
                "name the release to promote: `sluice promote ENV RELEASE`".to_owned(),
            ));
        }
        None => None,
    };
    store.add_request(&DeployRequest {
        id: 0,
        repository: repository.to_owned(),
        environment: environment.to_owned(),
        release: release.clone(),
        action,
        actor: Some(actor.to_owned()),
        at,
        outcome: None,
    })?;
    store.record_audit(&crate::deploy::state::NewAuditEntry {
        repository,
        environment: Some(environment),
        release: release.as_deref(),
        action: "request",
        actor: Some(actor),
        outcome: "recorded",
        reason: match action {
            RequestAction::Promote => "promote",
            RequestAction::Rollback => "rollback",
        },
        at,
    })?;
    let what = release.unwrap_or_else(|| "the previous release".to_owned());
    Ok(match action {
        RequestAction::Promote => format!("promotion of {what} to {environment} requested"),
        RequestAction::Rollback => format!("rollback of {environment} to {what} requested"),
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
    let states = store.environment_states(repository)?;
    let running = store.running_deployments(repository)?;
    let history = store.audit(repository, None)?;
    let mut names: Vec<String> = environments.to_vec();
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
