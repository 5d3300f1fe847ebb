//! The MLflow target: promotes registered model versions in an environment by moving aliases
//! (or legacy stages) on an MLflow tracking server, after gates on the version's run metrics,
//! tags, status and the current alias holder; tags each version with the release that put it
//! there, records every alias move in sluice's history (MLflow keeps none), and rolls back to
//! the recorded previous version. Knows nothing of promotion order, other targets or webhooks.
//!
//! Configuration: the environment file's `mlflow:` section (`config.rs`) and the model pins file
//! it names, read from the release's tree.

pub mod client;
pub mod config;
pub mod drift;
pub mod gates;
pub mod promote;
pub mod report;
pub mod select;

pub use client::{MlflowClient, MlflowError, ModelVersion};
pub use config::{MlflowConfig, ModelPlan, PromotionMode, VersionPin, parse_pins, parse_section};
pub use promote::{Move, commit_tag, environment_tag, release_tag};
pub use report::{comment_section, policy_facts, render_history};
pub use select::ModelDecision;

use super::registry::{BuildContext, Registration, ReleaseSource, answers};
use crate::config::environment::Environment;
use crate::deploy::{
    Applied, Change, ChangeAction, DeployContext, Health, Release, Target, TargetDiff, TargetError,
    TargetFuture, TargetKind,
};
use crate::store::ModelHistory;
use serde_json::json;
use std::sync::Arc;

pub struct MlflowTarget {
    config: MlflowConfig,
    client: MlflowClient,
    history: Option<Arc<dyn ModelHistory>>,
}

/// The target for the environment, or `None` when it has no `mlflow:` section. `history` is
/// where alias moves are recorded (the store); without it nothing is recorded and rollback
/// needs the rollback data of the apply.
pub fn from_environment(
    environment: &Environment,
    history: Option<Arc<dyn ModelHistory>>,
) -> Result<Option<Box<dyn Target>>, TargetError> {
    Ok(MlflowTarget::from_environment(environment, history)?
        .map(|target| Box::new(target) as Box<dyn Target>))
}

/// The MLflow target in the registry (`crate::targets::TARGETS`).
pub struct Mlflow;

impl Registration for Mlflow {
    const NAME: &'static str = "mlflow";
    type Section = config::MlflowSection;

    fn build(
        environment: &Environment,
        _section: &config::MlflowSection,
        context: &BuildContext<'_>,
    ) -> Result<Option<Box<dyn Target>>, TargetError> {
        let history = context
            .store
            .map(|store| store.clone() as Arc<dyn ModelHistory>);
        from_environment(environment, history)
    }

    /// The release carries the environment's model pins file as it was at the commit.
    fn add_to_release(
        environment: &Environment,
        section: &config::MlflowSection,
        source: &ReleaseSource<'_>,
        release: &mut Release,
    ) -> anyhow::Result<()> {
        if let Some(pins) = &section.pins
            && let Some(bytes) = source.mirror.read_file(source.commit, pins)?
        {
            release.models.insert(
                environment.name.clone(),
                String::from_utf8_lossy(&bytes).trim().to_owned(),
            );
        }
        Ok(())
    }

    fn unreachable(section: &config::MlflowSection) -> Option<String> {
        let uri = &section.tracking_uri;
        (!answers(uri)).then(|| format!("no MLflow answers at {uri}"))
    }
}

impl MlflowTarget {
    pub fn from_environment(
        environment: &Environment,
        history: Option<Arc<dyn ModelHistory>>,
    ) -> Result<Option<MlflowTarget>, TargetError> {
        let Some(config) = parse_section(environment)? else {
            return Ok(None);
        };
        let client = MlflowClient::new(&config).map_err(select::unavailable)?;
        Ok(Some(MlflowTarget {
            config,
            client,
            history,
        }))
    }

    pub fn config(&self) -> &MlflowConfig {
        &self.config
    }

    /// The version each model should serve, read from the release's tree and the registry.
    pub async fn decisions(
        &self,
        context: &DeployContext,
    ) -> Result<Vec<ModelDecision>, TargetError> {
        let plans = self.config.model_plans(&context.tree)?;
        select::decide(&self.config, &self.client, self.history.as_ref(), &plans).await
    }

    /// The PR comment section for this environment's models.
    pub async fn comment(&self, context: &DeployContext) -> Result<String, TargetError> {
        Ok(comment_section(
            &context.environment.name,
            &self.decisions(context).await?,
        ))
    }
}

fn change_of(decision: &ModelDecision) -> Change {
    let action = match (&decision.from, decision.moves()) {
        (_, false) => ChangeAction::NoOp,
        (None, true) => ChangeAction::Create,
        (Some(_), true) => ChangeAction::Update,
    };
    Change {
        address: format!("mlflow/{}@{}", decision.model, decision.alias),
        action,
        detail: Some(format!(
            "v{} → v{}",
            decision.from.as_deref().unwrap_or("none"),
            decision.to
        )),
    }
}

impl Target for MlflowTarget {
    fn kind(&self) -> TargetKind {
        crate::targets::registry::kind::<Mlflow>()
    }

    fn diff<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, TargetDiff> {
        Box::pin(async move {
            let decisions = self.decisions(context).await?;
            Ok(TargetDiff {
                changes: decisions.iter().map(change_of).collect(),
                facts: policy_facts(
                    &context.environment.name,
                    &self.config.tracking_uri,
                    &decisions,
                ),
            })
        })
    }

    fn apply<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            let decisions = self.decisions(context).await?;
            promote::apply(&self.client, self.history.as_ref(), context, &decisions).await
        })
    }

    fn health<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Health> {
        Box::pin(async move {
            let plans = self.config.model_plans(&context.tree)?;
            promote::health(&self.client, context, &plans, self.config.mode).await
        })
    }

    fn current<'a>(&'a self, environment: &'a Environment) -> TargetFuture<'a, serde_json::Value> {
        Box::pin(async move {
            let mut models = serde_json::Map::new();
            for (name, model) in &self.config.section_models {
                let alias = match self.config.mode {
                    PromotionMode::Alias => model.alias.clone(),
                    PromotionMode::Stage => model.stage.clone(),
                };
                let Some(alias) = alias else { continue };
                let version = select::holder(&self.client, self.config.mode, name, &alias)
                    .await
                    .map_err(select::unavailable)?;
                models.insert(
                    name.clone(),
                    json!({
                        "alias": alias,
                        "version": version.as_ref().map(|version| &version.version),
                        "release": version.as_ref().and_then(|version| version.tags.get(&release_tag(&environment.name))),
                        "commit": version.as_ref().and_then(|version| version.tags.get(&commit_tag(&environment.name))),
                    }),
                );
            }
            Ok(json!({ "mode": self.config.mode, "models": models }))
        })
    }

    fn rollback<'a>(
        &'a self,
        context: &'a DeployContext,
        rollback: &'a serde_json::Value,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            let plans = self.config.model_plans(&context.tree).unwrap_or_default();
            promote::rollback(
                &self.client,
                self.history.as_ref(),
                context,
                &plans,
                self.config.mode,
                rollback,
            )
            .await
        })
    }

    fn drift<'a>(
        &'a self,
        context: &'a DeployContext,
    ) -> TargetFuture<'a, crate::deploy::DriftReport> {
        Box::pin(async move {
            let plans = self.config.model_plans(&context.tree)?;
            drift::check(
                self.kind().as_str(),
                &self.client,
                self.history.as_ref(),
                context,
                &plans,
                self.config.mode,
            )
            .await
        })
    }

    fn heal<'a>(
        &'a self,
        context: &'a DeployContext,
        found: &'a crate::deploy::DriftReport,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            let plans = self.config.model_plans(&context.tree)?;
            drift::heal(
                self.kind().as_str(),
                &self.client,
                self.history.as_ref(),
                context,
                &plans,
                self.config.mode,
                found,
            )
            .await
        })
    }
}
