//! The `terraform:` section of an environment file, typed: the directory, var files, workspace,
//! environment variables, backend settings, apply mode, lock mode and timeout. Checking collects
//! every problem at its field; this file does no IO.

use crate::config::PathPart;
use crate::config::environment::Environment;
use crate::config::section::{Section, SectionProblem};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a Terraform command may run when the environment does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What a merge may apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplyMode {
    /// Apply the reviewed plan; when it cannot be applied (no plan, base moved, superseded),
    /// plan the merged commit again, check the policies and apply that plan.
    Auto,
    /// Apply only the reviewed plan; refuse otherwise.
    #[default]
    ReviewedPlanOnly,
    /// The pull request's reviewed plan may be applied before the merge with `/sluice apply`
    /// (when `apply_requirements` hold); a merge applies the reviewed plan if that did not happen.
    OnComment,
}

/// What must hold before `/sluice apply` (Atlantis' `apply_requirements`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplyRequirement {
    /// GitHub counts an approving review and no request for changes.
    Approved,
    /// GitHub says the pull request can be merged.
    Mergeable,
    /// The pull request's head contains the base branch's head: nothing landed since that the
    /// plan did not see.
    Undiverged,
}

impl ApplyRequirement {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyRequirement::Approved => "approved",
            ApplyRequirement::Mergeable => "mergeable",
            ApplyRequirement::Undiverged => "undiverged",
        }
    }
}

/// What a plan does when another pull request holds the environment's lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockMode {
    /// Report who holds the lock and stop.
    #[default]
    Refuse,
    /// Join a first-in-first-out queue and report the place in it.
    Queue,
}

/// `environments/<name>.yaml` → `terraform:`, as written.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TerraformSection {
    /// The root module, relative to the repository root.
    pub dir: String,
    /// Relative to `dir`, passed as `-var-file`.
    #[serde(default)]
    pub var_files: Vec<String>,
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub backend_config: BTreeMap<String, String>,
    #[serde(default)]
    pub apply: ApplyMode,
    #[serde(default)]
    pub apply_requirements: Vec<ApplyRequirement>,
    #[serde(default)]
    pub lock: LockMode,
    /// e.g. `30m` (default).
    #[serde(default)]
    pub timeout: Option<String>,
}

impl TerraformSection {
    fn workspace(&self) -> String {
        self.workspace
            .clone()
            .unwrap_or_else(|| "default".to_owned())
    }

    fn timeout(&self) -> Result<Duration, String> {
        match self.timeout.as_deref() {
            None => Ok(DEFAULT_TIMEOUT),
            Some(text) => crate::config::workflow::parse_duration(text),
        }
    }
}

impl Section for TerraformSection {
    fn problems(&self) -> Vec<SectionProblem> {
        let mut problems = Vec::new();
        if !is_relative_inside(&self.dir) {
            problems.push(
                SectionProblem::new(
                    &["dir".into()],
                    format!("`{}` leaves the repository", self.dir),
                )
                .hint("write a path relative to the repository root without `..`"),
            );
        }
        for (index, var_file) in self.var_files.iter().enumerate() {
            if !is_relative_inside(var_file) {
                let field: [PathPart; 2] = ["var_files".into(), index.into()];
                problems.push(
                    SectionProblem::new(&field, format!("`{var_file}` leaves the repository"))
                        .hint("write a path relative to `terraform.dir` without `..`"),
                );
            }
        }
        let workspace = self.workspace();
        if workspace.is_empty()
            || !workspace
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character))
        {
            problems.push(
                SectionProblem::new(
                    &["workspace".into()],
                    format!("`{workspace}` is not a workspace name"),
                )
                .hint("use letters, digits, `-`, `_` or `.`"),
            );
        }
        if let Err(message) = self.timeout() {
            problems.push(SectionProblem::new(&["timeout".into()], message));
        }
        problems
    }
}

/// An environment's Terraform settings, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerraformSettings {
    pub environment: String,
    /// Relative to the repository root, without `..`.
    pub dir: String,
    /// Relative to `dir`, passed as `-var-file`.
    pub var_files: Vec<String>,
    /// `default` when not set.
    pub workspace: String,
    /// Extra environment variables for every `terraform` command.
    pub env: BTreeMap<String, String>,
    /// Passed to `init` as `-backend-config=KEY=VALUE`.
    pub backend_config: BTreeMap<String, String>,
    pub apply: ApplyMode,
    /// Checked before `/sluice apply`; only meaningful with `apply: on-comment`.
    pub apply_requirements: Vec<ApplyRequirement>,
    pub lock: LockMode,
    pub timeout: Duration,
}

impl TerraformSettings {
    /// `None` when the environment has no `terraform:` section; every problem at once otherwise.
    pub fn from_environment(environment: &Environment) -> Result<Option<Self>, Vec<String>> {
        match &environment.targets.terraform {
            None => Ok(None),
            Some(section) => Self::from_section(&environment.name, section).map(Some),
        }
    }

    /// The settings of environment `environment`; every problem at once, naming the file's field.
    pub fn from_section(
        environment: &str,
        section: &TerraformSection,
    ) -> Result<Self, Vec<String>> {
        let problems = section.problems();
        if !problems.is_empty() {
            return Err(problems
                .iter()
                .map(|problem| problem.describe(environment, "terraform"))
                .collect());
        }
        Ok(TerraformSettings {
            environment: environment.to_owned(),
            dir: section.dir.trim_end_matches('/').to_owned(),
            var_files: section.var_files.clone(),
            workspace: section.workspace(),
            env: section.env.clone(),
            backend_config: section.backend_config.clone(),
            apply: section.apply,
            apply_requirements: section.apply_requirements.clone(),
            lock: section.lock,
            timeout: section.timeout().unwrap_or(DEFAULT_TIMEOUT),
        })
    }
}

fn is_relative_inside(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.split('/').any(|component| component == "..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(section: serde_json::Value, expect: Result<(&str, ApplyMode, LockMode), &str>) {
        let outcome = serde_json::from_value::<TerraformSection>(section)
            .map_err(|error| vec![error.to_string()])
            .and_then(|section| TerraformSettings::from_section("dev", &section));
        match (outcome, expect) {
            (Ok(settings), Ok((dir, apply, lock))) => {
                assert_eq!(
                    (settings.dir.as_str(), settings.apply, settings.lock),
                    (dir, apply, lock)
                );
            }
            (Err(problems), Err(fragment)) => {
                let text = problems.join("\n");
                assert!(text.contains(fragment), "{text}");
            }
            (other, expect) => panic!("got {other:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn sections_are_read_and_every_problem_named() {
        check(
            json!({"dir": "infra/dev/", "apply": "auto"}),
            Ok(("infra/dev", ApplyMode::Auto, LockMode::Refuse)),
        );
        check(
            json!({"dir": "infra", "lock": "queue"}),
            Ok(("infra", ApplyMode::ReviewedPlanOnly, LockMode::Queue)),
        );
        check(
            json!({"dir": "infra", "apply": "on-comment", "apply_requirements": ["approved", "undiverged"]}),
            Ok(("infra", ApplyMode::OnComment, LockMode::Refuse)),
        );
        check(
            json!({"dir": "x", "apply_requirements": ["green"]}),
            Err("undiverged"),
        );
        check(
            json!({"dir": "../x"}),
            Err("environments/dev.yaml: `terraform.dir`: `../x` leaves the repository"),
        );
        check(
            json!({"dir": "x", "apply": "always"}),
            Err("reviewed-plan-only"),
        );
        check(json!({"dir": "x", "colour": 1}), Err("colour"));
        check(
            json!({"dir": "x", "timeout": "5 parsecs"}),
            Err("`terraform.timeout`"),
        );
        check(
            json!({"dir": "x", "workspace": "a b"}),
            Err("`terraform.workspace`: `a b` is not a workspace name"),
        );
    }

    #[test]
    fn an_environment_without_a_section_has_no_settings() {
        let environment: Environment = serde_json::from_value(json!({"name": "dev"})).unwrap();
        assert_eq!(TerraformSettings::from_environment(&environment), Ok(None));
    }
}
