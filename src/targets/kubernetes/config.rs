//! The `kubernetes:` section of an environment file, typed: where the manifests are, which
//! cluster and namespace, pruning, health and credentials. Parsing only; knows nothing of the API
//! server or of how manifests are rendered.

use crate::config::environment::Environment;
use crate::deploy::TargetError;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `environments/<name>.yaml` → `kubernetes:`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
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
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
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
        let Some(section) = &environment.kubernetes else {
            return Ok(None);
        };
        let config: KubernetesConfig = serde_path_to_error::deserialize(section).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." || path.is_empty() {
                "kubernetes".to_owned()
            } else {
                format!("kubernetes.{path}")
            };
            TargetError::Configuration(format!(
                "environments/{}.yaml: `{field}`: {}; fix the field (known fields: namespace, manifests, kubeconfig, context, in_cluster, prune, prune_namespaces, prune_persistent_volume_claims, force, health.rollouts, health.timeout)",
                environment.name,
                error.inner()
            ))
        })?;
        let mut problems = Vec::new();
        if config.namespace.trim().is_empty() {
            problems.push(
                "`kubernetes.namespace` is empty; name the namespace objects go to".to_owned(),
            );
        }
        if let Err(problem) = config.health_timeout() {
            problems.push(problem);
        }
        for rollout in &config.health.rollouts {
            if parse_workload_reference(rollout).is_none() {
                problems.push(format!(
                    "`kubernetes.health.rollouts` entry `{rollout}` is not `kind/name`; write e.g. `deployment/serving-api`"
                ));
            }
        }
        if config.in_cluster && (config.kubeconfig.is_some() || config.context.is_some()) {
            problems.push(
                "`kubernetes.in_cluster` is set together with `kubeconfig` or `context`; keep one way to reach the cluster"
                    .to_owned(),
            );
        }
        if problems.is_empty() {
            Ok(Some(config))
        } else {
            Err(TargetError::Configuration(format!(
                "environments/{}.yaml: {}",
                environment.name,
                problems.join("; ")
            )))
        }
    }

    /// `health.timeout` as a duration (default ten minutes).
    pub fn health_timeout(&self) -> Result<Duration, String> {
        match &self.health.timeout {
            None => Ok(Duration::from_secs(600)),
            Some(text) => parse_duration(text).ok_or_else(|| {
                format!("`kubernetes.health.timeout` is `{text}`, not a duration; write e.g. `90s`, `5m` or `1h`")
            }),
        }
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

/// `deployment/serving-api` → (`deployment`, `serving-api`), kind lowercased.
pub fn parse_workload_reference(reference: &str) -> Option<(String, String)> {
    let (kind, name) = reference.split_once('/')?;
    if kind.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    Some((kind.to_ascii_lowercase(), name.to_owned()))
}

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

    fn environment(section: serde_json::Value) -> Environment {
        serde_json::from_value(serde_json::json!({"name": "staging", "kubernetes": section}))
            .unwrap()
    }

    #[test]
    fn unknown_fields_and_bad_values_name_the_field() {
        let error = KubernetesConfig::from_environment(&environment(serde_json::json!({
            "namespace": "ml", "manifests": "k8s", "prun": true
        })))
        .unwrap_err()
        .to_string();
        assert!(error.contains("environments/staging.yaml"), "{error}");
        assert!(error.contains("prun"), "{error}");
        let error = KubernetesConfig::from_environment(&environment(serde_json::json!({
            "namespace": "ml", "manifests": "k8s", "health": {"timeout": "soon", "rollouts": ["serving-api"]}
        })))
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("`soon`") && error.contains("`serving-api`"),
            "{error}"
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
