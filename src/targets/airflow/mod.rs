//! The Airflow target: validates a release's DAGs with Airflow's own `DagBag` in the
//! environment's interpreter, deploys them to the DAG folder atomically (versioned directories
//! and one symlink rename, as git-sync does), verifies through the REST API that the DAG
//! processor parsed them without import errors, unpauses the listed DAGs, sets the environment's
//! Variables, and rolls the symlink back when verification fails. It also gives the policy input
//! and the pull-request comment section for DAGs. It knows its `airflow:` environment section and
//! Airflow; nothing of promotion order, gates, locks or other targets.

mod api;
mod assemble;
mod config;
mod drift;
mod facts;
mod folder;
mod source;
mod target;
mod validate;
mod verify;

pub use api::{AirflowApi, ApiDag, ApiError, ApiImportError, Credentials};
pub use config::{AirflowConfig, AuthConfig};
pub use drift::{
    LiveEntry, LiveFolder, error_line, file_drifts, forget_hashes, import_error_drifts,
    paused_drifts, read_live, short_digest,
};
pub use facts::{CommentSection, ValidationSummary, comment_section, file_changes, policy_input};
pub use folder::{FolderDeploy, FolderError, MANIFEST, Manifest, VersionedFolder, version_name};
pub use source::{check_links, scan};
pub use target::{AirflowRollback, AirflowTarget};
pub use validate::{DagFacts, ImportError, ValidateError, Validation, validate_dags};
pub use verify::{Expectation, Verdict, judge, relative_file, wait_until_parsed};

use super::registry::{BuildContext, Registration, ReleaseSource, answers};
use crate::config::environment::Environment;
use crate::config::section::checked;
use crate::deploy::{Release, Target, TargetError};

/// The target for `environment`, or None when its file has no `airflow:` section.
pub fn from_environment(environment: &Environment) -> Result<Option<Box<dyn Target>>, TargetError> {
    let Some(section) = &environment.targets.airflow else {
        return Ok(None);
    };
    let config =
        checked(section, &environment.name, Airflow::NAME).map_err(TargetError::Configuration)?;
    Ok(Some(Box::new(AirflowTarget::new(
        &environment.name,
        config.clone(),
    )?)))
}

/// The Airflow target in the registry (`crate::targets::TARGETS`).
pub struct Airflow;

impl Registration for Airflow {
    const NAME: &'static str = "airflow";
    type Section = AirflowConfig;

    fn build(
        environment: &Environment,
        _section: &AirflowConfig,
        _context: &BuildContext<'_>,
    ) -> Result<Option<Box<dyn Target>>, TargetError> {
        from_environment(environment)
    }

    /// The release carries the git tree id of the DAG folder (the first environment's that has
    /// one), so a deploy can tell whether the DAGs changed.
    fn add_to_release(
        _environment: &Environment,
        section: &AirflowConfig,
        source: &ReleaseSource<'_>,
        release: &mut Release,
    ) -> anyhow::Result<()> {
        if release.dag_tree.is_none() {
            release.dag_tree = source
                .mirror
                .tree_id(source.commit, &section.dags.to_string_lossy())?;
        }
        Ok(())
    }

    fn unreachable(section: &AirflowConfig) -> Option<String> {
        match &section.api {
            Some(api) if answers(api) => None,
            Some(api) => Some(format!("no Airflow answers at {api}")),
            None => Some("no Airflow API configured".to_owned()),
        }
    }
}
