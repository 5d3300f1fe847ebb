//! What a run's jobs recorded, turned into sections of its pull-request comment: each Terraform
//! plan's summary per environment with its policy findings, and the images the run built. Reads the
//! job outputs the steps stored; knows nothing of GitHub beyond the comment's section type.

use crate::forge::comment::{PolicyOutcome, PolicyResult, Section, SectionKind, escape};
use crate::forge::report::Contributions;
use crate::model::Run;
use crate::store::Store;
use std::sync::Arc;

pub struct JobOutputContributions {
    pub store: Arc<dyn Store>,
}

impl Contributions for JobOutputContributions {
    fn for_run(&self, run: &Run) -> (Vec<Section>, Vec<PolicyResult>) {
        let full = match self.store.get_run(run.id) {
            Ok(Some(full)) => full,
            _ => run.clone(),
        };
        contributions_of(&full)
    }
}

/// Sections and policy results from the run's job outputs.
pub fn contributions_of(run: &Run) -> (Vec<Section>, Vec<PolicyResult>) {
    let mut sections = Vec::new();
    let mut policies = Vec::new();
    let mut images = Vec::new();
    let mut proposed: Option<String> = None;
    for job in &run.jobs {
        if let Some((preview_sections, preview_policies)) =
            super::preview_sections::preview_contributions(&job.outputs)
        {
            sections.extend(preview_sections);
            for result in preview_policies {
                // The plan job judged the Terraform part already; a finding is shown once.
                if !policies.iter().any(|known: &PolicyResult| {
                    known.rule == result.rule && known.message == result.message
                }) {
                    policies.push(result);
                }
            }
            continue;
        }
        if proposed.is_none() {
            proposed = job.outputs.get("proposed_configuration").cloned();
        }
        if let Some(summary) = job
            .outputs
            .get("summary")
            .filter(|_| job.outputs.contains_key("plan_sha256"))
        {
            let environment = job
                .outputs
                .get("environment")
                .cloned()
                .unwrap_or_else(|| job.name.clone());
            let counts = job.outputs.get("counts").cloned().unwrap_or_default();
            let sha = job.outputs.get("plan_sha256").cloned().unwrap_or_default();
            sections.push(Section {
                environment: environment.clone(),
                kind: SectionKind::Terraform,
                title: format!("Terraform plan {counts}"),
                body_markdown: format!(
                    "plan sha256 `{}` (stored encrypted; the merge applies exactly this plan)\n\n{}",
                    code_span_text(&sha),
                    escape::code_block(summary, "")
                ),
            });
            let findings: Vec<serde_json::Value> = job
                .outputs
                .get("findings")
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default();
            if findings.is_empty() {
                policies.push(PolicyResult {
                    outcome: PolicyOutcome::Passed,
                    rule: format!("terraform ({environment})"),
                    message: String::new(),
                });
            }
            for finding in findings {
                let severity = finding["severity"]
                    .as_str()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                policies.push(PolicyResult {
                    outcome: if severity == "warn" {
                        PolicyOutcome::Warn
                    } else {
                        PolicyOutcome::Deny
                    },
                    rule: finding["rule"].as_str().unwrap_or("").to_owned(),
                    message: format!(
                        "{environment}: {}",
                        finding["message"].as_str().unwrap_or("")
                    ),
                });
            }
        }
        if let Some(image) = job
            .outputs
            .get("image")
            .filter(|image| image.contains("@sha256:"))
        {
            let built = job.outputs.get("built").map(String::as_str) == Some("true");
            images.push(format!(
                "- `{}`{}",
                code_span_text(image),
                if built {
                    ""
                } else {
                    " (not rebuilt: same content digest)"
                }
            ));
        }
    }
    if let Some(text) = proposed {
        sections.push(Section {
            environment: "all environments".to_owned(),
            kind: SectionKind::Other("Configuration".to_owned()),
            title: "proposed changes to environments/ and policies/ (not in force until merged)"
                .to_owned(),
            body_markdown: escape::code_block(&text, ""),
        });
    }
    if !images.is_empty() {
        sections.push(Section {
            environment: "all environments".to_owned(),
            kind: SectionKind::Images,
            title: format!("{} image(s), pinned by digest", images.len()),
            body_markdown: images.join("\n"),
        });
    }
    (sections, policies)
}

/// Text for inside a code span, where mentions and HTML do not render: only backticks could end
/// the span early, so they go.
fn code_span_text(text: &str) -> String {
    text.replace('`', "'")
}
