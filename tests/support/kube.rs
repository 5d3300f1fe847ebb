//! Builders for the Kubernetes target's tests: a release tree of manifests in a temporary
//! directory, environments, releases and deploy contexts.

#![allow(dead_code)]

use serde_json::{Value, json};
use sluice::config::environment::Environment;
use sluice::deploy::{DeployContext, Release};
use std::collections::BTreeMap;
use std::path::Path;

pub fn environment(name: &str, kubernetes: Value) -> Environment {
    serde_json::from_value(json!({
        "name": name,
        "kubernetes": kubernetes,
        "mlflow": {
            "tracking_uri": "http://127.0.0.1:5500",
            "models": {"churn-classifier": {"alias": name, "restart": ["deployment/serving-api"]}},
        },
    }))
    .expect("a valid environment")
}

pub fn release(sequence: i64) -> Release {
    let commit = format!("{sequence:0>40}");
    Release {
        id: Release::new_id(sequence, &commit),
        repository: "example/platform".to_owned(),
        commit,
        branch: "main".to_owned(),
        author: Some("dev".to_owned()),
        created_at: 1_700_000_000 + sequence,
        sequence,
        images: BTreeMap::new(),
        plans: BTreeMap::new(),
        dag_tree: None,
        models: BTreeMap::new(),
        config_commit: None,
        contributors: Default::default(),
    }
}

pub fn context(environment: &Environment, release: Release, tree: &Path) -> DeployContext {
    DeployContext {
        environment: environment.clone(),
        release,
        tree: tree.to_path_buf(),
        previous: None,
        applied: Default::default(),
    }
}

/// Replaces the manifests directory `k8s/` under `tree` with `files`.
pub fn write_manifests(tree: &Path, files: &[(&str, &str)]) {
    let directory = tree.join("k8s");
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    for (name, text) in files {
        std::fs::write(directory.join(name), text).unwrap();
    }
}

pub const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ml-test\n";

pub fn config_map(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: churn-config\ndata:\n  MODEL_ALIAS: {value}\n"
    )
}

pub const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: serving-api\nspec:\n  selector: {app: serving-api}\n  ports: [{port: 80, targetPort: 8080}]\n";

pub fn deployment(image: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: serving-api\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: serving-api}}}}\n  template:\n    metadata: {{labels: {{app: serving-api}}}}\n    spec:\n      containers:\n      - name: serving-api\n        image: {image}\n"
    )
}
