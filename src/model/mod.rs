//! Domain types shared by every layer: repositories, events, runs, jobs, steps and their statuses.
//! Plain data with no IO; the store maps these to rows and the server maps them to JSON.

pub mod access;
pub mod release;

pub use release::Release;

use serde::{Deserialize, Serialize};
use std::fmt;

/// `OWNER/NAME` as GitHub spells it.
pub type RepositoryName = String;

/// The lifecycle of a run, a job or a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "queued" => Status::Queued,
            "running" => Status::Running,
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            "skipped" => Status::Skipped,
            "cancelled" => Status::Cancelled,
            _ => return None,
        })
    }

    /// Finished one way or another: nothing will change it any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Queued | Status::Running)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What kind of event a run answers. A `merge` is a push to a branch that an environment
/// deploys from; pipelines triggered `on.push` run for it too and can tell with `event == 'merge'`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Push,
    PullRequest,
    Merge,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::PullRequest => "pull_request",
            EventKind::Merge => "merge",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        Some(match text {
            "push" => EventKind::Push,
            "pull_request" => EventKind::PullRequest,
            "merge" => EventKind::Merge,
            _ => return None,
        })
    }
}

/// How far sluice trusts the code of an event, decided from facts sluice verified (the branch
/// pushed to and the default branch's `environments/`, where a pull request's head lives), never
/// from the files of the commit under test. Ordered: `Untrusted < Member < Trusted`.
/// `docs/security.md` says what each level may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustLevel {
    /// A pull request from a fork: runs only after someone with write permission approves it;
    /// no secrets, no Terraform, no image builds, never deploys.
    Untrusted,
    /// A push to a branch no environment deploys from, or a pull request from the same
    /// repository: runs in isolation with the secrets marked for pull requests; plans but never
    /// applies; pushes images to pull-request tags only; never deploys.
    Member,
    /// A push to a deploy branch named by the default branch's `environments/`: all its secrets,
    /// plan and apply, registry pushes, deployments.
    Trusted,
}

impl TrustLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Untrusted => "untrusted",
            TrustLevel::Member => "member",
            TrustLevel::Trusted => "trusted",
        }
    }

    pub fn parse(text: &str) -> Option<TrustLevel> {
        Some(match text {
            "untrusted" => TrustLevel::Untrusted,
            "member" => TrustLevel::Member,
            "trusted" => TrustLevel::Trusted,
            _ => return None,
        })
    }
}

impl fmt::Display for TrustLevel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Everything the planner needs to know about one event, already resolved against git.
/// Built from a webhook delivery, a poll, or the `sluice run` command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub repository: RepositoryName,
    /// Full ref, e.g. `refs/heads/main` or `refs/tags/v1.2.0`. For a pull request, the head branch ref.
    pub git_ref: String,
    /// The commit the pipelines are read at and run on.
    pub commit: String,
    /// For a push: the previous tip (`None` for a new branch). For a pull request: the merge base.
    pub before: Option<String>,
    /// Pull requests only: the base branch name (`main`) and the action (`opened`, `synchronize`, ...).
    pub base_branch: Option<String>,
    pub action: Option<String>,
    pub pull_request: Option<u64>,
    /// Who caused the event (pusher or pull request author).
    pub actor: Option<String>,
    /// Paths changed by the event; `None` when unknown (then path filters match, as GitHub does).
    pub changed_paths: Option<Vec<String>>,
}

impl Event {
    /// `main` for `refs/heads/main`.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    /// `v1.2.0` for `refs/tags/v1.2.0`.
    pub fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }
}

/// The first 12 characters of a commit sha, as shown to people.
pub fn short_commit(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// A webhook delivery as stored before it is acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    pub repository: Option<RepositoryName>,
    /// The JSON payload (form bodies are decoded before storing).
    pub payload: Vec<u8>,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

pub type RunId = i64;

/// One execution of one pipeline for one event and commit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub repository: RepositoryName,
    pub commit: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub event: EventKind,
    pub pipeline: String,
    pub status: Status,
    /// Why the run ended as it did, when that is not obvious from the jobs (e.g. "no matching paths").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The `concurrency.group` after templating, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    pub jobs: Vec<JobRecord>,
}

/// One job of a run as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub name: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Filled only when one run is asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRecord>,
    /// Values the job's steps recorded for later jobs (`${{ needs.<job>.outputs.<name> }}`),
    /// such as a build's `digest`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub outputs: std::collections::BTreeMap<String, String>,
}

/// One step of a job as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub name: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set by the store when the step is first recorded running (or finished); writers leave it
    /// `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}
