//! The policy gate of promotion: before a release enters production, each target's preview (the
//! rendered manifests, the DAG folder's facts, the model decisions) is judged as one input by
//! the repository's policies. A deny in any domain holds the release, nothing is applied, and the
//! history names the rule and its message; a target that cannot be reached holds it as "could
//! not check"; a compliant release goes out with the gate's verdict recorded.

#[path = "support/domains.rs"]
mod domains;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sluice::config::environment::Environment;
use sluice::deploy::execute::HealthSettings;
use sluice::deploy::gates::StaticTeams;
use sluice::deploy::reconcile::{Reconciler, TargetFactory, TreeSource};
use sluice::deploy::{
    Applied, DeployContext, Health, Release, Target, TargetDiff, TargetError, TargetFuture,
    TargetKind,
};
use sluice::policy::Clock;
use sluice::store::{DeployStore, SqliteStore};
use sluice::targets::registry::named;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A target whose preview is given facts (or an unreachable system) and whose applies are counted.
struct Stub {
    kind: TargetKind,
    facts: Result<Value, String>,
    applies: Arc<Mutex<Vec<String>>>,
}

impl Target for Stub {
    fn kind(&self) -> TargetKind {
        self.kind
    }
    fn diff<'a>(&'a self, _context: &'a DeployContext) -> TargetFuture<'a, TargetDiff> {
        Box::pin(async move {
            match &self.facts {
                Ok(facts) => Ok(TargetDiff {
                    changes: Vec::new(),
                    facts: facts.clone(),
                }),
                Err(reason) => Err(TargetError::Unavailable(reason.clone())),
            }
        })
    }
    fn apply<'a>(&'a self, _context: &'a DeployContext) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            self.applies
                .lock()
                .unwrap()
                .push(self.kind.as_str().to_owned());
            Ok(Applied::default())
        })
    }
    fn health<'a>(&'a self, _context: &'a DeployContext) -> TargetFuture<'a, Health> {
        Box::pin(async { Ok(Health::Healthy) })
    }
    fn current<'a>(&'a self, _environment: &'a Environment) -> TargetFuture<'a, Value> {
        Box::pin(async { Ok(Value::Null) })
    }
    fn rollback<'a>(
        &'a self,
        _context: &'a DeployContext,
        _rollback: &'a Value,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(async { Ok(Applied::default()) })
    }
    fn drift<'a>(
        &'a self,
        _context: &'a DeployContext,
    ) -> TargetFuture<'a, sluice::deploy::DriftReport> {
        Box::pin(async { Ok(sluice::deploy::DriftReport::clean()) })
    }
}

struct Previews {
    parts: Vec<(&'static str, Result<Value, String>)>,
    applies: Arc<Mutex<Vec<String>>>,
}

impl TargetFactory for Previews {
    fn targets(
        &self,
        _repository: &str,
        _environment: &Environment,
    ) -> Result<Vec<Arc<dyn Target>>, TargetError> {
        Ok(self
            .parts
            .iter()
            .map(|(name, facts)| {
                Arc::new(Stub {
                    kind: named(name).unwrap(),
                    facts: facts.clone(),
                    applies: self.applies.clone(),
                }) as Arc<dyn Target>
            })
            .collect())
    }
}

/// The release tree is irrelevant to stubs; the policies are the repository's own.
struct Trees;

impl TreeSource for Trees {
    fn tree<'a>(
        &'a self,
        _release: &'a Release,
    ) -> futures_util::future::BoxFuture<'a, Result<PathBuf, String>> {
        Box::pin(async { Ok(std::env::temp_dir()) })
    }
    fn policies<'a>(
        &'a self,
        _release: &'a Release,
    ) -> futures_util::future::BoxFuture<'a, Result<Option<PathBuf>, String>> {
        Box::pin(async {
            Ok(Some(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies"),
            ))
        })
    }
}

/// Thursday morning: no freeze window applies.
struct Thursday;

impl Clock for Thursday {
    fn now(&self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()
    }
}

struct Outcome {
    _directory: tempfile::TempDir,
    report: sluice::deploy::reconcile::PassReport,
    history: Vec<(String, String, String)>,
    applies: Vec<String>,
}

async fn promote(parts: Vec<(&'static str, Result<Value, String>)>) -> Outcome {
    let directory = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&directory.path().join("sluice.db")).unwrap());
    let commit = "7".repeat(40);
    let release = Release {
        author: Some("alice".to_owned()),
        sequence: 1,
        id: Release::new_id(1, &commit),
        ..Release::unrecorded("acme/platform", &commit, "main", None)
    };
    assert!(store.insert_release(&release).unwrap());
    let applies = Arc::new(Mutex::new(Vec::new()));
    let reconciler = Reconciler {
        store: store.clone(),
        repository: "acme/platform".into(),
        environments: vec![Environment::named("production")],
        targets: Arc::new(Previews {
            parts,
            applies: applies.clone(),
        }),
        trees: Arc::new(Trees),
        clock: Arc::new(Thursday),
        teams: Arc::new(StaticTeams(Default::default())),
        health: HealthSettings::default(),
    };
    let report = reconciler.pass().await.unwrap();
    let history = store
        .audit("acme/platform", Some("production"))
        .unwrap()
        .into_iter()
        .map(|entry| (entry.action, entry.outcome, entry.reason))
        .collect();
    let applies = applies.lock().unwrap().clone();
    Outcome {
        _directory: directory,
        report,
        history,
        applies,
    }
}

fn parts(image: &str, leak: bool, accuracy: f64) -> Vec<(&'static str, Result<Value, String>)> {
    vec![
        ("kubernetes", Ok(domains::kubernetes(image))),
        ("airflow", Ok(domains::airflow(leak).0)),
        ("mlflow", Ok(domains::mlflow(accuracy))),
    ]
}

const PINNED: &str = "registry.example.com/serving-api@sha256:9a1c";

/// The reason the gate recorded when it held the release, after checking nothing was applied.
fn held(outcome: &Outcome) -> String {
    assert!(outcome.applies.is_empty(), "applied: {:?}", outcome.applies);
    assert!(outcome.report.deployments.is_empty());
    assert_eq!(outcome.report.blocked.len(), 1, "{:?}", outcome.report);
    let gate = outcome
        .history
        .iter()
        .find(|(action, result, _)| action == "gate" && result == "blocked")
        .expect("the held gate is in the history");
    gate.2.clone()
}

#[tokio::test]
async fn a_compliant_release_passes_the_policy_gate_and_is_deployed() {
    let outcome = promote(parts(PINNED, false, 0.81)).await;
    assert_eq!(outcome.applies, ["mlflow", "kubernetes", "airflow"]);
    let passed = outcome
        .history
        .iter()
        .find(|(action, result, _)| action == "gate" && result == "passed")
        .expect("the gate's verdict is recorded");
    assert!(
        passed.2.contains("policy: ") && passed.2.contains("over mlflow, kubernetes, airflow"),
        "{}",
        passed.2
    );
}

#[tokio::test]
async fn a_latest_image_in_production_holds_the_release() {
    let reason = held(
        &promote(parts(
            "registry.example.com/serving-api:latest",
            false,
            0.81,
        ))
        .await,
    );
    assert!(
        reason.starts_with("policy: kubernetes.images.deny: Deployment/serving-api in production"),
        "{reason}"
    );
    assert!(reason.contains(":latest"), "{reason}");
}

#[tokio::test]
async fn a_hard_coded_secret_in_a_dag_holds_the_release() {
    let reason = held(&promote(parts(PINNED, true, 0.81)).await);
    assert!(
        reason.starts_with(
            "policy: airflow.secrets.deny: production: DAG `batch_score` (platform/dags/batch_score.py:"
        ) && reason.contains("contains an AWS access key id"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_model_below_the_accuracy_floor_holds_the_release() {
    let reason = held(&promote(parts(PINNED, false, 0.62)).await);
    assert!(
        reason.starts_with("policy: mlflow.models.deny: production: model churn-classifier version 7 has accuracy 0.62, below the floor 0.70"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_target_that_cannot_be_reached_holds_the_release_as_not_checked() {
    let mut parts = parts(PINNED, false, 0.81);
    parts[1].1 = Err("connection refused".to_owned());
    let reason = held(&promote(parts).await);
    assert_eq!(
        reason,
        "policy: could not check: airflow: connection refused; asked again on the next pass"
    );
}
