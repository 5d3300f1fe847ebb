//! Whether a pipeline's `on:` section starts it for an event, by GitHub's rules: branch and tag
//! filters for pushes (and merges), activity types and base-branch filters for pull requests,
//! and path filters for both. Knows nothing of jobs or of what runs afterwards.

use crate::config::glob::Filter;
use crate::config::workflow::{PullRequestTrigger, PushTrigger, Triggers};
use crate::model::{Event, EventKind};

/// The reason given when a pipeline's ref filters match but its path filters do not.
pub const NO_MATCHING_PATHS: &str = "no matching paths";

/// Pull request actions that start a pipeline when `types` is not given, as on GitHub.
const DEFAULT_PULL_REQUEST_TYPES: &[&str] = &["opened", "synchronize", "reopened"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum TriggerOutcome {
    /// The event is not one this pipeline answers: say nothing.
    NotTriggered,
    /// The pipeline answers the event; with a reason, it answers by reporting itself skipped.
    Triggered { skipped_reason: Option<String> },
}

pub(super) fn match_event(triggers: &Triggers, event: &Event) -> TriggerOutcome {
    let result = match event.kind {
        EventKind::Push | EventKind::Merge => match &triggers.push {
            Some(push) => match_push(push, event),
            None => return TriggerOutcome::NotTriggered,
        },
        EventKind::PullRequest => match &triggers.pull_request {
            Some(pull_request) => match_pull_request(pull_request, event),
            None => return TriggerOutcome::NotTriggered,
        },
    };
    match result {
        Ok(Decision::No) => TriggerOutcome::NotTriggered,
        Ok(Decision::Yes) => TriggerOutcome::Triggered {
            skipped_reason: None,
        },
        Ok(Decision::PathsDiffer) => TriggerOutcome::Triggered {
            skipped_reason: Some(NO_MATCHING_PATHS.to_string()),
        },
        Err(problem) => TriggerOutcome::Triggered {
            skipped_reason: Some(problem),
        },
    }
}

enum Decision {
    No,
    Yes,
    PathsDiffer,
}

fn match_push(push: &PushTrigger, event: &Event) -> Result<Decision, String> {
    let branches_filtered = push.branches.is_some() || push.branches_ignore.is_some();
    let tags_filtered = push.tags.is_some() || push.tags_ignore.is_some();
    let ref_matches = if let Some(branch) = event.branch() {
        ref_filter(
            push.branches.as_deref(),
            push.branches_ignore.as_deref(),
            tags_filtered,
            branch,
            "on.push.branches",
        )?
    } else if let Some(tag) = event.tag() {
        ref_filter(
            push.tags.as_deref(),
            push.tags_ignore.as_deref(),
            branches_filtered,
            tag,
            "on.push.tags",
        )?
    } else {
        !branches_filtered && !tags_filtered
    };
    if !ref_matches {
        return Ok(Decision::No);
    }
    // GitHub does not evaluate path filters for tag pushes.
    if event.tag().is_some() {
        return Ok(Decision::Yes);
    }
    paths_decision(
        push.paths.as_deref(),
        push.paths_ignore.as_deref(),
        event.changed_paths.as_deref(),
        "on.push",
    )
}

fn match_pull_request(trigger: &PullRequestTrigger, event: &Event) -> Result<Decision, String> {
    // An event without an action (built by hand, e.g. `sluice run`) is not filtered by type.
    if let Some(action) = &event.action {
        let type_matches = match &trigger.types {
            Some(types) => types.iter().any(|wanted| wanted == action),
            None => DEFAULT_PULL_REQUEST_TYPES.contains(&action.as_str()),
        };
        if !type_matches {
            return Ok(Decision::No);
        }
    }
    let branches_filtered = trigger.branches.is_some() || trigger.branches_ignore.is_some();
    if branches_filtered {
        let Some(base_branch) = event.base_branch.as_deref() else {
            return Ok(Decision::No);
        };
        let base_matches = ref_filter(
            trigger.branches.as_deref(),
            trigger.branches_ignore.as_deref(),
            false,
            base_branch,
            "on.pull_request.branches",
        )?;
        if !base_matches {
            return Ok(Decision::No);
        }
    }
    paths_decision(
        trigger.paths.as_deref(),
        trigger.paths_ignore.as_deref(),
        event.changed_paths.as_deref(),
        "on.pull_request",
    )
}

/// Include and ignore lists for one kind of ref. Without either list the ref matches unless
/// the other kind of ref is filtered (only `tags` given: branch pushes do not match).
fn ref_filter(
    include: Option<&[String]>,
    ignore: Option<&[String]>,
    other_kind_filtered: bool,
    name: &str,
    field: &str,
) -> Result<bool, String> {
    if include.is_none() && ignore.is_none() {
        return Ok(!other_kind_filtered);
    }
    let included = match include {
        Some(patterns) => compile(patterns, field)?.matches(name),
        None => true,
    };
    let ignored = match ignore {
        Some(patterns) => compile(patterns, &format!("{field}-ignore"))?.matches(name),
        None => false,
    };
    Ok(included && !ignored)
}

/// `paths`: some changed path must match. `paths-ignore`: some changed path must escape it.
/// Unknown changes match, as on GitHub when the diff is not available.
fn paths_decision(
    paths: Option<&[String]>,
    paths_ignore: Option<&[String]>,
    changed_paths: Option<&[String]>,
    section: &str,
) -> Result<Decision, String> {
    let include = paths
        .map(|patterns| compile(patterns, &format!("{section}.paths")))
        .transpose()?;
    let ignore = paths_ignore
        .map(|patterns| compile(patterns, &format!("{section}.paths-ignore")))
        .transpose()?;
    let Some(changed_paths) = changed_paths else {
        return Ok(Decision::Yes);
    };
    if let Some(include) = &include
        && !changed_paths.iter().any(|path| include.matches(path))
    {
        return Ok(Decision::PathsDiffer);
    }
    if let Some(ignore) = &ignore
        && changed_paths.iter().all(|path| ignore.matches(path))
    {
        return Ok(Decision::PathsDiffer);
    }
    Ok(Decision::Yes)
}

fn compile(patterns: &[String], field: &str) -> Result<Filter, String> {
    Filter::new(patterns).map_err(|problem| format!("invalid `{field}`: {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triggers(text: &str) -> Triggers {
        serde_saphyr::from_str(text).expect("triggers parse")
    }

    fn event(kind: EventKind, git_ref: &str, changed: Option<&[&str]>) -> Event {
        Event {
            kind,
            repository: "acme/platform".into(),
            git_ref: git_ref.into(),
            commit: "a1b2c3d4".into(),
            before: None,
            base_branch: Some("main".into()),
            action: None,
            pull_request: Some(3),
            actor: None,
            changed_paths: changed.map(|paths| paths.iter().map(|path| path.to_string()).collect()),
        }
    }

    fn triggered(reason: Option<&str>) -> TriggerOutcome {
        TriggerOutcome::Triggered {
            skipped_reason: reason.map(str::to_string),
        }
    }

    #[test]
    fn tag_pushes_skip_path_filters() {
        let on = triggers("push: {paths: [src/**]}");
        let tag = event(EventKind::Push, "refs/tags/v1", Some(&["README.md"]));
        assert_eq!(match_event(&on, &tag), triggered(None));
        let branch = event(EventKind::Push, "refs/heads/main", Some(&["README.md"]));
        assert_eq!(
            match_event(&on, &branch),
            triggered(Some(NO_MATCHING_PATHS))
        );
    }

    #[test]
    fn a_pull_request_without_an_action_matches_any_types() {
        let on = triggers("pull_request: {types: [labeled]}");
        let without_action = event(EventKind::PullRequest, "refs/heads/feature", None);
        assert_eq!(match_event(&on, &without_action), triggered(None));
    }

    #[test]
    fn branches_ignore_excludes_and_an_invalid_pattern_is_reported() {
        let on = triggers("push: {branches-ignore: [\"release/**\"]}");
        let release = event(EventKind::Push, "refs/heads/release/1", None);
        assert_eq!(match_event(&on, &release), TriggerOutcome::NotTriggered);
        let broken = triggers("push: {branches: [\"v[1\"]}");
        let push = event(EventKind::Push, "refs/heads/main", None);
        let TriggerOutcome::Triggered {
            skipped_reason: Some(reason),
        } = match_event(&broken, &push)
        else {
            panic!("an invalid pattern must be reported")
        };
        assert!(reason.starts_with("invalid `on.push.branches`"), "{reason}");
    }

    #[test]
    fn other_refs_match_only_without_ref_filters() {
        let note = event(EventKind::Push, "refs/notes/commits", None);
        assert_eq!(match_event(&triggers("push: {}"), &note), triggered(None));
        assert_eq!(
            match_event(&triggers("push: {branches: [\"**\"]}"), &note),
            TriggerOutcome::NotTriggered
        );
    }
}
