//! Check runs, when sluice is a GitHub App: a job's check run is created once and completed
//! with its conclusion (also after a restart), a Terraform plan's policy finding is annotated at
//! the line of the resource it is about, annotations go 50 per request and a retry sends only
//! the rest, a create whose answer was lost is not repeated, and with a token jobs still report
//! commit statuses.

use super::support::{REPOSITORY, app_forge, forge, job, push_run, repository_requests, requests};
use serde_json::{Value, json};
use sluice::model::{JobRecord, Status};
use sluice::policy::PolicyContext;
use sluice::store::{MemoryOutbox, Outbox, SqliteStore};
use std::path::Path;
use std::sync::Arc;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn with_outputs(mut record: JobRecord, outputs: &[(&str, String)]) -> JobRecord {
    record.outputs = outputs
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    record
}

/// GitHub's list of the commit's check runs: `found` answers every look-up after the first
/// `empty_first` ones.
async fn mount_check_run_list(server: &MockServer, empty_first: u64, found: Value) {
    if empty_first > 0 {
        Mock::given(method("GET"))
            .and(path_regex("/commits/[0-9a-f]{40}/check-runs$"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"total_count": 0, "check_runs": []})),
            )
            .up_to_n_times(empty_first)
            .with_priority(1)
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path_regex("/commits/[0-9a-f]{40}/check-runs$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(found))
        .mount(server)
        .await;
}

async fn mount_create(server: &MockServer, id: u64) {
    Mock::given(method("POST"))
        .and(path(format!("/repos/{REPOSITORY}/check-runs")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": id})))
        .mount(server)
        .await;
}

async fn mount_update(server: &MockServer, id: u64) {
    Mock::given(method("PATCH"))
        .and(path(format!("/repos/{REPOSITORY}/check-runs/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": id})))
        .mount(server)
        .await;
}

/// The requests about check runs that carried a body (creates and updates), in order.
async fn check_run_writes(server: &MockServer) -> Vec<(String, String, Value)> {
    repository_requests(server)
        .await
        .into_iter()
        .filter(|(method, path, _)| method != "GET" && path.contains("/check-runs"))
        .collect()
}

fn annotation_lines(body: &Value) -> Vec<u64> {
    body.pointer("/output/annotations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|annotation| annotation["start_line"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_job_check_run_is_created_when_it_starts_and_completed_after_a_restart() {
    let server = MockServer::start().await;
    let directory = tempfile::tempdir().unwrap();
    let database = directory.path().join("sluice.db");
    drop(SqliteStore::open(&database).unwrap());
    mount_check_run_list(&server, 0, json!({"total_count": 0, "check_runs": []})).await;
    mount_create(&server, 41).await;
    mount_update(&server, 41).await;
    let run = push_run(vec![job("test", Status::Running, None)]);
    {
        let forge = app_forge(&server, Arc::new(SqliteStore::open(&database).unwrap())).await;
        assert!(
            forge
                .send(forge.job_report(&run, "test", Status::Running, None))
                .await
        );
    }
    // sluice restarts: a new forge over the same database.
    let forge = app_forge(&server, Arc::new(SqliteStore::open(&database).unwrap())).await;
    assert!(
        forge
            .send(forge.job_report(
                &run,
                "test",
                Status::Failed,
                Some("step `pytest` exited with 1\nsee the log"),
            ))
            .await
    );

    let sent = repository_requests(&server).await;
    let methods_and_paths: Vec<(&str, String)> = sent
        .iter()
        .map(|(method, path, _)| (method.as_str(), path.clone()))
        .collect();
    assert_eq!(
        methods_and_paths,
        vec![
            (
                "GET",
                format!(
                    "/repos/{REPOSITORY}/commits/{}/check-runs?check_name=sluice%2Fplatform%2Ftest&filter=all&per_page=100",
                    run.commit
                )
            ),
            ("POST", format!("/repos/{REPOSITORY}/check-runs")),
            ("PATCH", format!("/repos/{REPOSITORY}/check-runs/41")),
        ],
        "one check run, created once and updated after the restart without a second look-up"
    );
    let created = &sent[1].2;
    assert_eq!(created["name"], "sluice/platform/test");
    assert_eq!(created["head_sha"], json!(run.commit));
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["external_id"], "9/test");
    assert_eq!(created["details_url"], "https://sluice.example.com/runs/9");
    let completed = &sent[2].2;
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["conclusion"], "failure");
    assert_eq!(
        completed["details_url"],
        "https://sluice.example.com/runs/9"
    );
    assert_eq!(
        completed["output"]["title"],
        "failed: step `pytest` exited with 1"
    );
    assert!(
        requests(&server)
            .await
            .iter()
            .all(|(_, path, _)| !path.contains("/statuses/")),
        "an app reports check runs, not statuses"
    );
    // The check run was reached with the installation's token, not the app's own JWT.
    let authorised = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|request| request.url.path().ends_with("/check-runs"))
        .all(|request| {
            request
                .headers
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.contains("ghs_installation_token"))
        });
    assert!(authorised);
}

const MAIN_TF: &str = r#"terraform {
  required_version = ">= 1.5"
}

provider "aws" {
  region = "eu-west-1"
}

resource "aws_s3_bucket" "datasets" {
  bucket = "acme-datasets"
}

# Model artefacts, read by the serving cluster.
resource "aws_s3_bucket" "models" {
  bucket = "acme-models"
  acl    = "public-read"
}
"#;

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn a_plan_denied_by_a_policy_is_annotated_at_the_line_of_the_resource() {
    let server = MockServer::start().await;
    mount_check_run_list(&server, 0, json!({"total_count": 0, "check_runs": []})).await;
    mount_create(&server, 51).await;
    let checkout = tempfile::tempdir().unwrap();
    write(checkout.path(), "infra/envs/production/main.tf", MAIN_TF);
    let plan = json!({
        "format_version": "1.2",
        "resource_changes": [{
            "address": "aws_s3_bucket.models",
            "mode": "managed",
            "type": "aws_s3_bucket",
            "name": "models",
            "change": {
                "actions": ["create"],
                "before": null,
                "after": {"bucket": "acme-models", "acl": "public-read",
                          "tags": {"owner": "dana", "team": "ml-platform",
                                   "cost_center": "ml", "environment": "production"}}
            }
        }]
    });
    // The repository's own policies, as the terraform step evaluates them.
    let mut context = PolicyContext::at(&sluice::policy::SystemClock);
    context.environment = Some("production".to_owned());
    let evaluation = sluice::terraform::operations::check_policies(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        &plan,
        &context,
    );
    let deny = evaluation
        .denials()
        .find(|finding| finding.rule.contains("public_buckets"))
        .expect("the public-bucket policy denies the plan")
        .clone();
    let locations = sluice::terraform::locate::locate_findings(
        checkout.path(),
        "infra/envs/production",
        &evaluation.findings,
    );
    let run = push_run(vec![with_outputs(
        job("plan-production", Status::Failed, None),
        &[
            ("plan_sha256", "ab".repeat(32)),
            ("counts", "+1 ~0 -0 ±0".to_owned()),
            ("environment", "production".to_owned()),
            (
                "findings",
                serde_json::to_string(&evaluation.findings).unwrap(),
            ),
            (
                "finding_locations",
                serde_json::to_string(&locations).unwrap(),
            ),
        ],
    )]);
    let forge = app_forge(&server, Arc::new(MemoryOutbox::default())).await;
    assert!(
        forge
            .send(forge.job_report(
                &run,
                "plan-production",
                Status::Failed,
                Some("the plan for production was denied by 1 policy; fix the change or the policy, then push again"),
            ))
            .await
    );

    let writes = check_run_writes(&server).await;
    assert_eq!(writes.len(), 1);
    let created = &writes[0].2;
    assert_eq!(created["conclusion"], "failure");
    let annotations = created["output"]["annotations"].as_array().unwrap();
    let failures: Vec<&Value> = annotations
        .iter()
        .filter(|annotation| annotation["annotation_level"] == "failure")
        .collect();
    assert_eq!(
        failures,
        vec![&json!({
            "path": "infra/envs/production/main.tf",
            "start_line": 14,
            "end_line": 14,
            "annotation_level": "failure",
            "title": deny.rule,
            "message": deny.message,
        })],
        "the deny sits on `resource \"aws_s3_bucket\" \"models\"`, line 14 of main.tf"
    );
    assert_eq!(
        MAIN_TF.lines().nth(13),
        Some("resource \"aws_s3_bucket\" \"models\" {")
    );
    let title = created["output"]["title"].as_str().unwrap();
    assert!(
        title.starts_with("plan +1 ~0 -0 ±0: 1 denied by policies"),
        "{title}"
    );
    let summary = created["output"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("infra/envs/production/main\\.tf:14"),
        "{summary}"
    );
}

#[tokio::test]
async fn annotations_go_fifty_per_request_and_a_retry_sends_only_the_rest() {
    let server = MockServer::start().await;
    mount_check_run_list(&server, 0, json!({"total_count": 0, "check_runs": []})).await;
    mount_create(&server, 61).await;
    // The first further update is refused once; the retry carries on from there.
    Mock::given(method("PATCH"))
        .and(path(format!("/repos/{REPOSITORY}/check-runs/61")))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"message": "try again"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_update(&server, 61).await;
    // 120 findings of a manifest policy, each naming its file and line.
    let findings: Vec<Value> = (1..=120)
        .map(|line| {
            json!({"severity": "warn", "rule": "kubernetes.images.warn",
                   "message": format!("container {line} uses a mutable tag"),
                   "metadata": {"file": "k8s/serving.yaml", "line": line}})
        })
        .collect();
    let run = push_run(vec![with_outputs(
        job("manifests", Status::Succeeded, None),
        &[("findings", Value::Array(findings).to_string())],
    )]);
    let outbox = Arc::new(MemoryOutbox::default());
    let forge = app_forge(&server, outbox.clone()).await;
    assert!(
        !forge
            .send(forge.job_report(&run, "manifests", Status::Succeeded, None))
            .await,
        "the refused update keeps the check run in the outbox"
    );
    assert_eq!(
        forge
            .retry_outbox_at(chrono::Utc::now() + chrono::Duration::days(1))
            .await,
        1
    );
    assert!(outbox.pending().unwrap().is_empty());

    let writes = check_run_writes(&server).await;
    let sizes: Vec<usize> = writes
        .iter()
        .map(|(_, _, body)| annotation_lines(body).len())
        .collect();
    assert_eq!(
        sizes,
        vec![50, 50, 50, 20],
        "create, refused update, retried update, rest"
    );
    // What GitHub took (all but the refused request) is every annotation exactly once.
    let mut taken: Vec<u64> = [0, 2, 3]
        .iter()
        .flat_map(|index| annotation_lines(&writes[*index].2))
        .collect();
    taken.sort();
    assert_eq!(taken, (1..=120).collect::<Vec<u64>>());
    let first = &writes[0].2["output"]["annotations"][0];
    assert_eq!(first["path"], "k8s/serving.yaml");
    assert_eq!(first["annotation_level"], "warning");
    assert_eq!(writes[2].2["conclusion"], "success");
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_again_instead_of_made_twice() {
    let server = MockServer::start().await;
    // GitHub made the check run but the answer never arrived: later look-ups list it.
    mount_check_run_list(
        &server,
        1,
        json!({"total_count": 2, "check_runs": [
            {"id": 99, "external_id": "8/deploy", "output": {"annotations_count": 0}},
            {"id": 77, "external_id": "9/deploy", "output": {"annotations_count": 0}}
        ]}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/{REPOSITORY}/check-runs")))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    mount_update(&server, 77).await;
    let run = push_run(vec![job("deploy", Status::Running, None)]);
    let outbox = Arc::new(MemoryOutbox::default());
    let forge = app_forge(&server, outbox.clone()).await;
    assert!(
        !forge
            .send(forge.job_report(&run, "deploy", Status::Running, None))
            .await
    );
    assert!(
        forge
            .send(forge.job_report(&run, "deploy", Status::Succeeded, None))
            .await
    );
    // The older, undelivered state is dropped: no retry takes the check back to running.
    assert!(outbox.pending().unwrap().is_empty());
    assert_eq!(
        forge
            .retry_outbox_at(chrono::Utc::now() + chrono::Duration::days(1))
            .await,
        0
    );

    let writes = check_run_writes(&server).await;
    let posts = writes
        .iter()
        .filter(|(method, _, _)| method == "POST")
        .count();
    assert_eq!(posts, 2, "only the two tries of the first delivery create");
    let (method, path, body) = writes.last().unwrap();
    assert_eq!(
        (method.as_str(), path.as_str()),
        (
            "PATCH",
            format!("/repos/{REPOSITORY}/check-runs/77").as_str()
        )
    );
    assert_eq!(body["conclusion"], "success");
}

#[tokio::test]
async fn with_a_token_jobs_report_commit_statuses_and_no_check_run() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(
            "^/repos/Codertocat/Hello-World/statuses/[0-9a-f]{40}$",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    let (forge, _outbox) = forge(&server);
    let run = push_run(vec![job("test", Status::Running, None)]);
    assert!(
        forge
            .send(forge.job_report(&run, "test", Status::Running, None))
            .await
    );
    assert_eq!(
        requests(&server).await,
        vec![(
            "POST".to_owned(),
            format!("/repos/{REPOSITORY}/statuses/{}", run.commit),
            json!({
                "state": "pending",
                "context": "sluice/platform/test",
                "description": "running",
                "target_url": "https://sluice.example.com/runs/9",
            })
        )]
    );
}
