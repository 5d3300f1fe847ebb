//! Drift of the Kubernetes target against the in-process fake API server: what an operator sees
//! after someone edits, deletes or adds objects behind sluice's back (through the API, with
//! their own field manager), what heal puts back, that an unreachable API server is never a
//! clean report, and what a check costs in API calls.

#[path = "support/kube.rs"]
mod kube_support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube_support::*;
use serde_json::json;
use sluice::config::environment::Environment;
use sluice::deploy::{DeployContext, Drift, Target, TargetError};
use sluice::targets::kubernetes::fake::{FakeApiServer, spawn_fake_api_server};
use sluice::targets::kubernetes::{KubernetesOptions, KubernetesTarget};

struct Setup {
    fake: FakeApiServer,
    tree: tempfile::TempDir,
    target: KubernetesTarget,
    environment: Environment,
    client: kube::Client,
}

/// A fake API server holding the dev environment as sluice deployed release 1 there.
async fn deployed() -> Setup {
    let (url, fake) = spawn_fake_api_server().await;
    let tree = tempfile::tempdir().unwrap();
    write_manifests(
        tree.path(),
        &[
            ("namespace.yaml", NAMESPACE),
            (
                "app.yaml",
                &format!(
                    "{}---\n{}---\n{}",
                    config_map("candidate"),
                    SERVICE,
                    deployment("registry.local/serving-api:1.0", 2)
                ),
            ),
        ],
    );
    let environment = environment(
        "dev",
        json!({"namespace": "ml-test", "manifests": "k8s", "prune": true}),
    );
    let options = KubernetesOptions {
        api_server: Some(url.clone()),
        ..KubernetesOptions::default()
    };
    let target = KubernetesTarget::new(&environment, options)
        .unwrap()
        .unwrap();
    let config = kube::Config::new(url.as_str().trim_end_matches('/').parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let setup = Setup {
        fake,
        tree,
        target,
        environment,
        client,
    };
    setup.target.apply(&setup.context()).await.unwrap();
    setup
}

impl Setup {
    fn context(&self) -> DeployContext {
        context(&self.environment, release(1), self.tree.path())
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), "ml-test")
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), "ml-test")
    }

    async fn drifts(&self) -> Vec<Drift> {
        self.target.drift(&self.context()).await.unwrap().drifts
    }
}

fn edited_by(manager: &str) -> PatchParams {
    PatchParams {
        field_manager: Some(manager.to_owned()),
        ..PatchParams::default()
    }
}

fn drift(object: &str, expected: &str, actual: &str) -> Drift {
    Drift {
        object: object.to_owned(),
        expected: expected.to_owned(),
        actual: actual.to_owned(),
    }
}

#[tokio::test]
async fn a_release_just_deployed_has_no_drift() {
    let setup = deployed().await;
    let report = setup.target.drift(&setup.context()).await.unwrap();
    assert_eq!(report.drifts, []);
    assert!(report.is_clean());
    assert_eq!(report.calls.get("dry-run"), None);
}

#[tokio::test]
async fn a_field_another_manager_changed_is_reported_with_that_manager_and_healed() {
    let setup = deployed().await;
    setup
        .deployments()
        .patch(
            "serving-api",
            &edited_by("kubectl-edit"),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let report = setup.target.drift(&setup.context()).await.unwrap();
    assert_eq!(
        report.drifts,
        [drift(
            "apps/v1 Deployment ml-test/serving-api: spec.replicas",
            "2",
            "5, set by kubectl-edit"
        )]
    );

    let healed = setup.target.heal(&setup.context(), &report).await.unwrap();
    assert_eq!(healed.summary, "1 object re-applied, 0 deleted");
    let live = setup.deployments().get("serving-api").await.unwrap();
    assert_eq!(live.spec.unwrap().replicas, Some(2));
    assert_eq!(setup.drifts().await, []);
}

#[tokio::test]
async fn a_deleted_object_and_an_extra_labelled_one_are_reported_and_healed() {
    let setup = deployed().await;
    setup
        .config_maps()
        .delete("churn-config", &DeleteParams::default())
        .await
        .unwrap();
    let stray: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "stray", "labels": {
            "app.kubernetes.io/managed-by": "sluice", "sluice.dev/environment": "dev"}},
        "data": {"left": "behind"},
    }))
    .unwrap();
    let created = PostParams {
        field_manager: Some("kubectl-create".to_owned()),
        ..PostParams::default()
    };
    setup.config_maps().create(&created, &stray).await.unwrap();
    // Labelled for another environment: not this one's business.
    let mut other = stray.clone();
    other.metadata.name = Some("staging-only".to_owned());
    other
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("sluice.dev/environment".to_owned(), "staging".to_owned());
    setup.config_maps().create(&created, &other).await.unwrap();

    let report = setup.target.drift(&setup.context()).await.unwrap();
    assert_eq!(
        report.drifts,
        [
            drift("v1 ConfigMap ml-test/churn-config", "present", "absent"),
            drift("v1 ConfigMap ml-test/stray", "absent", "present"),
        ]
    );

    let healed = setup.target.heal(&setup.context(), &report).await.unwrap();
    assert_eq!(healed.summary, "1 object re-applied, 1 deleted");
    let config = setup.config_maps().get("churn-config").await.unwrap();
    assert_eq!(config.data.unwrap()["MODEL_ALIAS"], "candidate");
    assert!(
        setup
            .config_maps()
            .get_opt("stray")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        setup
            .config_maps()
            .get_opt("staging-only")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(setup.drifts().await, []);
}

#[tokio::test]
async fn an_api_server_answering_503_is_unavailable_never_clean() {
    let setup = deployed().await;
    setup.fake.set_reads_unavailable(true);
    let error = setup.target.drift(&setup.context()).await.unwrap_err();
    let TargetError::Unavailable(message) = error else {
        panic!("expected Unavailable, got {error:?}");
    };
    let server = setup.fake.url().as_str().trim_end_matches('/').to_owned();
    assert!(
        message.contains(&format!("the API server at {server}")),
        "{message}"
    );
    assert!(message.contains("503 ServiceUnavailable"), "{message}");

    setup.fake.set_reads_unavailable(false);
    assert_eq!(setup.drifts().await, []);
}

#[tokio::test]
async fn a_check_lists_each_kind_once_and_dry_runs_only_the_drifted_objects() {
    let setup = deployed().await;
    setup
        .deployments()
        .patch(
            "serving-api",
            &edited_by("kubectl-set"),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "serving-api", "image": "registry.local/serving-api:hotfix"}]}}}})),
        )
        .await
        .unwrap();
    setup
        .config_maps()
        .patch(
            "churn-config",
            &edited_by("kubectl-edit"),
            &Patch::Merge(json!({"data": {"MODEL_ALIAS": "champion"}})),
        )
        .await
        .unwrap();
    setup.fake.reset_calls();

    let report = setup.target.drift(&setup.context()).await.unwrap();
    assert_eq!(
        report.drifts,
        [
            drift(
                "v1 ConfigMap ml-test/churn-config: data.MODEL_ALIAS",
                "\"candidate\"",
                "\"champion\", set by kubectl-edit"
            ),
            drift(
                "apps/v1 Deployment ml-test/serving-api: spec.template.spec.containers[name=serving-api].image",
                "\"registry.local/serving-api:1.0\"",
                "\"registry.local/serving-api:hotfix\", set by kubectl-set"
            ),
        ]
    );
    let calls = setup.fake.calls();
    assert_eq!(calls.dry_run, 2, "one dry run per drifted object");
    assert_eq!(calls.get, 0, "no GET per object");
    assert_eq!(calls.writes(), 0, "a check changes nothing");
    let lists = setup.fake.lists_per_resource();
    assert!(lists.contains_key("deployments") && lists.contains_key("configmaps"));
    for (resource, count) in &lists {
        assert_eq!(*count, 1, "{resource} listed {count} times");
    }
    assert_eq!(report.calls["list"], calls.list);
    assert_eq!(report.calls["dry-run"], 2);
}

#[tokio::test]
async fn an_object_that_lost_sluices_labels_is_compared_not_reported_missing() {
    let setup = deployed().await;
    setup
        .config_maps()
        .patch(
            "churn-config",
            &edited_by("kubectl-label"),
            &Patch::Merge(json!({"metadata": {"labels": {"sluice.dev/environment": null}}})),
        )
        .await
        .unwrap();
    setup.fake.reset_calls();
    let report = setup.target.drift(&setup.context()).await.unwrap();
    assert_eq!(
        report.drifts,
        [drift(
            "v1 ConfigMap ml-test/churn-config: metadata.labels[\"sluice.dev/environment\"]",
            "\"dev\"",
            "absent"
        )]
    );
    assert_eq!(
        setup.fake.calls().get,
        1,
        "one GET, for the unlisted object"
    );
    setup.target.heal(&setup.context(), &report).await.unwrap();
    assert_eq!(setup.drifts().await, []);
}

#[tokio::test]
async fn the_served_model_annotation_follows_what_the_model_target_applied() {
    let setup = deployed().await;
    let mut serving = setup.context();
    serving.applied.insert(
        "mlflow".to_owned(),
        json!({"serving": {"churn-classifier": "7"}}),
    );
    setup.target.apply(&serving).await.unwrap();
    assert_eq!(setup.target.drift(&serving).await.unwrap().drifts, []);
    setup
        .deployments()
        .patch(
            "serving-api",
            &edited_by("kubectl-edit"),
            &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {
                "sluice.dev/model-churn-classifier": "6"}}}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        setup.target.drift(&serving).await.unwrap().drifts,
        [drift(
            "apps/v1 Deployment ml-test/serving-api: spec.template.metadata.annotations[\"sluice.dev/model-churn-classifier\"]",
            "\"7\"",
            "\"6\", set by kubectl-edit"
        )]
    );
}
