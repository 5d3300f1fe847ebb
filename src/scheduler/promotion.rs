//! The promotion service: one reconciler pass per repository that has releases, whenever a release
//! is recorded or a person asks for something, and on a timer (soak times and freeze windows end
//! without an event). The environments (order, gates, approvers, targets) are read at the head of
//! the repository's default branch, never from a release's own commit, so a change cannot decide
//! its own gates; the targets read a checkout of the release being deployed, kept under the data
//! directory. After each pass it checks the environments whose `drift.interval` elapsed and those
//! just deployed for drift, and it answers drift checks people ask for (`DriftAsk`).

use super::Mirrors;
use crate::config::{self, SourceFile, environment::Environment};
use crate::deploy::Release;
use crate::deploy::execute::HealthSettings;
use crate::deploy::gates::TeamDirectory;
use crate::deploy::reconcile::drift::EnvironmentDrift;
use crate::deploy::reconcile::{Reconciler, TargetFactory, TreeSource};
use crate::policy::Clock;
use crate::store::DeployStore;
use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// A drift check someone asked for (`POST /api/drift/{env}`, the board): of one environment or
/// all, of one repository or the only one with releases; answered with what was found and healed.
pub struct DriftAsk {
    pub repository: Option<String>,
    pub environment: Option<String>,
    /// A person heals one domain now instead (`HealAsk`); `environment` is then required.
    pub heal: Option<HealAsk>,
    /// Who asked, recorded with what the check heals.
    pub actor: String,
    pub reply: oneshot::Sender<Result<Vec<EnvironmentDrift>, DriftAskError>>,
}

/// One domain healed by a person: Terraform only by naming the plan kept for review.
#[derive(Clone, Debug)]
pub struct HealAsk {
    pub domain: String,
    pub plan: Option<String>,
}

/// Why an asked-for check did not run.
#[derive(Debug, thiserror::Error)]
pub enum DriftAskError {
    /// No such repository or environment, or nothing deployed to check.
    #[error("{0}")]
    NotFound(String),
    /// Cannot be done as asked (a plan not named, or not the one kept).
    #[error("{0}")]
    Refused(String),
    /// No promotion service takes asks here, or it stopped.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// Where drift checks are asked for; cloned into the server's state.
pub type DriftAsks = mpsc::Sender<DriftAsk>;

/// Asks the promotion service behind `asks` (`None`: this server promotes nothing) and waits
/// for its answer.
pub async fn ask(
    asks: Option<&DriftAsks>,
    repository: Option<String>,
    environment: String,
    heal: Option<HealAsk>,
    actor: String,
) -> Result<Vec<EnvironmentDrift>, DriftAskError> {
    let Some(asks) = asks else {
        return Err(DriftAskError::Unavailable(
            "this server does not promote releases, so it checks no drift".to_owned(),
        ));
    };
    let not_running =
        || DriftAskError::Unavailable("the promotion service is not running; try again".to_owned());
    let (reply, answer) = oneshot::channel();
    let asked = DriftAsk {
        repository,
        environment: Some(environment),
        heal,
        actor,
        reply,
    };
    asks.send(asked).await.map_err(|_| not_running())?;
    answer.await.map_err(|_| not_running())?
}

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
    /// Drift checks people ask for; `None`: only scheduled ones.
    pub drift_asks: Option<mpsc::Receiver<DriftAsk>>,
}

impl PromotionService {
    pub async fn run(mut self) {
        let mut asks = self.drift_asks.take();
        loop {
            self.pass_all().await;
            let ask = async {
                match asks.as_mut() {
                    Some(asks) => asks.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(self.interval) => {}
                Some(ask) = ask => {
                    let answer = match &ask.heal {
                        None => self.ask_drift(ask.repository.as_deref(), ask.environment.as_deref(), Some(&ask.actor)).await,
                        Some(heal) => self.heal_by_hand(ask.repository.as_deref(), ask.environment.as_deref().unwrap_or_default(), heal, &ask.actor).await,
                    };
                    let _ = ask.reply.send(answer);
                }
            }
        }
    }

    /// One pass for every repository with releases, then the drift checks that are due;
    /// problems are logged, never fatal.
    pub async fn pass_all(&self) {
        let store = self.store.clone();
        let repositories = tokio::task::spawn_blocking(move || store.release_repositories())
            .await
            .map(|result| result.unwrap_or_default())
            .unwrap_or_default();
        for repository in repositories {
            match self.reconciler(&repository).await {
                Ok(Some(reconciler)) => self.pass_one(&repository, &reconciler).await,
                Ok(None) => {}
                Err(error) => tracing::error!(repository, %error, "cannot set up promotion"),
            }
        }
    }

    async fn pass_one(&self, repository: &str, reconciler: &Reconciler) {
        let mut deployed = Vec::new();
        match reconciler.pass().await {
            Ok(report) => {
                for (environment, release, outcome) in report.deployments {
                    tracing::info!(
                        repository,
                        environment,
                        release,
                        outcome,
                        "deployment finished"
                    );
                    deployed.push(environment);
                }
            }
            Err(error) => tracing::error!(repository, %error, "promotion pass failed"),
        }
        match reconciler.check_due_drift(&deployed).await {
            Ok(checked) => log_drift(repository, &checked),
            Err(error) => tracing::error!(repository, %error, "drift check failed"),
        }
    }

    /// Checks what someone asked for now, whatever the schedule says.
    pub async fn ask_drift(
        &self,
        repository: Option<&str>,
        environment: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Vec<EnvironmentDrift>, DriftAskError> {
        let (repository, reconciler) = self.reconciler_for(repository).await?;
        let checked = reconciler
            .check_drift(environment, actor)
            .await
            .map_err(asked_error)?;
        log_drift(&repository, &checked);
        Ok(checked)
    }

    /// A person heals one domain of one environment now.
    pub async fn heal_by_hand(
        &self,
        repository: Option<&str>,
        environment: &str,
        heal: &HealAsk,
        actor: &str,
    ) -> Result<Vec<EnvironmentDrift>, DriftAskError> {
        let (_, reconciler) = self.reconciler_for(repository).await?;
        let healed = reconciler
            .heal_by_hand(environment, &heal.domain, heal.plan.as_deref(), actor)
            .await
            .map_err(asked_error)?;
        Ok(vec![healed])
    }

    /// The repository named, or the only one with releases, and its reconciler.
    async fn reconciler_for(
        &self,
        repository: Option<&str>,
    ) -> Result<(String, Reconciler), DriftAskError> {
        use DriftAskError::{Failed, NotFound};
        let store = self.store.clone();
        let repositories = tokio::task::spawn_blocking(move || store.release_repositories())
            .await
            .map_err(|error| Failed(error.to_string()))?
            .map_err(|error| Failed(error.to_string()))?;
        let repository = match (repository, repositories.as_slice()) {
            (Some(named), _) if repositories.iter().any(|known| known == named) => named.to_owned(),
            (Some(named), _) => {
                return Err(NotFound(format!(
                    "{named} has no releases yet, so nothing is deployed to check"
                )));
            }
            (None, [only]) => only.clone(),
            (None, []) => {
                return Err(NotFound(
                    "no repository has releases yet; nothing is deployed to check".to_owned(),
                ));
            }
            (None, several) => {
                return Err(NotFound(format!(
                    "several repositories have releases ({}); name one with `repository`",
                    several.join(", ")
                )));
            }
        };
        let reconciler = self
            .reconciler(&repository)
            .await
            .map_err(|error| Failed(error.to_string()))?
            .ok_or_else(|| NotFound(format!("{repository} has no releases yet")))?;
        Ok((repository, reconciler))
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

fn asked_error(error: crate::deploy::reconcile::ReconcileError) -> DriftAskError {
    match error {
        crate::deploy::reconcile::ReconcileError::Setup(message) => {
            DriftAskError::NotFound(message)
        }
        crate::deploy::reconcile::ReconcileError::Refused(message) => {
            DriftAskError::Refused(message)
        }
        other => DriftAskError::Failed(other.to_string()),
    }
}

fn log_drift(repository: &str, checked: &[EnvironmentDrift]) {
    for environment in checked {
        for domain in &environment.domains {
            if let Some(reason) = &domain.reason {
                tracing::warn!(repository, environment = %environment.environment, domain = %domain.domain, %reason, "could not check for drift");
            } else if !domain.drifts.is_empty() {
                tracing::warn!(repository, environment = %environment.environment, domain = %domain.domain, objects = domain.drifts.len(), "drift found");
            }
        }
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
