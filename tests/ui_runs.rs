//! The runs page and signing in, through the router in process.

#[path = "support/ui.rs"]
mod ui;

use axum::http::StatusCode;
use sluice::model::access::Role;
use sluice::model::{EventKind, Status};
use sluice::server::ui::UiRead;
use sluice::store::{CommitSummary, NewJob, NewRun};
use ui::Ui;

fn run(pipeline: &str, commit: &str, git_ref: &str, event: EventKind, status: Status) -> NewRun {
    NewRun {
        repository: "acme/ml-platform".to_owned(),
        commit: commit.to_owned(),
        git_ref: git_ref.to_owned(),
        event,
        pipeline: pipeline.to_owned(),
        status,
        reason: None,
        concurrency_group: None,
        plan: "{}".to_owned(),
        jobs: vec![
            NewJob {
                name: "build".to_owned(),
                needs: vec![],
                status,
                reason: None,
            },
            NewJob {
                name: "plan-dev".to_owned(),
                needs: vec!["build".to_owned()],
                status: Status::Queued,
                reason: None,
            },
        ],
    }
}

fn seeded() -> Ui {
    let ui = Ui::open();
    let main = "a".repeat(40);
    let feature = "b".repeat(40);
    ui.database
        .insert_runs(&[
            run(
                "platform",
                &main,
                "refs/heads/main",
                EventKind::Merge,
                Status::Succeeded,
            ),
            run(
                "platform",
                &feature,
                "refs/heads/feature/tags",
                EventKind::PullRequest,
                Status::Running,
            ),
        ])
        .unwrap();
    ui.database
        .record_commits(&[CommitSummary {
            repository: "acme/ml-platform".to_owned(),
            sha: feature.clone(),
            title: "Tag every bucket with its cost centre".to_owned(),
            author: "Dana Reviewer".to_owned(),
            committed_at: 1_700_000_000,
        }])
        .unwrap();
    ui
}

#[tokio::test]
async fn the_runs_page_lists_runs_newest_first_with_their_commit_and_jobs() {
    let ui = seeded();
    let page = ui.get("/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let newer = page.body.find("#2").expect("run 2 is listed");
    let older = page.body.find("#1").expect("run 1 is listed");
    assert!(newer < older, "newest first");
    assert!(page.body.contains("bbbbbbbbbbbb"), "short sha");
    assert!(page.body.contains("Tag every bucket with its cost centre"));
    assert!(page.body.contains("Dana Reviewer"));
    assert!(page.body.contains("plan-dev"));
    assert!(page.body.contains("Reading as a guest"));
}

#[tokio::test]
async fn filters_narrow_the_runs_and_a_bad_filter_says_what_is_allowed() {
    let ui = seeded();
    let merges = ui.get("/?event=merge", None).await;
    assert!(merges.body.contains("href=\"/runs/1\""));
    assert!(!merges.body.contains("href=\"/runs/2\""));
    let branch = ui.get("/?branch=feature/tags&fragment=rows", None).await;
    assert!(branch.body.contains("href=\"/runs/2\""));
    assert!(!branch.body.contains("href=\"/runs/1\""));
    assert!(!branch.body.contains("<html"), "a fragment is only rows");
    let bad = ui.get("/?status=exploded", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("status `exploded` is not one of"),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn signing_in_with_a_personal_token_names_the_person_and_their_role() {
    let ui = seeded();
    let (session, csrf) = ui.sign_in("alice", Role::Approver).await;
    assert!(!csrf.is_empty());
    let page = ui.get("/", Some(&session)).await;
    assert!(
        page.body
            .contains("Signed in as <strong>alice</strong> (approver)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("approve releases you did not write"));
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_strict() {
    let ui = seeded();
    let form = ui.get("/signin", None).await;
    let set = form
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
}

#[tokio::test]
async fn an_unknown_token_and_the_bootstrap_token_do_not_sign_in() {
    let ui = seeded();
    let form = ui.get("/signin", None).await;
    let check = form.cookie("sluice_signin").unwrap();
    let value = check.split_once('=').unwrap().1.to_owned();
    let unknown = ui
        .post_form(
            "/signin",
            &[("token", "sluice_nope"), ("csrf", &value)],
            Some(&check),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(
        unknown.body.contains("sluice token create"),
        "{}",
        unknown.body
    );
    let bootstrap = ui
        .post_form(
            "/signin",
            &[("token", "bootstrap-secret"), ("csrf", &value)],
            Some(&check),
        )
        .await;
    assert_eq!(bootstrap.status, StatusCode::UNAUTHORIZED);
    assert!(
        bootstrap.body.contains("no person behind it"),
        "{}",
        bootstrap.body
    );
    let forged = ui
        .post_form(
            "/signin",
            &[("token", "sluice_nope"), ("csrf", "guess")],
            Some(&check),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn where_reading_needs_a_session_a_guest_is_sent_to_sign_in() {
    let ui = Ui::with_read(UiRead::SignedIn);
    let page = ui.get("/runs/1?job=build", None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        Some("/signin?next=%2Fruns%2F1%3Fjob%3Dbuild")
    );
    let (session, _) = ui.sign_in("vic", Role::Viewer).await;
    assert_eq!(ui.get("/", Some(&session)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_needs_the_form_token_and_ends_the_session() {
    let ui = seeded();
    let (session, csrf) = ui.sign_in("alice", Role::Viewer).await;
    let refused = ui.post_form("/signout", &[], Some(&session)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("CSRF token"), "{}", refused.body);
    let out = ui
        .post_form("/signout", &[("csrf", &csrf)], Some(&session))
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let page = ui.get("/", Some(&session)).await;
    assert!(page.body.contains("Reading as a guest"));
}

#[tokio::test]
async fn where_reading_needs_a_session_the_json_api_needs_a_token_or_a_session_too() {
    let ui = Ui::with_read(UiRead::SignedIn);
    let guest = ui.get("/api/runs", None).await;
    assert_eq!(guest.status, StatusCode::UNAUTHORIZED);
    assert!(guest.body.contains("sign in at /signin"), "{}", guest.body);
    assert_eq!(
        ui.get("/api/runs/1/jobs/build/log", None).await.status,
        StatusCode::UNAUTHORIZED,
        "logs are not open either"
    );
    let (session, _) = ui.sign_in("vic", Role::Viewer).await;
    assert_eq!(
        ui.get("/api/runs", Some(&session)).await.status,
        StatusCode::OK
    );
    let with_token = ui
        .send(
            axum::http::Request::get("/api/releases")
                .header("authorization", "Bearer sluice_test_vic")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_ne!(
        with_token.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        with_token.body
    );
    let wrong = ui
        .send(
            axum::http::Request::get("/api/runs")
                .header("authorization", "Bearer sluice_nope")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // Where reading is open, nothing is asked.
    assert_eq!(seeded().get("/api/runs", None).await.status, StatusCode::OK);
}
