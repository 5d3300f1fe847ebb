//! sluice's one policy input as a release meets it: a production document with all four domains
//! (a Terraform plan, the rendered Kubernetes objects, the DAG folder's facts and the model
//! decisions), each part built by the Rust that builds it for a deploy, judged by the default
//! policies. Exact denials for a `:latest` image, a hard-coded AWS key and a model below its
//! accuracy floor; a Terraform-only document makes only Terraform findings; a compliant
//! document makes none; and `sluice policy check --input` on the same document.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sluice::policy::{FixedClock, PolicyContext, PolicySet, Severity, load_sources};
use sluice::targets::airflow::{DagFacts, Validation};
use sluice::targets::kubernetes::RenderedObject;
use sluice::targets::mlflow::{ModelDecision, PromotionMode, VersionPin};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn default_policies() -> PolicySet {
    let sources = load_sources(&repository_root().join("policies")).expect("the policies load");
    PolicySet::compile(&sources).expect("the policies compile")
}

/// Thursday 2025-01-02 10:00 UTC: outside the production freeze.
const THURSDAY: &str = "2025-01-02T10:00:00Z";

fn production_merge() -> PolicyContext {
    let time: DateTime<Utc> = DateTime::parse_from_rfc3339(THURSDAY).unwrap().into();
    let mut context = PolicyContext::at(&FixedClock(time));
    context.environment = Some("production".to_owned());
    context.event = Some("merge".to_owned());
    context.author = Some("alice".to_owned());
    context.release = Some("r12-3f9c2ab".to_owned());
    context
}

fn tags() -> Value {
    json!({"owner": "ml-platform", "team": "ml-platform", "cost_center": "cc-4021",
           "environment": "production", "managed_by": "sluice"})
}

/// A production plan of the example platform's shape; `public_bucket` adds an S3 bucket with a
/// public ACL.
fn plan(public_bucket: bool) -> Value {
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
fn kubernetes(image: &str) -> Value {
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

const LEAKED_KEY_LINE: &str = "AWS_ACCESS_KEY_ID = \"AKIAIOSFODNN7EXAMPLE\"";

/// The example platform's batch scoring DAG, with `LEAKED_KEY_LINE` after its imports when
/// `leak` is set; returns the source and the 1-based line of the leak.
fn batch_score_source(leak: bool) -> (String, usize) {
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
fn airflow(leak: bool) -> (Value, usize) {
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
fn mlflow(accuracy: f64) -> Value {
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
        tags: BTreeMap::from([("airflow_run_id".to_owned(), "scheduled__2025".to_owned())]),
        restart: vec!["deployment/serving-api".to_owned()],
        keep_previous_as: None,
    };
    sluice::targets::mlflow::policy_facts("production", "http://mlflow.ml-prod:5000", &[decision])
}

/// The production document of one release that breaks a rule in every domain.
fn broken_release() -> (Value, usize) {
    let (airflow, leak_line) = airflow(true);
    let input = json!({
        "terraform": plan(true),
        "kubernetes": kubernetes("registry.example.com/serving-api:latest"),
        "airflow": airflow,
        "mlflow": mlflow(0.62),
    });
    (input, leak_line)
}

fn findings(input: &Value) -> Vec<(Severity, String, String)> {
    let evaluation = default_policies().evaluate(input, &production_merge());
    assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
    evaluation
        .findings
        .into_iter()
        .map(|finding| (finding.severity, finding.rule, finding.message))
        .collect()
}

fn deny(rule: &str, message: String) -> (Severity, String, String) {
    (Severity::Deny, rule.to_owned(), message)
}

const PUBLIC_BUCKET: &str = "aws_s3_bucket.reports: public storage in production: ACL `public-read`; keep buckets private and serve through signed URLs or a CDN with an origin identity";

#[test]
fn one_release_document_is_denied_in_every_domain_with_exact_messages() {
    let (input, leak_line) = broken_release();
    assert_eq!(
        findings(&input),
        [
            deny(
                "airflow.secrets.deny",
                format!("production: DAG `batch_score` (platform/dags/batch_score.py:{leak_line}) contains an AWS access key id; remove it and rotate the key"),
            ),
            deny(
                "airflow.secrets.deny",
                format!("production: DAG `batch_score` (platform/dags/batch_score.py:{leak_line}) sets a cloud credential in plain text; use an Airflow Connection or a secrets backend instead"),
            ),
            deny(
                "kubernetes.images.deny",
                "Deployment/serving-api in production: container `serving-api` image `registry.example.com/serving-api:latest` uses the moving tag `latest`; pin a version tag or a digest, or build the image in the release".to_owned(),
            ),
            deny(
                "mlflow.models.deny",
                "production: model churn-classifier version 7 has accuracy 0.62, below the floor 0.70; promote a version that meets it (floors are data.model_floors)".to_owned(),
            ),
            deny("terraform.public_buckets.deny", PUBLIC_BUCKET.to_owned()),
        ]
    );
}

#[test]
fn the_terraform_part_alone_makes_only_terraform_findings() {
    let (input, _) = broken_release();
    let alone = json!({"terraform": input["terraform"]});
    assert_eq!(
        findings(&alone),
        [deny(
            "terraform.public_buckets.deny",
            PUBLIC_BUCKET.to_owned()
        )]
    );
    // What sluice's Terraform checks pass: the plan wrapped by `terraform_input`.
    assert_eq!(
        findings(&sluice::policy::terraform_input(&input["terraform"])),
        findings(&alone)
    );
    // The other domains without Terraform: everything but the bucket.
    let mut without_terraform = input.clone();
    without_terraform["terraform"] = Value::Null;
    let rules: Vec<String> = findings(&without_terraform)
        .into_iter()
        .map(|(_, rule, _)| rule)
        .collect();
    assert_eq!(
        rules,
        [
            "airflow.secrets.deny",
            "airflow.secrets.deny",
            "kubernetes.images.deny",
            "mlflow.models.deny"
        ]
    );
}

#[test]
fn a_compliant_release_document_makes_no_finding() {
    let (airflow, _) = airflow(false);
    let input = json!({
        "terraform": plan(false),
        "kubernetes": kubernetes("registry.example.com/serving-api@sha256:9c1e7a"),
        "airflow": airflow,
        "mlflow": mlflow(0.81),
    });
    assert_eq!(findings(&input), []);
}

fn sluice(arguments: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(arguments)
        .current_dir(repository_root())
        .output()
        .expect("sluice runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn policy_check_takes_the_whole_input_and_wraps_a_bare_plan_with_a_note() {
    let directory = tempfile::tempdir().unwrap();
    let (input, _) = broken_release();
    let input_path = directory.path().join("release.json");
    std::fs::write(&input_path, input.to_string()).unwrap();
    let input_argument = input_path.display().to_string();
    let check = |file: &str, flag: &str| {
        sluice(&[
            "policy",
            "check",
            flag,
            file,
            "--env",
            "production",
            "--time",
            THURSDAY,
            "--json",
        ])
    };
    let (code, stdout, stderr) = check(&input_argument, "--input");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let document: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(
        document["domains"],
        json!(["terraform", "kubernetes", "airflow", "mlflow"])
    );
    assert_eq!(document["denials"], json!(5));

    // A plan as `terraform show -json` prints it, passed as the whole input.
    let plan_path = directory.path().join("plan.json");
    std::fs::write(&plan_path, plan(true).to_string()).unwrap();
    let plan_argument = plan_path.display().to_string();
    let (code, stdout, stderr) = check(&plan_argument, "--input");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("note: {plan_argument} is a Terraform plan (`terraform show -json`), not a whole policy input; checking it as {{\"terraform\": <plan>}}")),
        "{stderr}"
    );
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["domains"], json!(["terraform"]));
    assert_eq!(
        document["findings"][0]["message"],
        json!(PUBLIC_BUCKET),
        "{stdout}"
    );
    // The same plan with --terraform-plan: wrapped without a note.
    let (code, stdout, stderr) = check(&plan_argument, "--terraform-plan");
    assert_eq!((code, stderr.as_str()), (1, ""), "{stdout}");

    // A document none of whose keys is a domain is read by no policy: it passes, with a note.
    let stray_path = directory.path().join("stray.json");
    std::fs::write(&stray_path, json!({"resource_changes": []}).to_string()).unwrap();
    let (code, _, stderr) = check(&stray_path.display().to_string(), "--input");
    assert_eq!(code, 0);
    assert!(
        stderr.contains("has none of `terraform`, `kubernetes`, `airflow` and `mlflow`"),
        "{stderr}"
    );
}

#[test]
fn a_policy_written_for_the_old_inputs_is_refused_with_its_fix() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(
        directory.path().join("old.rego"),
        "package old\n\nimport rego.v1\n\n# conftest style: one object is the input\ndeny contains msg if {\n\tinput.kind == \"Deployment\"\n\tmsg := sprintf(\"%s: no Deployments\", [input.metadata.name])\n}\n",
    )
    .unwrap();
    let plan_path = directory.path().join("plan.json");
    std::fs::write(&plan_path, plan(false).to_string()).unwrap();
    let policies = directory.path().display().to_string();
    let (code, stdout, _) = sluice(&[
        "policy",
        "check",
        "--terraform-plan",
        &plan_path.display().to_string(),
        "--policies",
        &policies,
    ]);
    assert_eq!(code, 1, "{stdout}");
    let old = directory.path().join("old.rego").display().to_string();
    assert!(
        stdout.contains(&format!("ERROR {old}:7:2: unknown input: `input.kind` is not part of sluice's policy input; one Kubernetes object is no longer the whole input; the rendered objects are `input.kubernetes.objects` (write `some manifest in input.kubernetes.objects` and read `manifest.kind`)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "ERROR {old}:8:40: unknown input: `input.metadata`"
        )),
        "{stdout}"
    );
    let (code, stdout, _) = sluice(&["policy", "test", &policies]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("the policies do not compile; no test ran"),
        "{stdout}"
    );
}
