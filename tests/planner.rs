//! The planner as a user meets it: GitHub's filter patterns, expressions, which pipelines an event
//! starts (and which report "skipped"), the order of jobs, and whether a job runs after its needs.
//! Each area lives in its own file under `tests/planner/`; the events they share are built here.

#[path = "planner/decisions.rs"]
mod decisions;
#[path = "planner/expressions.rs"]
mod expressions;
#[path = "planner/glob.rs"]
mod glob;
#[path = "planner/planning.rs"]
mod planning;

use sluice::model::{Event, EventKind};

const COMMIT: &str = "4f9d2c81a7e3b5d6c8f0a1b2c3d4e5f6a7b8c9d0";

fn event(kind: EventKind, git_ref: &str) -> Event {
    Event {
        kind,
        repository: "acme/ml-platform".into(),
        git_ref: git_ref.into(),
        commit: COMMIT.into(),
        before: None,
        base_branch: None,
        action: None,
        pull_request: None,
        actor: Some("mona".into()),
        changed_paths: None,
    }
}

fn push(branch: &str, changed: Option<&[&str]>) -> Event {
    Event {
        changed_paths: changed.map(|paths| paths.iter().map(|path| path.to_string()).collect()),
        ..event(EventKind::Push, &format!("refs/heads/{branch}"))
    }
}

fn merge(branch: &str, changed: Option<&[&str]>) -> Event {
    Event {
        kind: EventKind::Merge,
        ..push(branch, changed)
    }
}

fn tag(name: &str, changed: Option<&[&str]>) -> Event {
    Event {
        changed_paths: changed.map(|paths| paths.iter().map(|path| path.to_string()).collect()),
        ..event(EventKind::Push, &format!("refs/tags/{name}"))
    }
}

fn pull_request(action: &str, base: &str, head: &str, changed: Option<&[&str]>) -> Event {
    Event {
        base_branch: Some(base.into()),
        action: Some(action.into()),
        pull_request: Some(7),
        changed_paths: changed.map(|paths| paths.iter().map(|path| path.to_string()).collect()),
        ..event(EventKind::PullRequest, &format!("refs/heads/{head}"))
    }
}
