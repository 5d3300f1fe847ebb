//! The promotion service: one reconciler pass per repository that has releases, whenever a release
//! is recorded or a person asks for something, and on a timer (soak times and freeze windows end
//! without an event). The environments (order, gates, approvers, targets) are read at the head of
//! the repository's default branch, never from a release's own commit, so a change cannot decide
//! its own gates; the targets read a checkout of the release being deployed, kept under the data
//! directory.

use super::Mirrors;
use crate::config::{self, SourceFile, environment::Environment};
use crate::deploy::Release;
use crate::deploy::execute::HealthSettings;
use crate::deploy::gates::TeamDirectory;
use crate::deploy::reconcile::{Reconciler, TargetFactory, TreeSource};
use crate::policy::Clock;
use crate::store::DeployStore;
use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub struct PromotionService {
    pub store: Arc<dyn DeployStore>,
    pub mirrors: Arc<Mirrors>,
    pub targets: Arc<dyn TargetFactory>,
    pub clock: Arc<dyn Clock + Send + Sync>,
    pub teams: Arc<dyn TeamDirectory>,
    pub health: HealthSettings,
    /// Where release checkouts are kept.
    pub trees_dir: PathBuf,
    pub interval: Duration,
    pub wakeup: Arc<Notify>,
}

impl PromotionService {
    pub async fn run(self) {
        loop {
            self.pass_all().await;
            tokio::select! {
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One pass for every repository with releases; problems are logged, never fatal.
    pub async fn pass_all(&self) {
        let store = self.store.clone();
        let repositories = tokio::task::spawn_blocking(move || store.release_repositories())
            .await
            .map(|result| result.unwrap_or_default())
            .unwrap_or_default();
        for repository in repositories {
            match self.reconciler(&repository).await {
                Ok(Some(reconciler)) => match reconciler.pass().await {
                    Ok(report) => {
                        for (environment, release, outcome) in report.deployments {
                            tracing::info!(
                                repository,
                                environment,
                                release,
                                outcome,
                                "deployment finished"
                            );
                        }
                    }
                    Err(error) => tracing::error!(repository, %error, "promotion pass failed"),
                },
                Ok(None) => {}
                Err(error) => tracing::error!(repository, %error, "cannot set up promotion"),
            }
        }
    }

    async fn reconciler(&self, repository: &str) -> anyhow::Result<Option<Reconciler>> {
        let store = self.store.clone();
        let name = repository.to_owned();
        let releases = tokio::task::spawn_blocking(move || store.releases(&name)).await??;
        if releases.is_empty() {
            return Ok(None);
        }
        let mirror = self.mirrors.get(repository)?;
        let authority =
            tokio::task::spawn_blocking(move || super::authority::read_authority(&mirror))
                .await??;
        let Some(authority) = authority else {
            anyhow::bail!(
                "the mirror of {repository} has no default branch to read environments/ from; fetch it"
            );
        };
        let environments = authority.environments;
        Ok(Some(Reconciler {
            store: self.store.clone(),
            repository: repository.to_owned(),
            environments,
            targets: self.targets.clone(),
            trees: Arc::new(MirrorTrees {
                mirrors: self.mirrors.clone(),
                directory: self.trees_dir.clone(),
            }),
            clock: self.clock.clone(),
            teams: self.teams.clone(),
            health: self.health,
        }))
    }
}

/// The environments as the commit defines them; a file that does not load is skipped with a log
/// line (`sluice validate` names the problem).
pub fn read_environments(
    mirror: &crate::git::Mirror,
    commit: &str,
) -> anyhow::Result<Vec<Environment>> {
    let files: Vec<SourceFile> = mirror
        .read_dir(commit, "environments")?
        .into_iter()
        .map(|(path, contents)| SourceFile { path, contents })
        .collect();
    let project = config::load_project(&files);
    for diagnostic in &project.diagnostics {
        tracing::warn!(%diagnostic, "environment file problem");
    }
    Ok(project
        .environments
        .into_iter()
        .map(|loaded| loaded.value)
        .collect())
}

/// Checkouts of release commits under the data directory, written once per release.
pub struct MirrorTrees {
    pub mirrors: Arc<Mirrors>,
    pub directory: PathBuf,
}

impl TreeSource for MirrorTrees {
    fn tree<'a>(&'a self, release: &'a Release) -> BoxFuture<'a, Result<PathBuf, String>> {
        Box::pin(self.checkout(&release.repository, &release.id, &release.commit))
    }

    fn policies<'a>(
        &'a self,
        release: &'a Release,
    ) -> BoxFuture<'a, Result<Option<PathBuf>, String>> {
        Box::pin(async move {
            // The default branch's word when the release was cut, never the release's own.
            let commit = release.config_commit.as_deref().unwrap_or(&release.commit);
            let name = format!("config-{}", crate::model::short_commit(commit));
            let tree = self.checkout(&release.repository, &name, commit).await?;
            let policies = tree.join("policies");
            Ok(policies.is_dir().then_some(policies))
        })
    }
}

impl MirrorTrees {
    /// A checkout of `commit` under `name`, made once and reused.
    async fn checkout(
        &self,
        repository: &str,
        name: &str,
        commit: &str,
    ) -> Result<PathBuf, String> {
        let mirror = self
            .mirrors
            .get(repository)
            .map_err(|error| error.to_string())?;
        let destination = self
            .directory
            .join(repository.replace('/', "__"))
            .join(name);
        let commit = commit.to_owned();
        tokio::task::spawn_blocking(move || {
            if destination.join(".sluice-complete").exists() {
                return Ok(destination);
            }
            let partial = destination.with_extension("partial");
            let _ = std::fs::remove_dir_all(&partial);
            mirror
                .checkout(&commit, &partial)
                .map_err(|error| error.to_string())?;
            std::fs::write(partial.join(".sluice-complete"), commit.as_bytes())
                .map_err(|error| error.to_string())?;
            let _ = std::fs::remove_dir_all(&destination);
            std::fs::rename(&partial, &destination).map_err(|error| error.to_string())?;
            Ok(destination)
        })
        .await
        .map_err(|error| error.to_string())?
    }
}
