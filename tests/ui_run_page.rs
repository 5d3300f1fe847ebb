//! The run page, its live log stream, and cancelling and re-running, through the router in
//! process.

#[path = "support/ui.rs"]
mod ui;

use axum::http::StatusCode;
use sluice::model::access::Role;
use sluice::model::{Delivery, EventKind, Status, StepRecord};
use sluice::store::{NewJob, NewRun};
use std::collections::BTreeMap;
use ui::Ui;

fn job(name: &str, needs: &[&str], status: Status) -> NewJob {
    NewJob {
        name: name.to_owned(),
        needs: needs.iter().map(|need| need.to_string()).collect(),
        status,
        reason: None,
    }
}

fn step(index: usize, name: &str, status: Status) -> StepRecord {
    StepRecord {
        index,
        name: name.to_owned(),
        status,
        exit_code: None,
        reason: None,
        started_at: None,
        finished_at: None,
    }
}

/// Run 1: build → plan-dev → deploy-check, finished, from delivery `d-1`, with a log, a plan and
/// a policy finding. Run 2: running.
async fn seeded() -> Ui {
    let ui = Ui::open();
    let delivery = Delivery {
        id: "d-1".to_owned(),
        event: "push".to_owned(),
        repository: Some("acme/ml-platform".to_owned()),
        payload: br#"{"ref":"refs/heads/main"}"#.to_vec(),
        received_at: chrono::Utc::now(),
    };
    ui.database.insert_delivery(&delivery).unwrap();
    let new_run = |status: Status, jobs: Vec<NewJob>| NewRun {
        repository: "acme/ml-platform".to_owned(),
        commit: "c".repeat(40),
        git_ref: "refs/heads/main".to_owned(),
        event: EventKind::Push,
        pipeline: "platform".to_owned(),
        status,
        reason: None,
        concurrency_group: None,
        plan: "{}".to_owned(),
        jobs,
    };
    ui.database
        .complete_delivery(
            "d-1",
            "1 run(s)",
            &[new_run(
                Status::Failed,
                vec![
                    job("build", &[], Status::Succeeded),
                    job("plan-dev", &["build"], Status::Failed),
                    job("deploy-check", &["plan-dev"], Status::Skipped),
                ],
            )],
        )
        .unwrap();
    ui.database
        .insert_runs(&[new_run(
            Status::Running,
            vec![job("build", &[], Status::Running)],
        )])
        .unwrap();
    ui.database
        .upsert_step(1, "build", &step(0, "checkout", Status::Succeeded))
        .unwrap();
    ui.database
        .upsert_step(1, "build", &step(1, "docker build", Status::Succeeded))
        .unwrap();
    ui.database
        .append_log(
            1,
            "plan-dev",
            "\u{1b}[32mPlan:\u{1b}[0m 2 to add <b>bold?</b>\n",
        )
        .unwrap();
    ui.database
        .append_log(1, "plan-dev", "second line\n")
        .unwrap();
    ui.database
        .set_job_outputs(
            1,
            "plan-dev",
            &BTreeMap::from([
                ("summary".to_owned(), "+ aws_s3_bucket.features".to_owned()),
                ("plan_sha256".to_owned(), "f".repeat(64)),
                ("counts".to_owned(), "(+1 ~0 -0)".to_owned()),
                ("environment".to_owned(), "dev".to_owned()),
                (
                    "findings".to_owned(),
                    r#"[{"severity":"deny","rule":"terraform.tags.deny","message":"aws_s3_bucket.features has no cost-centre tag"}]"#
                        .to_owned(),
                ),
            ]),
        )
        .unwrap();
    ui
}

#[tokio::test]
async fn the_run_page_lays_jobs_out_by_their_needs_with_steps_and_the_log() {
    let ui = seeded().await;
    let page = ui.get("/runs/1", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    // Three columns in needs order.
    let build = body.find("id=\"job-build\"").unwrap();
    let plan = body.find("id=\"job-plan-dev\"").unwrap();
    let check = body.find("id=\"job-deploy-check\"").unwrap();
    assert!(build < plan && plan < check);
    assert_eq!(body.matches("class=\"column\"").count(), 3, "{body}");
    assert!(body.contains("docker build"));
    // The failed job is shown by default, its log rendered with colours and escaped.
    assert!(body.contains("Log of plan-dev"));
    assert!(
        body.contains("<span class=\"ansi-32\">Plan:</span> 2 to add &lt;b&gt;bold?&lt;/b&gt;"),
        "{body}"
    );
    assert!(body.contains("second line"));
    // A finished job's log is complete: nothing to stream.
    assert!(!body.contains("data-log-stream"));
    assert!(body.contains("Terraform plan"));
    assert!(body.contains("+ aws_s3_bucket.features"));
    assert!(body.contains("has no cost-centre tag"));
}

#[tokio::test]
async fn a_running_job_s_log_is_streamed_and_a_finished_one_ends() {
    let ui = seeded().await;
    let page = ui.get("/runs/2", None).await;
    assert!(
        page.body
            .contains("data-log-stream=\"/runs/2/jobs/build/log/stream\""),
        "{}",
        page.body
    );
    let stream = ui.get("/runs/1/jobs/plan-dev/log/stream", None).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert!(stream.body.contains("event: chunk"));
    assert!(stream.body.contains("id: 1"));
    assert!(stream.body.contains("second line"));
    assert!(stream.body.contains("event: end"));
    let resumed = ui
        .get("/runs/1/jobs/plan-dev/log/stream?after=1", None)
        .await;
    assert!(!resumed.body.contains("Plan:"), "{}", resumed.body);
    assert!(resumed.body.contains("second line"));
}

#[tokio::test]
async fn unknown_runs_and_jobs_are_404_pages_that_say_where_to_look() {
    let ui = seeded().await;
    let missing = ui.get("/runs/99", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("there is no run 99"));
    assert!(missing.body.contains("<html"), "an error is a page");
    let not_a_number = ui.get("/runs/abc", None).await;
    assert_eq!(not_a_number.status, StatusCode::NOT_FOUND);
    let job = ui.get("/runs/1?job=nope", None).await;
    assert_eq!(job.status, StatusCode::NOT_FOUND);
    assert!(job.body.contains("run 1 has no job `nope`"));
    let stream = ui.get("/runs/1/jobs/nope/log/stream", None).await;
    assert_eq!(stream.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_a_signed_in_approver_with_the_form_token_cancels_a_run() {
    let ui = seeded().await;
    let guest = ui.post_form("/runs/2/cancel", &[("csrf", "x")], None).await;
    assert_eq!(guest.status, StatusCode::UNAUTHORIZED);
    let (viewer, viewer_csrf) = ui.sign_in("vic", Role::Viewer).await;
    let refused = ui
        .post_form("/runs/2/cancel", &[("csrf", &viewer_csrf)], Some(&viewer))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("needs the approver role"),
        "{}",
        refused.body
    );
    let (approver, csrf) = ui.sign_in("alice", Role::Approver).await;
    let page = ui.get("/runs/2", Some(&approver)).await;
    assert!(page.body.contains("Cancel run"));
    let forged = ui.post_form("/runs/2/cancel", &[], Some(&approver)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("CSRF"));
    assert!(ui.database.run_cancel_requests(&[2]).unwrap().is_empty());
    let cancelled = ui
        .post_form("/runs/2/cancel", &[("csrf", &csrf)], Some(&approver))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert!(cancelled.body.contains("alice asked to cancel run 2"));
    assert_eq!(
        ui.database.run_cancel_requests(&[2]).unwrap(),
        vec![(2, "alice".to_owned())]
    );
    let finished = ui
        .post_form("/runs/1/cancel", &[("csrf", &csrf)], Some(&approver))
        .await;
    assert_eq!(finished.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn re_running_stores_one_delivery_that_carries_the_original() {
    let ui = seeded().await;
    let (approver, csrf) = ui.sign_in("alice", Role::Approver).await;
    let still_running = ui
        .post_form("/runs/2/rerun", &[("csrf", &csrf)], Some(&approver))
        .await;
    assert_eq!(still_running.status, StatusCode::CONFLICT);
    let first = ui
        .post_form("/runs/1/rerun", &[("csrf", &csrf)], Some(&approver))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = ui
        .post_form("/runs/1/rerun", &[("csrf", &csrf)], Some(&approver))
        .await;
    assert!(again.body.contains("already asked to run again"));
    let stored = ui
        .database
        .delivery("rerun:d-1:run-1")
        .unwrap()
        .expect("stored");
    assert_eq!(stored.event, "sluice_rerun");
    let carried: serde_json::Value = serde_json::from_slice(&stored.payload).unwrap();
    assert_eq!(carried["pipeline"], "platform");
    assert_eq!(carried["requested_by"], "alice");
    assert_eq!(carried["delivery"]["event"], "push");
}
