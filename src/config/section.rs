//! What a target's section of an environment file (`terraform:`, `kubernetes:`, ...) promises the
//! loader: a typed value that serde checks key by key (unknown keys are refused with the nearest
//! valid one), plus the checks serde cannot make, each naming the field it is about. The loader
//! places each problem at its line; a target built from a section nobody checked words the same
//! problems with the file's name instead. Knows no target: the targets implement [`Section`].

use crate::config::located::{DottedPath, PathPart};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// One problem with a section that serde cannot see, at a field inside the section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionProblem {
    /// Where inside the section: `["health", "rollouts", 0]`; empty for the section as a whole.
    pub field: Vec<PathPart>,
    /// What is wrong, naming the value: "`serving-api` is not `kind/name`".
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl SectionProblem {
    pub fn new(field: &[PathPart], message: impl Into<String>) -> SectionProblem {
        SectionProblem {
            field: field.to_vec(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> SectionProblem {
        self.hint = Some(hint.into());
        self
    }

    /// The field as an author writes it, from the top of the file: `kubernetes.health.rollouts[0]`.
    pub fn place(&self, section: &str) -> String {
        let mut parts = vec![PathPart::from(section)];
        parts.extend(self.field.iter().cloned());
        DottedPath(&parts).to_string()
    }

    /// One line for an error outside the loader, which has no positions:
    /// ``environments/dev.yaml: `kubernetes.namespace`: ...; hint``.
    pub fn describe(&self, environment: &str, section: &str) -> String {
        let mut line = format!(
            "environments/{environment}.yaml: `{}`: {}",
            self.place(section),
            self.message
        );
        if let Some(hint) = &self.hint {
            line.push_str("; ");
            line.push_str(hint);
        }
        line
    }
}

/// A target's section of an environment file.
pub trait Section:
    DeserializeOwned + Serialize + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// Every problem serde cannot see (a reference that is not `kind/name`, a duration, a URL),
    /// not only the first.
    fn problems(&self) -> Vec<SectionProblem>;
}

/// `section` when it has no problem; otherwise every problem, one line each, for an error that
/// has no positions to give (a target built from an environment nobody loaded through `config`).
pub fn checked<'a, S: Section>(
    section: &'a S,
    environment: &str,
    name: &str,
) -> Result<&'a S, String> {
    let problems = section.problems();
    if problems.is_empty() {
        return Ok(section);
    }
    Err(problems
        .iter()
        .map(|problem| problem.describe(environment, name))
        .collect::<Vec<_>>()
        .join("\n"))
}
