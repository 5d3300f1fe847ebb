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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf of the context, as `git.branch`, except `env` (judged by its values).
    fn leaves(value: &Json, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
        match value {
            Json::Object(object) => {
                for (key, child) in object {
                    path.push(key.clone());
                    leaves(child, path, found);
                    path.pop();
                }
            }
            _ => found.push(path.clone()),
        }
    }

    /// A property added here without saying whether outsiders choose it would be pasted into
    /// `run:` scripts unchecked; the loader's table must list it first.
    #[test]
    fn every_property_of_the_context_is_judged_by_the_loader() {
        let pull_request = Event {
            kind: EventKind::PullRequest,
            repository: "acme/ml-platform".into(),
            git_ref: "refs/heads/feature".into(),
            commit: "4f9d2c81a7e3b5d6c8f0a1b2c3d4e5f6a7b8c9d0".into(),
            before: None,
            base_branch: Some("main".into()),
            action: Some("opened".into()),
            pull_request: Some(7),
            actor: Some("mona".into()),
            changed_paths: None,
        };
        let push = Event {
            kind: EventKind::Push,
            git_ref: "refs/tags/v1".into(),
            pull_request: None,
            ..pull_request.clone()
        };
        let env = BTreeMap::from([("REGION".to_owned(), "eu".to_owned())]);
        let mut found = Vec::new();
        for event in [&pull_request, &push] {
            leaves(
                &expression_context(event, "platform", &env),
                &mut Vec::new(),
                &mut found,
            );
        }
        let unjudged: Vec<String> = found
            .iter()
            .filter(|path| path[0] != "env")
            .filter(|path| {
                let parts: Vec<&str> = path.iter().map(String::as_str).collect();
                !crate::config::untrusted::is_listed(&parts)
            })
            .map(|path| path.join("."))
            .collect();
        assert_eq!(unjudged, Vec::<String>::new());
    }
}
