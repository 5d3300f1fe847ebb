//! `deploy::Target` for Airflow: the order of one deploy (validate → set Variables → build and
//! switch the version → wait for the DAG processor → unpause) and its undo. The steps themselves
//! live in the sibling modules; this file decides what a failure means for the reconciler.

use super::api::{AirflowApi, Credentials};
use super::config::AirflowConfig;
use super::facts::{file_changes, policy_input};
use super::folder::{Manifest, VersionedFolder};
use super::source::scan;
use super::validate::{Validation, validate_dags};
use super::verify::{Expectation, wait_until_parsed};
use crate::config::environment::Environment;
use crate::deploy::{
    Applied, DeployContext, Health, Target, TargetDiff, TargetError, TargetFuture, TargetKind,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `rollback` needs: the version that was live before and the Variables' earlier values
/// (None: the Variable did not exist).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AirflowRollback {
    pub folder: PathBuf,
    pub version: String,
    pub previous_version: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, Option<String>>,
}

#[derive(Debug)]
pub struct AirflowTarget {
    environment_name: String,
    config: AirflowConfig,
    api: Option<AirflowApi>,
}

const VALIDATION_TIMEOUT: Duration = Duration::from_secs(300);

impl AirflowTarget {
    /// Reads the API password now (from the environment variable or file the config names), so a
    /// missing one is a configuration error before any deploy starts.
    pub fn new(
        environment_name: &str,
        config: AirflowConfig,
    ) -> Result<AirflowTarget, TargetError> {
        let credentials = match &config.auth {
            None => None,
            Some(auth) => Some(Credentials {
                username: auth.username.clone(),
                password: read_password(environment_name, auth)?,
            }),
        };
        let api = config
            .api
            .as_deref()
            .map(|base| AirflowApi::new(base, config.api_version, credentials));
        Ok(AirflowTarget {
            environment_name: environment_name.to_owned(),
            config,
            api,
        })
    }

    pub fn config(&self) -> &AirflowConfig {
        &self.config
    }

    pub(super) fn api(&self) -> Option<&AirflowApi> {
        self.api.as_ref()
    }

    pub(super) fn environment_name(&self) -> &str {
        &self.environment_name
    }

    pub fn folder(&self) -> VersionedFolder {
        VersionedFolder {
            folder: self.config.folder.clone(),
            versions: self.config.versions_directory(),
            keep: self.config.keep,
        }
    }

    /// The release's DAG folder, refused when it or a symlink in it leads out of the release's
    /// tree, before anything (validation included) reads a file through it.
    pub(super) async fn source(&self, context: &DeployContext) -> Result<PathBuf, TargetError> {
        let source = context.tree.join(&self.config.dags);
        if !source.is_dir() {
            return Err(TargetError::Configuration(format!(
                "environment `{}`: `airflow.dags` is `{}`, which is not a folder in release {}; fix environments/{}.yaml or add the folder",
                self.environment_name,
                self.config.dags.display(),
                context.release.id,
                self.environment_name
            )));
        }
        let inside_tree = std::fs::canonicalize(&source)
            .ok()
            .zip(std::fs::canonicalize(&context.tree).ok())
            .is_some_and(|(real_source, real_tree)| real_source.starts_with(real_tree));
        if !inside_tree {
            return Err(TargetError::Configuration(format!(
                "environment `{}`: `airflow.dags` is `{}`, which leads out of release {} (a symlink or an absolute path); point it at a folder of the repository",
                self.environment_name,
                self.config.dags.display(),
                context.release.id
            )));
        }
        let checked = source.clone();
        Self::blocking(move || super::source::check_links(&checked)).await?;
        Ok(source)
    }

    /// Validation of the release's DAG folder, or None when `airflow.validate` is false.
    pub async fn validate(&self, source: &Path) -> Result<Option<Validation>, TargetError> {
        if !self.config.validate {
            return Ok(None);
        }
        validate_dags(&self.config.python(), source, VALIDATION_TIMEOUT)
            .await
            .map(Some)
            .map_err(|error| {
                TargetError::Configuration(format!(
                    "environment `{}`: {error}",
                    self.environment_name
                ))
            })
    }

    pub(super) async fn blocking<T: Send + 'static>(
        work: impl FnOnce() -> Result<T, super::folder::FolderError> + Send + 'static,
    ) -> Result<T, TargetError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| TargetError::Unavailable(format!("the folder task failed: {error}")))?
            .map_err(|error| match error {
                super::folder::FolderError::Layout(message) => TargetError::Configuration(message),
                // The release's own files are at fault: deploying it again cannot help.
                link @ super::folder::FolderError::Link { .. } => {
                    TargetError::Rejected(link.to_string())
                }
                other => TargetError::Unavailable(other.to_string()),
            })
    }

    async fn set_variables(&self) -> Result<BTreeMap<String, Option<String>>, TargetError> {
        let mut earlier = BTreeMap::new();
        let Some(api) = &self.api else {
            return Ok(earlier);
        };
        for (key, value) in &self.config.variables {
            let current = api.variable(key).await.map_err(unavailable)?;
            if current.as_deref() != Some(value.as_str()) {
                api.set_variable(key, value).await.map_err(unavailable)?;
                earlier.insert(key.clone(), current);
            }
        }
        Ok(earlier)
    }

    async fn restore_variables(
        &self,
        earlier: &BTreeMap<String, Option<String>>,
    ) -> Result<(), TargetError> {
        let Some(api) = &self.api else { return Ok(()) };
        for (key, value) in earlier {
            match value {
                Some(value) => api.set_variable(key, value).await.map_err(unavailable)?,
                None => api.delete_variable(key).await.map_err(unavailable)?,
            }
        }
        Ok(())
    }

    /// Switches the folder back to `previous` (or removes the symlink when there was none).
    async fn switch_back(&self, previous: Option<String>) -> Result<(), TargetError> {
        let folder = self.folder();
        Self::blocking(move || match previous {
            Some(version) => folder.switch_to(&version),
            None => std::fs::remove_file(&folder.folder)
                .or_else(ignore_missing)
                .map_err(|source| super::folder::FolderError::Io {
                    action: "remove the symlink",
                    path: folder.folder.clone(),
                    source,
                }),
        })
        .await
    }

    async fn apply_release(&self, context: &DeployContext) -> Result<Applied, TargetError> {
        let source = self.source(context).await?;
        let validation = self.validate(&source).await?;
        if let Some(validation) = &validation
            && !validation.passed()
        {
            return Err(TargetError::Rejected(format!(
                "environment `{}`, release {}: {}",
                self.environment_name,
                context.release.id,
                validation.failure_message()
            )));
        }
        let folder = self.folder();
        let previous_manifest = {
            let folder = folder.clone();
            Self::blocking(move || {
                Ok(folder
                    .live_version()?
                    .and_then(|version| folder.read_manifest(&version))
                    .unwrap_or_default())
            })
            .await?
        };
        let earlier_variables = self.set_variables().await?;
        let switched_at = chrono::Utc::now();
        let outcome = {
            let folder = folder.clone();
            let source = source.clone();
            Self::blocking(move || folder.deploy(&source)).await?
        };
        let next_manifest = folder.read_manifest(&outcome.version).unwrap_or_default();
        let rollback = AirflowRollback {
            folder: folder.folder.clone(),
            version: outcome.version.clone(),
            previous_version: outcome
                .previous
                .clone()
                .filter(|previous| *previous != outcome.version),
            variables: earlier_variables,
        };
        if let Some(api) = &self.api {
            let expectation = expectation(
                &source,
                &previous_manifest,
                &next_manifest,
                validation.as_ref(),
                switched_at,
            );
            let verified = wait_until_parsed(
                api,
                &expectation,
                &folder.folder.to_string_lossy(),
                &folder.versions.to_string_lossy(),
                self.config.parse_timeout(),
            )
            .await;
            if let Err(message) = verified {
                let mut report = format!(
                    "environment `{}`, release {}: {message}",
                    self.environment_name, context.release.id
                );
                if outcome.switched {
                    match self.switch_back(rollback.previous_version.clone()).await {
                        Ok(()) => report.push_str(&format!(
                            "\nrolled the DAG folder back to {}",
                            rollback
                                .previous_version
                                .as_deref()
                                .unwrap_or("no version (empty)")
                        )),
                        Err(error) => report.push_str(&format!(
                            "\nrolling the DAG folder back failed too: {error}"
                        )),
                    }
                }
                if let Err(error) = self.restore_variables(&rollback.variables).await {
                    report.push_str(&format!("\nrestoring the Variables failed: {error}"));
                }
                return Err(TargetError::Rejected(report));
            }
            for dag_id in &self.config.unpause {
                api.set_paused(dag_id, false).await.map_err(unavailable)?;
            }
        }
        let summary = if outcome.switched {
            format!(
                "DAG version {} live ({} file(s) copied, {} bytes; {} linked){}",
                outcome.version,
                outcome.files_copied,
                outcome.bytes_copied,
                outcome.files_linked,
                outcome
                    .previous
                    .as_deref()
                    .map(|previous| format!(", was {previous}"))
                    .unwrap_or_default()
            )
        } else {
            format!(
                "DAG version {} already live; nothing copied",
                outcome.version
            )
        };
        Ok(Applied {
            summary,
            rollback: serde_json::to_value(&rollback).expect("the rollback record serialises"),
            outputs: serde_json::json!({
                "version": outcome.version,
                "files_copied": outcome.files_copied,
                "bytes_copied": outcome.bytes_copied,
                "files_linked": outcome.files_linked,
                "pruned": outcome.pruned,
                "dags": validation.as_ref().map(|validation| validation.dags.iter().map(|dag| dag.dag_id.clone()).collect::<Vec<_>>()),
            }),
        })
    }

    async fn diff_release(&self, context: &DeployContext) -> Result<TargetDiff, TargetError> {
        let source = self.source(context).await?;
        let validation = self.validate(&source).await?;
        let folder = self.folder();
        let (previous_manifest, next_manifest, sources) = {
            let source = source.clone();
            Self::blocking(move || {
                let previous = folder
                    .live_version()
                    .ok()
                    .flatten()
                    .and_then(|version| folder.read_manifest(&version))
                    .unwrap_or_default();
                let next = scan(&source)?;
                let sources: BTreeMap<String, String> = next
                    .keys()
                    .filter(|file| file.ends_with(".py"))
                    .map(|file| {
                        (
                            file.clone(),
                            std::fs::read_to_string(source.join(file)).unwrap_or_default(),
                        )
                    })
                    .collect();
                Ok((previous, next, sources))
            })
            .await?
        };
        let facts = policy_input(
            &self.environment_name,
            &self.config.dags.to_string_lossy(),
            validation.as_ref(),
            &next_manifest,
            &sources,
            &self.config.variables,
        );
        let mut changes = file_changes(&previous_manifest, &next_manifest);
        for change in &mut changes {
            change.address = format!("{}/{}", self.config.folder.display(), change.address);
        }
        Ok(TargetDiff { changes, facts })
    }

    async fn health_of(&self, context: &DeployContext) -> Result<Health, TargetError> {
        let source = self.source(context).await?;
        let folder = self.folder();
        let (live, wanted, manifest) = Self::blocking(move || {
            let manifest = scan(&source)?;
            Ok((
                folder.live_version()?,
                super::folder::version_name(&manifest),
                manifest,
            ))
        })
        .await?;
        if live.as_deref() != Some(wanted.as_str()) {
            return Ok(Health::Degraded(format!(
                "the DAG folder {} shows version {}, not the release's {wanted}; deploy again",
                self.config.folder.display(),
                live.as_deref().unwrap_or("none")
            )));
        }
        let Some(api) = &self.api else {
            return Ok(Health::Healthy);
        };
        let import_errors = match api.import_errors().await {
            Ok(errors) => errors,
            Err(error) => return Ok(Health::Progressing(error.to_string())),
        };
        let folder = self.folder();
        let ours: Vec<String> = import_errors
            .iter()
            .map(|error| {
                super::verify::relative_file(
                    &error.filename,
                    &folder.folder.to_string_lossy(),
                    &folder.versions.to_string_lossy(),
                )
            })
            .filter(|file| manifest.contains_key(file))
            .collect();
        if !ours.is_empty() {
            return Ok(Health::Degraded(format!(
                "airflow reports import errors for {}",
                ours.join(", ")
            )));
        }
        let dags = api.dags().await.map_err(unavailable)?;
        let missing: Vec<&String> = self
            .config
            .unpause
            .iter()
            .filter(|dag_id| !dags.iter().any(|dag| &dag.dag_id == *dag_id))
            .collect();
        if !missing.is_empty() {
            return Ok(Health::Progressing(format!(
                "airflow does not list {missing:?} yet"
            )));
        }
        Ok(Health::Healthy)
    }
}

pub(super) fn expectation(
    source: &Path,
    previous: &Manifest,
    next: &Manifest,
    validation: Option<&Validation>,
    switched_at: chrono::DateTime<chrono::Utc>,
) -> Expectation {
    let changed_files = file_changes(previous, next)
        .into_iter()
        .filter(|change| change.action != crate::deploy::ChangeAction::Delete)
        .map(|change| change.address)
        .collect();
    let dags_by_file = match validation {
        Some(validation) => {
            let mut by_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for dag in &validation.dags {
                by_file
                    .entry(dag.file.clone())
                    .or_default()
                    .push(dag.dag_id.clone());
            }
            by_file
        }
        // Airflow's own heuristic (safe mode): a DAG file mentions both words.
        None => next
            .keys()
            .filter(|file| file.ends_with(".py"))
            .filter(|file| {
                std::fs::read_to_string(source.join(file)).is_ok_and(|text| {
                    let lowered = text.to_lowercase();
                    lowered.contains("airflow") && lowered.contains("dag")
                })
            })
            .map(|file| (file.clone(), Vec::new()))
            .collect(),
    };
    Expectation {
        files: next.keys().cloned().collect(),
        changed_files,
        dags_by_file,
        switched_at,
    }
}

fn read_password(
    environment_name: &str,
    auth: &super::config::AuthConfig,
) -> Result<String, TargetError> {
    if let Some(variable) = &auth.password_env {
        return std::env::var(variable).map_err(|_| {
            TargetError::Configuration(format!(
                "environment `{environment_name}`: `airflow.auth.password_env` names `{variable}`, which is not set; export it before starting sluice"
            ))
        });
    }
    let path = auth
        .password_file
        .as_ref()
        .expect("config parsing requires password_env or password_file");
    let text = std::fs::read_to_string(path).map_err(|error| {
        TargetError::Configuration(format!("environment `{environment_name}`: cannot read `airflow.auth.password_file` {}: {error}", path.display()))
    })?;
    // Airflow's simple auth manager writes {"user": "password"}; other files hold the password.
    if let Ok(serde_json::Value::Object(passwords)) =
        serde_json::from_str::<serde_json::Value>(&text)
    {
        return passwords.get(&auth.username).and_then(|value| value.as_str()).map(str::to_owned).ok_or_else(|| {
            TargetError::Configuration(format!(
                "environment `{environment_name}`: `airflow.auth.password_file` {} has no password for `{}`",
                path.display(),
                auth.username
            ))
        });
    }
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

pub(super) fn unavailable(error: super::api::ApiError) -> TargetError {
    TargetError::Unavailable(error.to_string())
}

fn ignore_missing(error: std::io::Error) -> std::io::Result<()> {
    if error.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(error)
    }
}

impl Target for AirflowTarget {
    fn kind(&self) -> TargetKind {
        crate::targets::registry::kind::<super::Airflow>()
    }

    fn diff<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, TargetDiff> {
        Box::pin(self.diff_release(context))
    }

    fn apply<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Applied> {
        Box::pin(self.apply_release(context))
    }

    fn health<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Health> {
        Box::pin(self.health_of(context))
    }

    fn current<'a>(&'a self, _environment: &'a Environment) -> TargetFuture<'a, serde_json::Value> {
        Box::pin(async move {
            let folder = self.folder();
            Self::blocking(move || {
                let live = folder.live_version()?;
                let files = live
                    .as_deref()
                    .and_then(|version| folder.read_manifest(version))
                    .map(|manifest| manifest.len());
                Ok(serde_json::json!({
                    "folder": folder.folder,
                    "version": live,
                    "files": files,
                    "versions": folder.versions(),
                }))
            })
            .await
        })
    }

    fn rollback<'a>(
        &'a self,
        _context: &'a DeployContext,
        rollback: &'a serde_json::Value,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            let record: AirflowRollback = serde_json::from_value(rollback.clone())
                .map_err(|error| TargetError::Configuration(format!("the airflow rollback record is unreadable: {error}; switch the folder by hand")))?;
            if record.folder != self.config.folder {
                return Err(TargetError::Configuration(format!(
                    "the airflow rollback record names folder {}, but environment `{}` deploys to {}; switch the folder by hand",
                    record.folder.display(),
                    self.environment_name,
                    self.config.folder.display()
                )));
            }
            let live = {
                let folder = self.folder();
                Self::blocking(move || folder.live_version()).await?
            };
            // Idempotent: only undo what is still live.
            if live.as_deref() == Some(record.version.as_str()) {
                self.switch_back(record.previous_version.clone()).await?;
            }
            self.restore_variables(&record.variables).await?;
            Ok(Applied {
                summary: format!(
                    "DAG folder back on version {}",
                    record.previous_version.as_deref().unwrap_or("none (empty)")
                ),
                rollback: serde_json::Value::Null,
                outputs: serde_json::json!({"version": record.previous_version}),
            })
        })
    }

    fn drift<'a>(
        &'a self,
        context: &'a DeployContext,
    ) -> TargetFuture<'a, crate::deploy::DriftReport> {
        Box::pin(self.drift_of(context))
    }

    fn heal<'a>(
        &'a self,
        context: &'a DeployContext,
        _found: &'a crate::deploy::DriftReport,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(self.heal_drift(context))
    }
}
