//! The MLflow target against a real MLflow tracking server (SQLite backend, loopback): versions
//! registered with real runs and metrics through the MLflow Python client, promoted by pin or as
//! the newest version passing the gates, aliases and tags read back through the REST API,
//! rollback to the recorded previous version, retries through a proxy answering 503, and the
//! legacy stage mode on the same server.

#[path = "support/mlflow.rs"]
mod mlflow_support;
mod support;

use mlflow_support::{VersionSpec, server};
use serde_json::{Value, json};
use sluice::config::environment::Environment;
use sluice::deploy::{DeployContext, Health, Release, Target, TargetError};
use sluice::store::{AliasMoveFilter, ModelHistory, SqliteStore};
use sluice::targets::mlflow::{MlflowTarget, render_history};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const GOOD: &[(&str, f64)] = &[("accuracy", 0.85), ("f1_score", 0.7)];
const TAGS: &[(&str, &str)] = &[("git_sha", "0123abc"), ("dataset_version", "2026-11")];

fn version<'a>(metrics: &'a [(&'a str, f64)], tags: &'a [(&'a str, &'a str)]) -> VersionSpec<'a> {
    VersionSpec { metrics, tags }
}

/// One environment of a throwaway repository: its `mlflow:` section, its pins file in `tree`,
/// and a store for the alias history.
struct Setup {
    tree: tempfile::TempDir,
    _data: tempfile::TempDir,
    store: Arc<SqliteStore>,
    environment: Environment,
}

impl Setup {
    fn new(mlflow: Value) -> Setup {
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&data.path().join("sluice.db")).unwrap());
        let environment: Environment =
            serde_json::from_value(json!({"name": "staging", "mlflow": mlflow})).unwrap();
        Setup {
            tree: tempfile::tempdir().unwrap(),
            _data: data,
            store,
            environment,
        }
    }

    fn pins(&self, text: &str) {
        support::write_tree(self.tree.path(), &[("platform/models/staging.yaml", text)]);
    }

    fn target(&self) -> MlflowTarget {
        let history: Arc<dyn ModelHistory> = self.store.clone();
        MlflowTarget::from_environment(&self.environment, Some(history))
            .unwrap()
            .expect("an mlflow section")
    }

    fn context(&self, sequence: i64) -> DeployContext {
        let commit = format!("{sequence:0>40}");
        DeployContext {
            environment: self.environment.clone(),
            release: Release {
                id: Release::new_id(sequence, &commit),
                repository: "acme/ml-platform".to_string(),
                commit,
                branch: "main".to_string(),
                author: None,
                created_at: 0,
                sequence,
                images: Default::default(),
                plans: Default::default(),
                dag_tree: None,
                models: Default::default(),
                config_commit: None,
                contributors: Default::default(),
            },
            tree: self.tree.path().to_path_buf(),
            previous: None,
            applied: Default::default(),
        }
    }
}

fn section(url: &str, model: &str, extra: Value) -> Value {
    let mut model_section = json!({"alias": "staging", "min_metric": {"accuracy": 0.8}});
    if let (Some(target), Some(more)) = (model_section.as_object_mut(), extra.as_object()) {
        target.extend(more.clone());
    }
    json!({
        "tracking_uri": url,
        "pins": "platform/models/staging.yaml",
        "retry_backoff": "10ms",
        "models": {model: model_section},
    })
}

fn pin(model: &str, version: &str, gates: &str) -> String {
    format!(
        "environment: staging\nmodels:\n  {model}:\n    version: {version}\n    alias: staging\n    gates:\n{gates}"
    )
}

const NO_MORE_GATES: &str = "      min_metrics: { accuracy: 0.8 }\n";

#[tokio::test]
async fn a_pinned_version_gets_the_alias_and_the_release_tags_and_applying_again_writes_nothing() {
    let Some(mlflow) = server() else { return };
    let model = "pinned-model";
    mlflow.register(
        model,
        &[version(GOOD, TAGS), version(&[("accuracy", 0.9)], TAGS)],
    );
    let setup = Setup::new(section(
        &mlflow.url,
        model,
        json!({"keep_previous_as": "previous"}),
    ));
    setup.pins(&pin(model, "1", NO_MORE_GATES));
    let target = setup.target();
    let first = setup.context(1);

    let diff = target.diff(&first).await.unwrap();
    assert_eq!(diff.changes[0].address, format!("mlflow/{model}@staging"));
    assert_eq!(diff.facts["models"][0]["metrics"]["accuracy"], 0.85);
    assert_eq!(
        mlflow.alias_version(model, "staging"),
        None,
        "diff changed nothing"
    );

    let applied = target.apply(&first).await.unwrap();
    assert_eq!(
        applied.outputs["moved"],
        json!([{"model": model, "alias": "staging", "mode": "alias", "from": null, "to": "1",
                "previous_alias": "previous", "previous_alias_before": null, "restart": []}])
    );
    assert_eq!(mlflow.alias_version(model, "staging").as_deref(), Some("1"));
    assert_eq!(
        mlflow.version_tag(model, "1", "sluice.release.staging"),
        Some(first.release.id.clone())
    );
    assert_eq!(
        mlflow.version_tag(model, "1", "sluice.commit.staging"),
        Some(first.release.commit.clone())
    );
    assert_eq!(
        mlflow
            .version_tag(model, "1", "sluice.environment")
            .as_deref(),
        Some("staging")
    );
    assert_eq!(target.health(&first).await.unwrap(), Health::Healthy);

    let again = target.apply(&first).await.unwrap();
    assert_eq!(again.outputs["moved"], json!([]), "{}", again.summary);
    assert_eq!(again.summary, "no model alias moved");

    // The next release pins version 2: the alias moves, the old holder keeps `previous`.
    setup.pins(&pin(model, "2", NO_MORE_GATES));
    let second = setup.context(2);
    let applied = target.apply(&second).await.unwrap();
    assert_eq!(applied.outputs["moved"][0]["from"], "1");
    assert_eq!(applied.outputs["moved"][0]["to"], "2");
    assert_eq!(mlflow.alias_version(model, "staging").as_deref(), Some("2"));
    assert_eq!(
        mlflow.alias_version(model, "previous").as_deref(),
        Some("1")
    );
    // Health for the first release is no longer true: the alias holds what the second promoted.
    assert!(matches!(
        target.health(&first).await.unwrap(),
        Health::Degraded(_)
    ));
    assert_eq!(target.health(&second).await.unwrap(), Health::Healthy);

    let current = target.current(&setup.environment).await.unwrap();
    assert_eq!(current["models"][model]["version"], "2");
    assert_eq!(
        current["models"][model]["release"],
        second.release.id.as_str()
    );

    let moves = setup
        .store
        .alias_moves(&AliasMoveFilter::default())
        .unwrap();
    let recorded: Vec<_> = moves
        .iter()
        .map(|m| {
            (
                m.recorded.from_version.clone(),
                m.recorded.to_version.clone(),
                m.recorded.release_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        vec![
            (
                Some("1".to_string()),
                Some("2".to_string()),
                second.release.id.clone()
            ),
            (None, Some("1".to_string()), first.release.id.clone()),
        ]
    );
    let text = render_history("staging", &moves);
    assert!(
        text.contains(model) && text.contains(&second.release.id),
        "{text}"
    );
}

#[tokio::test]
async fn latest_chooses_the_newest_version_that_passes_every_gate() {
    let Some(mlflow) = server() else { return };
    let model = "newest-passing-model";
    let numbers = mlflow.register(
        model,
        &[
            version(&[("accuracy", 0.82)], TAGS),
            version(&[("accuracy", 0.88)], TAGS),
            // Newer, but missing a required tag, then below the accuracy floor.
            version(&[("accuracy", 0.95)], &[("git_sha", "0123abc")]),
            version(&[("accuracy", 0.6)], TAGS),
        ],
    );
    assert_eq!(numbers, ["1", "2", "3", "4"]);
    let setup = Setup::new(section(&mlflow.url, model, json!({})));
    setup.pins(&pin(
        model,
        "latest",
        "      min_metrics: { accuracy: 0.8 }\n      required_tags: [git_sha, dataset_version]\n",
    ));
    let target = setup.target();
    let diff = target.diff(&setup.context(1)).await.unwrap();
    assert_eq!(diff.facts["models"][0]["to"], "2", "{:#}", diff.facts);
    target.apply(&setup.context(1)).await.unwrap();
    assert_eq!(mlflow.alias_version(model, "staging").as_deref(), Some("2"));
}

#[tokio::test]
async fn a_failing_gate_names_the_metric_and_the_values_and_moves_nothing() {
    let Some(mlflow) = server() else { return };
    let model = "gated-model";
    mlflow.register(
        model,
        &[
            version(&[("accuracy", 0.9), ("f1_score", 0.8)], TAGS),
            version(&[("accuracy", 0.72), ("f1_score", 0.8)], TAGS),
            version(&[("accuracy", 0.86), ("f1_score", 0.8)], TAGS),
        ],
    );
    let setup = Setup::new(section(&mlflow.url, model, json!({})));
    let target = setup.target();
    setup.pins(&pin(model, "1", NO_MORE_GATES));
    target.apply(&setup.context(1)).await.unwrap();

    setup.pins(&pin(model, "2", NO_MORE_GATES));
    let error = target.apply(&setup.context(2)).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, TargetError::Rejected(_)), "{message}");
    for fragment in ["gated-model", "version 2", "`accuracy`", "0.72", ">= 0.8"] {
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }

    // Not worse than the version holding the alias now (0.9) by more than 0.02.
    setup.pins(&pin(
        model,
        "3",
        "      min_metrics: { accuracy: 0.8 }\n      max_regression: { accuracy: 0.02 }\n",
    ));
    let message = target
        .apply(&setup.context(3))
        .await
        .unwrap_err()
        .to_string();
    for fragment in [
        "version 3",
        "`accuracy` is 0.86",
        "worse than 0.9 of version 1",
        "0.02",
    ] {
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
    assert_eq!(mlflow.alias_version(model, "staging").as_deref(), Some("1"));
}

#[tokio::test]
async fn rollback_puts_the_alias_back_on_the_recorded_previous_version() {
    let Some(mlflow) = server() else { return };
    let model = "rollback-model";
    mlflow.register(
        model,
        &[
            version(GOOD, TAGS),
            version(GOOD, TAGS),
            version(GOOD, TAGS),
        ],
    );
    let setup = Setup::new(section(&mlflow.url, model, json!({})));
    let target = setup.target();
    setup.pins(&pin(model, "1", NO_MORE_GATES));
    target.apply(&setup.context(1)).await.unwrap();
    setup.pins(&pin(model, "2", NO_MORE_GATES));
    let applied = target.apply(&setup.context(2)).await.unwrap();

    let rolled_back = target
        .rollback(&setup.context(2), &applied.rollback)
        .await
        .unwrap();
    assert_eq!(mlflow.alias_version(model, "staging").as_deref(), Some("1"));
    assert_eq!(rolled_back.outputs["moved"][0]["from"], "2");
    assert_eq!(rolled_back.outputs["moved"][0]["to"], "1");
    let newest = &setup
        .store
        .alias_moves(&AliasMoveFilter::default())
        .unwrap()[0];
    assert_eq!(newest.recorded.reason, "rollback");
    assert_eq!(newest.recorded.to_version.as_deref(), Some("1"));

    // Without rollback data the history says where to go: undoing the last move (1 → 3) lands on 1.
    setup.pins(&pin(model, "3", NO_MORE_GATES));
    target.apply(&setup.context(3)).await.unwrap();
    assert_eq!(mlflow.alias_version(model, "staging").as_deref(), Some("3"));
    target
        .rollback(&setup.context(3), &Value::Null)
        .await
        .unwrap();
    assert_eq!(mlflow.alias_version(model, "staging").as_deref(), Some("1"));

    // Rolling back a first promotion removes the alias.
    let fresh = "rollback-fresh-model";
    mlflow.register(fresh, &[version(GOOD, TAGS)]);
    let setup = Setup::new(section(&mlflow.url, fresh, json!({})));
    let target = setup.target();
    setup.pins(&pin(fresh, "1", NO_MORE_GATES));
    let applied = target.apply(&setup.context(1)).await.unwrap();
    target
        .rollback(&setup.context(1), &applied.rollback)
        .await
        .unwrap();
    assert_eq!(mlflow.alias_version(fresh, "staging"), None);
}

/// A proxy in front of the real server that answers 503 to the first `failures` requests.
async fn flaky_proxy(upstream: String, failures: usize) -> (String, Arc<AtomicUsize>) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let client = reqwest::Client::new();
    let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let counter = counter.clone();
        let client = client.clone();
        let upstream = upstream.clone();
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) < failures {
                return (StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"busy"));
            }
            let mut request = client.request(
                reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                format!("{upstream}{uri}"),
            );
            if let Some(content_type) = headers.get("content-type") {
                request = request.header("content-type", content_type.as_bytes());
            }
            let response = request.body(body).send().await.unwrap();
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
            (status, response.bytes().await.unwrap())
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn answers_503_are_retried_until_the_server_answers() {
    let Some(mlflow) = server() else { return };
    let model = "retried-model";
    mlflow.register(model, &[version(GOOD, TAGS)]);
    let (proxy, seen) = flaky_proxy(mlflow.url.clone(), 2).await;
    let setup = Setup::new(section(&proxy, model, json!({})));
    setup.pins(&pin(model, "1", NO_MORE_GATES));
    setup.target().apply(&setup.context(1)).await.unwrap();
    assert_eq!(mlflow.alias_version(model, "staging").as_deref(), Some("1"));
    assert!(seen.load(Ordering::SeqCst) > 2);

    // A server that keeps answering 503 is reported as unavailable, with the attempts.
    let (always_busy, _) = flaky_proxy(mlflow.url.clone(), usize::MAX).await;
    let mut busy_section = section(&always_busy, model, json!({}));
    busy_section["retries"] = json!(3);
    let setup = Setup::new(busy_section);
    setup.pins(&pin(model, "1", NO_MORE_GATES));
    let error = setup.target().apply(&setup.context(1)).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, TargetError::Unavailable(_)), "{message}");
    assert!(
        message.contains("503") && message.contains("3 attempts"),
        "{message}"
    );
}

#[tokio::test]
async fn stage_mode_moves_the_version_into_the_stage_and_archives_the_one_before() {
    let Some(mlflow) = server() else { return };
    let model = "staged-model";
    mlflow.register(model, &[version(GOOD, TAGS), version(GOOD, TAGS)]);
    let mut stage_section = section(&mlflow.url, model, json!({"stage": "Staging"}));
    stage_section["mode"] = json!("stage");
    stage_section["models"][model]
        .as_object_mut()
        .unwrap()
        .remove("alias");
    let setup = Setup::new(stage_section);
    let target = setup.target();
    let stage_pin = |number: &str| {
        format!(
            "environment: staging\nmodels:\n  {model}:\n    version: {number}\n    gates:\n{NO_MORE_GATES}"
        )
    };
    setup.pins(&stage_pin("1"));
    target.apply(&setup.context(1)).await.unwrap();
    assert_eq!(mlflow.version(model, "1")["current_stage"], "Staging");
    assert_eq!(
        target.health(&setup.context(1)).await.unwrap(),
        Health::Healthy
    );

    setup.pins(&stage_pin("2"));
    let applied = target.apply(&setup.context(2)).await.unwrap();
    assert_eq!(applied.outputs["moved"][0]["mode"], "stage");
    assert_eq!(mlflow.version(model, "2")["current_stage"], "Staging");
    assert_eq!(mlflow.version(model, "1")["current_stage"], "Archived");

    target
        .rollback(&setup.context(2), &applied.rollback)
        .await
        .unwrap();
    assert_eq!(mlflow.version(model, "1")["current_stage"], "Staging");
    assert_eq!(mlflow.version(model, "2")["current_stage"], "Archived");
}
