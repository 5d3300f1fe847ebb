//! From a recorded run to what GitHub is told about it: the comment input (jobs, sections,
//! policy results, link) and the status of every job. Pure over model types, so the demo can
//! print the comment it would post without any GitHub.

use super::comment::{self, CommentInput, JobLine, PolicyResult, Section};
use super::status::{self, CommitStatus};
use crate::model::Run;

/// The comment for `run`, with the sections and policy results its steps contributed.
pub fn comment_for_run(
    run: &Run,
    sections: Vec<Section>,
    policies: Vec<PolicyResult>,
    run_url: Option<String>,
) -> CommentInput {
    CommentInput {
        pipeline: run.pipeline.clone(),
        commit: run.commit.clone(),
        at: run.finished_at.unwrap_or(run.created_at),
        status: run.status,
        run_id: Some(run.id),
        run_url,
        jobs: run
            .jobs
            .iter()
            .map(|job| JobLine {
                name: job.name.clone(),
                status: job.status,
                summary: job
                    .reason
                    .as_deref()
                    .and_then(|reason| reason.lines().next())
                    .map(str::to_owned),
            })
            .collect(),
        sections,
        policies,
    }
}

/// The comment bodies sluice would post for `run` (what the demo prints).
pub fn render_run_comment(
    run: &Run,
    sections: Vec<Section>,
    policies: Vec<PolicyResult>,
    run_url: Option<String>,
) -> Vec<String> {
    comment::render(&comment_for_run(run, sections, policies, run_url))
}

/// The status of every job of `run` as it stands.
pub fn job_statuses(run: &Run, run_url: Option<String>) -> Vec<CommitStatus> {
    run.jobs
        .iter()
        .map(|job| {
            status::job_status(
                &run.pipeline,
                &job.name,
                job.status,
                job.reason.as_deref(),
                run_url.clone(),
            )
        })
        .collect()
}

/// What the step kinds of a run contributed to its comment: sections (Terraform summaries now;
/// images, manifests, DAGs and models later) and policy results. The server provides one that
/// reads them from where the steps recorded them.
pub trait Contributions: Send + Sync {
    fn for_run(&self, run: &Run) -> (Vec<Section>, Vec<PolicyResult>);
}

/// No contributions: the comment shows the jobs only.
pub struct NoContributions;

impl Contributions for NoContributions {
    fn for_run(&self, _run: &Run) -> (Vec<Section>, Vec<PolicyResult>) {
        (Vec::new(), Vec::new())
    }
}
