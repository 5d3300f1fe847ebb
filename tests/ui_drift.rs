//! The environments board's drift section and `GET /api/drift`, through the router in process,
//! over drift checks written straight into the store: what differs, the Terraform plan kept for
//! review with who may apply it, and a check that could not run, which is never "no drift".

#[path = "support/ui.rs"]
mod ui;

use ui::column;

use axum::http::StatusCode;
use sluice::deploy::Release;
use sluice::store::Finding;

const REPOSITORY: &str = "acme/ml-platform";
const PLAN_SHA: &str = "abababababababababababababababababababababababababababababababab";

fn id(sequence: i64) -> String {
    Release::new_id(sequence, &format!("{sequence}").repeat(40))
}

#[tokio::test]
async fn the_board_shows_each_environments_drift_and_a_check_that_could_not_run() {
    let ui = ui::Ui::open();
    let store = ui.database.as_ref();
    for sequence in [1, 2] {
        let commit = format!("{sequence}").repeat(40);
        let mut release = Release::unrecorded(REPOSITORY, &commit, "main", Some("dave"));
        release.id = id(sequence);
        release.sequence = sequence;
        store.insert_release(&release).unwrap();
    }
    let order = [
        "dev".to_owned(),
        "staging".to_owned(),
        "production".to_owned(),
    ];
    store.record_environment_order(REPOSITORY, &order).unwrap();
    let object = "apps/v1 Deployment ml-staging/serving-api: spec.replicas";
    let drifts = vec![(
        object.to_owned(),
        "2".to_owned(),
        "5, set by kubectl-edit".to_owned(),
    )];
    let review =
        serde_json::json!({"plan": PLAN_SHA, "counts": "+0 ~1 -0 ±0", "who_may_apply": "an admin"});
    store
        .record_drift_check(
            REPOSITORY,
            "staging",
            "kubernetes",
            &id(2),
            &Finding::Checked {
                drifts,
                review: None,
            },
            1_700_000_100,
        )
        .unwrap();
    store
        .record_drift_check(
            REPOSITORY,
            "staging",
            "terraform",
            &id(2),
            &Finding::Checked {
                drifts: vec![(
                    "terraform_data.bucket: input".into(),
                    "\"a\"".into(),
                    "\"b\"".into(),
                )],
                review: Some(review),
            },
            1_700_000_100,
        )
        .unwrap();
    store
        .record_drift_check(
            REPOSITORY,
            "production",
            "mlflow",
            &id(1),
            &Finding::CouldNotCheck(
                "mlflow at http://127.0.0.1:5500 answered 503 Service Unavailable".into(),
            ),
            1_700_000_200,
        )
        .unwrap();
    let page = ui.get("/environments", None).await;
    let staging = column(&page.body, "staging");
    assert!(staging.contains("<h3>Drift</h3>"), "{staging}");
    assert!(
        staging.contains(object) && staging.contains("5, set by kubectl-edit"),
        "{staging}"
    );
    assert!(
        staging.contains(&format!("Plan kept for review: <code>{PLAN_SHA}</code>")),
        "{staging}"
    );
    assert!(staging.contains("Who may apply it: an admin"), "{staging}");
    let production = column(&page.body, "production");
    assert!(
        production.contains("mlflow: could not check: mlflow at http://127.0.0.1:5500 answered 503 Service Unavailable"),
        "{production}"
    );
    assert!(
        !production.contains("no drift"),
        "could not check is never no drift: {production}"
    );
    assert!(column(&page.body, "dev").contains("Not checked yet"));
    let api = ui.get("/api/drift?environment=staging", None).await;
    assert_eq!(api.status, StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(listed[0]["domains"][0]["domain"], "kubernetes");
    assert_eq!(listed[0]["domains"][0]["drift"][0]["object"], object);
    assert_eq!(listed[0]["domains"][1]["review"]["plan"], PLAN_SHA);
}

#[tokio::test]
async fn an_approver_checks_drift_from_the_board_and_a_viewer_gets_no_button() {
    use sluice::deploy::reconcile::drift::{DomainDrift, EnvironmentDrift};
    use sluice::model::access::Role;
    use sluice::store::CheckOutcome;
    let mut ui = ui::Ui::open();
    let commit = "1".repeat(40);
    let mut release = Release::unrecorded(REPOSITORY, &commit, "main", Some("dave"));
    release.id = id(1);
    ui.database.insert_release(&release).unwrap();
    ui.database
        .record_environment_order(REPOSITORY, &["staging".to_owned()])
        .unwrap();
    let (asks, mut asked) = tokio::sync::mpsc::channel(1);
    ui.state.drift_asks = Some(asks);
    // The promotion service's side: one check of staging, answered with a heal.
    let service = tokio::spawn(async move {
        let ask = asked.recv().await.unwrap();
        let environment = ask.environment.clone().unwrap();
        let answer = EnvironmentDrift {
            environment: environment.clone(),
            release: Some(id(1)),
            skipped: None,
            domains: vec![DomainDrift {
                domain: "kubernetes".into(),
                outcome: CheckOutcome::Clean,
                drifts: Vec::new(),
                reason: None,
                healed: Some(sluice::deploy::reconcile::drift::Healed {
                    drifts: vec![sluice::deploy::Drift {
                        object: "apps/v1 Deployment ml/serving-api: spec.replicas".into(),
                        expected: "2".into(),
                        actual: "5".into(),
                    }],
                    summary: "1 object re-applied, 0 deleted".into(),
                }),
                review: None,
                calls: Default::default(),
            }],
        };
        ask.reply.send(Ok(vec![answer])).unwrap();
        (environment, ask.heal.is_none())
    });

    let (viewer, _) = ui.sign_in("victor", Role::Viewer).await;
    let board = ui.get("/environments", Some(&viewer)).await;
    assert!(
        !board.body.contains("id=\"drift-staging\""),
        "a viewer gets no button"
    );
    let (approver, csrf) = ui.sign_in("alice", Role::Approver).await;
    let board = ui.get("/environments", Some(&approver)).await;
    assert!(
        board.body.contains("id=\"drift-staging\""),
        "{}",
        board.body
    );
    let forged = ui
        .post_form(
            "/environments/staging/drift",
            &[("csrf", "forged")],
            Some(&approver),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let checked = ui
        .post_form(
            "/environments/staging/drift",
            &[("csrf", &csrf)],
            Some(&approver),
        )
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert!(
        checked.body.contains("kubernetes: healed 1; no drift"),
        "{}",
        checked.body
    );
    assert_eq!(service.await.unwrap(), ("staging".to_owned(), true));
}
