//! Commit statuses, one per job (context `sluice/<pipeline>/<job>`): pending while queued or
//! running, then success or failure with a one-line summary. A job skipped because no changed
//! path matched reports success ("skipped: no matching paths") so a required check never waits
//! forever. Pure mapping from job state to the status GitHub is sent; posting is in `publish`.

use crate::model::Status;
use serde::{Deserialize, Serialize};

/// GitHub cuts descriptions longer than this.
const DESCRIPTION_LIMIT: usize = 140;

/// The body of `POST /repos/{owner}/{repo}/statuses/{sha}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatus {
    /// `pending`, `success`, `failure` or `error`.
    pub state: String,
    pub context: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
}

/// The status context of a job.
pub fn context(pipeline: &str, job: &str) -> String {
    format!("sluice/{pipeline}/{job}")
}

/// The status a job in `status` (with its recorded reason) reports.
pub fn job_status(
    pipeline: &str,
    job: &str,
    status: Status,
    reason: Option<&str>,
    target_url: Option<String>,
) -> CommitStatus {
    let reason = reason.map(first_line).filter(|reason| !reason.is_empty());
    let (state, description) = match status {
        Status::Queued => ("pending", "queued".to_owned()),
        Status::Running => ("pending", "running".to_owned()),
        Status::Succeeded => ("success", reason.unwrap_or_else(|| "succeeded".to_owned())),
        Status::Failed => (
            "failure",
            reason
                .map(|reason| format!("failed: {reason}"))
                .unwrap_or_else(|| "failed".to_owned()),
        ),
        Status::Skipped => {
            let reason = reason.unwrap_or_else(|| "not needed".to_owned());
            let reason = reason
                .strip_prefix("skipped: ")
                .unwrap_or(&reason)
                .to_owned();
            ("success", format!("skipped: {reason}"))
        }
        Status::Cancelled => (
            "error",
            reason
                .map(|reason| {
                    if reason.starts_with("cancelled") {
                        reason
                    } else {
                        format!("cancelled: {reason}")
                    }
                })
                .unwrap_or_else(|| "cancelled".to_owned()),
        ),
    };
    CommitStatus {
        state: state.to_owned(),
        context: context(pipeline, job),
        description: shorten(&description),
        target_url,
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= DESCRIPTION_LIMIT {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(DESCRIPTION_LIMIT - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: Status, reason: Option<&str>, state: &str, description: &str) {
        let sent = job_status("platform", "plan", status, reason, None);
        assert_eq!(
            (sent.state.as_str(), sent.description.as_str()),
            (state, description),
            "{status} {reason:?}"
        );
        assert_eq!(sent.context, "sluice/platform/plan");
    }

    #[test]
    fn each_job_state_maps_to_one_github_state_and_one_line() {
        check(Status::Queued, None, "pending", "queued");
        check(Status::Running, None, "pending", "running");
        check(Status::Succeeded, None, "success", "succeeded");
        check(
            Status::Failed,
            Some("step `apply` exited with 1\nmore"),
            "failure",
            "failed: step `apply` exited with 1",
        );
        check(
            Status::Skipped,
            Some("no matching paths"),
            "success",
            "skipped: no matching paths",
        );
        check(Status::Skipped, None, "success", "skipped: not needed");
        check(
            Status::Cancelled,
            Some("cancelled: superseded by run 9"),
            "error",
            "cancelled: superseded by run 9",
        );
        let long = "x".repeat(300);
        let sent = job_status("p", "j", Status::Failed, Some(&long), None);
        assert_eq!(sent.description.chars().count(), 140);
    }
}
