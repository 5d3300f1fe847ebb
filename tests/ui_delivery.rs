//! The delivery metrics page and its JSON, through the router in process, on promotion records
//! seeded through `DeployStore` with known times before now.

#[path = "support/ui.rs"]
mod ui;

use axum::http::StatusCode;
use sluice::model::Release;
use sluice::store::{
    CommitSummary, DeployStore, DeploymentAction, DeploymentStatus, NewAuditEntry, NewDeployment,
};
use ui::Ui;

const REPOSITORY: &str = "acme/ml-platform";
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sha(n: u8) -> String {
    format!("{n:x}").repeat(40)
}

/// Release `r{n}` of commit `sha(n)`, cut at `created_at`.
fn release(store: &dyn DeployStore, n: u8, created_at: i64) -> String {
    let mut release = Release::unrecorded(REPOSITORY, &sha(n), "main", Some("dana"));
    release.id = Release::new_id(i64::from(n), &sha(n));
    release.sequence = i64::from(n);
    release.created_at = created_at;
    assert!(store.insert_release(&release).unwrap());
    release.id
}

/// A deployment that ran five minutes and ended at `finished_at`.
fn deploy(
    store: &dyn DeployStore,
    environment: &str,
    release: &str,
    action: DeploymentAction,
    status: DeploymentStatus,
    finished_at: i64,
) -> i64 {
    let id = store
        .start_deployment(&NewDeployment {
            repository: REPOSITORY.to_owned(),
            environment: environment.to_owned(),
            release: release.to_owned(),
            previous: None,
            action,
            actor: None,
            reason: None,
            at: finished_at - 300,
        })
        .unwrap()
        .expect("nothing else runs there");
    let running = (status == DeploymentStatus::Succeeded).then_some(release);
    store
        .finish_deployment_at(id, status, None, finished_at, running)
        .unwrap();
    id
}

fn reject(store: &dyn DeployStore, environment: &str, release: &str, at: i64) {
    store.reject_release(REPOSITORY, release, "failed").unwrap();
    store
        .record_audit(&NewAuditEntry {
            repository: REPOSITORY,
            environment: Some(environment),
            release: Some(release),
            action: "reject",
            actor: None,
            outcome: "recorded",
            reason: "",
            at,
        })
        .unwrap();
}

/// dev: four successful changes in the window (lead times 3h, 1h, 2h, 5h) and one long before.
/// staging: r1, r2 rolled back, r3, r4 rejected by a person 1h after and rolled back in 14m.
/// prod: r3 failed, not restored.
fn seeded() -> Ui {
    use DeploymentAction::{Promote, Rollback};
    use DeploymentStatus::{Failed, RolledBack, Succeeded};
    let ui = Ui::open();
    let store: &dyn DeployStore = ui.database.as_ref();
    let n = now();
    let r0 = release(store, 10, n - 101 * DAY);
    let r1 = release(store, 1, n - 21 * DAY + HOUR);
    let r2 = release(store, 2, n - 14 * DAY + 30 * 60);
    let r3 = release(store, 3, n - 7 * DAY);
    let r4 = release(store, 4, n - 3 * DAY + HOUR);
    let commit = |n: u8, at: i64| CommitSummary {
        repository: REPOSITORY.to_owned(),
        sha: sha(n),
        title: format!("change {n}"),
        author: "Dana".to_owned(),
        committed_at: at,
    };
    // r3's commit was never recorded: its lead time counts from the release.
    ui.database
        .record_commits(&[
            commit(1, n - 21 * DAY),
            commit(2, n - 14 * DAY),
            commit(4, n - 3 * DAY),
        ])
        .unwrap();
    deploy(store, "dev", &r0, Promote, Succeeded, n - 100 * DAY);
    deploy(
        store,
        "dev",
        &r1,
        Promote,
        Succeeded,
        n - 21 * DAY + 3 * HOUR,
    );
    deploy(
        store,
        "staging",
        &r1,
        Promote,
        Succeeded,
        n - 21 * DAY + 5 * HOUR,
    );
    deploy(store, "dev", &r2, Promote, Succeeded, n - 14 * DAY + HOUR);
    deploy(
        store,
        "staging",
        &r2,
        Promote,
        RolledBack,
        n - 14 * DAY + 3 * HOUR,
    );
    reject(store, "staging", &r2, n - 14 * DAY + 3 * HOUR);
    deploy(
        store,
        "dev",
        &r3,
        Promote,
        Succeeded,
        n - 7 * DAY + 2 * HOUR,
    );
    deploy(
        store,
        "staging",
        &r3,
        Promote,
        Succeeded,
        n - 7 * DAY + 4 * HOUR,
    );
    deploy(store, "prod", &r3, Promote, Failed, n - 5 * DAY);
    reject(store, "prod", &r3, n - 5 * DAY);
    deploy(
        store,
        "dev",
        &r4,
        Promote,
        Succeeded,
        n - 3 * DAY + 5 * HOUR,
    );
    deploy(
        store,
        "staging",
        &r4,
        Promote,
        Succeeded,
        n - 3 * DAY + 6 * HOUR,
    );
    reject(store, "staging", &r4, n - 3 * DAY + 7 * HOUR);
    deploy(
        store,
        "staging",
        &r3,
        Rollback,
        Succeeded,
        n - 3 * DAY + 7 * HOUR + 14 * 60,
    );
    ui
}

/// The page's section for `environment`, up to the next one.
fn section<'a>(body: &'a str, environment: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"delivery-{environment}\""))
        .unwrap_or_else(|| panic!("no section for {environment}: {body}"));
    let rest = &body[start..];
    let end = rest.find("</section>").expect("the section ends");
    &rest[..end]
}

/// The heading levels in the order they appear.
fn headings(body: &str) -> Vec<u8> {
    body.match_indices("<h")
        .filter_map(|(at, _)| body[at + 2..].chars().next()?.to_digit(10))
        .map(|level| level as u8)
        .collect()
}

#[tokio::test]
async fn the_page_shows_each_environments_four_measures_in_promotion_order() {
    let ui = seeded();
    let page = ui.get("/metrics/delivery", None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    let at = |environment: &str| {
        body.find(&format!("id=\"delivery-{environment}\""))
            .unwrap()
    };
    assert!(at("dev") < at("staging") && at("staging") < at("prod"));

    let dev = section(body, "dev");
    assert!(dev.contains("<strong>0.3 per week</strong> · 4 successful deployments in 12 weeks"));
    assert!(
        dev.contains("<strong>median 2h 30m</strong> · p90 5h 00m"),
        "{dev}"
    );
    assert!(dev.contains("<strong>0% (0 of 4)</strong>"), "{dev}");
    assert!(dev.contains("<strong>no incidents</strong>"), "{dev}");
    assert!(
        dev.contains("release cut (commit time unknown)"),
        "r3's lead time"
    );

    let staging = section(body, "staging");
    assert!(
        staging.contains("<strong>0.3 per week</strong> · 3 successful deployments in 12 weeks")
    );
    assert!(
        staging.contains("<strong>median 5h 00m</strong> · p90 6h 00m"),
        "{staging}"
    );
    assert!(
        staging.contains("<strong>50% (2 of 4)</strong>"),
        "{staging}"
    );
    assert!(staging.contains("rolled back</span>") && staging.contains("rejected</span>"));
    // Incidents of 7d 1h and 14m: the median is their mean, 3d 12h 37m.
    assert!(
        staging.contains("<strong>median 3d 12h</strong>"),
        "{staging}"
    );
    assert!(staging.contains("<td>7d 1h</td>") && staging.contains("<td>14m 00s</td>"));

    let prod = section(body, "prod");
    assert!(prod.contains("<strong>0 per week</strong> · 0 successful deployments in 12 weeks"));
    assert!(
        prod.contains("<strong>no successful deployments</strong>"),
        "{prod}"
    );
    assert!(prod.contains("<strong>100% (1 of 1)</strong>"), "{prod}");
    assert!(prod.contains("<strong>not restored yet</strong>") && prod.contains("still open"));
    assert!(!body.contains("id=\"delivery-empty\""));
}

#[tokio::test]
async fn every_environment_has_its_charts_with_a_text_alternative_beside_them() {
    let ui = seeded();
    let body = ui.get("/metrics/delivery", None).await.body;
    for environment in ["dev", "staging"] {
        let section = section(&body, environment);
        assert_eq!(section.matches("<svg").count(), 2, "{section}");
        assert_eq!(section.matches("role=\"img\"").count(), 2);
        assert_eq!(section.matches("<rect").count(), 12, "a bar per week");
        assert!(section.contains("Successful deployments per week</caption>"));
        assert!(section.contains("Each deployment's lead time"));
    }
    let dev = section(&body, "dev");
    assert_eq!(dev.matches("<circle").count(), 4, "a point per deployment");
    assert!(dev.contains("aria-label=\"Bar chart of successful deployments to dev in each week of the last 12 weeks: 4 in all, at most 2 in one week\""));
    // prod has no successful deployment, so no lead time to draw.
    assert_eq!(section(&body, "prod").matches("<svg").count(), 1);
    assert_eq!(headings(&body)[0], 1);
    for pair in headings(&body).windows(2) {
        assert!(
            pair[1] <= pair[0] + 1,
            "a heading level is skipped: {pair:?}"
        );
    }
    assert_eq!(
        headings(&body).iter().filter(|level| **level == 2).count(),
        3
    );
    assert_eq!(
        headings(&body).iter().filter(|level| **level == 3).count(),
        12
    );
}

#[tokio::test]
async fn the_json_gives_the_same_numbers() {
    let ui = seeded();
    let answer = ui
        .get("/api/metrics/delivery?repository=acme/ml-platform", None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["repository"], REPOSITORY);
    assert_eq!(json["window"]["weeks"], 12);
    let environments = json["environments"].as_array().unwrap();
    let names: Vec<&str> = environments
        .iter()
        .map(|environment| environment["environment"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    let (dev, staging, prod) = (&environments[0], &environments[1], &environments[2]);
    let weeks: Vec<u64> = dev["frequency"]["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|week| week["deployments"].as_u64().unwrap())
        .collect();
    assert_eq!(weeks, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2]);
    assert_eq!(dev["frequency"]["total"], 4);
    assert_eq!(dev["lead_time"]["median_seconds"], 9000);
    assert_eq!(dev["lead_time"]["p90_seconds"], 18000);
    assert_eq!(staging["lead_time"]["median_seconds"], 18000);
    let failure = &staging["change_failure"];
    assert_eq!(failure["failed"], 2);
    assert_eq!(failure["attempted"], 4);
    assert_eq!(failure["percent"], 50);
    let kinds: Vec<&str> = failure["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failed| failed["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rolled_back", "rejected"]);
    let incidents: Vec<i64> = staging["restore"]["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|incident| incident["seconds"].as_i64().unwrap())
        .collect();
    assert_eq!(incidents, [7 * DAY + HOUR, 14 * 60]);
    assert_eq!(staging["restore"]["median_seconds"], 304_620);
    assert_eq!(prod["change_failure"]["percent"], 100);
    assert_eq!(
        prod["restore"]["incidents"][0]["seconds"],
        serde_json::Value::Null
    );
    assert_eq!(prod["restore"]["median_seconds"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_shorter_window_counts_only_its_weeks() {
    let ui = seeded();
    let json: serde_json::Value =
        serde_json::from_str(&ui.get("/api/metrics/delivery?weeks=1", None).await.body).unwrap();
    assert_eq!(json["window"]["weeks"], 1);
    let staging = &json["environments"][1];
    assert_eq!(staging["environment"], "staging");
    // Only r3 (7 days less 4 hours ago) and r4 fall in the last week; r2's failure is older.
    assert_eq!(staging["frequency"]["total"], 2);
    assert_eq!(staging["frequency"]["per_week"], 2.0);
    assert_eq!(staging["change_failure"]["attempted"], 2);
    assert_eq!(staging["change_failure"]["percent"], 50);
    assert_eq!(staging["restore"]["median_seconds"], 14 * 60);
    let page = ui.get("/metrics/delivery?weeks=1", None).await;
    let staging = section(&page.body, "staging");
    assert!(staging.contains("<strong>2 per week</strong> · 2 successful deployments in 1 week"));
    assert!(
        staging.contains("<strong>50% (1 of 2)</strong>"),
        "{staging}"
    );
    assert!(
        staging.contains("<strong>median 14m 00s</strong>"),
        "{staging}"
    );
    let bad = ui.get("/metrics/delivery?weeks=0", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("from 1 to 104"), "{}", bad.body);
    let bad = ui.get("/api/metrics/delivery?weeks=many", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn before_any_deployment_the_page_says_so() {
    let ui = Ui::open();
    let page = ui.get("/metrics/delivery", None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"delivery-empty\""));
    assert!(page.body.contains("No deployments yet: "), "{}", page.body);
    assert!(!page.body.contains("<svg"));
    let json: serde_json::Value =
        serde_json::from_str(&ui.get("/api/metrics/delivery", None).await.body).unwrap();
    assert_eq!(json["repository"], serde_json::Value::Null);
    assert_eq!(json["environments"], serde_json::json!([]));

    // A release cut but never deployed is still nothing to measure.
    release(ui.database.as_ref(), 1, now() - DAY);
    let page = ui.get("/metrics/delivery", None).await;
    assert!(page.body.contains("No deployments yet: "), "{}", page.body);
    assert!(
        page.body
            .contains("How <strong>acme/ml-platform</strong> delivers")
    );
}

#[tokio::test]
async fn an_environment_without_deployments_in_the_window_says_so() {
    let ui = Ui::open();
    let store: &dyn DeployStore = ui.database.as_ref();
    let r1 = release(store, 1, now() - 40 * DAY);
    deploy(
        store,
        "dev",
        &r1,
        DeploymentAction::Promote,
        DeploymentStatus::Succeeded,
        now() - 30 * DAY,
    );
    let page = ui.get("/metrics/delivery?weeks=1", None).await;
    let dev = section(&page.body, "dev");
    assert!(
        dev.contains("No deployments to dev in the last week."),
        "{dev}"
    );
    assert!(!dev.contains("<svg"));
}

#[tokio::test]
async fn with_several_repositories_one_is_chosen() {
    let ui = seeded();
    let mut other = Release::unrecorded("acme/other", &sha(9), "main", None);
    other.id = Release::new_id(1, &sha(9));
    ui.database.insert_release(&other).unwrap();
    let api = ui.get("/api/metrics/delivery", None).await;
    assert_eq!(api.status, StatusCode::CONFLICT);
    assert!(
        api.body.contains("acme/ml-platform, acme/other"),
        "{}",
        api.body
    );
    let page = ui.get("/metrics/delivery", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("choose one above"), "{}", page.body);
    assert!(page.body.contains("<option value=\"acme/other\">"));
    let chosen = ui
        .get("/metrics/delivery?repository=acme/ml-platform", None)
        .await;
    assert!(chosen.body.contains("id=\"delivery-staging\""));
}

#[test]
fn the_store_keeps_the_finish_time_given_and_reads_one_action_since_a_time() {
    let ui = Ui::open();
    let store: &dyn DeployStore = ui.database.as_ref();
    let r1 = release(store, 1, 1_000);
    let failed = deploy(
        store,
        "dev",
        &r1,
        DeploymentAction::Promote,
        DeploymentStatus::Failed,
        5_000,
    );
    let done = deploy(
        store,
        "dev",
        &r1,
        DeploymentAction::Manual,
        DeploymentStatus::Succeeded,
        9_000,
    );
    let deployments = store.deployments(REPOSITORY, None).unwrap();
    let finished: Vec<(i64, Option<i64>)> =
        deployments.iter().map(|d| (d.id, d.finished_at)).collect();
    assert_eq!(finished, [(failed, Some(5_000)), (done, Some(9_000))]);
    let states = store.environment_states(REPOSITORY).unwrap();
    assert_eq!(
        (states[0].release.as_str(), states[0].healthy_since),
        (r1.as_str(), 9_000)
    );
    reject(store, "dev", &r1, 4_000);
    reject(store, "prod", &r1, 6_000);
    store
        .record_audit(&NewAuditEntry {
            repository: REPOSITORY,
            environment: Some("dev"),
            release: Some(&r1),
            action: "gate",
            actor: None,
            outcome: "blocked",
            reason: "soak",
            at: 7_000,
        })
        .unwrap();
    let rejections = store.audit_of_action(REPOSITORY, "reject", 5_000).unwrap();
    let seen: Vec<(Option<&str>, i64)> = rejections
        .iter()
        .map(|entry| (entry.environment.as_deref(), entry.at))
        .collect();
    assert_eq!(seen, [(Some("prod"), 6_000)]);
    assert_eq!(
        store
            .audit_of_action(REPOSITORY, "reject", 0)
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .audit_of_action("acme/other", "reject", 0)
            .unwrap()
            .is_empty()
    );
}
