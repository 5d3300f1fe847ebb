//! The `terraform:` section of an environment file, typed: the directory, var files, workspace,
//! environment variables, backend settings, apply mode, lock mode and timeout. Parsing collects
//! every problem and names the environment file's field; this file does no IO.

use crate::config::environment::Environment;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a Terraform command may run when the environment does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What a merge may apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockMode {
    /// Report who holds the lock and stop.
    #[default]
    Refuse,
    /// Join a first-in-first-out queue and report the place in it.
    Queue,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    dir: String,
    #[serde(default)]
    var_files: Vec<String>,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    backend_config: BTreeMap<String, String>,
    #[serde(default)]
    apply: ApplyMode,
    #[serde(default)]
    apply_requirements: Vec<ApplyRequirement>,
    #[serde(default)]
    lock: LockMode,
    #[serde(default)]
    timeout: Option<String>,
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
        let Some(section) = &environment.terraform else {
            return Ok(None);
        };
        let file = format!("environments/{}.yaml", environment.name);
        let raw: RawSettings = serde_json::from_value(section.clone()).map_err(|error| {
            vec![format!(
                "{file}: `terraform:` is invalid: {error}; it takes dir, var_files, workspace, env, backend_config, apply (auto, reviewed-plan-only or on-comment), apply_requirements (approved, mergeable, undiverged), lock (refuse or queue) and timeout"
            )]
        })?;
        let mut problems = Vec::new();
        if !is_relative_inside(&raw.dir) {
            problems.push(format!(
                "{file}: `terraform.dir` is `{}`; write a path relative to the repository root without `..`",
                raw.dir
            ));
        }
        for var_file in &raw.var_files {
            if !is_relative_inside(var_file) {
                problems.push(format!(
                    "{file}: `terraform.var_files` entry `{var_file}` must be relative to `terraform.dir` without `..`"
                ));
            }
        }
        let workspace = raw.workspace.unwrap_or_else(|| "default".to_owned());
        if workspace.is_empty()
            || !workspace
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character))
        {
            problems.push(format!(
                "{file}: `terraform.workspace` is `{workspace}`; use letters, digits, `-`, `_` or `.`"
            ));
        }
        let timeout = match raw.timeout.as_deref() {
            None => DEFAULT_TIMEOUT,
            Some(text) => match crate::config::workflow::parse_duration(text) {
                Ok(duration) => duration,
                Err(message) => {
                    problems.push(format!("{file}: `terraform.timeout`: {message}"));
                    DEFAULT_TIMEOUT
                }
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Some(TerraformSettings {
            environment: environment.name.clone(),
            dir: raw.dir.trim_end_matches('/').to_owned(),
            var_files: raw.var_files,
            workspace,
            env: raw.env,
            backend_config: raw.backend_config,
            apply: raw.apply,
            apply_requirements: raw.apply_requirements,
            lock: raw.lock,
            timeout,
        }))
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

    fn environment(section: serde_json::Value) -> Environment {
        serde_json::from_value(json!({"name": "dev", "terraform": section})).unwrap()
    }

    fn check(section: serde_json::Value, expect: Result<(&str, ApplyMode, LockMode), &str>) {
        let outcome = TerraformSettings::from_environment(&environment(section));
        match (outcome, expect) {
            (Ok(Some(settings)), Ok((dir, apply, lock))) => {
                assert_eq!(
                    (settings.dir.as_str(), settings.apply, settings.lock),
                    (dir, apply, lock)
                );
            }
            (Err(problems), Err(fragment)) => {
                let text = problems.join("\n");
                assert!(text.contains(fragment), "{text}");
                assert!(text.contains("environments/dev.yaml"), "{text}");
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
        check(json!({"dir": "../x"}), Err("terraform.dir"));
        check(
            json!({"dir": "x", "apply": "always"}),
            Err("reviewed-plan-only"),
        );
        check(json!({"dir": "x", "colour": 1}), Err("colour"));
        check(
            json!({"dir": "x", "timeout": "5 parsecs"}),
            Err("terraform.timeout"),
        );
        check(
            json!({"dir": "x", "workspace": "a b"}),
            Err("terraform.workspace"),
        );
    }

    #[test]
    fn an_environment_without_a_section_has_no_settings() {
        let environment: Environment = serde_json::from_value(json!({"name": "dev"})).unwrap();
        assert_eq!(TerraformSettings::from_environment(&environment), Ok(None));
    }
}
