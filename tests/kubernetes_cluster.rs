//! The Kubernetes target's scenarios on a real cluster (kind, k3d, minikube), opt-in: set
//! `SLUICE_TEST_KUBECONFIG` to a kubeconfig file (and `SLUICE_TEST_KUBE_CONTEXT` to pick a
//! context). Without it the test prints why it is skipped and passes. Everything is created in a
//! fresh namespace `sluice-test-<pid>`, which is pruned at the end. Write counts come from what
//! `apply` reports, since a real API server keeps no call counters for us.

#[path = "support/kube.rs"]
mod kube_support;

use kube_support::*;
use serde_json::json;
use sluice::deploy::{Health, Target, TargetError};
use sluice::targets::kubernetes::{KubernetesOptions, KubernetesTarget};
use std::time::{Duration, Instant};

const PAUSE_1: &str = "registry.k8s.io/pause:3.9";

fn written(applied: &sluice::deploy::Applied) -> usize {
    applied.outputs["written"].as_array().map_or(0, Vec::len)
}

/// Polls health until it is not progressing, for at most three minutes.
async fn settled_health(
    target: &KubernetesTarget,
    context: &sluice::deploy::DeployContext,
) -> Health {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let health = target.health(context).await.unwrap();
        if !matches!(health, Health::Progressing(_)) || Instant::now() > deadline {
            return health;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn manifests(
    tree: &std::path::Path,
    namespace: &str,
    alias: &str,
    image: &str,
    with_service: bool,
    deadline: u32,
) {
    let namespace_object =
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n");
    let deployment = deployment(image, 1).replace(
        "spec:\n  replicas",
        &format!("spec:\n  progressDeadlineSeconds: {deadline}\n  replicas"),
    );
    let mut app = format!("{}---\n{deployment}", config_map(alias));
    if with_service {
        app = format!("{app}---\n{SERVICE}");
    }
    write_manifests(
        tree,
        &[("namespace.yaml", &namespace_object), ("app.yaml", &app)],
    );
}

#[tokio::test]
async fn scenarios_on_a_real_cluster() {
    let Ok(kubeconfig) = std::env::var("SLUICE_TEST_KUBECONFIG") else {
        eprintln!(
            "skipped: set SLUICE_TEST_KUBECONFIG to a kubeconfig of a disposable cluster (kind, k3d, minikube) to run the Kubernetes target on it"
        );
        return;
    };
    let namespace = format!("sluice-test-{}", std::process::id());
    let section = |prune_namespaces: bool, timeout: &str| {
        json!({
            "namespace": namespace, "manifests": "k8s", "prune": true, "prune_namespaces": prune_namespaces,
            "kubeconfig": kubeconfig, "context": std::env::var("SLUICE_TEST_KUBE_CONTEXT").ok(),
            "health": {"timeout": timeout},
        })
    };
    let tree = tempfile::tempdir().unwrap();
    let environment = environment("clustertest", section(false, "3m"));
    let options = KubernetesOptions {
        policies: Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/kubernetes"),
        ),
        ..KubernetesOptions::default()
    };
    let target = KubernetesTarget::new(&environment, options.clone())
        .unwrap()
        .unwrap();

    // First sync creates all.
    manifests(tree.path(), &namespace, "candidate", PAUSE_1, true, 600);
    let first = context(&environment, release(1), tree.path());
    let applied = target.apply(&first).await.unwrap();
    assert_eq!(written(&applied), 4, "{}", applied.summary);
    assert_eq!(settled_health(&target, &first).await, Health::Healthy);

    // Unchanged sync writes nothing.
    let applied = target
        .apply(&context(&environment, release(2), tree.path()))
        .await
        .unwrap();
    assert_eq!(written(&applied), 0, "{}", applied.summary);

    // One change writes one object.
    manifests(tree.path(), &namespace, "staging", PAUSE_1, true, 600);
    let applied = target
        .apply(&context(&environment, release(3), tree.path()))
        .await
        .unwrap();
    assert_eq!(
        applied.outputs["written"],
        json!([format!("ConfigMap/{namespace}/churn-config")])
    );

    // A removed object is pruned.
    manifests(tree.path(), &namespace, "staging", PAUSE_1, false, 600);
    let applied = target
        .apply(&context(&environment, release(4), tree.path()))
        .await
        .unwrap();
    assert_eq!(
        applied.outputs["pruned"],
        json!([format!("Service/{namespace}/serving-api")])
    );

    // A failed rollout (an image that does not exist, a short progress deadline) rolls back.
    manifests(
        tree.path(),
        &namespace,
        "broken",
        "registry.invalid/none:1",
        false,
        10,
    );
    let broken = context(&environment, release(5), tree.path());
    let applied = target.apply(&broken).await.unwrap();
    let health = settled_health(&target, &broken).await;
    assert!(matches!(health, Health::Degraded(_)), "{health:?}");
    target.rollback(&broken, &applied.rollback).await.unwrap();
    manifests(tree.path(), &namespace, "staging", PAUSE_1, false, 600);
    let restored = context(&environment, release(4), tree.path());
    assert_eq!(settled_health(&target, &restored).await, Health::Healthy);

    // `:latest` is refused in production.
    let production = environment_for("production", section(false, "3m"));
    let production_target = KubernetesTarget::new(&production, options.clone())
        .unwrap()
        .unwrap();
    manifests(
        tree.path(),
        &namespace,
        "staging",
        "registry.k8s.io/pause:latest",
        false,
        600,
    );
    let error = production_target
        .apply(&context(&production, release(6), tree.path()))
        .await
        .unwrap_err();
    assert!(matches!(error, TargetError::Rejected(_)), "{error}");

    // Clean up: render nothing and prune the namespace too.
    write_manifests(tree.path(), &[]);
    let cleanup_environment = environment_for("clustertest", section(true, "3m"));
    let cleanup = KubernetesTarget::new(&cleanup_environment, options)
        .unwrap()
        .unwrap();
    cleanup
        .apply(&context(&cleanup_environment, release(7), tree.path()))
        .await
        .unwrap();
}

fn environment_for(
    name: &str,
    section: serde_json::Value,
) -> sluice::config::environment::Environment {
    environment(name, section)
}
