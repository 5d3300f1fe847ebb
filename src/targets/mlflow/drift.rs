//! Drift of an environment's model aliases (or legacy stages) from the release it runs, and its
//! heal. Each planned alias is compared with the version the release set it to:
//! `Drift { object: "churn@champion" (stage mode: "churn stage Production"), expected:
//! "version 3", actual: "version 4" | "absent" }`.
//!
//! What the release set comes from its own records, in this order: what its last apply
//! reported (`context.applied["mlflow"].serving`, which names the version each alias holds after
//! the apply, moved or not); else the newest move sluice recorded for the alias with this
//! release (deploy, rollback or heal); else the release's pin when it names a number. A `latest`
//! pin with neither record cannot be checked: resolving it again would compare with what a new
//! deploy would choose, not with what the release set. One request per alias (`get alias`, or
//! `get latest versions` in stage mode); a registry that cannot be asked is `Unavailable`.
//!
//! Heal points each drifted alias back through the REST API and records the move in the alias
//! history with the release and reason `heal`, as apply records its own.

use super::client::MlflowClient;
use super::config::{ModelPlan, PromotionMode, VersionPin};
use super::promote::{Move, record, summary};
use super::select::{holder, unavailable};
use crate::deploy::{Applied, DeployContext, Drift, DriftReport, TargetError};
use crate::store::{AliasMoveFilter, ModelHistory};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The object a drift names: `model@alias`, or `model stage Stage`.
pub fn object_name(mode: PromotionMode, model: &str, alias: &str) -> String {
    match mode {
        PromotionMode::Alias => format!("{model}@{alias}"),
        PromotionMode::Stage => format!("{model} stage {alias}"),
    }
}

fn describe(version: Option<&str>) -> String {
    match version {
        Some(version) => format!("version {version}"),
        None => "absent".to_owned(),
    }
}

/// The drift of one alias, or None when it holds what the release set.
pub fn alias_drift(
    mode: PromotionMode,
    model: &str,
    alias: &str,
    expected: Option<&str>,
    actual: Option<&str>,
) -> Option<Drift> {
    (expected != actual).then(|| Drift {
        object: object_name(mode, model, alias),
        expected: describe(expected),
        actual: describe(actual),
    })
}

/// The version the release set the plan's alias to (None: it removed the alias), from its
/// records; see the module doc for the order.
pub fn expected_version(
    target_name: &str,
    history: Option<&Arc<dyn ModelHistory>>,
    context: &DeployContext,
    plan: &ModelPlan,
) -> Result<Option<String>, TargetError> {
    let applied = context
        .applied
        .get(target_name)
        .and_then(|outputs| outputs.get("serving"))
        .and_then(|serving| serving.get(&plan.name))
        .and_then(|version| version.as_str());
    if let Some(version) = applied {
        return Ok(Some(version.to_owned()));
    }
    if let Some(history) = history {
        let moves = history
            .alias_moves(&AliasMoveFilter {
                environment: Some(context.environment.name.clone()),
                model: Some(plan.name.clone()),
                alias: Some(plan.alias.clone()),
                limit: None,
            })
            .map_err(|error| TargetError::Unavailable(error.to_string()))?;
        if let Some(last) = moves
            .into_iter()
            .find(|alias_move| alias_move.recorded.release_id == context.release.id)
        {
            return Ok(last.recorded.to_version);
        }
    }
    match plan.version {
        VersionPin::Exact(number) => Ok(Some(number.to_string())),
        VersionPin::NewestPassing => Err(TargetError::Unavailable(format!(
            "environment `{}`: which version release {} set `{}@{}` to is recorded nowhere (no apply output, no recorded move) and its pin is `latest`; deploy the release again to record it",
            context.environment.name, context.release.id, plan.name, plan.alias
        ))),
    }
}

/// Compares every planned alias with what the release set.
pub(crate) async fn check(
    target_name: &str,
    client: &MlflowClient,
    history: Option<&Arc<dyn ModelHistory>>,
    context: &DeployContext,
    plans: &[ModelPlan],
    mode: PromotionMode,
) -> Result<DriftReport, TargetError> {
    let before = client.requests();
    let mut drifts = Vec::new();
    for plan in plans {
        let expected = expected_version(target_name, history, context, plan)?;
        let actual = holder(client, mode, &plan.name, &plan.alias)
            .await
            .map_err(unavailable)?
            .map(|version| version.version);
        drifts.extend(alias_drift(
            mode,
            &plan.name,
            &plan.alias,
            expected.as_deref(),
            actual.as_deref(),
        ));
    }
    let kind = match mode {
        PromotionMode::Alias => "get alias",
        PromotionMode::Stage => "get latest versions",
    };
    Ok(DriftReport {
        drifts,
        review: None,
        calls: BTreeMap::from([(kind.to_owned(), client.requests() - before)]),
    })
}

/// Points each alias `found` names back at the version the release set, if it still differs,
/// and records each move.
pub(crate) async fn heal(
    target_name: &str,
    client: &MlflowClient,
    history: Option<&Arc<dyn ModelHistory>>,
    context: &DeployContext,
    plans: &[ModelPlan],
    mode: PromotionMode,
    found: &DriftReport,
) -> Result<Applied, TargetError> {
    let mut moves = Vec::new();
    let mut serving = serde_json::Map::new();
    for plan in plans {
        let object = object_name(mode, &plan.name, &plan.alias);
        if !found.drifts.iter().any(|drift| drift.object == object) {
            continue;
        }
        let expected = expected_version(target_name, history, context, plan)?;
        let now = holder(client, mode, &plan.name, &plan.alias)
            .await
            .map_err(unavailable)?
            .map(|version| version.version);
        if now == expected {
            continue;
        }
        match (mode, &expected) {
            (PromotionMode::Alias, Some(version)) => {
                client.set_alias(&plan.name, &plan.alias, version).await
            }
            (PromotionMode::Alias, None) => client.delete_alias(&plan.name, &plan.alias).await,
            (PromotionMode::Stage, Some(version)) => {
                client
                    .transition_stage(&plan.name, version, &plan.alias)
                    .await
            }
            (PromotionMode::Stage, None) => match &now {
                Some(version) => {
                    client
                        .transition_stage(&plan.name, version, "Archived")
                        .await
                }
                None => Ok(()),
            },
        }
        .map_err(unavailable)?;
        let healed = Move {
            model: plan.name.clone(),
            alias: plan.alias.clone(),
            mode,
            from: now,
            to: expected.clone(),
            previous_alias: None,
            previous_alias_before: None,
            restart: plan.restart.clone(),
        };
        record(history, context, &healed, "heal")?;
        if let Some(version) = expected {
            serving.insert(plan.name.clone(), json!(version));
        }
        moves.push(healed);
    }
    Ok(Applied {
        summary: summary("healed", &moves, 0),
        rollback: serde_json::Value::Null,
        outputs: json!({ "moved": moves, "serving": serving }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_drifts_when_it_holds_another_version_or_none() {
        assert_eq!(
            alias_drift(
                PromotionMode::Alias,
                "churn",
                "champion",
                Some("3"),
                Some("4")
            ),
            Some(Drift {
                object: "churn@champion".into(),
                expected: "version 3".into(),
                actual: "version 4".into(),
            })
        );
        assert_eq!(
            alias_drift(PromotionMode::Stage, "churn", "Production", Some("3"), None),
            Some(Drift {
                object: "churn stage Production".into(),
                expected: "version 3".into(),
                actual: "absent".into(),
            })
        );
        assert_eq!(
            alias_drift(
                PromotionMode::Alias,
                "churn",
                "champion",
                Some("3"),
                Some("3")
            ),
            None
        );
        assert_eq!(
            alias_drift(PromotionMode::Alias, "churn", "champion", None, None),
            None
        );
    }

    fn context(applied: serde_json::Value) -> DeployContext {
        let environment = serde_json::from_value(json!({"name": "staging"})).unwrap();
        DeployContext {
            environment,
            release: crate::deploy::Release {
                id: "r2-0123456789ab".into(),
                sequence: 2,
                ..crate::deploy::Release::unrecorded(
                    "acme/ml",
                    &"0123456789ab".repeat(3),
                    "main",
                    None,
                )
            },
            tree: std::path::PathBuf::from("/nonexistent"),
            previous: None,
            applied: serde_json::from_value(applied).unwrap(),
        }
    }

    fn plan(version: VersionPin) -> ModelPlan {
        ModelPlan {
            name: "churn".into(),
            version,
            alias: "champion".into(),
            gates: Default::default(),
            restart: Vec::new(),
            keep_previous_as: None,
            previous: None,
        }
    }

    #[test]
    fn the_expected_version_is_the_apply_output_then_the_releases_last_move_then_a_number_pin() {
        let directory = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(&directory.path().join("s.db")).unwrap();
        let history: Arc<dyn ModelHistory> = Arc::new(store);
        let recorded = |release: &str, to: &str| crate::store::NewAliasMove {
            environment: "staging".into(),
            model: "churn".into(),
            alias: "champion".into(),
            mode: "alias".into(),
            from_version: None,
            to_version: Some(to.into()),
            release_id: release.into(),
            reason: "deploy".into(),
        };
        history
            .record_alias_move(&recorded("r2-0123456789ab", "5"))
            .unwrap();
        // A later move by another release is not what this release set.
        history
            .record_alias_move(&recorded("r3-ffffffffffff", "6"))
            .unwrap();
        let applied = context(json!({"mlflow": {"serving": {"churn": "7"}}}));
        let bare = context(json!({}));
        let expected = |context: &DeployContext, history, pin| {
            expected_version("mlflow", history, context, &plan(pin))
        };
        assert_eq!(
            expected(&applied, Some(&history), VersionPin::Exact(4)).unwrap(),
            Some("7".into())
        );
        assert_eq!(
            expected(&bare, Some(&history), VersionPin::Exact(4)).unwrap(),
            Some("5".into())
        );
        assert_eq!(
            expected(&bare, None, VersionPin::Exact(4)).unwrap(),
            Some("4".into())
        );
        let unknown = expected(&bare, None, VersionPin::NewestPassing).unwrap_err();
        assert!(
            matches!(&unknown, TargetError::Unavailable(message) if message.contains("`churn@champion` to is recorded nowhere")),
            "{unknown:?}"
        );
    }
}
