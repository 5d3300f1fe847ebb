//! sluice's one policy input as a release meets it: a production document with all four domains
//! (a Terraform plan, the rendered Kubernetes objects, the DAG folder's facts and the model
//! decisions), each part built by the Rust that builds it for a deploy, judged by the default
//! policies. Exact denials for a `:latest` image, a hard-coded AWS key and a model below its
//! accuracy floor; a Terraform-only document makes only Terraform findings; a compliant
//! document makes none; and `sluice policy check --input` on the same document.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sluice::policy::{FixedClock, PolicyContext, PolicySet, Severity, load_sources};
use std::path::PathBuf;

#[path = "support/domains.rs"]
mod domains;
use domains::{airflow, kubernetes, mlflow, plan};
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
