//! The Kubernetes target against the in-process fake API server: what a user of `sluice`
//! notices on their cluster (objects created, left alone, changed, pruned, in which order,
//! rolled back) and the calls it costs.

#[path = "support/kube.rs"]
mod kube_support;

use kube_support::*;
use serde_json::{Value, json};
use sluice::deploy::{ChangeAction, Health, Target, TargetError};
use sluice::targets::kubernetes::fake::{FakeApiServer, Rollout, spawn_fake_api_server};
use sluice::targets::kubernetes::{KubernetesOptions, KubernetesTarget};

struct Setup {
    fake: FakeApiServer,
    tree: tempfile::TempDir,
}

async fn setup() -> Setup {
    let (_, fake) = spawn_fake_api_server().await;
    Setup {
        fake,
        tree: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    fn target(
        &self,
        environment_name: &str,
        section: Value,
    ) -> (KubernetesTarget, sluice::config::environment::Environment) {
        let environment = environment(environment_name, section);
        let options = KubernetesOptions {
            api_server: Some(self.fake.url().clone()),
            policies: Some(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/kubernetes"),
            ),
            ..KubernetesOptions::default()
        };
        (
            KubernetesTarget::new(&environment, options)
                .unwrap()
                .unwrap(),
            environment,
        )
    }

    fn dev_target(&self) -> (KubernetesTarget, sluice::config::environment::Environment) {
        self.target("dev", json!({"namespace": "ml-test", "manifests": "k8s", "prune": true, "health": {"timeout": "1h"}}))
    }
}

fn base_manifests(tree: &std::path::Path, alias: &str, replicas: u32) {
    write_manifests(
        tree,
        &[
            ("namespace.yaml", NAMESPACE),
            (
                "app.yaml",
                &format!(
                    "{}---\n{}---\n{}",
                    config_map(alias),
                    SERVICE,
                    deployment("registry.local/serving-api:1.0", replicas)
                ),
            ),
        ],
    );
}

#[tokio::test]
async fn first_sync_creates_every_object_with_sluice_labels() {
    let setup = setup().await;
    base_manifests(setup.tree.path(), "candidate", 2);
    let (target, environment) = setup.dev_target();
    let applied = target
        .apply(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap();
    assert_eq!(applied.summary, "4 objects written, 0 unchanged, 0 pruned");
    assert_eq!(setup.fake.calls().apply, 4);
    let deployment = setup
        .fake
        .object("Deployment", Some("ml-test"), "serving-api")
        .expect("created in the default namespace");
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "sluice"
    );
    assert_eq!(
        deployment["metadata"]["labels"]["sluice.dev/environment"],
        "dev"
    );
    assert_eq!(
        deployment["metadata"]["annotations"]["sluice.dev/release"],
        release(1).id
    );
    assert!(setup.fake.object("Namespace", None, "ml-test").is_some());
}

#[tokio::test]
async fn an_unchanged_sync_writes_nothing_and_lists_each_kind_at_most_once() {
    let setup = setup().await;
    base_manifests(setup.tree.path(), "candidate", 2);
    let (target, environment) = setup.dev_target();
    target
        .apply(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap();
    setup.fake.reset_calls();
    // A later release that leaves the manifests as they were rewrites nothing either.
    let applied = target
        .apply(&context(&environment, release(2), setup.tree.path()))
        .await
        .unwrap();
    assert_eq!(applied.summary, "0 objects written, 4 unchanged, 0 pruned");
    assert_eq!(
        setup.fake.calls().writes(),
        0,
        "{:?}",
        setup.fake.write_log()
    );
    assert_eq!(setup.fake.calls().get, 0);
    for (resource, lists) in setup.fake.lists_per_resource() {
        assert!(lists <= 1, "{resource} listed {lists} times");
    }
}

#[tokio::test]
async fn one_changed_object_is_the_only_write() {
    let setup = setup().await;
    base_manifests(setup.tree.path(), "candidate", 2);
    let (target, environment) = setup.dev_target();
    target
        .apply(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap();
    base_manifests(setup.tree.path(), "staging", 2);
    setup.fake.reset_calls();
    target
        .apply(&context(&environment, release(2), setup.tree.path()))
        .await
        .unwrap();
    assert_eq!(
        setup.fake.write_log(),
        vec!["apply ConfigMap/ml-test/churn-config"]
    );
    let config = setup
        .fake
        .object("ConfigMap", Some("ml-test"), "churn-config")
        .unwrap();
    assert_eq!(config["data"]["MODEL_ALIAS"], "staging");
}

#[tokio::test]
async fn an_object_no_longer_rendered_is_pruned_only_when_pruning_is_on() {
    let setup = setup().await;
    base_manifests(setup.tree.path(), "candidate", 2);
    let (target, environment) = setup.dev_target();
    target
        .apply(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap();
    write_manifests(
        setup.tree.path(),
        &[
            ("namespace.yaml", NAMESPACE),
            ("app.yaml", &config_map("candidate")),
        ],
    );

    let (keeping, keeping_environment) = setup.target(
        "dev",
        json!({"namespace": "ml-test", "manifests": "k8s", "prune": false}),
    );
    let diff = keeping
        .diff(&context(
            &keeping_environment,
            release(2),
            setup.tree.path(),
        ))
        .await
        .unwrap();
    assert!(
        diff.changes
            .iter()
            .all(|change| change.action == ChangeAction::NoOp),
        "{:?}",
        diff.changes
    );
    keeping
        .apply(&context(
            &keeping_environment,
            release(2),
            setup.tree.path(),
        ))
        .await
        .unwrap();
    assert!(
        setup
            .fake
            .object("Service", Some("ml-test"), "serving-api")
            .is_some()
    );

    let diff = target
        .diff(&context(&environment, release(2), setup.tree.path()))
        .await
        .unwrap();
    let pruned: Vec<&str> = diff
        .changes
        .iter()
        .filter(|change| change.action == ChangeAction::Delete)
        .map(|change| change.address.as_str())
        .collect();
    assert_eq!(
        pruned,
        vec![
            "Service/ml-test/serving-api",
            "Deployment/ml-test/serving-api"
        ]
    );
    setup.fake.reset_calls();
    let applied = target
        .apply(&context(&environment, release(2), setup.tree.path()))
        .await
        .unwrap();
    assert_eq!(applied.summary, "0 objects written, 2 unchanged, 2 pruned");
    assert!(
        setup
            .fake
            .object("Service", Some("ml-test"), "serving-api")
            .is_none()
    );
    assert!(
        setup
            .fake
            .object("Deployment", Some("ml-test"), "serving-api")
            .is_none()
    );
    assert!(
        setup.fake.object("Namespace", None, "ml-test").is_some(),
        "namespaces are never pruned by default"
    );
}

#[tokio::test]
async fn waves_apply_namespaces_first_then_by_wave_with_config_before_workloads() {
    let setup = setup().await;
    let migration = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations: {sluice.dev/wave: \"-1\"}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: 'migrate:1'}]\n";
    let late_config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  annotations: {sluice.dev/wave: \"2\"}\ndata: {a: b}\n";
    write_manifests(
        setup.tree.path(),
        &[
            (
                "a.yaml",
                &format!(
                    "{}---\n{late_config}---\n{migration}",
                    deployment("serving-api:1", 1)
                ),
            ),
            ("b.yaml", &config_map("candidate")),
            ("z.yaml", NAMESPACE),
        ],
    );
    let (target, environment) = setup.dev_target();
    target
        .apply(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap();
    assert_eq!(
        setup.fake.write_log(),
        vec![
            "apply Namespace/ml-test",
            "apply Job/ml-test/migrate",
            "apply ConfigMap/ml-test/churn-config",
            "apply Deployment/ml-test/serving-api",
            "apply ConfigMap/ml-test/late",
        ]
    );
}

#[tokio::test]
async fn a_failed_rollout_is_degraded_and_rollback_restores_the_previous_objects() {
    let setup = setup().await;
    base_manifests(setup.tree.path(), "candidate", 2);
    let (target, environment) = setup.dev_target();
    let first = context(&environment, release(1), setup.tree.path());
    target.apply(&first).await.unwrap();
    assert_eq!(target.health(&first).await.unwrap(), Health::Healthy);

    setup.fake.set_rollout("serving-api", Rollout::Fail);
    write_manifests(
        setup.tree.path(),
        &[
            ("namespace.yaml", NAMESPACE),
            (
                "app.yaml",
                &format!(
                    "{}---\n{}",
                    config_map("staging"),
                    deployment("registry.local/serving-api:2.0", 3)
                ),
            ),
            (
                "extra.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: b}\n",
            ),
        ],
    );
    let second = context(&environment, release(2), setup.tree.path());
    let applied = target.apply(&second).await.unwrap();
    let health = target.health(&second).await.unwrap();
    assert!(
        matches!(&health, Health::Degraded(reason) if reason.contains("progress deadline")),
        "{health:?}"
    );

    setup.fake.set_rollout("serving-api", Rollout::Succeed);
    let rolled_back = target.rollback(&second, &applied.rollback).await.unwrap();
    assert_eq!(
        rolled_back.summary,
        "3 objects restored, 1 created objects deleted"
    );
    let deployment = setup
        .fake
        .object("Deployment", Some("ml-test"), "serving-api")
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/serving-api:1.0"
    );
    assert_eq!(
        setup
            .fake
            .object("ConfigMap", Some("ml-test"), "churn-config")
            .unwrap()["data"]["MODEL_ALIAS"],
        "candidate"
    );
    assert!(
        setup
            .fake
            .object("Service", Some("ml-test"), "serving-api")
            .is_some(),
        "the pruned Service is back"
    );
    assert!(
        setup
            .fake
            .object("ConfigMap", Some("ml-test"), "extra")
            .is_none(),
        "what the failed release created is gone"
    );
    // The restored objects carry their old content hash: the previous release syncs as unchanged.
    base_manifests(setup.tree.path(), "candidate", 2);
    setup.fake.reset_calls();
    target.apply(&first).await.unwrap();
    assert_eq!(
        setup.fake.calls().writes(),
        0,
        "{:?}",
        setup.fake.write_log()
    );
}

#[tokio::test]
async fn a_stalled_rollout_progresses_until_the_timeout_then_degrades() {
    let setup = setup().await;
    base_manifests(setup.tree.path(), "candidate", 2);
    setup.fake.set_rollout("serving-api", Rollout::Stall);
    let (patient, environment) = setup.dev_target();
    let deploy = context(&environment, release(1), setup.tree.path());
    patient.apply(&deploy).await.unwrap();
    assert!(matches!(
        patient.health(&deploy).await.unwrap(),
        Health::Progressing(_)
    ));
    let (impatient, environment) = setup.target(
        "dev",
        json!({"namespace": "ml-test", "manifests": "k8s", "health": {"timeout": "0s"}}),
    );
    let health = impatient
        .health(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap();
    assert!(
        matches!(&health, Health::Degraded(reason) if reason.contains("0 of 2 replicas updated")),
        "{health:?}"
    );
}

#[tokio::test]
async fn latest_is_refused_in_production_before_anything_is_written() {
    let setup = setup().await;
    write_manifests(
        setup.tree.path(),
        &[(
            "app.yaml",
            &deployment("registry.local/serving-api:latest", 1),
        )],
    );
    let (production, environment) = setup.target(
        "production",
        json!({"namespace": "ml-prod", "manifests": "k8s"}),
    );
    let error = production
        .apply(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, TargetError::Rejected(message) if message.contains("uses the moving tag `latest`")),
        "{error}"
    );
    assert_eq!(setup.fake.calls().writes(), 0);
    // dev only warns.
    let (dev, environment) =
        setup.target("dev", json!({"namespace": "ml-dev", "manifests": "k8s"}));
    dev.apply(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap();
    // an image the release built is pinned to its digest, so it passes in production.
    let mut pinned = release(2);
    pinned.images.insert(
        "serving-api".to_owned(),
        "registry.local/serving-api@sha256:feed".to_owned(),
    );
    production
        .apply(&context(
            &environment_named(&production),
            pinned,
            setup.tree.path(),
        ))
        .await
        .unwrap();
    let deployment = setup
        .fake
        .object("Deployment", Some("ml-prod"), "serving-api")
        .unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/serving-api@sha256:feed"
    );
}

#[tokio::test]
async fn the_policy_sees_the_objects_as_input_kubernetes_with_the_release_in_its_context() {
    let setup = setup().await;
    write_manifests(
        setup.tree.path(),
        &[("app.yaml", &deployment("registry.local/serving-api:1.4", 1))],
    );
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("release.rego"),
        "package release\nimport rego.v1\n\ndeny contains msg if {\n\tsome manifest in input.kubernetes.objects\n\tmsg := sprintf(\"%s: %s/%s (namespace %s) in %s, checked with %v\", [data.sluice.context.release, manifest.kind, manifest.metadata.name, input.kubernetes.namespace, input.kubernetes.environment, data.sluice.context.domains])\n}\n",
    )
    .unwrap();
    let environment = environment(
        "staging",
        json!({"namespace": "ml-staging", "manifests": "k8s"}),
    );
    let options = KubernetesOptions {
        api_server: Some(setup.fake.url().clone()),
        policies: Some(policies.path().to_path_buf()),
        ..KubernetesOptions::default()
    };
    let target = KubernetesTarget::new(&environment, options)
        .unwrap()
        .unwrap();
    let error = target
        .apply(&context(&environment, release(3), setup.tree.path()))
        .await
        .unwrap_err();
    let expected = format!(
        "release {0} refused by policy in staging: release.deny: {0}: Deployment/serving-api (namespace ml-staging) in staging, checked with [\"kubernetes\"]",
        release(3).id
    );
    assert!(
        matches!(&error, TargetError::Rejected(message) if message == &expected),
        "{error}"
    );
    assert_eq!(setup.fake.calls().writes(), 0);
}

fn environment_named(target: &KubernetesTarget) -> sluice::config::environment::Environment {
    environment(
        "production",
        json!({"namespace": target.config().namespace, "manifests": "k8s"}),
    )
}

#[tokio::test]
async fn moving_the_served_model_rolls_the_deployment_and_nothing_else() {
    let setup = setup().await;
    base_manifests(setup.tree.path(), "candidate", 2);
    let (target, environment) = setup.dev_target();
    // What the MLflow target reports after moving the alias, as the deployment hands it on.
    let after_model_move = |release, version: &str| {
        let mut deploy = context(&environment, release, setup.tree.path());
        deploy.applied.insert(
            "mlflow".to_owned(),
            json!({"moved": [], "serving": {"churn-classifier": version}}),
        );
        deploy
    };
    target
        .apply(&after_model_move(release(1), "3"))
        .await
        .unwrap();
    setup.fake.reset_calls();
    target
        .apply(&after_model_move(release(2), "4"))
        .await
        .unwrap();
    assert_eq!(
        setup.fake.write_log(),
        vec!["apply Deployment/ml-test/serving-api"]
    );
    let deployment = setup
        .fake
        .object("Deployment", Some("ml-test"), "serving-api")
        .unwrap();
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"]["sluice.dev/model-churn-classifier"],
        "4"
    );
}

#[tokio::test]
async fn the_diff_shows_created_changed_fields_and_the_policy_facts() {
    let setup = setup().await;
    base_manifests(setup.tree.path(), "candidate", 2);
    let (target, environment) = setup.dev_target();
    let diff = target
        .diff(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap();
    assert_eq!(diff.changes.len(), 4);
    assert!(
        diff.changes
            .iter()
            .all(|change| change.action == ChangeAction::Create)
    );
    assert_eq!(diff.facts["environment"], "dev");
    assert_eq!(diff.facts["objects"].as_array().unwrap().len(), 4);
    assert_eq!(setup.fake.calls().writes(), 0);
    target
        .apply(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap();
    base_manifests(setup.tree.path(), "candidate", 3);
    let diff = target
        .diff(&context(&environment, release(2), setup.tree.path()))
        .await
        .unwrap();
    assert_eq!(diff.changes.len(), 1, "{:?}", diff.changes);
    assert_eq!(diff.changes[0].action, ChangeAction::Update);
    assert_eq!(
        diff.changes[0].detail.as_deref(),
        Some("spec.replicas: 2 → 3")
    );
    assert_eq!(
        setup
            .fake
            .object("Deployment", Some("ml-test"), "serving-api")
            .unwrap()["spec"]["replicas"],
        2
    );
}

#[tokio::test]
async fn parse_errors_name_the_file_and_document() {
    let setup = setup().await;
    write_manifests(
        setup.tree.path(),
        &[(
            "app.yaml",
            &format!("{}---\nkind: [broken\n", config_map("a")),
        )],
    );
    let (target, environment) = setup.dev_target();
    let error = target
        .apply(&context(&environment, release(1), setup.tree.path()))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("app.yaml#2: invalid YAML"), "{error}");
}

#[tokio::test]
async fn the_example_platform_deploys_through_dev_staging_and_production() {
    // The example's overlays are kustomizations; rendering them needs `kubectl kustomize`
    // (scripts/setup-kubectl.sh installs one and scripts/test.sh names it in SLUICE_KUBECTL).
    let kubectl = sluice::targets::kubernetes::kubectl_binary();
    if std::process::Command::new(&kubectl)
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        let message = format!(
            "`{}` cannot be run, and the example's overlays need `kubectl kustomize`; run scripts/setup-kubectl.sh and set SLUICE_KUBECTL to the path it prints",
            kubectl.display()
        );
        if std::env::var("SLUICE_REQUIRE_KUBECTL").is_ok_and(|value| value == "1") {
            panic!("{message}");
        }
        eprintln!("skipped: {message}");
        return;
    }
    let setup = setup().await;
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pinned = release(1);
    pinned.images.insert(
        "serving-api".to_owned(),
        "127.0.0.1:5000/serving-api@sha256:aa11".to_owned(),
    );
    pinned.images.insert(
        "trainer".to_owned(),
        "127.0.0.1:5000/trainer@sha256:bb22".to_owned(),
    );
    for name in ["dev", "staging", "production"] {
        let text =
            std::fs::read_to_string(repository.join(format!("environments/{name}.yaml"))).unwrap();
        let environment: sluice::config::environment::Environment =
            serde_saphyr::from_str(&text).unwrap();
        let options = KubernetesOptions {
            api_server: Some(setup.fake.url().clone()),
            policies: Some(repository.join("policies/kubernetes")),
            ..KubernetesOptions::default()
        };
        let target = KubernetesTarget::new(&environment, options)
            .unwrap()
            .unwrap();
        let deploy = context(&environment, pinned.clone(), repository);
        let applied = target.apply(&deploy).await.unwrap();
        assert!(
            applied.summary.starts_with("4 objects written")
                || applied.summary.starts_with("5 objects written"),
            "{name}: {}",
            applied.summary
        );
        assert_eq!(
            target.health(&deploy).await.unwrap(),
            Health::Healthy,
            "{name}"
        );
        let namespace = target.config().namespace.clone();
        let deployment = setup
            .fake
            .object("Deployment", Some(&namespace), "serving-api")
            .unwrap();
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "127.0.0.1:5000/serving-api@sha256:aa11"
        );
    }
}
