//! The systems a release is deployed to, one folder each, all behind `deploy::Target`, and the one
//! list that registers them. Each folder knows its own system and the environment section that
//! configures it, nothing of promotion order, gates or other targets; the list decides which
//! targets exist and the order an environment deploys them in. A new target is a folder and a
//! line in the list.

pub mod airflow;
pub mod kubernetes;
pub mod mlflow;
pub mod registry;
pub mod terraform;
pub mod workload;

use crate::config::environment::Environment;
use crate::deploy::reconcile::TargetFactory;
use crate::deploy::recording::RecordingTarget;
use crate::deploy::{Release, Target, TargetError, TargetKind};
use crate::store::Database;
use registry::{BuildContext, ReleaseSource, registered};
use std::path::PathBuf;
use std::sync::Arc;

// Every target, once, in deploy order: infrastructure first; MLflow moves model aliases before
// Kubernetes restarts the workloads that serve them; Airflow last, so the DAGs it switches to
// find what they use already deployed. Each line: the environment file's key and the target's
// `Registration`.
registry::registry! {
    terraform: terraform::Terraform,
    mlflow: mlflow::Mlflow,
    kubernetes: kubernetes::Kubernetes,
    airflow: airflow::Airflow,
}

/// What each configured target adds to a release cut for `environment`.
pub fn add_to_release(
    environment: &Environment,
    source: &ReleaseSource<'_>,
    release: &mut Release,
) -> anyhow::Result<()> {
    for (_, target) in registered() {
        target.add_to_release(environment, source, release)?;
    }
    Ok(())
}

/// The targets each environment configures. With `recording` set, every configured target is
/// replaced by one that records its calls in that directory instead of deploying.
pub struct EnvironmentTargets {
    pub data_dir: PathBuf,
    pub recording: Option<PathBuf>,
    /// The store plans, locks and model history live in; without it the Terraform and MLflow
    /// targets cannot record what they did, and the Terraform target is not built.
    pub store: Option<Arc<dyn Database>>,
    /// Reach this Kubernetes API server instead of each environment's kubeconfig (the demo's
    /// fake, `sluice serve --kubernetes-api-server`).
    pub kubernetes_api: Option<url::Url>,
}

impl EnvironmentTargets {
    /// Reads `SLUICE_RECORDING_TARGETS` for the recording directory.
    pub fn from_env(data_dir: PathBuf, store: Arc<dyn Database>) -> EnvironmentTargets {
        EnvironmentTargets {
            data_dir,
            recording: std::env::var_os("SLUICE_RECORDING_TARGETS").map(PathBuf::from),
            store: Some(store),
            kubernetes_api: None,
        }
    }

    /// One real target of each kind the environment configures, in deploy order; a target that
    /// cannot be built comes with the reason.
    pub fn real_targets(
        &self,
        repository: &str,
        environment: &Environment,
    ) -> Result<Vec<(TargetKind, Result<Arc<dyn Target>, TargetError>)>, TargetError> {
        let context = BuildContext {
            repository,
            data_dir: &self.data_dir,
            store: self.store.as_ref(),
            kubernetes_api: self.kubernetes_api.as_ref(),
        };
        Ok(registered()
            .filter_map(|(kind, target)| Some((kind, target.build(environment, &context)?)))
            .collect())
    }
}

/// Why the system of each target the environment configures cannot be used from this machine,
/// for the targets whose system cannot.
pub fn unreachable(environment: &Environment) -> Vec<(TargetKind, String)> {
    registered()
        .filter_map(|(kind, target)| Some((kind, target.unreachable(environment)?)))
        .collect()
}

/// Record-only targets for the kinds the environment configures (of `kinds`, when given).
pub fn recording_targets(
    directory: &std::path::Path,
    environment: &Environment,
    kinds: Option<&[TargetKind]>,
) -> Result<Vec<Arc<dyn Target>>, TargetError> {
    std::fs::create_dir_all(directory).map_err(|error| {
        TargetError::Configuration(format!("cannot create {}: {error}", directory.display()))
    })?;
    Ok(registered()
        .filter(|(kind, target)| {
            target.configured(environment) && kinds.is_none_or(|kinds| kinds.contains(kind))
        })
        .map(|(kind, _)| {
            Arc::new(RecordingTarget {
                kind,
                directory: directory.to_path_buf(),
            }) as Arc<dyn Target>
        })
        .collect())
}

impl TargetFactory for EnvironmentTargets {
    fn targets(
        &self,
        repository: &str,
        environment: &Environment,
    ) -> Result<Vec<Arc<dyn Target>>, TargetError> {
        if let Some(directory) = &self.recording {
            return recording_targets(directory, environment, None);
        }
        self.real_targets(repository, environment)?
            .into_iter()
            .map(|(_, target)| target)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_lists_every_target_once_in_deploy_order() {
        let names: Vec<&str> = registered().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(names, ["terraform", "mlflow", "kubernetes", "airflow"]);
        assert_eq!(TargetSections::NAMES, names);
        let mut kinds: Vec<TargetKind> = registered().map(|(kind, _)| kind).collect();
        kinds.reverse();
        kinds.sort();
        let sorted: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(sorted, names, "kinds order by their place in the list");
        let skipping_rollbacks: Vec<&str> = registered()
            .filter(|(kind, _)| !kind.joins_rollbacks())
            .map(|(kind, _)| kind.as_str())
            .collect();
        assert_eq!(skipping_rollbacks, ["terraform"]);
    }

    #[test]
    fn each_target_reports_the_kind_it_is_registered_as() {
        assert_eq!(
            registry::kind::<mlflow::Mlflow>(),
            registry::named("mlflow").unwrap()
        );
        assert_eq!(registry::named("helm"), None);
    }
}
