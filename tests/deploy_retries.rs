//! A target that answers 503 during a deployment: the apply is retried with backoff and each retry
//! is in the history; the release is rejected only when the retries run out. Drives the
//! reconciler with the real Kubernetes target against the in-process fake API server.

#[path = "support/kube.rs"]
mod kube_support;

use kube_support::*;
use serde_json::json;
use sluice::config::environment::Environment;
use sluice::deploy::execute::{HealthSettings, RetryPolicy};
use sluice::deploy::gates::StaticTeams;
use sluice::deploy::reconcile::{Reconciler, TargetFactory, TreeSource};
use sluice::deploy::{Release, Target, TargetError};
use sluice::policy::SystemClock;
use sluice::store::DeployStore;
use sluice::store::SqliteStore;
use sluice::targets::kubernetes::fake::{FakeApiServer, spawn_fake_api_server};
use sluice::targets::kubernetes::{KubernetesOptions, KubernetesTarget};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Cluster(url::Url);

impl TargetFactory for Cluster {
    fn targets(
        &self,
        _repository: &str,
        environment: &Environment,
    ) -> Result<Vec<Arc<dyn Target>>, TargetError> {
        let options = KubernetesOptions {
            api_server: Some(self.0.clone()),
            ..KubernetesOptions::default()
        };
        let target = KubernetesTarget::new(environment, options)?.expect("a kubernetes section");
        Ok(vec![Arc::new(target)])
    }
}

struct Tree(PathBuf);

impl TreeSource for Tree {
    fn tree<'a>(
        &'a self,
        _release: &'a Release,
    ) -> futures_util::future::BoxFuture<'a, Result<PathBuf, String>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

struct Setup {
    _directory: tempfile::TempDir,
    fake: FakeApiServer,
    store: Arc<SqliteStore>,
    reconciler: Reconciler,
    release: Release,
}

async fn setup(attempts: u32) -> Setup {
    let directory = tempfile::tempdir().unwrap();
    let tree = directory.path().join("tree");
    write_manifests(
        &tree,
        &[(
            "app.yaml",
            &format!(
                "{NAMESPACE}---\n{}",
                deployment("registry.local/serving-api:1.0", 1)
            ),
        )],
    );
    let (url, fake) = spawn_fake_api_server().await;
    let store = Arc::new(SqliteStore::open(&directory.path().join("sluice.db")).unwrap());
    let release = {
        let mut release = release(1);
        release.repository = "acme/platform".to_owned();
        release
    };
    assert!(store.insert_release(&release).unwrap());
    let reconciler = Reconciler {
        store: store.clone(),
        repository: "acme/platform".into(),
        environments: vec![environment(
            "dev",
            json!({"namespace": "ml-test", "manifests": "k8s"}),
        )],
        targets: Arc::new(Cluster(url)),
        trees: Arc::new(Tree(tree)),
        clock: Arc::new(SystemClock),
        teams: Arc::new(StaticTeams(Default::default())),
        health: HealthSettings {
            poll: Duration::from_millis(5),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy {
                attempts,
                backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(40),
            },
        },
    };
    Setup {
        _directory: directory,
        fake,
        store,
        reconciler,
        release,
    }
}

fn history(store: &SqliteStore) -> Vec<(String, String, String)> {
    store
        .audit("acme/platform", Some("dev"))
        .unwrap()
        .into_iter()
        .map(|entry| (entry.action, entry.outcome, entry.reason))
        .collect()
}

#[tokio::test]
async fn an_api_server_answering_503_twice_is_retried_and_the_release_goes_out() {
    let setup = setup(5).await;
    setup.fake.fail_next_applies(2);
    let report = setup.reconciler.pass().await.unwrap();
    assert_eq!(
        report.deployments,
        vec![(
            "dev".to_owned(),
            setup.release.id.clone(),
            "succeeded".to_owned()
        )]
    );
    let retries: Vec<String> = history(&setup.store)
        .into_iter()
        .filter(|(action, _, _)| action == "retry")
        .map(|(_, outcome, reason)| format!("{outcome}: {reason}"))
        .collect();
    assert_eq!(retries.len(), 2, "{retries:#?}");
    assert!(
        retries[0].starts_with("requeued: kubernetes apply attempt 1 of 5 failed:")
            && retries[0].contains("temporarily unavailable")
            && retries[0].ends_with("retrying in 10ms"),
        "{}",
        retries[0]
    );
    assert!(
        retries[1].starts_with("requeued: kubernetes apply attempt 2 of 5 failed:")
            && retries[1].ends_with("retrying in 20ms"),
        "{}",
        retries[1]
    );
    assert!(
        setup
            .store
            .rejected_releases("acme/platform")
            .unwrap()
            .is_empty()
    );
    assert!(
        setup
            .fake
            .object("Deployment", Some("ml-test"), "serving-api")
            .is_some(),
        "the deployment reached the cluster"
    );
}

#[tokio::test]
async fn when_the_retries_run_out_the_release_is_rolled_back_and_rejected() {
    let setup = setup(3).await;
    // Down for all three attempts, back in time for the rollback.
    setup.fake.fail_next_applies(3);
    let report = setup.reconciler.pass().await.unwrap();
    let history = history(&setup.store);
    assert_eq!(report.deployments[0].2, "rolled_back", "{history:#?}");
    assert_eq!(
        history
            .iter()
            .filter(|(action, _, _)| action == "retry")
            .count(),
        2,
        "{history:#?}"
    );
    let failure = history
        .iter()
        .find(|(action, outcome, _)| action == "promote" && outcome == "rolled_back")
        .expect("the rolled-back deployment is in the history");
    assert!(
        failure.2.contains("kubernetes apply failed") && failure.2.contains("(after 3 attempts)"),
        "{}",
        failure.2
    );
    let rejected = setup.store.rejected_releases("acme/platform").unwrap();
    assert_eq!(rejected.len(), 1);
}
