//! The `kubernetes:` section of an environment file, typed: where the manifests are, which
//! cluster and namespace, pruning, health and credentials, with the checks serde cannot make.
//! Parsing only; knows nothing of the API server or of how manifests are rendered.

use crate::config::environment::Environment;
use crate::config::section::{Section, SectionProblem};
use crate::deploy::TargetError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `environments/<name>.yaml` → `kubernetes:`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The namespace of objects that name none.
    pub namespace: String,
    /// A directory of manifests (relative to the release tree), or a kustomize overlay when it
    /// holds a `kustomization.yaml`.
    pub manifests: PathBuf,
    /// The kubeconfig file; default `$KUBECONFIG`, else `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; default the file's current context.
    #[serde(default)]
    pub context: Option<String>,
    /// Use the pod's service account instead of a kubeconfig.
    #[serde(default)]
    pub in_cluster: bool,
    /// Delete objects sluice applied here before that are no longer rendered.
    #[serde(default)]
    pub prune: bool,
    /// Also prune Namespaces (off by default: deleting one deletes everything in it).
    #[serde(default)]
    pub prune_namespaces: bool,
    /// Also prune PersistentVolumeClaims (off by default: deleting one can delete its data).
    #[serde(default)]
    pub prune_persistent_volume_claims: bool,
    /// Take over fields another field manager owns (server-side apply `force`).
    #[serde(default = "default_force")]
    pub force: bool,
    #[serde(default)]
    pub health: HealthConfig,
}

fn default_force() -> bool {
    true
}

/// `kubernetes.health`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Workloads (`deployment/serving-api`) that must be rendered and healthy; every rendered
    /// Deployment, StatefulSet, DaemonSet and Job is checked in any case.
    #[serde(default)]
    pub rollouts: Vec<String>,
    /// How long a rollout may take before it counts as failed, e.g. `5m`; default `10m`.
    #[serde(default)]
    pub timeout: Option<String>,
}

impl KubernetesConfig {
    /// The environment's section, or `None` when it has none. Errors name the file's field.
    pub fn from_environment(
        environment: &Environment,
    ) -> Result<Option<KubernetesConfig>, TargetError> {
        let Some(config) = &environment.targets.kubernetes else {
            return Ok(None);
        };
        let problems = config.problems();
        if problems.is_empty() {
            Ok(Some(config.clone()))
        } else {
            Err(TargetError::Configuration(
                problems
                    .iter()
                    .map(|problem| problem.describe(&environment.name, "kubernetes"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ))
        }
    }

    /// `health.timeout` as a duration (default ten minutes).
    pub fn health_timeout(&self) -> Result<Duration, String> {
        match &self.health.timeout {
            None => Ok(Duration::from_secs(600)),
            Some(text) => parse_duration(text).ok_or_else(|| format!("`{text}` is not a duration")),
        }
    }
}

impl Section for KubernetesConfig {
    fn problems(&self) -> Vec<SectionProblem> {
        let mut problems = Vec::new();
        if self.namespace.trim().is_empty() {
            problems.push(
                SectionProblem::new(&["namespace".into()], "the namespace is empty")
                    .hint("name the namespace objects that name none go to"),
            );
        }
        if let Err(message) = self.health_timeout() {
            problems.push(
                SectionProblem::new(&["health".into(), "timeout".into()], message)
                    .hint("write e.g. `90s`, `5m` or `1h`"),
            );
        }
        for (index, rollout) in self.health.rollouts.iter().enumerate() {
            if parse_workload_reference(rollout).is_none() {
                problems.push(
                    SectionProblem::new(
                        &["health".into(), "rollouts".into(), index.into()],
                        format!("`{rollout}` is not `kind/name`"),
                    )
                    .hint("write e.g. `deployment/serving-api`"),
                );
            }
        }
        if self.in_cluster && (self.kubeconfig.is_some() || self.context.is_some()) {
            problems.push(
                SectionProblem::new(
                    &["in_cluster".into()],
                    "`in_cluster` is set together with `kubeconfig` or `context`",
                )
                .hint("keep one way to reach the cluster"),
            );
        }
        problems
    }
}

/// `90s`, `5m`, `1h`, `1h30m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total_seconds: u64 = 0;
    let mut digits = String::new();
    let mut saw_unit = false;
    for character in text.trim().chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let number: u64 = digits.parse().ok()?;
        digits.clear();
        let unit_seconds = match character {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        total_seconds = total_seconds.checked_add(number.checked_mul(unit_seconds)?)?;
        saw_unit = true;
    }
    if !digits.is_empty() || !saw_unit {
        return None;
    }
    Some(Duration::from_secs(total_seconds))
}

pub use crate::targets::workload::parse_workload_reference;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: Option<u64>) {
        assert_eq!(
            parse_duration(text).map(|duration| duration.as_secs()),
            expect,
            "{text}"
        );
    }

    #[test]
    fn durations() {
        check("90s", Some(90));
        check("5m", Some(300));
        check("1h30m", Some(5400));
        check("5", None);
        check("5d", None);
        check("", None);
    }

    fn problems(section: serde_json::Value) -> Vec<String> {
        let config: KubernetesConfig = serde_json::from_value(section).unwrap();
        config
            .problems()
            .iter()
            .map(|problem| problem.describe("staging", "kubernetes"))
            .collect()
    }

    #[test]
    fn bad_values_name_the_field() {
        assert_eq!(
            problems(serde_json::json!({
                "namespace": " ", "manifests": "k8s", "health": {"timeout": "soon", "rollouts": ["deployment/a", "serving-api"]}
            })),
            [
                "environments/staging.yaml: `kubernetes.namespace`: the namespace is empty; name the namespace objects that name none go to",
                "environments/staging.yaml: `kubernetes.health.timeout`: `soon` is not a duration; write e.g. `90s`, `5m` or `1h`",
                "environments/staging.yaml: `kubernetes.health.rollouts[1]`: `serving-api` is not `kind/name`; write e.g. `deployment/serving-api`",
            ]
        );
    }

    #[test]
    fn the_example_sections_parse() {
        for name in ["dev", "staging", "production"] {
            let path = format!("{}/environments/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(path).unwrap();
            let environment: Environment = serde_saphyr::from_str(&text).unwrap();
            let config = KubernetesConfig::from_environment(&environment)
                .unwrap()
                .unwrap();
            assert!(config.namespace.starts_with("ml-"));
        }
    }
}
