//! Makes the registry match the decisions: points each alias (or legacy stage) at its chosen
//! version, tags the version with the release, commit and environment, records every move in
//! the alias history, and undoes moves on rollback. Also answers health: each alias resolves to
//! the version this release promoted. Knows nothing of how versions were chosen.

use super::client::MlflowClient;
use super::config::{ModelPlan, PromotionMode};
use super::select::{ModelDecision, holder, unavailable};
use crate::deploy::{Applied, DeployContext, Health, TargetError};
use crate::store::{ModelHistory, NewAliasMove, last_alias_move};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// One alias move, as recorded in `Applied.rollback` and reported in `Applied.outputs.moved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub model: String,
    pub alias: String,
    pub mode: PromotionMode,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The extra alias that keeps the version held before, and what it held before this move.
    #[serde(default)]
    pub previous_alias: Option<String>,
    #[serde(default)]
    pub previous_alias_before: Option<String>,
    #[serde(default)]
    pub restart: Vec<String>,
}

/// The version tag keys that say which release and commit put a version in an environment.
pub fn release_tag(environment: &str) -> String {
    format!("sluice.release.{environment}")
}

pub fn commit_tag(environment: &str) -> String {
    format!("sluice.commit.{environment}")
}

pub fn environment_tag() -> &'static str {
    "sluice.environment"
}

pub(crate) async fn apply(
    client: &MlflowClient,
    history: Option<&Arc<dyn ModelHistory>>,
    context: &DeployContext,
    decisions: &[ModelDecision],
) -> Result<Applied, TargetError> {
    let environment = &context.environment.name;
    let mut moves = Vec::new();
    let mut tags_written = 0;
    for decision in decisions {
        let wanted_tags = [
            (release_tag(environment), context.release.id.clone()),
            (commit_tag(environment), context.release.commit.clone()),
            (environment_tag().to_string(), environment.clone()),
        ];
        for (key, value) in &wanted_tags {
            if decision.tags.get(key) != Some(value) {
                client
                    .set_version_tag(&decision.model, &decision.to, key, value)
                    .await
                    .map_err(unavailable)?;
                tags_written += 1;
            }
        }
        if !decision.moves() {
            continue;
        }
        let mut previous_alias_before = None;
        match decision.mode {
            PromotionMode::Alias => {
                if let (Some(previous_alias), Some(from)) =
                    (&decision.keep_previous_as, &decision.from)
                {
                    previous_alias_before = client
                        .alias_version(&decision.model, previous_alias)
                        .await
                        .map_err(unavailable)?
                        .map(|version| version.version);
                    client
                        .set_alias(&decision.model, previous_alias, from)
                        .await
                        .map_err(unavailable)?;
                }
                client
                    .set_alias(&decision.model, &decision.alias, &decision.to)
                    .await
                    .map_err(unavailable)?;
            }
            PromotionMode::Stage => client
                .transition_stage(&decision.model, &decision.to, &decision.alias)
                .await
                .map_err(unavailable)?,
        }
        let alias_move = Move {
            model: decision.model.clone(),
            alias: decision.alias.clone(),
            mode: decision.mode,
            from: decision.from.clone(),
            to: Some(decision.to.clone()),
            previous_alias: decision.keep_previous_as.clone(),
            previous_alias_before,
            restart: decision.restart.clone(),
        };
        record(history, context, &alias_move, "deploy")?;
        moves.push(alias_move);
    }
    Ok(Applied {
        summary: summary("moved", &moves, tags_written),
        rollback: json!({ "moves": moves }),
        outputs: json!({ "moved": moves, "serving": serving(decisions) }),
    })
}

/// Model → the version its alias (or stage) holds after the apply, moved or not: what the
/// workloads that serve it should run (`Applied.outputs.serving`).
fn serving(decisions: &[ModelDecision]) -> serde_json::Map<String, serde_json::Value> {
    decisions
        .iter()
        .map(|decision| (decision.model.clone(), json!(decision.to)))
        .collect()
}

pub(super) fn summary(verb: &str, moves: &[Move], tags_written: usize) -> String {
    if moves.is_empty() {
        return if tags_written == 0 {
            "no model alias moved".to_string()
        } else {
            format!("no model alias moved; {tags_written} version tags written")
        };
    }
    let described: Vec<String> = moves
        .iter()
        .map(|alias_move| {
            format!(
                "{}@{} {} → {}",
                alias_move.model,
                alias_move.alias,
                alias_move.from.as_deref().unwrap_or("none"),
                alias_move.to.as_deref().unwrap_or("none")
            )
        })
        .collect();
    format!(
        "{} model alias{} {verb}: {}",
        moves.len(),
        if moves.len() == 1 { "" } else { "es" },
        described.join(", ")
    )
}

pub(super) fn record(
    history: Option<&Arc<dyn ModelHistory>>,
    context: &DeployContext,
    alias_move: &Move,
    reason: &str,
) -> Result<(), TargetError> {
    let Some(history) = history else {
        return Ok(());
    };
    history
        .record_alias_move(&NewAliasMove {
            environment: context.environment.name.clone(),
            model: alias_move.model.clone(),
            alias: alias_move.alias.clone(),
            mode: alias_move.mode.as_str().to_string(),
            from_version: alias_move.from.clone(),
            to_version: alias_move.to.clone(),
            release_id: context.release.id.clone(),
            reason: reason.to_string(),
        })
        .map(drop)
        .map_err(|error| {
            TargetError::Unavailable(format!(
                "the alias of `{}` moved but the move could not be recorded: {error}",
                alias_move.model
            ))
        })
}

/// The moves to undo: from the rollback data, or else (no data) the newest recorded move of each
/// planned model's alias, or else the pins file's `previous`.
fn moves_to_undo(
    history: Option<&Arc<dyn ModelHistory>>,
    environment: &str,
    plans: &[ModelPlan],
    mode: PromotionMode,
    rollback: &serde_json::Value,
) -> Result<Vec<Move>, TargetError> {
    if let Some(moves) = rollback.get("moves") {
        return serde_json::from_value(moves.clone()).map_err(|error| {
            TargetError::Rejected(format!(
                "the mlflow rollback data is not what an apply records ({error}); move the aliases by hand"
            ))
        });
    }
    let mut moves = Vec::new();
    for plan in plans {
        let last = match history {
            Some(history) => {
                last_alias_move(history.as_ref(), environment, &plan.name, &plan.alias)
                    .map_err(|error| TargetError::Unavailable(error.to_string()))?
            }
            None => None,
        };
        let (from, to) = match (last, plan.previous) {
            (Some(last), _) => (last.recorded.from_version, last.recorded.to_version),
            (None, Some(previous)) => (Some(previous.to_string()), None),
            (None, None) => continue,
        };
        moves.push(Move {
            model: plan.name.clone(),
            alias: plan.alias.clone(),
            mode,
            from,
            to,
            previous_alias: None,
            previous_alias_before: None,
            restart: plan.restart.clone(),
        });
    }
    Ok(moves)
}

pub(crate) async fn rollback(
    client: &MlflowClient,
    history: Option<&Arc<dyn ModelHistory>>,
    context: &DeployContext,
    plans: &[ModelPlan],
    mode: PromotionMode,
    rollback_data: &serde_json::Value,
) -> Result<Applied, TargetError> {
    let undo = moves_to_undo(
        history,
        &context.environment.name,
        plans,
        mode,
        rollback_data,
    )?;
    let mut moves = Vec::new();
    for done in undo.iter().rev() {
        let now = holder(client, done.mode, &done.model, &done.alias)
            .await
            .map_err(unavailable)?
            .map(|version| version.version);
        if now == done.from {
            continue;
        }
        match (done.mode, &done.from) {
            (PromotionMode::Alias, Some(from)) => client
                .set_alias(&done.model, &done.alias, from)
                .await
                .map_err(unavailable)?,
            (PromotionMode::Alias, None) => client
                .delete_alias(&done.model, &done.alias)
                .await
                .map_err(unavailable)?,
            (PromotionMode::Stage, Some(from)) => client
                .transition_stage(&done.model, from, &done.alias)
                .await
                .map_err(unavailable)?,
            (PromotionMode::Stage, None) => {
                if let Some(to) = &now {
                    client
                        .transition_stage(&done.model, to, "Archived")
                        .await
                        .map_err(unavailable)?;
                }
            }
        }
        if let Some(previous_alias) = &done.previous_alias {
            let restored = match &done.previous_alias_before {
                Some(version) => client.set_alias(&done.model, previous_alias, version).await,
                None => client.delete_alias(&done.model, previous_alias).await,
            };
            restored.map_err(unavailable)?;
        }
        let reverse = Move {
            model: done.model.clone(),
            alias: done.alias.clone(),
            mode: done.mode,
            from: now,
            to: done.from.clone(),
            previous_alias: None,
            previous_alias_before: None,
            restart: done.restart.clone(),
        };
        record(history, context, &reverse, "rollback")?;
        moves.push(reverse);
    }
    Ok(Applied {
        summary: summary("rolled back", &moves, 0),
        rollback: serde_json::Value::Null,
        outputs: json!({ "moved": moves }),
    })
}

/// Healthy when every planned alias resolves to a READY version that this release tagged (and,
/// for a pinned number, that number).
pub(crate) async fn health(
    client: &MlflowClient,
    context: &DeployContext,
    plans: &[ModelPlan],
    mode: PromotionMode,
) -> Result<Health, TargetError> {
    let environment = &context.environment.name;
    let mut problems = Vec::new();
    for plan in plans {
        let Some(version) = holder(client, mode, &plan.name, &plan.alias)
            .await
            .map_err(unavailable)?
        else {
            problems.push(format!(
                "{} `{}` of model `{}` resolves to no version",
                mode.as_str(),
                plan.alias,
                plan.name
            ));
            continue;
        };
        if let super::config::VersionPin::Exact(number) = plan.version
            && version.number() != number
        {
            problems.push(format!(
                "{} `{}` of model `{}` resolves to version {}, not the pinned {number}",
                mode.as_str(),
                plan.alias,
                plan.name,
                version.version
            ));
            continue;
        }
        let tagged_by = version.tags.get(&release_tag(environment));
        if tagged_by != Some(&context.release.id) {
            problems.push(format!(
                "{} `{}` of model `{}` resolves to version {}, which release {} did not promote here (tagged by {})",
                mode.as_str(),
                plan.alias,
                plan.name,
                version.version,
                context.release.id,
                tagged_by.map(String::as_str).unwrap_or("no release")
            ));
            continue;
        }
        if version.status != "READY" {
            problems.push(format!(
                "version {} of model `{}` has status `{}`, not READY",
                version.version, plan.name, version.status
            ));
        }
    }
    Ok(if problems.is_empty() {
        Health::Healthy
    } else {
        Health::Degraded(problems.join("; "))
    })
}
