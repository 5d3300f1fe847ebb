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
use std::path::PathBuf;
use std::sync::Arc;

/// The targets each environment configures. With `recording` set, every configured target is
/// replaced by one that records its calls in that directory instead of deploying.
pub struct EnvironmentTargets {
    pub data_dir: PathBuf,
    pub recording: Option<PathBuf>,
}

impl EnvironmentTargets {
    /// Reads `SLUICE_RECORDING_TARGETS` for the recording directory.
    pub fn from_env(data_dir: PathBuf) -> EnvironmentTargets {
        EnvironmentTargets {
            data_dir,
            recording: std::env::var_os("SLUICE_RECORDING_TARGETS").map(PathBuf::from),
        }
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

impl TargetFactory for EnvironmentTargets {
    fn targets(&self, environment: &Environment) -> Result<Vec<Arc<dyn Target>>, TargetError> {
        if let Some(directory) = &self.recording {
            std::fs::create_dir_all(directory).map_err(|error| {
                TargetError::Configuration(format!(
                    "cannot create {}: {error}",
                    directory.display()
                ))
            })?;
            return Ok(configured_kinds(environment)
                .into_iter()
                .map(|kind| {
                    Arc::new(RecordingTarget {
                        kind,
                        directory: directory.clone(),
                    }) as Arc<dyn Target>
                })
                .collect());
        }
        let _ = &self.data_dir;
        Ok(Vec::new())
    }
}
