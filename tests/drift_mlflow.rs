//! Drift of model aliases against a real MLflow tracking server (tests/support/mlflow.rs): after
//! a deploy nothing drifts; an alias moved by hand through MLflow's REST API is the one drift,
//! named with the version the release set and the one it holds now; heal moves it back and
//! records the move with the release. A registry answering 503 makes the check unavailable,
//! never clean.

#[path = "support/mlflow.rs"]
mod mlflow_support;
mod support;

use mlflow_support::{VersionSpec, server};
use serde_json::json;
use sluice::config::environment::Environment;
use sluice::deploy::{DeployContext, Drift, Release, Target, TargetError};
use sluice::store::{ModelHistory, SqliteStore, last_alias_move};
use sluice::targets::mlflow::MlflowTarget;
use std::collections::BTreeMap;
use std::sync::Arc;

const GOOD: &[(&str, f64)] = &[("accuracy", 0.9)];

fn context(environment: &Environment, tree: &std::path::Path) -> DeployContext {
    let commit = "7".repeat(40);
    DeployContext {
        environment: environment.clone(),
        release: Release {
            id: Release::new_id(7, &commit),
            sequence: 7,
            ..Release::unrecorded("acme/ml-platform", &commit, "main", None)
        },
        tree: tree.to_path_buf(),
        previous: None,
        applied: Default::default(),
    }
}

fn target(environment: &Environment, store: &Arc<SqliteStore>) -> MlflowTarget {
    let history: Arc<dyn ModelHistory> = store.clone();
    MlflowTarget::from_environment(environment, Some(history))
        .unwrap()
        .expect("an mlflow section")
}

#[tokio::test]
async fn an_alias_moved_by_hand_is_the_one_drift_and_heal_moves_it_back_and_records_it() {
    let Some(mlflow) = server() else { return };
    let model = "drifting-model";
    let versions = mlflow.register(
        model,
        &[
            VersionSpec {
                metrics: GOOD,
                tags: &[],
            },
            VersionSpec {
                metrics: GOOD,
                tags: &[],
            },
            VersionSpec {
                metrics: GOOD,
                tags: &[],
            },
        ],
    );
    assert_eq!(versions, ["1", "2", "3"]);
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&data.path().join("sluice.db")).unwrap());
    let tree = tempfile::tempdir().unwrap();
    // `latest`: what the release set is its own record, not what the pin would choose today.
    support::write_tree(
        tree.path(),
        &[(
            "platform/models/staging.yaml",
            &format!(
                "environment: staging\nmodels:\n  {model}:\n    version: latest\n    alias: champion\n"
            ),
        )],
    );
    let environment: Environment = serde_json::from_value(json!({
        "name": "staging",
        "mlflow": {
            "tracking_uri": mlflow.url,
            "pins": "platform/models/staging.yaml",
            "retry_backoff": "10ms",
            "models": {model: {"alias": "champion"}},
        },
    }))
    .unwrap();
    let target = target(&environment, &store);
    let mut context = context(&environment, tree.path());
    let applied = target.apply(&context).await.unwrap();
    assert_eq!(
        mlflow.alias_version(model, "champion").as_deref(),
        Some("3")
    );
    context
        .applied
        .insert("mlflow".to_string(), applied.outputs);

    let clean = target.drift(&context).await.unwrap();
    assert_eq!(clean.drifts, []);
    assert_eq!(clean.calls, BTreeMap::from([("get alias".to_string(), 1)]));
    // A newer version a deploy would now choose is no drift: the release set version 3.
    mlflow.register(
        model,
        &[VersionSpec {
            metrics: GOOD,
            tags: &[],
        }],
    );
    assert_eq!(target.drift(&context).await.unwrap().drifts, []);

    mlflow.set_alias(model, "champion", "1");
    let found = target.drift(&context).await.unwrap();
    assert_eq!(
        found.drifts,
        [Drift {
            object: format!("{model}@champion"),
            expected: "version 3".to_string(),
            actual: "version 1".to_string(),
        }]
    );

    let healed = target.heal(&context, &found).await.unwrap();
    assert_eq!(
        healed.summary,
        format!("1 model alias healed: {model}@champion 1 → 3")
    );
    assert_eq!(
        mlflow.alias_version(model, "champion").as_deref(),
        Some("3")
    );
    let recorded = last_alias_move(store.as_ref(), "staging", model, "champion")
        .unwrap()
        .expect("the heal is recorded");
    assert_eq!(
        (
            recorded.recorded.from_version.as_deref(),
            recorded.recorded.to_version.as_deref(),
            recorded.recorded.release_id.as_str(),
            recorded.recorded.reason.as_str(),
        ),
        (Some("1"), Some("3"), context.release.id.as_str(), "heal")
    );
    assert_eq!(target.drift(&context).await.unwrap().drifts, []);

    // Without the apply's outputs, the release's recorded moves say the same.
    context.applied.clear();
    mlflow.set_alias(model, "champion", "2");
    assert_eq!(
        target.drift(&context).await.unwrap().drifts,
        [Drift {
            object: format!("{model}@champion"),
            expected: "version 3".to_string(),
            actual: "version 2".to_string(),
        }]
    );
}

#[tokio::test]
async fn a_registry_answering_503_makes_the_check_unavailable_and_says_so() {
    let url = support::always_503();
    let tree = tempfile::tempdir().unwrap();
    let environment: Environment = serde_json::from_value(json!({
        "name": "staging",
        "mlflow": {
            "tracking_uri": url,
            "retries": 2,
            "retry_backoff": "10ms",
            "models": {"churn": {"alias": "champion", "version": 3}},
        },
    }))
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&data.path().join("sluice.db")).unwrap());
    let error = target(&environment, &store)
        .drift(&context(&environment, tree.path()))
        .await
        .expect_err("a registry that cannot be asked is no clean report");
    let TargetError::Unavailable(message) = &error else {
        panic!("not Unavailable: {error:?}");
    };
    assert_eq!(
        message,
        "mlflow registered-models/alias answered 503 SERVICE_UNAVAILABLE after 2 attempts: no healthy upstream; check the MLflow server's log"
    );
}
