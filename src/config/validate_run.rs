//! The rule that keeps values outsiders choose out of shell scripts, as GitHub's hardening guide
//! asks: a `${{ }}` in a step's `run:` whose value whoever pushes or opens a pull request can
//! choose (`config::untrusted`) is refused at its own line and column, with the way to pass it
//! through `env:` instead. Elsewhere (`env:`, build settings, tags, concurrency groups) such
//! values are data and stay allowed. Pure; the file's text is used only to point at the
//! placeholder.

use crate::config::expr::{self, Segment};
use crate::config::located::find;
use crate::config::messages::at;
use crate::config::untrusted::{self, Finding};
use crate::config::workflow::{Job, Step, Workflow};
use crate::config::yaml::{Node, Position};
use crate::config::{Diagnostic, located::PathPart};
use std::collections::BTreeMap;

/// Every refused placeholder of every `run:` in the pipeline.
pub fn check_run_scripts(
    path: &str,
    text: &str,
    workflow: &Workflow,
    tree: &Node,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for (job_id, job) in &workflow.jobs {
        for (index, step) in job.steps.iter().enumerate() {
            let Some(script) = &step.run else { continue };
            // An unclosed `${{` fails the step with its own message when it runs; nothing of
            // the script is pasted then.
            let Ok(placeholders) = expr::placeholders(script) else {
                continue;
            };
            let tainted = tainted_variables(workflow, job, step);
            let run_path: Vec<PathPart> = vec![
                "jobs".into(),
                job_id.into(),
                "steps".into(),
                index.into(),
                "run".into(),
            ];
            let value_position = find(tree, &run_path).value_position;
            let mut search_from = byte_offset(text, value_position);
            for placeholder in placeholders {
                let written = &script[placeholder.start..placeholder.end];
                let position = locate(text, &mut search_from, written).unwrap_or(value_position);
                // An expression that does not parse fails the step when it runs.
                let Ok(reads) = expr::value_reads(placeholder.expression) else {
                    continue;
                };
                let found = reads.iter().find_map(|read| {
                    judge_read(read, workflow, &tainted).map(|judged| (read, judged))
                });
                if let Some((read, judged)) = found {
                    let message = message(written, placeholder.expression, read, &judged);
                    diagnostics.push(at(path, position, message, None));
                }
            }
        }
    }
    diagnostics
}

/// An untrusted value, reached directly or through an `env` variable set from it.
struct Judged {
    finding: Finding,
    variable: Option<String>,
}

fn judge_read(
    read: &[Segment],
    workflow: &Workflow,
    tainted: &BTreeMap<String, Finding>,
) -> Option<Judged> {
    let is_env =
        matches!(read.first(), Some(Segment::Key(root)) if root.eq_ignore_ascii_case("env"));
    if !is_env {
        return untrusted::judge(read, workflow).map(|finding| Judged {
            finding,
            variable: None,
        });
    }
    let (variable, finding) = tainted.iter().find(|(variable, _)| match read.get(1) {
        Some(Segment::Key(name)) => name.eq_ignore_ascii_case(variable),
        // `env`, `env.*`, `env[x]`: any variable.
        None | Some(Segment::Any) => true,
    })?;
    Some(Judged {
        finding: finding.clone(),
        variable: Some(variable.clone()),
    })
}

/// The step's variables (pipeline, job and step `env:`) whose values carry an untrusted value,
/// directly or through another variable, with the value they carry.
fn tainted_variables(workflow: &Workflow, job: &Job, step: &Step) -> BTreeMap<String, Finding> {
    let layers = [&workflow.env, &job.env, &step.env];
    let mut tainted: BTreeMap<String, Finding> = BTreeMap::new();
    loop {
        let mut changed = false;
        for (name, value) in layers.iter().flat_map(|layer| layer.iter()) {
            if tainted.contains_key(name) {
                continue;
            }
            let carried = expr::placeholders(value)
                .unwrap_or_default()
                .iter()
                .filter_map(|placeholder| expr::value_reads(placeholder.expression).ok())
                .flatten()
                .find_map(|read| judge_read(&read, workflow, &tainted));
            if let Some(judged) = carried {
                tainted.insert(name.clone(), judged.finding);
                changed = true;
            }
        }
        if !changed {
            return tainted;
        }
    }
}

fn message(written: &str, expression: &str, read: &[Segment], judged: &Judged) -> String {
    let Finding { field, reason } = &judged.finding;
    if let Some(variable) = &judged.variable {
        return format!(
            "`{written}` in `run:` can be chosen by {} (`env.{variable}` is set from `{field}`: {}); use \"${variable}\" instead: the step already has it in its environment",
            reason.chooser, reason.what
        );
    }
    let why = if expression.trim().eq_ignore_ascii_case(field) {
        reason.what.to_owned()
    } else {
        format!("it includes `{field}`: {}", reason.what)
    };
    let variable = variable_name(read);
    format!(
        "`{written}` in `run:` can be chosen by {} ({why}); pass it through `env:` (e.g. `env: {{ {variable}: \"{written}\" }}`) and use \"${variable}\"",
        reason.chooser
    )
}

/// `git.branch` → `BRANCH`, `toJSON(github)` → `GITHUB`: the last property read, as a shell
/// variable name.
fn variable_name(read: &[Segment]) -> String {
    let last = read
        .iter()
        .rev()
        .find_map(|segment| match segment {
            Segment::Key(key) => Some(key.as_str()),
            Segment::Any => None,
        })
        .unwrap_or("value");
    let mut name: String = last
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() {
                character.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|character: char| character.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// Finds the placeholder as written in the file, at or after `search_from`, and moves past it.
/// None when the YAML spells it differently (an escape inside quotes): the value's own position
/// is the best there is then.
fn locate(text: &str, search_from: &mut usize, written: &str) -> Option<Position> {
    let found = *search_from + text.get(*search_from..)?.find(written)?;
    *search_from = found + written.len();
    Some(position_of(text, found))
}

/// The byte offset of a 1-based line and column (counted in characters).
fn byte_offset(text: &str, position: Position) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(position.line.saturating_sub(1) as usize)
        .map(str::len)
        .sum();
    let column_bytes: usize = text[line_start..]
        .chars()
        .take_while(|character| *character != '\n')
        .take(position.column.saturating_sub(1) as usize)
        .map(char::len_utf8)
        .sum();
    line_start + column_bytes
}

fn position_of(text: &str, offset: usize) -> Position {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    Position {
        line: before.matches('\n').count() as u32 + 1,
        column: before[line_start..].chars().count() as u32 + 1,
    }
}
