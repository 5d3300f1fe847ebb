//! Chooses the version each model should serve in an environment: the pinned number, or the
//! newest registered version that passes the gates, and reads what the alias (or stage) holds
//! now. The outcome, one `ModelDecision` per model, feeds diff, apply, the policy input and the
//! PR comment. Reads the registry and the alias history; writes nothing.

use super::client::{MlflowClient, MlflowError, ModelVersion};
use super::config::{MlflowConfig, ModelPlan, PromotionMode, VersionPin};
use super::gates::{Candidate, failures};
use crate::deploy::TargetError;
use crate::store::{AliasMoveFilter, ModelHistory};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one model's alias should become, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelDecision {
    pub model: String,
    /// The alias, or the stage in stage mode.
    pub alias: String,
    pub mode: PromotionMode,
    /// The pin as written: a number or `latest`.
    pub pin: VersionPin,
    /// The version holding the alias now.
    pub from: Option<String>,
    /// The version the alias should hold.
    pub to: String,
    /// The chosen version's run metrics and tags.
    pub metrics: BTreeMap<String, f64>,
    /// The run metrics of the version holding the alias now, to compare with.
    pub current_metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
    /// Workloads to restart when the alias moves.
    pub restart: Vec<String>,
    pub keep_previous_as: Option<String>,
}

impl ModelDecision {
    pub fn moves(&self) -> bool {
        self.from.as_deref() != Some(self.to.as_str())
    }
}

pub(crate) fn unavailable(error: MlflowError) -> TargetError {
    match error {
        MlflowError::Credentials(message) => TargetError::Configuration(message),
        MlflowError::Refused { .. } | MlflowError::Decode { .. } => {
            TargetError::Rejected(error.to_string())
        }
        other => TargetError::Unavailable(other.to_string()),
    }
}

/// The version holding the alias (or stage) now.
pub(crate) async fn holder(
    client: &MlflowClient,
    mode: PromotionMode,
    model: &str,
    alias: &str,
) -> Result<Option<ModelVersion>, MlflowError> {
    match mode {
        PromotionMode::Alias => client.alias_version(model, alias).await,
        PromotionMode::Stage => client.stage_version(model, alias).await,
    }
}

async fn with_metrics(
    client: &MlflowClient,
    version: ModelVersion,
) -> Result<Candidate, MlflowError> {
    let metrics = match &version.run_id {
        Some(run_id) => client.run_metrics(run_id).await?,
        None => BTreeMap::new(),
    };
    Ok(Candidate { version, metrics })
}

/// Whether the history records the version moving to an alias in `environment`; `None` without
/// a history.
fn promoted_in(
    history: Option<&Arc<dyn ModelHistory>>,
    environment: &str,
    model: &str,
    version: &str,
) -> Result<Option<bool>, TargetError> {
    let Some(history) = history else {
        return Ok(None);
    };
    let moves = history
        .alias_moves(&AliasMoveFilter {
            environment: Some(environment.to_string()),
            model: Some(model.to_string()),
            ..AliasMoveFilter::default()
        })
        .map_err(|error| TargetError::Unavailable(error.to_string()))?;
    Ok(Some(moves.iter().any(|alias_move| {
        alias_move.recorded.to_version.as_deref() == Some(version)
    })))
}

/// Decides every model; a model whose gates fail makes the whole call `Rejected`, with every
/// model's failures in the message.
pub async fn decide(
    config: &MlflowConfig,
    client: &MlflowClient,
    history: Option<&Arc<dyn ModelHistory>>,
    plans: &[ModelPlan],
) -> Result<Vec<ModelDecision>, TargetError> {
    let mut decisions = Vec::new();
    let mut rejections = Vec::new();
    for plan in plans {
        match decide_one(config, client, history, plan).await? {
            Ok(decision) => decisions.push(decision),
            Err(reasons) => rejections.push(reasons),
        }
    }
    if rejections.is_empty() {
        Ok(decisions)
    } else {
        Err(TargetError::Rejected(rejections.join("\n")))
    }
}

async fn decide_one(
    config: &MlflowConfig,
    client: &MlflowClient,
    history: Option<&Arc<dyn ModelHistory>>,
    plan: &ModelPlan,
) -> Result<Result<ModelDecision, String>, TargetError> {
    let model = &plan.name;
    let current = holder(client, config.mode, model, &plan.alias)
        .await
        .map_err(unavailable)?;
    let current_candidate = match current.clone() {
        Some(version) => Some(with_metrics(client, version).await.map_err(unavailable)?),
        None => None,
    };
    let candidates: Vec<ModelVersion> = match &plan.version {
        VersionPin::Exact(number) => {
            match client
                .model_version(model, &number.to_string())
                .await
                .map_err(unavailable)?
            {
                Some(version) => vec![version],
                None => {
                    return Ok(Err(format!(
                        "model `{model}` has no version {number} in the registry at {}; register it or pin an existing version",
                        client.tracking_uri()
                    )));
                }
            }
        }
        VersionPin::NewestPassing => {
            let versions = client.model_versions(model).await.map_err(unavailable)?;
            if versions.is_empty() {
                return Ok(Err(format!(
                    "model `{model}` has no registered versions at {}; register one first",
                    client.tracking_uri()
                )));
            }
            versions
        }
    };
    let mut refusals = Vec::new();
    for version in candidates {
        let candidate = with_metrics(client, version).await.map_err(unavailable)?;
        let soaked = match &plan.gates.soak_in {
            // sluice's recorded alias moves, or the release tag sluice set on the version when it
            // promoted it there (recorded by another sluice data directory, for instance).
            Some(environment)
                if candidate
                    .version
                    .tags
                    .contains_key(&super::promote::release_tag(environment)) =>
            {
                Some(true)
            }
            Some(environment) => {
                promoted_in(history, environment, model, &candidate.version.version)?
            }
            None => None,
        };
        let found = failures(&plan.gates, &candidate, current_candidate.as_ref(), soaked);
        if found.is_empty() {
            return Ok(Ok(ModelDecision {
                model: model.clone(),
                alias: plan.alias.clone(),
                mode: config.mode,
                pin: plan.version.clone(),
                from: current.as_ref().map(|version| version.version.clone()),
                to: candidate.version.version.clone(),
                metrics: candidate.metrics,
                current_metrics: current_candidate
                    .as_ref()
                    .map(|current| current.metrics.clone())
                    .unwrap_or_default(),
                tags: candidate.version.tags,
                restart: plan.restart.clone(),
                keep_previous_as: plan.keep_previous_as.clone(),
            }));
        }
        refusals.push(format!(
            "version {}: {}",
            candidate.version.version,
            found.join("; ")
        ));
    }
    let what = match &plan.version {
        VersionPin::Exact(number) => format!("pinned version {number} fails"),
        VersionPin::NewestPassing => "no registered version passes".to_string(),
    };
    let shown: Vec<&String> = refusals.iter().take(5).collect();
    let more = refusals.len().saturating_sub(shown.len());
    Ok(Err(format!(
        "model `{model}` in `{}`: {what} the gates for {} `{}`: {}{}; register a better version or change the pin or the gates",
        config.environment,
        config.mode.as_str(),
        plan.alias,
        shown
            .iter()
            .map(|refusal| refusal.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        if more > 0 {
            format!(" | and {more} more versions")
        } else {
            String::new()
        }
    )))
}
