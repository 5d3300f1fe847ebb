//! Commit statuses: every job reports, skipped jobs report success so required checks never
//! wait, failures carry a one-line summary.

use super::support::{REPOSITORY, forge, job, push_run, requests};
use serde_json::json;
use sluice::forge::OutboxItem;
use sluice::forge::report::job_statuses;
use sluice::model::Status;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn every_job_of_a_push_run_reports_a_status_skipped_and_failed_included() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    let run = push_run(vec![
        job("build", Status::Succeeded, None),
        job("docs", Status::Skipped, Some("no matching paths")),
        job(
            "test",
            Status::Failed,
            Some("step `pytest` exited with 1\nsee the log"),
        ),
        job("deploy", Status::Queued, None),
    ]);
    let commit = run.commit.clone();
    Mock::given(method("POST"))
        .and(path_regex(
            "^/repos/Codertocat/Hello-World/statuses/[0-9a-f]{40}$",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    for status in job_statuses(&run, forge.run_url(run.id)) {
        assert!(
            forge
                .send(OutboxItem::Status {
                    repository: REPOSITORY.to_owned(),
                    commit: commit.clone(),
                    status,
                })
                .await
        );
    }
    let path = format!("/repos/Codertocat/Hello-World/statuses/{commit}");
    let status = |state: &str, job: &str, description: &str| {
        (
            "POST".to_owned(),
            path.clone(),
            json!({
                "state": state,
                "context": format!("sluice/platform/{job}"),
                "description": description,
                "target_url": "https://sluice.example.com/runs/9",
            }),
        )
    };
    assert_eq!(
        requests(&server).await,
        vec![
            status("success", "build", "succeeded"),
            status("success", "docs", "skipped: no matching paths"),
            status("failure", "test", "failed: step `pytest` exited with 1"),
            status("pending", "deploy", "queued"),
        ]
    );
}
