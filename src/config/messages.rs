//! Wording: turns decoding problems into diagnostics a pipeline author can act on, names places
//! the way authors think of them ("step 2 of job `test`"), and suggests the nearest valid name.
//! Knows the shape of each kind of file only as far as naming places needs.

use crate::config::Diagnostic;
use crate::config::located::{DottedPath, PathPart};
use crate::config::recover::{Problem, ProblemKind, decode};
use crate::config::workflow::ConcurrencyDetailed;
use crate::config::yaml::{NodeValue, Position};

/// Which schema a file follows; decides how places in it are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    Pipeline,
    Environment,
    Server,
}

impl DocumentKind {
    fn whole_file(self) -> &'static str {
        match self {
            DocumentKind::Pipeline => "the pipeline",
            DocumentKind::Environment => "the environment",
            DocumentKind::Server => "the server configuration",
        }
    }

    fn empty_file_hint(self) -> &'static str {
        match self {
            DocumentKind::Pipeline => "a pipeline needs at least `name:` and `jobs:`",
            DocumentKind::Environment => "an environment needs at least `name:`",
            DocumentKind::Server => {
                "write at least `listen:` or `repositories:`, or leave the option out"
            }
        }
    }
}

/// A diagnostic at a 1-based position of `path`.
pub fn at(path: &str, position: Position, message: String, hint: Option<String>) -> Diagnostic {
    Diagnostic {
        path: path.to_string(),
        line: position.line,
        column: position.column,
        message,
        hint,
    }
}

/// How an author would name the place `parts` points at.
pub fn place(kind: DocumentKind, parts: &[PathPart]) -> String {
    use PathPart::{Index, Key};
    match (kind, parts) {
        (_, []) => kind.whole_file().to_string(),
        (DocumentKind::Pipeline, [Key(jobs), Key(job)]) if jobs == "jobs" => {
            format!("job `{job}`")
        }
        (DocumentKind::Pipeline, [Key(jobs), Key(job), Key(steps), Index(step)])
            if jobs == "jobs" && steps == "steps" =>
        {
            format!("step {} of job `{job}`", step + 1)
        }
        (DocumentKind::Pipeline, [Key(jobs), Key(job), Key(steps), Index(step), rest @ ..])
            if jobs == "jobs" && steps == "steps" =>
        {
            format!("`{}` in step {} of job `{job}`", DottedPath(rest), step + 1)
        }
        (DocumentKind::Pipeline, [Key(jobs), Key(job), rest @ ..]) if jobs == "jobs" => {
            format!("`{}` in job `{job}`", DottedPath(rest))
        }
        (DocumentKind::Server, [Key(repositories), Index(repository)])
            if repositories == "repositories" =>
        {
            format!("repository {}", repository + 1)
        }
        (DocumentKind::Server, [Key(repositories), Index(repository), rest @ ..])
            if repositories == "repositories" =>
        {
            format!("`{}` in repository {}", DottedPath(rest), repository + 1)
        }
        _ => format!("`{}`", DottedPath(parts)),
    }
}

/// The candidate closest to `wanted`, if it is close enough to be a likely typo.
pub fn nearest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted_lower = wanted.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = strsim::damerau_levenshtein(&wanted_lower, &candidate.to_lowercase());
            (distance, candidate)
        })
        .filter(|(distance, candidate)| {
            let longest = wanted.chars().count().max(candidate.chars().count());
            *distance <= (longest / 3).max(1)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// "did you mean `needs`? valid keys: name, needs, if", or just the list when nothing is close.
pub fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    list_name: &str,
) -> String {
    let listed: Vec<&str> = candidates.clone().into_iter().collect();
    let list = if listed.is_empty() {
        format!("there are no {list_name}")
    } else {
        format!("{list_name}: {}", listed.join(", "))
    };
    match nearest(wanted, candidates) {
        Some(suggestion) => format!("did you mean `{suggestion}`? {list}"),
        None => list,
    }
}

/// Words for the `untagged` enums of the schemas, which serde can only call by their Rust name.
fn shape_description(type_name: &str) -> &'static str {
    match type_name {
        "NeedsForm" => "a job id or a list of job ids",
        "DurationSpec" => "a duration such as `10m`, `90s` or `1h30m`, or a number of seconds",
        "Concurrency" => "a group name, or a mapping with `group` and `cancel-in-progress`",
        _ => "a value of another shape",
    }
}

/// Words one decoding problem; a few problems become several diagnostics once looked at closer.
pub fn problem_diagnostics(path: &str, kind: DocumentKind, problem: Problem) -> Vec<Diagnostic> {
    let Problem {
        parts,
        position,
        kind: problem_kind,
    } = problem;
    let place_name = place(kind, &parts);
    let (message, hint) = match problem_kind {
        ProblemKind::UnknownKey { key, valid_keys } => (
            format!("unknown key `{key}` in {place_name}"),
            Some(did_you_mean(&key, valid_keys.iter().copied(), "valid keys")),
        ),
        ProblemKind::MissingKey { key } => (
            format!("missing required key `{key}` in {place_name}"),
            Some(format!("add `{key}:` to {place_name}")),
        ),
        ProblemKind::RepeatedKey { key, first } => (
            format!("repeated key `{key}` in {place_name}"),
            Some(format!(
                "it is first set at line {}; keep only one",
                first.line
            )),
        ),
        ProblemKind::WrongType { expected, found } if parts.is_empty() => {
            if found.starts_with("nothing") {
                (
                    "the file is empty".to_string(),
                    Some(kind.empty_file_hint().to_string()),
                )
            } else {
                (
                    format!("wrong type for {place_name}: expected {expected}, found {found}"),
                    Some(kind.empty_file_hint().to_string()),
                )
            }
        }
        ProblemKind::WrongType { expected, found } => (
            format!("wrong type for {place_name}: expected {expected}, found {found}"),
            None,
        ),
        ProblemKind::WrongValue { expected, found } => (
            format!("invalid value for {place_name}: expected {expected}, found {found}"),
            None,
        ),
        ProblemKind::NoShapeMatched {
            type_name,
            found,
            mut node,
        } => {
            if type_name == "Concurrency" && matches!(node.value, NodeValue::Mapping(_)) {
                let (_, inner_problems) = decode::<ConcurrencyDetailed>(&mut node);
                if !inner_problems.is_empty() {
                    return inner_problems
                        .into_iter()
                        .flat_map(|mut inner| {
                            let mut full_parts = parts.clone();
                            full_parts.append(&mut inner.parts);
                            inner.parts = full_parts;
                            problem_diagnostics(path, kind, inner)
                        })
                        .collect();
                }
            }
            (
                format!(
                    "wrong type for {place_name}: expected {}, found {found}",
                    shape_description(&type_name)
                ),
                None,
            )
        }
        ProblemKind::Other(message) => (format!("{place_name}: {message}"), None),
    };
    vec![at(path, position, message, hint)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_place(kind: DocumentKind, parts: &[PathPart], expect: &str) {
        assert_eq!(place(kind, parts), expect);
    }

    #[test]
    fn places_are_named_as_authors_think_of_them() {
        use DocumentKind::*;
        check_place(Pipeline, &[], "the pipeline");
        check_place(Pipeline, &["jobs".into(), "test".into()], "job `test`");
        check_place(
            Pipeline,
            &["jobs".into(), "test".into(), "steps".into(), 1.into()],
            "step 2 of job `test`",
        );
        check_place(
            Pipeline,
            &[
                "jobs".into(),
                "t".into(),
                "steps".into(),
                0.into(),
                "env".into(),
            ],
            "`env` in step 1 of job `t`",
        );
        check_place(
            Pipeline,
            &["jobs".into(), "t".into(), "needs".into()],
            "`needs` in job `t`",
        );
        check_place(
            Pipeline,
            &["on".into(), "push".into(), "branches".into(), 0.into()],
            "`on.push.branches[0]`",
        );
        check_place(Environment, &["gates".into()], "`gates`");
        check_place(
            Server,
            &["repositories".into(), 0.into(), "url".into()],
            "`url` in repository 1",
        );
    }

    fn check_nearest(wanted: &str, candidates: &[&str], expect: Option<&str>) {
        assert_eq!(
            nearest(wanted, candidates.iter().copied()),
            expect,
            "for {wanted}"
        );
    }

    #[test]
    fn nearest_finds_typos_and_ignores_strangers() {
        let job_keys = ["name", "needs", "if", "env", "timeout", "steps"];
        check_nearest("nedds", &job_keys, Some("needs"));
        check_nearest("nmae", &job_keys, Some("name"));
        check_nearest("step", &job_keys, Some("steps"));
        check_nearest("Timeout", &job_keys, Some("timeout"));
        check_nearest("runs-on", &job_keys, None);
        check_nearest("branch", &["branches", "tags", "paths"], Some("branches"));
        check_nearest("x", &[], None);
    }

    #[test]
    fn did_you_mean_lists_the_choices() {
        assert_eq!(
            did_you_mean("biuld", ["build", "test"], "jobs in this pipeline"),
            "did you mean `build`? jobs in this pipeline: build, test"
        );
        assert_eq!(
            did_you_mean("deploy", ["build", "test"], "jobs in this pipeline"),
            "jobs in this pipeline: build, test"
        );
    }
}
