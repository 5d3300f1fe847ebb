//! From a GitHub delivery to an `Event` at a commit: which payload fields matter, and how the
//! changed paths are found in the mirror (`before..after` for a push, the merge base with the base
//! branch for a pull request or a new branch).

use crate::config::SourceFile;
use crate::git::Mirror;
use crate::model::{Delivery, Event, EventKind};
use serde_json::Value;

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

impl EventRequest {
    /// A pull request whose head branch lives in a fork.
    pub fn is_from_fork(&self) -> bool {
        matches!(
            self,
            EventRequest::PullRequest {
                from_fork: true,
                ..
            }
        )
    }
}

/// What a delivery asks for, before git is consulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventRequest {
    Push {
        repository: String,
        git_ref: String,
        before: Option<String>,
        after: String,
        actor: Option<String>,
    },
    PullRequest {
        repository: String,
        number: u64,
        action: String,
        head_sha: String,
        head_ref: String,
        base_ref: String,
        base_sha: Option<String>,
        actor: Option<String>,
        /// The head branch lives in a fork: no secrets, no apply or deploy, and the pipeline
        /// files are read from the base branch.
        from_fork: bool,
    },
    /// Nothing to run; the text says why (stored as the delivery's outcome).
    Ignored(String),
}

/// Why a delivery's payload cannot be planned. Planning it again gives the same answer, so the
/// intake records it as the delivery's outcome at once.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("{event} payload is not JSON: {message}; redeliver it from GitHub's webhook settings")]
    NotJson { event: String, message: String },
    #[error(
        "{event} payload has no `{field}`; GitHub always sends it, so check what sent this delivery"
    )]
    MissingField { event: String, field: String },
}

/// Reads the fields sluice acts on; a payload missing one is an error naming the field.
pub fn event_from_delivery(delivery: &Delivery) -> Result<EventRequest, PayloadError> {
    let payload: Value =
        serde_json::from_slice(&delivery.payload).map_err(|error| PayloadError::NotJson {
            event: delivery.event.clone(),
            message: error.to_string(),
        })?;
    let text = |pointer: &str| {
        payload
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let missing = |pointer: &str| PayloadError::MissingField {
        event: delivery.event.clone(),
        field: pointer.to_owned(),
    };
    let required = |pointer: &str| text(pointer).ok_or_else(|| missing(pointer));
    let repository = match &delivery.repository {
        Some(name) => name.clone(),
        None => {
            return Ok(EventRequest::Ignored(format!(
                "event `{}` names no repository",
                delivery.event
            )));
        }
    };
    match delivery.event.as_str() {
        "push" => {
            let after = required("/after")?;
            let deleted = payload
                .pointer("/deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if deleted || after == ZERO_SHA {
                return Ok(EventRequest::Ignored(
                    "ignored: the ref was deleted".to_owned(),
                ));
            }
            let before = text("/before").filter(|sha| sha != ZERO_SHA);
            Ok(EventRequest::Push {
                repository,
                git_ref: required("/ref")?,
                before,
                after,
                actor: text("/pusher/name").or_else(|| text("/sender/login")),
            })
        }
        "pull_request" => Ok(EventRequest::PullRequest {
            repository,
            number: payload
                .pointer("/number")
                .or_else(|| payload.pointer("/pull_request/number"))
                .and_then(Value::as_u64)
                .ok_or_else(|| missing("/number"))?,
            action: required("/action")?,
            head_sha: required("/pull_request/head/sha")?,
            head_ref: required("/pull_request/head/ref")?,
            base_ref: required("/pull_request/base/ref")?,
            base_sha: text("/pull_request/base/sha"),
            actor: text("/pull_request/user/login").or_else(|| text("/sender/login")),
            from_fork: payload
                .get("pull_request")
                .is_some_and(crate::forge::fork::is_fork_pull_request),
        }),
        "issue_comment" => Ok(EventRequest::Ignored(
            match crate::forge::commands::comment_event(&payload) {
                Some(comment) => match crate::forge::commands::parse(&comment.body) {
                    crate::forge::commands::Parsed::NotACommand => {
                        "ignored: the comment holds no command".to_owned()
                    }
                    _ => "comment command: answered by the command service".to_owned(),
                },
                None => "ignored: not a new comment on a pull request".to_owned(),
            },
        )),
        other => Ok(EventRequest::Ignored(format!(
            "ignored: event `{other}` is not handled"
        ))),
    }
}

/// Fetches, finds the changed paths and reads the configuration at the commit. Blocking.
pub fn resolve(
    mirror: &Mirror,
    request: &EventRequest,
) -> anyhow::Result<Option<(Event, Vec<SourceFile>)>> {
    match request {
        EventRequest::Ignored(_) => Ok(None),
        EventRequest::Push {
            repository,
            git_ref,
            before,
            after,
            actor,
        } => {
            ensure_commit(mirror, after)?;
            let base = match before {
                Some(before) if mirror.has_commit(before) => Some(before.clone()),
                // A new branch, or a force push whose old tip is gone: diff against where the
                // branch left the default branch, as GitHub Actions does.
                _ => default_branch_base(mirror, after)?,
            };
            let changed_paths = mirror.changed_paths(base.as_deref(), after)?;
            let files = read_configuration(mirror, after)?;
            let event = Event {
                kind: EventKind::Push,
                repository: repository.clone(),
                git_ref: git_ref.clone(),
                commit: after.clone(),
                before: base,
                base_branch: None,
                action: None,
                pull_request: None,
                actor: actor.clone(),
                changed_paths: Some(changed_paths),
            };
            Ok(Some((event, files)))
        }
        EventRequest::PullRequest {
            repository,
            number,
            action,
            head_sha,
            head_ref,
            base_ref,
            base_sha,
            actor,
            from_fork,
        } => {
            ensure_commit(mirror, head_sha)?;
            let base_tip = match base_sha {
                Some(sha) if mirror.has_commit(sha) => Some(sha.clone()),
                _ => mirror.resolve(&format!("refs/heads/{base_ref}")).ok(),
            };
            let merge_base = match &base_tip {
                Some(tip) => mirror.merge_base(tip, head_sha)?,
                None => None,
            };
            let changed_paths = mirror.changed_paths(merge_base.as_deref(), head_sha)?;
            // A fork must not change what runs: its pipelines come from the base branch.
            let configuration_commit = match (&from_fork, &base_tip) {
                (true, Some(base_tip)) => base_tip.as_str(),
                (true, None) => anyhow::bail!(
                    "pull request {number} comes from a fork and its base branch `{base_ref}` is not in the mirror; fetch it so the pipelines can be read from it"
                ),
                (false, _) => head_sha.as_str(),
            };
            let files = read_configuration(mirror, configuration_commit)?;
            let event = Event {
                kind: EventKind::PullRequest,
                repository: repository.clone(),
                git_ref: format!("refs/heads/{head_ref}"),
                commit: head_sha.clone(),
                before: merge_base,
                base_branch: Some(base_ref.clone()),
                action: Some(action.clone()),
                pull_request: Some(*number),
                actor: actor.clone(),
                changed_paths: Some(changed_paths),
            };
            Ok(Some((event, files)))
        }
    }
}

/// A push to a branch that the default branch's environments deploy from is a merge. The
/// environments of the pushed commit itself decide nothing: a branch `evil` whose own
/// `environments/production.yaml` says `branch: evil` stays a plain push.
pub fn classify(event: &mut Event, authority: Option<&super::authority::Authority>) {
    if event.kind != EventKind::Push {
        return;
    }
    event.kind = match authority {
        Some(authority) => authority.classify_push(event.branch()),
        None => EventKind::Push,
    };
}

fn ensure_commit(mirror: &Mirror, sha: &str) -> anyhow::Result<()> {
    if !mirror.has_commit(sha) {
        mirror.fetch()?;
    }
    if !mirror.has_commit(sha) {
        anyhow::bail!(
            "commit {sha} is not in the repository after a fetch; was it pushed to the watched remote?"
        );
    }
    Ok(())
}

fn default_branch_base(mirror: &Mirror, commit: &str) -> anyhow::Result<Option<String>> {
    let Some(default_branch) = mirror.default_branch()? else {
        return Ok(None);
    };
    let tip = mirror.resolve(&format!("refs/heads/{default_branch}"))?;
    if tip == commit {
        return Ok(None);
    }
    Ok(mirror
        .merge_base(&tip, commit)?
        .filter(|base| base != commit))
}

/// `workflows/*` and `environments/*` at the commit.
pub fn read_configuration(mirror: &Mirror, commit: &str) -> anyhow::Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    for directory in ["workflows", "environments"] {
        for (path, contents) in mirror.read_dir(commit, directory)? {
            if path.ends_with(".yaml") || path.ends_with(".yml") {
                files.push(SourceFile { path, contents });
            }
        }
    }
    Ok(files)
}
