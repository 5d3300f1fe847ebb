//! What an event means to pipelines: whether a push is a merge, and the expression context
//! (`event`, `git`, `github`, `env`, ...) that conditions and templates read. Knows the event and
//! the environments' deploy branches; nothing of jobs or how they run.

use crate::config::environment::Environment;
use crate::model::{Event, EventKind};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

/// A push to a branch some environment deploys from (`Environment::deploy_branch`) is a Merge;
/// any other push (a feature branch, a tag) stays a Push.
pub fn classify_push(environments: &[Environment], branch: Option<&str>) -> EventKind {
    match branch {
        Some(branch)
            if environments
                .iter()
                .any(|environment| environment.deploy_branch() == branch) =>
        {
            EventKind::Merge
        }
        _ => EventKind::Push,
    }
}

/// The expression context for an event:
/// - `event`: `push`, `pull_request` or `merge`;
/// - `git.{sha, short_sha, branch, tag, ref}`: the commit and ref as sluice sees them;
/// - `github.{sha, ref, ref_name, event_name, base_ref, head_ref, actor, repository,
///   repository_owner}`: the same in GitHub's vocabulary (a merge is a `push` there; a pull
///   request's `github.ref` is `refs/pull/N/merge`);
/// - `repository`, `pipeline`, `env` (the merged environment variables), `pull_request.number`
///   (null outside pull requests).
pub fn expression_context(event: &Event, pipeline: &str, env: &BTreeMap<String, String>) -> Json {
    let short_sha: String = event.commit.chars().take(7).collect();
    let is_pull_request = event.kind == EventKind::PullRequest;
    let github_ref = match (is_pull_request, event.pull_request) {
        (true, Some(number)) => format!("refs/pull/{number}/merge"),
        _ => event.git_ref.clone(),
    };
    let ref_name = github_ref
        .strip_prefix("refs/heads/")
        .or_else(|| github_ref.strip_prefix("refs/tags/"))
        .or_else(|| github_ref.strip_prefix("refs/pull/"))
        .unwrap_or(&github_ref)
        .to_string();
    let event_name = match event.kind {
        EventKind::PullRequest => "pull_request",
        EventKind::Push | EventKind::Merge => "push",
    };
    let (base_ref, head_ref) = if is_pull_request {
        (
            event.base_branch.clone().unwrap_or_default(),
            event.branch().unwrap_or_default().to_string(),
        )
    } else {
        (String::new(), String::new())
    };
    let repository_owner = event
        .repository
        .split_once('/')
        .map_or("", |(owner, _)| owner);
    let pull_request = if is_pull_request {
        json!({ "number": event.pull_request })
    } else {
        Json::Null
    };
    json!({
        "event": event.kind.as_str(),
        "git": {
            "sha": event.commit,
            "short_sha": short_sha,
            "branch": event.branch(),
            "tag": event.tag(),
            "ref": event.git_ref,
        },
        "github": {
            "sha": event.commit,
            "ref": github_ref,
            "ref_name": ref_name,
            "event_name": event_name,
            "base_ref": base_ref,
            "head_ref": head_ref,
            "actor": event.actor.clone().unwrap_or_default(),
            "repository": event.repository,
            "repository_owner": repository_owner,
        },
        "repository": event.repository,
        "pipeline": pipeline,
        "env": env,
        "pull_request": pull_request,
    })
}
