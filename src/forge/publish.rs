//! `Forge`: what sluice tells GitHub, on top of `GithubClient`. Finds and edits the one comment
//! per pull request and pipeline (never a second), reports jobs (commit statuses with a token,
//! check runs as a GitHub App: `publish_checks`), posts replies and reactions, and reads permissions
//! and pull-request state for commands. `send` never fails: what GitHub does not take is
//! recorded in the outbox and `retry_outbox` tries it again later.

use super::check_run::{self, CheckRun};
use super::client::{GithubClient, Method};
use super::comment;
use super::error::ForgeError;
use super::status::{self, CommitStatus};
use crate::model::{Run, Status};
use crate::store::Outbox;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// Comments read per page when looking for sluice's own.
const COMMENTS_PER_PAGE: usize = 100;

/// Something to tell GitHub, as kept in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxItem {
    Status {
        repository: String,
        commit: String,
        status: CommitStatus,
    },
    /// The whole state of a job's check run: delivering it creates the check run or updates
    /// the one already made for the job.
    CheckRun {
        repository: String,
        commit: String,
        check: CheckRun,
    },
    Comment {
        repository: String,
        pull_request: u64,
        pipeline: String,
        parts: Vec<String>,
    },
    Stale {
        repository: String,
        pull_request: u64,
        pipeline: String,
        newer_commit: String,
    },
}

impl OutboxItem {
    /// A newer item with the same key makes an older undelivered one pointless.
    pub fn key(&self) -> String {
        match self {
            OutboxItem::Status {
                repository,
                commit,
                status,
            } => format!("status:{repository}@{commit}:{}", status.context),
            OutboxItem::CheckRun {
                repository,
                commit,
                check,
            } => format!("check:{repository}@{commit}:{}", check.external_id),
            OutboxItem::Comment {
                repository,
                pull_request,
                pipeline,
                ..
            } => format!("comment:{repository}#{pull_request}:{pipeline}"),
            OutboxItem::Stale {
                repository,
                pull_request,
                pipeline,
                ..
            } => format!("stale:{repository}#{pull_request}:{pipeline}"),
        }
    }
}

/// What a pull request looks like to the commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestState {
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    /// The login of whoever opened it.
    pub author: Option<String>,
    pub from_fork: bool,
    /// GitHub's `mergeable`; `None` while GitHub is still computing it.
    pub mergeable: Option<bool>,
    pub open: bool,
    /// The pull request as GitHub answered (`GET /repos/{repo}/pulls/{number}`), the same object
    /// a `pull_request` webhook payload carries.
    pub document: Value,
}

/// A comment sluice found on a pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedComment {
    pub id: u64,
    pub body: String,
}

pub struct Forge {
    pub(super) client: GithubClient,
    pub(super) outbox: Arc<dyn Outbox>,
    run_url_base: Option<String>,
}

impl Forge {
    pub fn new(client: GithubClient, outbox: Arc<dyn Outbox>) -> Forge {
        Forge {
            client,
            outbox,
            run_url_base: None,
        }
    }

    /// Where people see runs, e.g. `https://sluice.example.com`; runs are `{base}/runs/{id}`.
    pub fn with_run_url_base(mut self, base: Option<String>) -> Forge {
        self.run_url_base = base.map(|base| base.trim_end_matches('/').to_owned());
        self
    }

    pub fn run_url(&self, run_id: i64) -> Option<String> {
        self.run_url_base
            .as_ref()
            .map(|base| format!("{base}/runs/{run_id}"))
    }

    pub fn client(&self) -> &GithubClient {
        &self.client
    }

    /// How a job in `status` is reported: a check run when sluice is a GitHub App, a commit
    /// status otherwise. `run` holds the job's outputs (plan counts, findings).
    pub fn job_report(
        &self,
        run: &Run,
        job: &str,
        status: Status,
        reason: Option<&str>,
    ) -> OutboxItem {
        let repository = run.repository.clone();
        let commit = run.commit.clone();
        if self.client.is_app() {
            OutboxItem::CheckRun {
                repository,
                commit,
                check: check_run::job_check_run(run, job, status, reason, self.run_url(run.id)),
            }
        } else {
            OutboxItem::Status {
                repository,
                commit,
                status: status::job_status(
                    &run.pipeline,
                    job,
                    status,
                    reason,
                    self.run_url(run.id),
                ),
            }
        }
    }

    /// Delivers `item` now, or records it in the outbox. Returns whether it was delivered.
    /// Delivered, it makes an older undelivered item with its key pointless: that one is dropped
    /// so that a retry cannot take GitHub back to an older state.
    pub async fn send(&self, item: OutboxItem) -> bool {
        match self.deliver(&item).await {
            Ok(()) => {
                self.forget_older(&item.key());
                true
            }
            Err(error) => {
                tracing::warn!(key = %item.key(), %error, "github did not take an update; it is kept and retried later");
                self.keep(&item, &error.to_string(), 1);
                false
            }
        }
    }

    /// Tries every due outbox item once; returns how many were delivered.
    pub async fn retry_outbox(&self) -> usize {
        self.retry_outbox_at(Utc::now()).await
    }

    /// `retry_outbox` as if it were `now` (items due by then are tried).
    pub async fn retry_outbox_at(&self, now: chrono::DateTime<Utc>) -> usize {
        let due = match self.outbox.due(now, 50) {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "cannot read the forge outbox");
                return 0;
            }
        };
        let mut delivered = 0;
        for entry in due {
            let item: OutboxItem = match serde_json::from_str(&entry.payload) {
                Ok(item) => item,
                Err(error) => {
                    tracing::error!(key = %entry.key, %error, "dropping an unreadable outbox item");
                    let _ = self.outbox.delivered(entry.id);
                    continue;
                }
            };
            match self.deliver(&item).await {
                Ok(()) => {
                    delivered += 1;
                    if let Err(error) = self.outbox.delivered(entry.id) {
                        tracing::error!(%error, "cannot remove a delivered outbox item");
                    }
                }
                Err(error) => {
                    let next = Utc::now() + retry_delay(entry.attempts + 1);
                    if let Err(store_error) =
                        self.outbox.failed_again(entry.id, &error.to_string(), next)
                    {
                        tracing::error!(%store_error, "cannot reschedule an outbox item");
                    }
                }
            }
        }
        delivered
    }

    fn forget_older(&self, key: &str) {
        let pending = match self.outbox.pending() {
            Ok(pending) => pending,
            Err(error) => {
                tracing::error!(%error, "cannot read the forge outbox");
                return;
            }
        };
        for entry in pending.iter().filter(|entry| entry.key == key) {
            if let Err(error) = self.outbox.delivered(entry.id) {
                tracing::error!(%error, key, "cannot drop an outbox item a newer one replaced");
            }
        }
    }

    fn keep(&self, item: &OutboxItem, error: &str, attempts: u32) {
        let payload = serde_json::to_string(item).expect("outbox items serialise");
        let next = Utc::now() + retry_delay(attempts);
        if let Err(store_error) = self.outbox.enqueue(&item.key(), &payload, error, next) {
            tracing::error!(%store_error, key = %item.key(), "cannot record an undelivered update; it is lost");
        }
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), ForgeError> {
        match item {
            OutboxItem::Status {
                repository,
                commit,
                status,
            } => self.post_status(repository, commit, status).await,
            OutboxItem::CheckRun {
                repository,
                commit,
                check,
            } => {
                self.publish_check_run(repository, commit, &item.key(), check)
                    .await
            }
            OutboxItem::Comment {
                repository,
                pull_request,
                pipeline,
                parts,
            } => self
                .publish_comment(repository, *pull_request, pipeline, parts)
                .await
                .map(|_| ()),
            OutboxItem::Stale {
                repository,
                pull_request,
                pipeline,
                newer_commit,
            } => self
                .mark_stale(repository, *pull_request, pipeline, newer_commit)
                .await
                .map(|_| ()),
        }
    }

    pub async fn post_status(
        &self,
        repository: &str,
        commit: &str,
        status: &CommitStatus,
    ) -> Result<(), ForgeError> {
        let body = serde_json::to_value(status).expect("statuses serialise");
        self.client
            .request(
                repository,
                Method::Post,
                &format!("/repos/{repository}/statuses/{commit}"),
                Some(&body),
            )
            .await
            .map(|_| ())
    }

    /// Every comment on the pull request that sluice wrote for `pipeline`, by part number.
    pub async fn find_comments(
        &self,
        repository: &str,
        pull_request: u64,
        pipeline: &str,
    ) -> Result<Vec<(usize, PostedComment)>, ForgeError> {
        let wanted = comment::marker_name(pipeline);
        let mut found = Vec::new();
        for page in 1.. {
            let answer = self
                .client
                .request(
                    repository,
                    Method::Get,
                    &format!(
                        "/repos/{repository}/issues/{pull_request}/comments?per_page={COMMENTS_PER_PAGE}&page={page}"
                    ),
                    None,
                )
                .await?;
            let comments = answer.body.as_array().cloned().unwrap_or_default();
            for posted in &comments {
                let body = posted
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let id = posted.get("id").and_then(Value::as_u64);
                if let (Some((name, part)), Some(id)) = (comment::parse_marker(body), id)
                    && name == wanted
                    && !found
                        .iter()
                        .any(|(known, _): &(usize, PostedComment)| *known == part)
                {
                    found.push((
                        part,
                        PostedComment {
                            id,
                            body: body.to_owned(),
                        },
                    ));
                }
            }
            if comments.len() < COMMENTS_PER_PAGE {
                break;
            }
        }
        found.sort_by_key(|(part, _)| *part);
        Ok(found)
    }

    /// Creates or edits the comment's parts in place; parts no longer needed are deleted.
    /// Returns the comment ids, part 1 first.
    pub async fn publish_comment(
        &self,
        repository: &str,
        pull_request: u64,
        pipeline: &str,
        parts: &[String],
    ) -> Result<Vec<u64>, ForgeError> {
        let existing = self
            .find_comments(repository, pull_request, pipeline)
            .await?;
        let mut ids = Vec::new();
        for (index, body) in parts.iter().enumerate() {
            let part = index + 1;
            let payload = json!({ "body": body });
            match existing.iter().find(|(known, _)| *known == part) {
                Some((_, posted)) => {
                    if posted.body != *body {
                        self.client
                            .request(
                                repository,
                                Method::Patch,
                                &format!("/repos/{repository}/issues/comments/{}", posted.id),
                                Some(&payload),
                            )
                            .await?;
                    }
                    ids.push(posted.id);
                }
                None => {
                    let answer = self
                        .client
                        .request(
                            repository,
                            Method::Post,
                            &format!("/repos/{repository}/issues/{pull_request}/comments"),
                            Some(&payload),
                        )
                        .await?;
                    ids.push(answer.body.get("id").and_then(Value::as_u64).unwrap_or(0));
                }
            }
        }
        for (part, posted) in &existing {
            if *part > parts.len() {
                self.client
                    .request(
                        repository,
                        Method::Delete,
                        &format!("/repos/{repository}/issues/comments/{}", posted.id),
                        None,
                    )
                    .await?;
            }
        }
        Ok(ids)
    }

    /// Marks the pipeline's comment as describing an older commit; `false` if there is none.
    pub async fn mark_stale(
        &self,
        repository: &str,
        pull_request: u64,
        pipeline: &str,
        newer_commit: &str,
    ) -> Result<bool, ForgeError> {
        let existing = self
            .find_comments(repository, pull_request, pipeline)
            .await?;
        let Some((_, posted)) = existing.into_iter().find(|(part, _)| *part == 1) else {
            return Ok(false);
        };
        let describes_newer = posted.body.contains(&format!(
            "Commit `{}`",
            crate::model::short_commit(newer_commit)
        ));
        let body = comment::mark_stale(&posted.body, newer_commit);
        if describes_newer || body == posted.body {
            return Ok(false);
        }
        self.client
            .request(
                repository,
                Method::Patch,
                &format!("/repos/{repository}/issues/comments/{}", posted.id),
                Some(&json!({ "body": body })),
            )
            .await?;
        Ok(true)
    }

    /// Posts a new comment (a command's answer); returns its id.
    pub async fn reply(&self, repository: &str, issue: u64, body: &str) -> Result<u64, ForgeError> {
        let answer = self
            .client
            .request(
                repository,
                Method::Post,
                &format!("/repos/{repository}/issues/{issue}/comments"),
                Some(&json!({ "body": body })),
            )
            .await?;
        Ok(answer.body.get("id").and_then(Value::as_u64).unwrap_or(0))
    }

    /// Adds a reaction (`eyes`, `+1`, `-1`, `confused`, ...) to a comment.
    pub async fn react(
        &self,
        repository: &str,
        comment_id: u64,
        content: &str,
    ) -> Result<(), ForgeError> {
        self.client
            .request(
                repository,
                Method::Post,
                &format!("/repos/{repository}/issues/comments/{comment_id}/reactions"),
                Some(&json!({ "content": content })),
            )
            .await
            .map(|_| ())
    }

    /// The user's permission on the repository as GitHub names it (`admin`, `maintain`,
    /// `write`, `triage`, `read`, `none`).
    pub async fn permission(&self, repository: &str, user: &str) -> Result<String, ForgeError> {
        let answer = self
            .client
            .request(
                repository,
                Method::Get,
                &format!("/repos/{repository}/collaborators/{user}/permission"),
                None,
            )
            .await?;
        let role = answer
            .body
            .get("role_name")
            .and_then(Value::as_str)
            .or_else(|| answer.body.get("permission").and_then(Value::as_str))
            .unwrap_or("none");
        Ok(role.to_owned())
    }

    pub async fn pull_request(
        &self,
        repository: &str,
        number: u64,
    ) -> Result<PullRequestState, ForgeError> {
        let answer = self
            .client
            .request(
                repository,
                Method::Get,
                &format!("/repos/{repository}/pulls/{number}"),
                None,
            )
            .await?;
        let text = |pointer: &str| {
            answer
                .body
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok(PullRequestState {
            head_sha: text("/head/sha").unwrap_or_default(),
            head_ref: text("/head/ref").unwrap_or_default(),
            base_ref: text("/base/ref").unwrap_or_default(),
            author: text("/user/login"),
            from_fork: super::fork::is_fork_pull_request(&answer.body),
            mergeable: answer.body.get("mergeable").and_then(Value::as_bool),
            open: answer.body.get("state").and_then(Value::as_str) == Some("open"),
            document: answer.body,
        })
    }

    /// The GitHub logins that authored or committed the pull request's commits (up to 250, as
    /// GitHub lists them).
    pub async fn commit_authors(
        &self,
        repository: &str,
        number: u64,
    ) -> Result<Vec<String>, ForgeError> {
        let answer = self
            .client
            .request(
                repository,
                Method::Get,
                &format!("/repos/{repository}/pulls/{number}/commits?per_page=100"),
                None,
            )
            .await?;
        let mut logins: Vec<String> = Vec::new();
        for commit in answer.body.as_array().into_iter().flatten() {
            for pointer in ["/author/login", "/committer/login"] {
                if let Some(login) = commit.pointer(pointer).and_then(Value::as_str)
                    && login != "web-flow"
                    && !logins.iter().any(|known| known == login)
                {
                    logins.push(login.to_owned());
                }
            }
        }
        Ok(logins)
    }

    /// Approved: at least one reviewer's latest review approves and none requests changes.
    pub async fn is_approved(&self, repository: &str, number: u64) -> Result<bool, ForgeError> {
        let answer = self
            .client
            .request(
                repository,
                Method::Get,
                &format!("/repos/{repository}/pulls/{number}/reviews?per_page=100"),
                None,
            )
            .await?;
        let mut latest: std::collections::BTreeMap<String, String> = Default::default();
        for review in answer.body.as_array().into_iter().flatten() {
            let user = review.pointer("/user/login").and_then(Value::as_str);
            let state = review.get("state").and_then(Value::as_str);
            if let (Some(user), Some(state)) = (user, state)
                && matches!(state, "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED")
            {
                latest.insert(user.to_owned(), state.to_owned());
            }
        }
        Ok(latest.values().any(|state| state == "APPROVED")
            && !latest.values().any(|state| state == "CHANGES_REQUESTED"))
    }
}

/// Outbox pauses: 30 s, 1 min, 2 min, ... up to an hour.
fn retry_delay(attempts: u32) -> chrono::Duration {
    let seconds = 30i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(7));
    chrono::Duration::seconds(seconds.min(3600))
}
