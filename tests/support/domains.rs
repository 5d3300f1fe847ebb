//! The four parts of sluice's policy input for a production release, each built by the Rust
//! that builds it for a deploy: a Terraform plan, the rendered Kubernetes objects, the DAG
//! folder's facts and the model decisions. Each builder can break one rule of the default
//! policies.

#![allow(dead_code)]

use serde_json::{Value, json};
use sluice::targets::airflow::{DagFacts, Validation};
use sluice::targets::kubernetes::RenderedObject;
use sluice::targets::mlflow::{ModelDecision, PromotionMode, VersionPin};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn tags() -> Value {
    json!({"owner": "ml-platform", "team": "ml-platform", "cost_center": "cc-4021",
           "environment": "production", "managed_by": "sluice"})
}

/// A production plan of the example platform's shape; `public_bucket` adds an S3 bucket with a
/// public ACL.
pub fn plan(public_bucket: bool) -> Value {
    let mut changes = vec![json!({
        "address": "module.cluster.terraform_data.control_plane", "mode": "managed",
        "type": "terraform_data", "name": "control_plane",
        "change": {"actions": ["create"], "before": null, "after": {"input":
            {"name": "ml", "budget": "large", "endpoint_public": false, "tags": tags()}}},
    })];
    if public_bucket {
        changes.push(json!({
            "address": "aws_s3_bucket.reports", "mode": "managed", "type": "aws_s3_bucket",
            "name": "reports",
            "change": {"actions": ["create"], "before": null,
                       "after": {"bucket": "reports", "acl": "public-read", "tags": tags()}},
        }));
    }
    json!({"format_version": "1.2", "terraform_version": "1.9.8", "resource_changes": changes})
}

/// `input.kubernetes` as the Kubernetes target builds it: the serving Deployment with `image`,
/// its init container pinned by digest as a release pins what it built.
pub fn kubernetes(image: &str) -> Value {
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "serving-api", "labels": {"app.kubernetes.io/managed-by": "sluice"}},
        "spec": {"template": {"spec": {
            "initContainers": [{"name": "fetch-model",
                                "image": "registry.example.com/trainer@sha256:4f2b9c"}],
            "containers": [{"name": "serving-api", "image": image}],
        }}},
    });
    let object = RenderedObject {
        api_version: "apps/v1".to_owned(),
        kind: "Deployment".to_owned(),
        name: "serving-api".to_owned(),
        namespace: Some("ml-prod".to_owned()),
        manifest,
        content_hash: "0".repeat(64),
        source: "platform/k8s/base/serving-api.yaml".to_owned(),
    };
    sluice::targets::kubernetes::policy_facts("production", "ml-prod", &[object])
}

pub const LEAKED_KEY_LINE: &str = "AWS_ACCESS_KEY_ID = \"AKIAIOSFODNN7EXAMPLE\"";

/// The example platform's batch scoring DAG, with `LEAKED_KEY_LINE` after its imports when
/// `leak` is set; returns the source and the 1-based line of the leak.
pub fn batch_score_source(leak: bool) -> (String, usize) {
    let original =
        std::fs::read_to_string(repository_root().join("platform/dags/batch_score.py")).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    let imports = lines
        .iter()
        .position(|line| line.starts_with("from airflow.sdk import"))
        .expect("batch_score.py imports airflow.sdk");
    if leak {
        lines.insert(imports + 1, LEAKED_KEY_LINE);
    }
    (lines.join("\n") + "\n", imports + 2)
}

/// `input.airflow` as the Airflow target builds it from a validation of the DAG folder.
pub fn airflow(leak: bool) -> (Value, usize) {
    let (source, leak_line) = batch_score_source(leak);
    let validation = Validation {
        airflow_version: "3.0.2".to_owned(),
        dags: vec![DagFacts {
            dag_id: "batch_score".to_owned(),
            file: "batch_score.py".to_owned(),
            owner: Some("ml-platform".to_owned()),
            schedule: Some("30 5 * * *".to_owned()),
            tags: vec!["ml".to_owned(), "churn".to_owned(), "scoring".to_owned()],
            max_active_runs: Some(1),
            description: None,
        }],
        import_errors: Vec::new(),
    };
    let manifest = BTreeMap::from([("batch_score.py".to_owned(), "ab".repeat(32))]);
    let sources = BTreeMap::from([("batch_score.py".to_owned(), source)]);
    let variables = BTreeMap::from([(
        "mlflow_tracking_uri".to_owned(),
        "http://mlflow.ml-prod:5000".to_owned(),
    )]);
    let facts = sluice::targets::airflow::policy_input(
        "production",
        "platform/dags",
        Some(&validation),
        &manifest,
        &sources,
        &variables,
    );
    (facts, leak_line)
}

/// `input.mlflow` as the MLflow target builds it: churn-classifier's `production` alias moving
/// from version 6 to 7, whose run measured `accuracy`.
pub fn mlflow(accuracy: f64) -> Value {
    let decision = ModelDecision {
        model: "churn-classifier".to_owned(),
        alias: "production".to_owned(),
        mode: PromotionMode::Alias,
        pin: VersionPin::Exact(7),
        from: Some("6".to_owned()),
        to: "7".to_owned(),
        metrics: BTreeMap::from([
            ("accuracy".to_owned(), accuracy),
            ("f1_score".to_owned(), 0.71),
        ]),
        current_metrics: BTreeMap::from([("accuracy".to_owned(), 0.79)]),
        tags: BTreeMap::from([("airflow_run_id".to_owned(), "scheduled__2025".to_owned())]),
        restart: vec!["deployment/serving-api".to_owned()],
        keep_previous_as: None,
    };
    sluice::targets::mlflow::policy_facts("production", "http://mlflow.ml-prod:5000", &[decision])
}
