//! Checks on a decoded pipeline that serde cannot make: `needs` naming real jobs without
//! cycles, valid globs, `if:` expressions and durations, one step kind per step, known pull
//! request activity types, and pipeline names unique across files. Pure; the file's tree is
//! used only to point at the right line.

use crate::config::graph::{cycles, spell};
use crate::config::located::{PathPart, find, keys_at};
use crate::config::messages::{DocumentKind, at, did_you_mean, place};
use crate::config::workflow::{Job, Workflow};
use crate::config::yaml::Node;
use crate::config::{Diagnostic, expr, glob};

/// The activity types GitHub sends for `pull_request` events.
pub const PULL_REQUEST_TYPES: &[&str] = &[
    "assigned",
    "unassigned",
    "labeled",
    "unlabeled",
    "opened",
    "edited",
    "closed",
    "reopened",
    "synchronize",
    "converted_to_draft",
    "ready_for_review",
    "locked",
    "unlocked",
    "review_requested",
    "review_request_removed",
    "auto_merge_enabled",
    "auto_merge_disabled",
    "milestoned",
    "demilestoned",
    "enqueued",
    "dequeued",
];

/// One pipeline file on its own.
pub fn check_workflow(path: &str, workflow: &Workflow, tree: &Node) -> Vec<Diagnostic> {
    let checker = Checker { path, tree };
    let mut diagnostics = checker.triggers(workflow);
    // Jobs whose value was rejected still exist as far as `needs` is concerned.
    let job_ids = keys_at(tree, &["jobs".into()]);
    for (job_id, job) in &workflow.jobs {
        diagnostics.extend(checker.job(job_id, job, &job_ids));
    }
    diagnostics.extend(checker.needs_cycles(workflow));
    diagnostics
}

/// Pipeline names across files: each must be unique, as runs and statuses are keyed by it.
/// `pipelines` holds (file path, pipeline, tree) in path order.
pub fn check_pipeline_names(pipelines: &[(&str, &Workflow, &Node)]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for (position, (path, workflow, tree)) in pipelines.iter().enumerate() {
        if workflow.name.is_empty() {
            continue;
        }
        let earlier = pipelines[..position]
            .iter()
            .find(|(_, other, _)| other.name == workflow.name);
        if let Some((earlier_path, _, earlier_tree)) = earlier {
            let first = find(earlier_tree, &["name".into()]).value_position;
            diagnostics.push(at(
                path,
                find(tree, &["name".into()]).value_position,
                format!("duplicate pipeline name `{}`", workflow.name),
                Some(format!(
                    "{earlier_path}:{}:{} already uses it; give each pipeline its own `name`",
                    first.line, first.column
                )),
            ));
        }
    }
    diagnostics
}

struct Checker<'a> {
    path: &'a str,
    tree: &'a Node,
}

impl Checker<'_> {
    fn diagnostic_at(
        &self,
        parts: &[PathPart],
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        at(self.path, find(self.tree, parts).position(), message, hint)
    }

    fn place(&self, parts: &[PathPart]) -> String {
        place(DocumentKind::Pipeline, &find(self.tree, parts).parts)
    }

    fn triggers(&self, workflow: &Workflow) -> Vec<Diagnostic> {
        let mut diagnostics = Vec::new();
        if let Some(push) = &workflow.on.push {
            let lists = [
                ("branches", &push.branches),
                ("branches-ignore", &push.branches_ignore),
                ("tags", &push.tags),
                ("tags-ignore", &push.tags_ignore),
                ("paths", &push.paths),
                ("paths-ignore", &push.paths_ignore),
            ];
            diagnostics.extend(self.filter_lists("push", &lists));
        }
        if let Some(pull_request) = &workflow.on.pull_request {
            let lists = [
                ("branches", &pull_request.branches),
                ("branches-ignore", &pull_request.branches_ignore),
                ("paths", &pull_request.paths),
                ("paths-ignore", &pull_request.paths_ignore),
            ];
            diagnostics.extend(self.filter_lists("pull_request", &lists));
            for (index, activity) in pull_request.types.iter().flatten().enumerate() {
                if !PULL_REQUEST_TYPES.contains(&activity.as_str()) {
                    diagnostics.push(self.diagnostic_at(
                        &["on".into(), "pull_request".into(), "types".into(), index.into()],
                        format!(
                            "unknown pull request activity type `{activity}` in `on.pull_request.types`"
                        ),
                        Some(did_you_mean(
                            activity,
                            PULL_REQUEST_TYPES.iter().copied(),
                            "known types",
                        )),
                    ));
                }
            }
        }
        diagnostics
    }

    /// Every pattern must be a valid glob. Unlike GitHub, a filter and its `-ignore` twin may be
    /// combined (the planner applies the filter, then the ignore list), so that is not checked.
    fn filter_lists(&self, event: &str, lists: &[(&str, &Option<Vec<String>>)]) -> Vec<Diagnostic> {
        let mut diagnostics = Vec::new();
        for (key, patterns) in lists {
            for (index, pattern) in patterns.iter().flatten().enumerate() {
                if let Err(problem) = glob::check(pattern) {
                    diagnostics.push(self.diagnostic_at(
                        &["on".into(), event.into(), (*key).into(), index.into()],
                        format!(
                            "invalid pattern {} in `on.{event}.{key}`: {problem}",
                            quoted_pattern(pattern)
                        ),
                        None,
                    ));
                }
            }
        }
        diagnostics
    }

    fn job(&self, job_id: &str, job: &Job, job_ids: &[String]) -> Vec<Diagnostic> {
        let mut diagnostics = Vec::new();
        let job_path: Vec<PathPart> = vec!["jobs".into(), job_id.into()];
        let within_job = |rest: &[PathPart]| -> Vec<PathPart> {
            job_path
                .iter()
                .cloned()
                .chain(rest.iter().cloned())
                .collect()
        };
        if !is_valid_job_id(job_id) {
            diagnostics.push(at(
                self.path,
                find(self.tree, &job_path).key_or_value_position(),
                format!("invalid job id `{job_id}`"),
                Some(
                    "job ids start with a letter or `_` and hold only letters, digits, `-` and `_`"
                        .to_string(),
                ),
            ));
        }
        for (index, needed) in job.needs.0.iter().enumerate() {
            let needs_path = within_job(&["needs".into(), index.into()]);
            if needed == job_id {
                diagnostics.push(self.diagnostic_at(
                    &needs_path,
                    format!("job `{job_id}` needs itself"),
                    Some(format!("remove `{job_id}` from its `needs`")),
                ));
            } else if !job_ids.iter().any(|known| known == needed) {
                diagnostics.push(self.diagnostic_at(
                    &needs_path,
                    format!("job `{job_id}` needs unknown job `{needed}`"),
                    Some(did_you_mean(
                        needed,
                        job_ids.iter().map(String::as_str),
                        "jobs in this pipeline",
                    )),
                ));
            }
        }
        if let Some(condition) = &job.condition {
            diagnostics.extend(self.expression(&within_job(&["if".into()]), condition));
        }
        if let Some(timeout) = &job.timeout
            && let Err(problem) = timeout.to_duration()
        {
            let timeout_path = within_job(&["timeout".into()]);
            diagnostics.push(self.diagnostic_at(
                &timeout_path,
                format!("{}: {problem}", self.place(&timeout_path)),
                None,
            ));
        }
        for (index, step) in job.steps.iter().enumerate() {
            let step_path = within_job(&["steps".into(), index.into()]);
            let within_step = |rest: &[PathPart]| -> Vec<PathPart> {
                step_path
                    .iter()
                    .cloned()
                    .chain(rest.iter().cloned())
                    .collect()
            };
            let kinds = step.kinds();
            if kinds.len() != 1 {
                let step_place = self.place(&step_path);
                let (message, hint) = if kinds.is_empty() {
                    (
                        format!("{step_place} sets no step kind"),
                        "give it exactly one step kind, such as `run: <command>`".to_string(),
                    )
                } else {
                    (
                        format!("{step_place} sets several step kinds: {}", kinds.join(", ")),
                        "keep exactly one; split the step into one step per kind".to_string(),
                    )
                };
                diagnostics.push(at(
                    self.path,
                    find(self.tree, &step_path).value_position,
                    message,
                    Some(hint),
                ));
            }
            if let Some(condition) = &step.condition {
                diagnostics.extend(self.expression(&within_step(&["if".into()]), condition));
            }
            if let Some(timeout) = &step.timeout
                && let Err(problem) = timeout.to_duration()
            {
                let timeout_path = within_step(&["timeout".into()]);
                diagnostics.push(self.diagnostic_at(
                    &timeout_path,
                    format!("{}: {problem}", self.place(&timeout_path)),
                    None,
                ));
            }
        }
        diagnostics
    }

    fn expression(&self, parts: &[PathPart], expression: &str) -> Option<Diagnostic> {
        let problem = expr::check(expression).err()?;
        Some(self.diagnostic_at(
            parts,
            format!("invalid expression in {}: {problem}", self.place(parts)),
            None,
        ))
    }

    /// One diagnostic per cycle, at the `needs` entry of its first job that closes the ring.
    fn needs_cycles(&self, workflow: &Workflow) -> Vec<Diagnostic> {
        let waits_for: Vec<(String, Vec<String>)> = workflow
            .jobs
            .iter()
            .map(|(job_id, job)| (job_id.clone(), job.needs.0.clone()))
            .collect();
        cycles(&waits_for)
            .iter()
            .map(|cycle| {
                let first = &cycle[0];
                let last = &cycle[cycle.len() - 1];
                let closing_index = workflow.jobs[first]
                    .needs
                    .0
                    .iter()
                    .position(|needed| needed == last)
                    .unwrap_or(0);
                self.diagnostic_at(
                    &["jobs".into(), first.into(), "needs".into(), closing_index.into()],
                    format!("cycle in `needs`: {}", spell(cycle)),
                    Some(format!(
                        "`a -> b` means job `b` needs job `a`; remove one of these `needs` entries, for example `{last}` from job `{first}`"
                    )),
                )
            })
            .collect()
    }
}

/// An empty pattern would read as two backticks; show it as YAML writes it.
fn quoted_pattern(pattern: &str) -> String {
    if pattern.is_empty() {
        "`\"\"`".to_string()
    } else {
        format!("`{pattern}`")
    }
}

/// GitHub's rule for job ids.
fn is_valid_job_id(job_id: &str) -> bool {
    let mut characters = job_id.chars();
    let starts_well = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_');
    starts_well
        && characters.all(|character| {
            character.is_ascii_alphanumeric() || character == '-' || character == '_'
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::recover::decode;
    use crate::config::yaml::parse;

    fn check(text: &str, expect: &[&str]) {
        let mut tree = parse(text).expect("test YAML parses");
        let (workflow, problems) = decode::<Workflow>(&mut tree);
        assert_eq!(problems, vec![], "test pipeline decodes cleanly");
        let workflow = workflow.expect("test pipeline decodes");
        let shown: Vec<String> = check_workflow("workflows/ci.yaml", &workflow, &tree)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, expect, "for input:\n{text}");
    }

    #[test]
    fn a_sound_pipeline_passes() {
        check(
            "name: ci\non:\n  push: {branches: [main]}\n  pull_request: {types: [opened, closed]}\njobs:\n  build:\n    steps: [{run: make}]\n  test:\n    needs: build\n    timeout: 10m\n    steps: [{run: make test}]\n",
            &[],
        );
    }

    #[test]
    fn a_single_needs_is_located_at_its_value() {
        check(
            "name: ci\njobs:\n  test:\n    needs: biuld\n    steps: [{run: x}]\n  build:\n    steps: [{run: x}]\n",
            &[
                "workflows/ci.yaml:4:12: job `test` needs unknown job `biuld`\n  hint: did you mean `build`? jobs in this pipeline: test, build",
            ],
        );
    }

    #[test]
    fn bad_durations_and_step_kinds_are_reported() {
        check(
            "name: ci\njobs:\n  test:\n    timeout: 10x\n    steps:\n      - run: a\n      - name: nothing\n        timeout: soon\n",
            &[
                "workflows/ci.yaml:4:14: `timeout` in job `test`: invalid duration `10x`: unknown unit `x`; use ms, s, m, h or d",
                "workflows/ci.yaml:7:9: step 2 of job `test` sets no step kind\n  hint: give it exactly one step kind, such as `run: <command>`",
                "workflows/ci.yaml:8:18: `timeout` in step 2 of job `test`: invalid duration `soon`; write e.g. `10m`, `90s` or `1h30m`",
            ],
        );
    }

    #[test]
    fn unknown_activity_types_are_reported_and_ignore_twins_allowed() {
        check(
            "name: ci\non:\n  push:\n    branches: [main]\n    branches-ignore: [wip]\n  pull_request:\n    types: [open]\njobs:\n  a:\n    steps: [{run: x}]\n",
            &[
                "workflows/ci.yaml:7:13: unknown pull request activity type `open` in `on.pull_request.types`\n  hint: did you mean `opened`? known types: assigned, unassigned, labeled, unlabeled, opened, edited, closed, reopened, synchronize, converted_to_draft, ready_for_review, locked, unlocked, review_requested, review_request_removed, auto_merge_enabled, auto_merge_disabled, milestoned, demilestoned, enqueued, dequeued",
            ],
        );
    }

    #[test]
    fn job_ids_follow_github_rules() {
        check(
            "name: ci\njobs:\n  1st:\n    steps: [{run: x}]\n",
            &[
                "workflows/ci.yaml:3:3: invalid job id `1st`\n  hint: job ids start with a letter or `_` and hold only letters, digits, `-` and `_`",
            ],
        );
    }
}
