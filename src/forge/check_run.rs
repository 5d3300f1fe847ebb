//! Check runs, one per job, for sluice authenticated as a GitHub App (tokens get commit statuses,
//! `status`): named like the status context, `queued` or `in_progress`, then `completed` with a
//! conclusion, a title and a summary (the job's reason, a plan's counts, the policy result), and
//! an annotation for every policy finding placed at a file and line (`finding_locations`, or a
//! finding's own `file`/`line`). Pure mapping from a recorded job to what GitHub is sent;
//! creating, updating and splitting annotations into requests is in `publish`.

use super::comment::escape;
use super::status;
use crate::model::{Run, Status};
use crate::policy::{FindingLocation, Severity};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// GitHub takes at most this many annotations per request.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;
/// GitHub refuses longer summaries (65535 characters); stay well below.
const SUMMARY_LIMIT: usize = 60_000;
/// GitHub's limit on an annotation's title.
const ANNOTATION_TITLE_LIMIT: usize = 255;
/// GitHub's limit on an annotation's message (64 KB); stay below.
const ANNOTATION_MESSAGE_LIMIT: usize = 60_000;

/// What a job's check run should show, sent whole on every update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRun {
    /// The status context of the job, `sluice/<pipeline>/<job>`.
    pub name: String,
    /// `<run id>/<job>`: tells this run's check from another run's of the same commit.
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_url: Option<String>,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// With `completed`: `success`, `failure`, `cancelled`, `skipped` or `timed_out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    pub title: String,
    /// Markdown.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
}

/// One annotation as GitHub takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    /// `failure` for a deny, `warning` for a warning.
    pub annotation_level: String,
    pub title: String,
    pub message: String,
}

pub fn external_id(run_id: i64, job: &str) -> String {
    format!("{run_id}/{job}")
}

/// The check run of `job` in `run`, now in `status` with `reason`; its outputs (plan counts,
/// findings and their places) come from the job's record in `run`.
pub fn job_check_run(
    run: &Run,
    job: &str,
    status: Status,
    reason: Option<&str>,
    details_url: Option<String>,
) -> CheckRun {
    let outputs = run
        .jobs
        .iter()
        .find(|record| record.name == job)
        .map(|record| record.outputs.clone())
        .unwrap_or_default();
    let description = status::job_status(&run.pipeline, job, status, reason, None).description;
    let (state, conclusion) = match status {
        Status::Queued => ("queued", None),
        Status::Running => ("in_progress", None),
        Status::Succeeded => ("completed", Some("success")),
        Status::Failed if reason.is_some_and(|reason| reason.contains("timed out after")) => {
            ("completed", Some("timed_out"))
        }
        Status::Failed => ("completed", Some("failure")),
        Status::Skipped => ("completed", Some("skipped")),
        Status::Cancelled => ("completed", Some("cancelled")),
    };
    let findings: Vec<Value> = outputs
        .get("findings")
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let locations: Vec<FindingLocation> = match outputs.get("finding_locations") {
        Some(text) => serde_json::from_str(text).unwrap_or_default(),
        None => findings.iter().filter_map(own_location).collect(),
    };
    let plan = outputs
        .get("counts")
        .filter(|_| outputs.contains_key("plan_sha256"));
    let denials = count(&findings, "deny");
    let warnings = count(&findings, "warn");
    let policy_result = match (denials, warnings) {
        (0, 0) => "policies passed".to_owned(),
        (0, warnings) => format!("policies passed with {warnings} warning(s)"),
        (denials, warnings) => format!("{denials} denied by policies, {warnings} warning(s)"),
    };
    let title = match plan {
        Some(counts) if conclusion.is_some() => format!("plan {counts}: {policy_result}"),
        _ => description.clone(),
    };
    let mut summary = format!("**{}**\n", escape::inline(&description));
    if let Some(counts) = plan {
        let environment = outputs
            .get("environment")
            .map(String::as_str)
            .unwrap_or(job);
        summary.push_str(&format!(
            "\nTerraform plan for {}: `{}`, {policy_result}.\n",
            escape::inline(environment),
            counts.replace('`', "'")
        ));
    }
    if !findings.is_empty() {
        summary.push_str("\n| | rule | message | where |\n|---|---|---|---|\n");
        for finding in &findings {
            let rule = finding["rule"].as_str().unwrap_or_default();
            let message = finding["message"].as_str().unwrap_or_default();
            let place = locations
                .iter()
                .find(|location| location.rule == rule && location.message == message)
                .map(|location| escape::inline(&format!("{}:{}", location.path, location.line)))
                .unwrap_or_else(|| "not found in the sources".to_owned());
            summary.push_str(&format!(
                "| {} | {} | {} | {place} |\n",
                finding["severity"].as_str().unwrap_or("deny"),
                escape::inline(rule),
                escape::inline(message),
            ));
        }
    }
    let annotations = if conclusion.is_some() {
        locations.iter().map(annotation).collect()
    } else {
        Vec::new()
    };
    CheckRun {
        name: status::context(&run.pipeline, job),
        external_id: external_id(run.id, job),
        details_url,
        status: state.to_owned(),
        conclusion: conclusion.map(str::to_owned),
        title,
        summary: shorten(&summary, SUMMARY_LIMIT),
        annotations,
    }
}

fn count(findings: &[Value], severity: &str) -> usize {
    findings
        .iter()
        .filter(|finding| finding["severity"].as_str() == Some(severity))
        .count()
}

/// A finding (as the `findings` output holds it) that names its own file and line.
fn own_location(finding: &Value) -> Option<FindingLocation> {
    let metadata = finding.get("metadata")?.as_object()?;
    let (path, line) = crate::policy::file_position(metadata)?;
    Some(FindingLocation {
        path,
        line,
        rule: finding["rule"].as_str()?.to_owned(),
        message: finding["message"].as_str()?.to_owned(),
        severity: serde_json::from_value(finding["severity"].clone()).ok()?,
    })
}

fn annotation(location: &FindingLocation) -> Annotation {
    Annotation {
        path: location.path.clone(),
        start_line: location.line,
        end_line: location.line,
        annotation_level: match location.severity {
            Severity::Deny => "failure",
            Severity::Warn => "warning",
        }
        .to_owned(),
        title: shorten(&location.rule, ANNOTATION_TITLE_LIMIT),
        message: shorten(&location.message, ANNOTATION_MESSAGE_LIMIT),
    }
}

fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(limit - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, JobRecord};
    use serde_json::json;

    fn run(outputs: &[(&str, String)]) -> Run {
        Run {
            id: 7,
            repository: "acme/platform".to_owned(),
            commit: "a".repeat(40),
            git_ref: "refs/heads/main".to_owned(),
            event: EventKind::PullRequest,
            pipeline: "platform".to_owned(),
            status: Status::Running,
            reason: None,
            created_at: chrono::Utc::now(),
            finished_at: None,
            concurrency_group: None,
            delivery: None,
            jobs: vec![JobRecord {
                name: "plan".to_owned(),
                status: Status::Running,
                reason: None,
                needs: Vec::new(),
                started_at: None,
                finished_at: None,
                steps: Vec::new(),
                outputs: outputs
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.clone()))
                    .collect(),
            }],
        }
    }

    fn check(status: Status, reason: Option<&str>, state: &str, conclusion: Option<&str>) {
        let sent = job_check_run(&run(&[]), "plan", status, reason, None);
        assert_eq!(
            (sent.status.as_str(), sent.conclusion.as_deref()),
            (state, conclusion),
            "{status} {reason:?}"
        );
        assert_eq!(sent.name, "sluice/platform/plan");
        assert_eq!(sent.external_id, "7/plan");
    }

    #[test]
    fn each_job_state_maps_to_a_check_state_and_conclusion() {
        check(Status::Queued, None, "queued", None);
        check(Status::Running, None, "in_progress", None);
        check(Status::Succeeded, None, "completed", Some("success"));
        check(
            Status::Failed,
            Some("step `x` exited with 1"),
            "completed",
            Some("failure"),
        );
        check(
            Status::Failed,
            Some("job timed out after 60s"),
            "completed",
            Some("timed_out"),
        );
        check(
            Status::Skipped,
            Some("no matching paths"),
            "completed",
            Some("skipped"),
        );
        check(Status::Cancelled, None, "completed", Some("cancelled"));
    }

    #[test]
    fn a_plan_job_shows_its_counts_policy_result_and_annotations_when_completed() {
        let findings = json!([
            {"severity": "deny", "rule": "terraform.s3.deny", "message": "aws_s3_bucket.models is public"},
            {"severity": "warn", "rule": "terraform.tags.warn", "message": "no owner tag"},
            {"severity": "warn", "rule": "k8s.warn", "message": "latest tag",
             "metadata": {"file": "k8s/serving.yaml", "line": 9}}
        ]);
        let locations = json!([{"path": "infra/dev/main.tf", "line": 12,
            "rule": "terraform.s3.deny", "message": "aws_s3_bucket.models is public",
            "severity": "deny"}]);
        let outputs = [
            ("plan_sha256", "f".repeat(64)),
            ("counts", "+1 ~0 -0".to_owned()),
            ("environment", "dev".to_owned()),
            ("findings", findings.to_string()),
            ("finding_locations", locations.to_string()),
        ];
        let running = job_check_run(&run(&outputs), "plan", Status::Running, None, None);
        assert!(running.annotations.is_empty());
        let done = job_check_run(
            &run(&outputs),
            "plan",
            Status::Failed,
            Some("the plan for dev was denied by 1 policy"),
            Some("https://sluice.example.com/runs/7".to_owned()),
        );
        assert_eq!(
            done.title,
            "plan +1 ~0 -0: 1 denied by policies, 2 warning(s)"
        );
        assert!(
            done.summary.contains("infra/dev/main\\.tf:12"),
            "{}",
            done.summary
        );
        assert!(
            done.summary.contains("not found in the sources"),
            "{}",
            done.summary
        );
        assert_eq!(
            done.annotations,
            vec![Annotation {
                path: "infra/dev/main.tf".to_owned(),
                start_line: 12,
                end_line: 12,
                annotation_level: "failure".to_owned(),
                title: "terraform.s3.deny".to_owned(),
                message: "aws_s3_bucket.models is public".to_owned(),
            }]
        );
    }

    #[test]
    fn without_placed_findings_a_finding_with_its_own_file_is_annotated_there() {
        let findings = json!([
            {"severity": "warn", "rule": "k8s.warn", "message": "latest tag",
             "metadata": {"path": "k8s/serving.yaml", "line": 9}}
        ]);
        let done = job_check_run(
            &run(&[("findings", findings.to_string())]),
            "plan",
            Status::Succeeded,
            None,
            None,
        );
        assert_eq!(done.annotations.len(), 1);
        assert_eq!(
            (
                done.annotations[0].path.as_str(),
                done.annotations[0].start_line
            ),
            ("k8s/serving.yaml", 9)
        );
        assert_eq!(done.annotations[0].annotation_level, "warning");
    }
}
