//! The systems a release is deployed to, one module each, all behind `deploy::Target`.
//! Each module knows its own system and the environment section that configures it, nothing of
//! promotion order, gates or other targets.

pub mod airflow;
pub mod kubernetes;
pub mod mlflow;
pub mod terraform;

use crate::config::environment::Environment;
use crate::deploy::reconcile::TargetFactory;
use crate::deploy::recording::RecordingTarget;
use crate::deploy::{Target, TargetError, TargetKind};
use crate::store::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;

/// The targets each environment configures. With `recording` set, every configured target is
/// replaced by one that records its calls in that directory instead of deploying.
pub struct EnvironmentTargets {
    pub data_dir: PathBuf,
    pub recording: Option<PathBuf>,
    /// The store plans, locks and model history live in; without it the Terraform and MLflow
    /// targets cannot record what they did, and the Terraform target is not built.
    pub store: Option<Arc<SqliteStore>>,
    /// Reach this Kubernetes API server instead of each environment's kubeconfig (the demo's fake).
    pub kubernetes_api: Option<url::Url>,
}

impl EnvironmentTargets {
    /// Reads `SLUICE_RECORDING_TARGETS` for the recording directory.
    pub fn from_env(data_dir: PathBuf, store: Arc<SqliteStore>) -> EnvironmentTargets {
        EnvironmentTargets {
            data_dir,
            recording: std::env::var_os("SLUICE_RECORDING_TARGETS").map(PathBuf::from),
            store: Some(store),
            kubernetes_api: None,
        }
    }

    /// One target of each kind the environment configures, real ones.
    pub fn real_targets(
        &self,
        repository: &str,
        environment: &Environment,
    ) -> Result<Vec<(TargetKind, Result<Arc<dyn Target>, TargetError>)>, TargetError> {
        let mut targets = Vec::new();
        let mut add =
            |kind: TargetKind, built: Result<Option<Box<dyn Target>>, TargetError>| match built {
                Ok(Some(target)) => targets.push((kind, Ok(Arc::from(target)))),
                Ok(None) => {}
                Err(error) => targets.push((kind, Err(error))),
            };
        if let Some(store) = &self.store {
            add(
                TargetKind::Terraform,
                terraform::from_environment(environment, repository, &self.data_dir, store.clone()),
            );
        }
        add(
            TargetKind::Kubernetes,
            kubernetes::from_environment(
                environment,
                kubernetes::KubernetesOptions {
                    api_server: self.kubernetes_api.clone(),
                    ..Default::default()
                },
            ),
        );
        add(TargetKind::Airflow, airflow::from_environment(environment));
        let history = self
            .store
            .clone()
            .map(|store| store as Arc<dyn crate::store::ModelHistory>);
        add(
            TargetKind::Mlflow,
            mlflow::from_environment(environment, history),
        );
        Ok(targets)
    }
}

fn configured_kinds(environment: &Environment) -> Vec<TargetKind> {
    [
        (environment.terraform.is_some(), TargetKind::Terraform),
        (environment.kubernetes.is_some(), TargetKind::Kubernetes),
        (environment.airflow.is_some(), TargetKind::Airflow),
        (environment.mlflow.is_some(), TargetKind::Mlflow),
    ]
    .into_iter()
    .filter(|(configured, _)| *configured)
    .map(|(_, kind)| kind)
    .collect()
}

/// Record-only targets for the kinds the environment configures.
pub fn recording_targets(
    directory: &std::path::Path,
    environment: &Environment,
    kinds: Option<&[TargetKind]>,
) -> Result<Vec<Arc<dyn Target>>, TargetError> {
    std::fs::create_dir_all(directory).map_err(|error| {
        TargetError::Configuration(format!("cannot create {}: {error}", directory.display()))
    })?;
    Ok(configured_kinds(environment)
        .into_iter()
        .filter(|kind| kinds.is_none_or(|kinds| kinds.contains(kind)))
        .map(|kind| {
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
