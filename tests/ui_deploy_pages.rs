//! The environments board, the release page and the history page, through the router in
//! process, over promotion records written straight into the store: what runs where, what waits
//! and why, approving, promoting and rolling back from the board, and who did what.

#[path = "support/ui.rs"]
mod ui;

use axum::http::StatusCode;
use futures_util::FutureExt;
use sluice::deploy::Release;
use sluice::model::access::Role;
use sluice::store::{
    DeployStore, DeploymentAction, DeploymentStatus, LockHolder, LockRequest, NewAuditEntry,
    NewDeployment, NewTerraformPlan, RequestAction, StepPhase, StepState, TerraformTarget,
};
use std::collections::BTreeMap;
use ui::{Ui, column, csrf_of};

const REPOSITORY: &str = "acme/ml-platform";
const PLAN_SHA: &str = "abababababababababababababababababababababababababababababababab";

fn release(sequence: i64, author: &str) -> Release {
    let commit = format!("{sequence}").repeat(40);
    let mut release = Release::unrecorded(REPOSITORY, &commit, "main", Some(author));
    release.id = Release::new_id(sequence, &commit);
    release.sequence = sequence;
    release.created_at = 1_700_000_000 + sequence;
    release.images = BTreeMap::from([(
        "serving-api".to_owned(),
        format!(
            "ghcr.io/acme/serving-api@sha256:{}",
            format!("{sequence}").repeat(64)
        ),
    )]);
    release.dag_tree = Some(format!("{sequence}").repeat(40));
    release.models = BTreeMap::from([(
        "production".to_owned(),
        format!("churn-model: {sequence}\n"),
    )]);
    release
}

fn id(sequence: i64) -> String {
    release(sequence, "dave").id
}

struct Seeded {
    ui: Ui,
}

impl Seeded {
    fn store(&self) -> &dyn DeployStore {
        self.ui.database.as_ref()
    }

    fn audit(
        &self,
        environment: &str,
        release: &str,
        action: &str,
        outcome: &str,
        reason: &str,
        at: i64,
    ) {
        self.store()
            .record_audit(&NewAuditEntry {
                repository: REPOSITORY,
                environment: Some(environment),
                release: Some(release),
                action,
                actor: None,
                outcome,
                reason,
                at,
            })
            .unwrap();
    }

    /// A finished automatic promotion of `release` to `environment`, every target healthy.
    fn deployed(&self, environment: &str, release: &str, at: i64) {
        let store = self.store();
        let deployment = store
            .start_deployment(&NewDeployment {
                repository: REPOSITORY.to_owned(),
                environment: environment.to_owned(),
                release: release.to_owned(),
                previous: None,
                action: DeploymentAction::Promote,
                actor: None,
                reason: Some("automatic".to_owned()),
                at,
            })
            .unwrap()
            .expect("no deployment runs there");
        self.audit(environment, release, "promote", "started", "automatic", at);
        for target in ["terraform", "kubernetes"] {
            store
                .record_step(
                    deployment,
                    &StepState {
                        target: target.to_owned(),
                        phase: StepPhase::Healthy,
                        summary: format!("{target} rolled out {release}"),
                        rollback: serde_json::Value::Null,
                        outputs: serde_json::Value::Null,
                        at: at + 5,
                    },
                )
                .unwrap();
        }
        store
            .finish_deployment(
                deployment,
                DeploymentStatus::Succeeded,
                None,
                Some((release, at + 10)),
            )
            .unwrap();
        self.audit(
            environment,
            release,
            "promote",
            "succeeded",
            "every target healthy",
            at + 10,
        );
    }
}

/// dev runs r3, staging runs r2 and holds r3 for its soak, production runs r1 and holds r2 for
/// approvals (carol gave one of two); pull request #12 holds production's Terraform lock.
fn seeded() -> Seeded {
    let ui = Ui::open();
    let now = chrono::Utc::now().timestamp();
    let seeded = Seeded { ui };
    let store = seeded.store();
    for sequence in 1..=3 {
        let mut release = release(sequence, if sequence == 3 { "erin" } else { "dave" });
        if sequence == 2 {
            release.plans = BTreeMap::from([("production".to_owned(), PLAN_SHA.to_owned())]);
        }
        assert!(store.insert_release(&release).unwrap());
    }
    let base = now - 10_000;
    for (offset, environment) in [(0, "dev"), (100, "staging"), (200, "production")] {
        seeded.deployed(environment, &id(1), base + offset);
    }
    seeded.deployed("dev", &id(2), base + 1000);
    seeded.deployed("staging", &id(2), base + 1100);
    store
        .add_approval(REPOSITORY, "production", &id(2), "carol", base + 1150)
        .unwrap();
    seeded.audit(
        "production",
        &id(2),
        "gate",
        "blocked",
        &format!(
            "approval: 1 of 2 approvals (carol); waiting for approval by anyone who did not write or land the release (`/sluice approve production {0}` on the pull request, or `sluice approve production {0}`)",
            id(2)
        ),
        base + 1200,
    );
    seeded.deployed("dev", &id(3), now - 600);
    seeded.audit(
        "staging",
        &id(3),
        "gate",
        "blocked",
        "soak: soaking: healthy for 1m00s of 10m; 9m00s to go",
        now - 60,
    );
    let target = TerraformTarget {
        repository: REPOSITORY.to_owned(),
        environment: "production".to_owned(),
        dir: "infra".to_owned(),
    };
    seeded
        .ui
        .database
        .acquire_terraform_lock(&LockRequest {
            target: target.clone(),
            holder: LockHolder {
                pull_request: Some(12),
                label: "pull request #12".to_owned(),
            },
            now: chrono::Utc::now(),
            lease: chrono::Duration::hours(1),
            queue: false,
        })
        .unwrap();
    seeded
        .ui
        .database
        .insert_terraform_plan(&NewTerraformPlan {
            target,
            workspace: "default".to_owned(),
            sha256: PLAN_SHA.to_owned(),
            commit: "2".repeat(40),
            tree: None,
            base_commit: None,
            pull_request: Some(12),
            created_at: chrono::Utc::now(),
            summary: "+ aws_s3_bucket.model_artifacts will be created".to_owned(),
            counts: "+1 ~0 -0 ±0".to_owned(),
            sealed_plan: vec![1],
            json_sha256: "cd".repeat(32),
            sealed_json: vec![2],
            lock_generation: None,
        })
        .unwrap();
    seeded
}

/// The environment's column on the board.
#[tokio::test]
async fn the_board_shows_each_environment_in_promotion_order_with_what_runs_and_what_waits() {
    let seeded = seeded();
    let page = seeded.ui.get("/environments", None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    let at = |name: &str| body.find(&format!("id=\"env-{name}\"")).unwrap();
    assert!(
        at("dev") < at("staging") && at("staging") < at("production"),
        "{body}"
    );

    let production = column(body, "production");
    assert!(
        production.contains(&format!("href=\"/releases/{}\"", id(1))),
        "{production}"
    );
    assert!(
        production.contains("111111111111"),
        "the running release's short commit"
    );
    assert!(production.contains("waiting for approval"), "{production}");
    assert!(production.contains("approved by carol"), "{production}");
    assert!(production.contains("1 of 2 still missing"), "{production}");
    assert!(
        production.contains("pull request #12"),
        "the lock's holder: {production}"
    );
    assert!(
        production.contains("Sign in to approve"),
        "a guest is asked to sign in"
    );
    assert!(!body.contains("id=\"approve-"), "a guest gets no buttons");

    let staging = column(body, "staging");
    assert!(
        staging.contains(&format!("href=\"/releases/{}\"", id(2))),
        "{staging}"
    );
    assert!(
        staging.contains("Soak") && staging.contains(" left"),
        "{staging}"
    );
    assert!(!staging.contains("waiting for approval"), "{staging}");
    assert!(
        staging.contains("kubernetes") && staging.contains("healthy"),
        "{staging}"
    );
    assert!(column(body, "dev").contains("Nothing waits at the gate."));
}

#[tokio::test]
async fn an_approver_approves_from_the_board_and_the_history_names_them() {
    let seeded = seeded();
    let ui = &seeded.ui;
    let (session, _) = ui.sign_in("alice", Role::Approver).await;
    let board = ui.get("/environments", Some(&session)).await;
    assert!(
        board.body.contains("id=\"approve-production\""),
        "{}",
        board.body
    );
    assert!(column(&board.body, "dev").contains("<label for=\"rollback-dev-release\">"));
    let csrf = csrf_of(&board.body).unwrap();
    let approved = ui
        .post_form(
            "/environments/production/approve",
            &[
                ("csrf", &csrf),
                ("release", &id(2)),
                ("repository", REPOSITORY),
            ],
            Some(&session),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let said = format!("alice approved {} for production", id(2));
    assert!(approved.body.contains(&said), "{}", approved.body);
    assert!(
        approved.body.contains("href=\"/environments"),
        "a way back to the board"
    );
    assert!(
        ui.state
            .promotion_wakeup
            .notified()
            .now_or_never()
            .is_some()
    );
    let approvals = seeded
        .store()
        .approvals(REPOSITORY, "production", &id(2))
        .unwrap();
    assert_eq!(approvals, ["carol", "alice"]);

    let history = ui.get("/history?action=approve", None).await;
    let row = history
        .body
        .split("<tr ")
        .find(|row| row.contains("data-action=\"approve\""))
        .unwrap_or_else(|| panic!("{}", history.body));
    assert!(row.contains("alice") && row.contains(&id(2)), "{row}");
    let board = ui.get("/environments", None).await;
    assert!(column(&board.body, "production").contains("approved by carol, alice"));
}

#[tokio::test]
async fn approving_is_refused_to_the_author_a_viewer_a_forged_form_and_a_guest() {
    let seeded = seeded();
    let ui = &seeded.ui;
    let fields = |csrf: &str| vec![("csrf", csrf.to_owned()), ("release", id(2))];
    let post = |fields: Vec<(&'static str, String)>, session: Option<String>| async move {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ui.post_form(
            "/environments/production/approve",
            &fields,
            session.as_deref(),
        )
        .await
    };

    let (author, author_csrf) = ui.sign_in("dave", Role::Approver).await;
    let refused = post(fields(&author_csrf), Some(author.clone())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("is the author of"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("Signed in as <strong>dave</strong>"));

    let (viewer, viewer_csrf) = ui.sign_in("vic", Role::Viewer).await;
    let board = ui.get("/environments", Some(&viewer)).await;
    assert!(
        !board.body.contains("id=\"approve-production\""),
        "no button for a viewer"
    );
    let refused = post(fields(&viewer_csrf), Some(viewer)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("needs the approver role"),
        "{}",
        refused.body
    );

    let (alice, _) = ui.sign_in("alice", Role::Approver).await;
    let forged = post(vec![("release", id(2))], Some(alice.clone())).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("CSRF"), "{}", forged.body);
    let wrong = post(fields("not-the-token"), Some(alice)).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    let guest = post(fields("anything"), None).await;
    assert_eq!(guest.status, StatusCode::UNAUTHORIZED);
    assert!(guest.body.contains("/signin"), "{}", guest.body);

    let approvals = seeded
        .store()
        .approvals(REPOSITORY, "production", &id(2))
        .unwrap();
    assert_eq!(approvals, ["carol"], "nothing refused was recorded");
}

#[tokio::test]
async fn promote_and_rollback_from_the_board_are_recorded_as_requests() {
    let seeded = seeded();
    let ui = &seeded.ui;
    let (session, csrf) = ui.sign_in("alice", Role::Approver).await;
    let promoted = ui
        .post_form(
            "/environments/staging/promote",
            &[("csrf", &csrf), ("release", &id(3))],
            Some(&session),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert!(
        promoted
            .body
            .contains(&format!("promotion of {} to staging requested", id(3))),
        "{}",
        promoted.body
    );
    let rolled = ui
        .post_form(
            "/environments/dev/rollback",
            &[
                ("csrf", &csrf),
                ("release", &id(1)),
                ("repository", REPOSITORY),
            ],
            Some(&session),
        )
        .await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    assert!(
        rolled
            .body
            .contains(&format!("rollback of dev to {} requested", id(1)))
    );

    let pending = seeded.store().pending_requests(REPOSITORY).unwrap();
    let asked: Vec<(&str, RequestAction, Option<&str>, Option<&str>)> = pending
        .iter()
        .map(|request| {
            (
                request.environment.as_str(),
                request.action,
                request.release.as_deref(),
                request.actor.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        asked,
        [
            (
                "staging",
                RequestAction::Promote,
                Some(id(3).as_str()),
                Some("alice")
            ),
            (
                "dev",
                RequestAction::Rollback,
                Some(id(1).as_str()),
                Some("alice")
            ),
        ]
    );
    let history = ui.get("/history?action=request", None).await;
    assert_eq!(
        history.body.matches("data-action=\"request\"").count(),
        2,
        "{}",
        history.body
    );
    let board = ui.get("/environments", None).await;
    assert!(
        column(&board.body, "dev").contains("alice asked"),
        "the board shows the request"
    );

    let backwards = ui
        .post_form(
            "/environments/dev/promote",
            &[("csrf", &csrf), ("release", &id(1))],
            Some(&session),
        )
        .await;
    assert_eq!(
        backwards.status,
        StatusCode::CONFLICT,
        "promotion only goes forward"
    );
    assert!(
        backwards.body.contains("sluice rollback dev"),
        "{}",
        backwards.body
    );
}

#[tokio::test]
async fn the_release_page_shows_what_it_carries_and_how_it_differs_from_what_runs() {
    let seeded = seeded();
    let page = seeded.ui.get(&format!("/releases/{}", id(2)), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains(&format!("sha256:{}", "2".repeat(64))),
        "the image digest"
    );
    assert!(body.contains(PLAN_SHA), "the plan's sha256");
    assert!(
        body.contains("+ aws_s3_bucket.model_artifacts will be created"),
        "the plan summary"
    );
    assert!(body.contains("churn-model: 2"), "the model pins");
    assert!(body.contains(&"2".repeat(40)), "the DAG tree");
    assert!(body.contains("staging runs this release."), "{body}");
    let diff_start = body
        .find("id=\"diff-production\"")
        .expect("a diff against production");
    let diff = &body[diff_start..body[diff_start..].find("</table>").unwrap() + diff_start];
    assert!(diff.contains("image serving-api"), "{diff}");
    assert!(
        diff.contains(&"1".repeat(64)) && diff.contains(&"2".repeat(64)),
        "{diff}"
    );
    assert!(
        diff.contains("plan for production") && diff.contains("no plan"),
        "{diff}"
    );
    assert!(diff.contains("model pins for production"), "{diff}");
    assert!(body.contains("id=\"diff-dev\""), "dev runs a newer release");
    assert!(body.contains("every target healthy"), "where it has been");

    let unknown = seeded.ui.get("/releases/r99-nothing", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.body.contains("/releases lists them"),
        "{}",
        unknown.body
    );

    let list = seeded.ui.get("/releases", None).await;
    let newest = list
        .body
        .find(&format!("href=\"/releases/{}\"", id(3)))
        .unwrap();
    let oldest = list
        .body
        .find(&format!("href=\"/releases/{}\"", id(1)))
        .unwrap();
    assert!(newest < oldest, "newest first");
}

#[tokio::test]
async fn the_history_filters_by_environment_action_person_and_release() {
    let seeded = seeded();
    let ui = &seeded.ui;
    let all = ui.get("/history", None).await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.body.contains("id=\"history\""));
    let newest = all.body.find("soaking: healthy").unwrap();
    let older = all.body.find("1 of 2 approvals").unwrap();
    assert!(newest < older, "newest first");

    let production = ui.get("/history?environment=production", None).await;
    assert!(production.body.contains("1 of 2 approvals"));
    assert!(
        !production.body.contains("soaking: healthy"),
        "only production"
    );
    assert!(
        production
            .body
            .contains("<option value=\"production\" selected>")
    );

    let gates = ui.get("/history?action=gate", None).await;
    assert_eq!(
        gates.body.matches("<tr data-action=").count(),
        2,
        "{}",
        gates.body
    );
    assert_eq!(gates.body.matches("data-action=\"gate\"").count(), 2);

    let release = ui
        .get(&format!("/history?release={}&action=promote", id(3)), None)
        .await;
    assert_eq!(
        release.body.matches("<tr data-action=").count(),
        2,
        "{}",
        release.body
    );

    let (session, csrf) = ui.sign_in("alice", Role::Approver).await;
    ui.post_form(
        "/environments/production/approve",
        &[("csrf", &csrf), ("release", &id(2))],
        Some(&session),
    )
    .await;
    let alice = ui.get("/history?actor=alice", None).await;
    assert_eq!(
        alice.body.matches("<tr data-action=").count(),
        1,
        "{}",
        alice.body
    );
    assert!(alice.body.contains("<label for=\"filter-actor\">"));
}

#[tokio::test]
async fn the_order_promotion_recorded_wins_over_what_the_history_suggests() {
    let seeded = seeded();
    // Promotion read an `after:` chain in which qa comes between dev and staging, and nothing
    // has reached qa yet.
    let order: Vec<String> = ["dev", "qa", "staging", "production"]
        .map(str::to_owned)
        .to_vec();
    seeded
        .ui
        .database
        .record_environment_order("acme/ml-platform", &order)
        .unwrap();
    let body = seeded.ui.get("/environments", None).await.body;
    let at = |name: &str| body.find(&format!("id=\"env-{name}\"")).unwrap();
    assert!(
        at("dev") < at("qa") && at("qa") < at("staging") && at("staging") < at("production"),
        "{body}"
    );
    let status = seeded.ui.get("/api/status", None).await.body;
    let listed: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&status)
        .unwrap()
        .iter()
        .map(|environment| environment["environment"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, order, "the API lists them in the same order");
}
