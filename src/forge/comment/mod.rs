//! The pull-request comment: one per pull request and pipeline, found again by a hidden marker.
//! It shows the commit it describes and when, the jobs, per environment a collapsible section for
//! each kind of change a step contributed (Terraform now; images, manifests, DAGs and models add
//! theirs through `Section`), the policy results and a link to the run. A comment over GitHub's
//! size limit becomes numbered parts, each valid Markdown. Everything that comes from plans, logs
//! or file names is escaped (`escape`). Pure: knows nothing of HTTP or of where runs come from.

pub mod escape;
pub mod split;

use crate::model::{Status, short_commit};
use chrono::{DateTime, Utc};

/// GitHub refuses comment bodies longer than this many characters.
pub const COMMENT_LIMIT: usize = 65_535;

/// Room kept in each part for its marker and continuation heading.
const PART_OVERHEAD: usize = 600;

/// What a section is about; the order here is the order in the comment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SectionKind {
    Terraform,
    Images,
    Manifests,
    Dags,
    Models,
    Other(String),
}

impl SectionKind {
    pub fn label(&self) -> &str {
        match self {
            SectionKind::Terraform => "Terraform",
            SectionKind::Images => "Images",
            SectionKind::Manifests => "Kubernetes manifests",
            SectionKind::Dags => "Airflow DAGs",
            SectionKind::Models => "Models",
            SectionKind::Other(label) => label,
        }
    }
}

/// One collapsible part of the comment, contributed by a step kind for one environment.
/// `title` is plain text (escaped here); `body_markdown` is Markdown the step kind built with
/// `escape::code_block`/`escape::inline` for anything untrusted. As a safety net it is defused
/// again outside its code blocks (no mention, no HTML) and an open code block is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub environment: String,
    pub kind: SectionKind,
    pub title: String,
    pub body_markdown: String,
}

/// What a policy said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PolicyOutcome {
    Deny,
    Warn,
    Passed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyResult {
    pub outcome: PolicyOutcome,
    /// `package.rule`, e.g. `terraform.tags.deny`.
    pub rule: String,
    /// Empty for a rule that passed.
    pub message: String,
}

/// One job's line in the comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLine {
    pub name: String,
    pub status: Status,
    pub summary: Option<String>,
}

/// Everything the comment shows for one run of one pipeline on one pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentInput {
    pub pipeline: String,
    pub commit: String,
    pub at: DateTime<Utc>,
    pub status: Status,
    pub run_id: Option<i64>,
    pub run_url: Option<String>,
    pub jobs: Vec<JobLine>,
    pub sections: Vec<Section>,
    pub policies: Vec<PolicyResult>,
}

/// The hidden first line of part 1 of the comment for `pipeline`.
pub fn marker(pipeline: &str) -> String {
    format!(
        "<!-- sluice:pr-comment pipeline={} -->",
        marker_name(pipeline)
    )
}

/// The hidden first line of continuation part `part` (2, 3, ...).
pub fn part_marker(pipeline: &str, part: usize) -> String {
    format!(
        "<!-- sluice:pr-comment pipeline={} part={part} -->",
        marker_name(pipeline)
    )
}

/// Which part of which pipeline's comment a body is: `(pipeline marker name, part)`, part 1
/// for the main comment; `None` for a comment sluice did not write.
pub fn parse_marker(body: &str) -> Option<(String, usize)> {
    let first_line = body.lines().next()?;
    let inner = first_line
        .strip_prefix("<!-- sluice:pr-comment pipeline=")?
        .strip_suffix(" -->")?;
    match inner.split_once(" part=") {
        Some((name, part)) => Some((name.to_owned(), part.parse().ok()?)),
        None => Some((inner.to_owned(), 1)),
    }
}

/// The pipeline name as it appears in a marker: no spaces, no `-->`.
pub fn marker_name(pipeline: &str) -> String {
    pipeline
        .chars()
        .map(|character| {
            if character.is_alphanumeric() || "._/:".contains(character) {
                character
            } else {
                '-'
            }
        })
        .collect()
}

const STALE_MARKER: &str = "<!-- sluice:stale -->";

/// Marks a posted comment body as describing an old commit: a warning right under the marker,
/// replacing an earlier one. Works on the body as posted, so no run needs to be re-read.
pub fn mark_stale(body: &str, newer_commit: &str) -> String {
    let (first_line, rest) = body.split_once('\n').unwrap_or((body, ""));
    let rest = match rest.strip_prefix(STALE_MARKER) {
        // Drop the old warning: everything up to the blank line after it.
        Some(after) => after.split_once("\n\n").map(|(_, tail)| tail).unwrap_or(""),
        None => rest,
    };
    format!(
        "{first_line}\n{STALE_MARKER}\n> [!WARNING]\n> **Stale:** this describes an older commit; commit `{}` was pushed since and is being checked.\n\n{rest}",
        escape::inline(short_commit(newer_commit))
    )
}

/// The comment as one or more bodies, each at most `COMMENT_LIMIT` characters.
pub fn render(input: &CommentInput) -> Vec<String> {
    render_with_limit(input, COMMENT_LIMIT)
}

/// `render` with another limit (tests use small ones).
pub fn render_with_limit(input: &CommentInput, limit: usize) -> Vec<String> {
    let block_limit = limit.saturating_sub(PART_OVERHEAD).max(200);
    let blocks = blocks(input, block_limit);
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for block in blocks {
        if !current.is_empty() && current.chars().count() + block.chars().count() > block_limit {
            parts.push(std::mem::take(&mut current));
        }
        current.push_str(&block);
    }
    parts.push(current);
    let count = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(index, content)| {
            if index == 0 {
                let mut body = format!("{}\n{content}", marker(&input.pipeline));
                if count > 1 {
                    body.push_str(&format!(
                        "\n_Continued in {} more comment(s) below._\n",
                        count - 1
                    ));
                }
                body
            } else {
                format!(
                    "{}\n### sluice · `{}` · part {} of {count}\n\n{content}",
                    part_marker(&input.pipeline, index + 1),
                    escape::inline(&input.pipeline).replace('`', "'"),
                    index + 1
                )
            }
        })
        .collect()
}

/// The comment's pieces in order; each is valid Markdown on its own and at most `block_limit`
/// characters, so parts can be cut between any two.
fn blocks(input: &CommentInput, block_limit: usize) -> Vec<String> {
    let mut blocks = vec![header(input)];
    if !input.jobs.is_empty() {
        let mut table = String::from("| Job | Status | Summary |\n| --- | --- | --- |\n");
        for job in &input.jobs {
            table.push_str(&format!(
                "| {} | {} {} | {} |\n",
                escape::inline(&job.name),
                status_icon(job.status),
                job.status,
                job.summary
                    .as_deref()
                    .map(escape::inline)
                    .unwrap_or_default()
            ));
        }
        table.push('\n');
        blocks.push(table);
    }
    let mut environments: Vec<&str> = Vec::new();
    for section in &input.sections {
        if !environments.contains(&section.environment.as_str()) {
            environments.push(&section.environment);
        }
    }
    for environment in environments {
        blocks.push(format!(
            "#### Environment {}\n\n",
            escape::inline(environment)
        ));
        let mut sections: Vec<&Section> = input
            .sections
            .iter()
            .filter(|section| section.environment == environment)
            .collect();
        sections.sort_by(|left, right| left.kind.cmp(&right.kind));
        for section in sections {
            blocks.extend(section_blocks(section, block_limit));
        }
    }
    if !input.policies.is_empty() {
        blocks.push(policy_block(&input.policies));
    }
    blocks
}

fn header(input: &CommentInput) -> String {
    let mut header = format!(
        "### sluice · {} · {} {}\n\n",
        escape::inline(&input.pipeline),
        status_icon(input.status),
        input.status
    );
    header.push_str(&format!(
        "Commit `{}` · {}",
        escape::inline(short_commit(&input.commit)).replace('`', ""),
        input.at.format("%Y-%m-%d %H:%M UTC")
    ));
    match (&input.run_url, input.run_id) {
        (Some(url), Some(id)) => header.push_str(&format!(" · [run {id}]({})", link_target(url))),
        (Some(url), None) => header.push_str(&format!(" · [run]({})", link_target(url))),
        (None, Some(id)) => header.push_str(&format!(" · run {id}")),
        (None, None) => {}
    }
    header.push_str("\n\n");
    header
}

/// A URL safe inside `(...)`: spaces and parentheses percent-encoded.
fn link_target(url: &str) -> String {
    url.replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
        .replace('<', "%3C")
        .replace('>', "%3E")
}

/// A section as one `<details>` block, or several numbered ones when its body is too long.
fn section_blocks(section: &Section, block_limit: usize) -> Vec<String> {
    let title = format!(
        "{}: {}",
        section.kind.label(),
        escape::inline(&section.title)
    );
    let body = escape::contributed_markdown(&section.body_markdown);
    let wrapper = |summary: &str, body: &str| {
        format!("<details><summary>{summary}</summary>\n\n{body}\n</details>\n\n")
    };
    let overhead = title.chars().count() + 80;
    if body.chars().count() + overhead <= block_limit {
        return vec![wrapper(&title, &body)];
    }
    let pieces = split::split_markdown(&body, block_limit.saturating_sub(overhead).max(100));
    let count = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(index, piece)| wrapper(&format!("{title} ({} of {count})", index + 1), piece))
        .collect()
}

fn policy_block(policies: &[PolicyResult]) -> String {
    let mut sorted: Vec<&PolicyResult> = policies.iter().collect();
    sorted.sort_by(|left, right| (left.outcome, &left.rule).cmp(&(right.outcome, &right.rule)));
    let denied = sorted
        .iter()
        .filter(|result| result.outcome == PolicyOutcome::Deny)
        .count();
    let warned = sorted
        .iter()
        .filter(|result| result.outcome == PolicyOutcome::Warn)
        .count();
    let passed = sorted.len() - denied - warned;
    let mut block =
        format!("#### Policies: {denied} denied, {warned} warning(s), {passed} passed\n\n");
    for result in sorted {
        let (icon, word) = match result.outcome {
            PolicyOutcome::Deny => ("❌", "deny"),
            PolicyOutcome::Warn => ("⚠️", "warn"),
            PolicyOutcome::Passed => ("✅", "passed"),
        };
        block.push_str(&format!(
            "- {icon} **{word}** `{}`",
            result.rule.replace('`', "'")
        ));
        if !result.message.is_empty() {
            block.push_str(&format!(": {}", escape::inline(&result.message)));
        }
        block.push('\n');
    }
    block.push('\n');
    block
}

fn status_icon(status: Status) -> &'static str {
    match status {
        Status::Queued => "⏳",
        Status::Running => "🔄",
        Status::Succeeded => "✅",
        Status::Failed => "❌",
        Status::Skipped => "⏭️",
        Status::Cancelled => "🚫",
    }
}

/// The Terraform section for one environment: the plan summary's Markdown (already fenced
/// safely by `terraform::summary::render_markdown`).
pub fn terraform_section(
    environment: &str,
    title: &str,
    summary: &crate::terraform::summary::PlanSummary,
) -> Section {
    Section {
        environment: environment.to_owned(),
        kind: SectionKind::Terraform,
        title: title.to_owned(),
        body_markdown: crate::terraform::summary::render_markdown(summary),
    }
}

#[cfg(test)]
mod tests;
