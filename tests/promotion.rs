//! Promotion through dev → staging → production with recording targets: the order of targets
//! inside an environment, gates (soak on a clock the test moves, approvals that refuse the author,
//! a freeze window), supersession by a newer release, no older release over a newer one, and a
//! failed rollout rolled back automatically.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sluice::config::environment::{Environment, FreezeWindow, Gates};
use sluice::deploy::Release;
use sluice::deploy::execute::HealthSettings;
use sluice::deploy::gates::StaticTeams;
use sluice::deploy::reconcile::Reconciler;
use sluice::deploy::recording::{RecordedCall, RecordingTarget};
use sluice::store::SqliteStore;
use sluice::store::{DeployRequest, DeployStore, RequestAction};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

mod support;

use support::recording::{Recording, TestClock, Trees};

fn environment(name: &str, after: Option<&str>, gates: Gates) -> Environment {
    Environment {
        name: name.into(),
        after: after.map(str::to_owned),
        branch: None,
        description: None,
        gates,
        drift: Default::default(),
        targets: Default::default(),
        vars: Default::default(),
    }
}

struct Platform {
    _directory: tempfile::TempDir,
    calls: PathBuf,
    store: Arc<SqliteStore>,
    clock: Arc<TestClock>,
    reconciler: Reconciler,
}

/// A Wednesday morning in Amsterdam, far from the weekend freeze.
fn wednesday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

fn platform(production_gates: Gates, start: DateTime<Utc>) -> Platform {
    let directory = tempfile::tempdir().unwrap();
    let calls = directory.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let store = Arc::new(SqliteStore::open(&directory.path().join("sluice.db")).unwrap());
    let clock = Arc::new(TestClock(Mutex::new(start)));
    let reconciler = Reconciler {
        store: store.clone(),
        repository: "acme/platform".into(),
        environments: vec![
            environment("production", Some("staging"), production_gates),
            environment("dev", None, Gates::default()),
            environment(
                "staging",
                Some("dev"),
                Gates {
                    soak: Some("10m".into()),
                    ..Gates::default()
                },
            ),
        ],
        targets: Arc::new(Recording(calls.clone())),
        trees: Arc::new(Trees(directory.path().to_path_buf())),
        clock: clock.clone(),
        teams: Arc::new(StaticTeams(
            [("example/leads".to_owned(), vec!["carol".to_owned()])]
                .into_iter()
                .collect(),
        )),
        health: HealthSettings {
            poll: std::time::Duration::from_millis(5),
            timeout: std::time::Duration::from_secs(30),
            ..Default::default()
        },
    };
    Platform {
        _directory: directory,
        calls,
        store,
        clock,
        reconciler,
    }
}

fn release(sequence: i64, author: &str) -> Release {
    let commit = format!("{sequence:0>40}");
    Release {
        id: Release::new_id(sequence, &commit),
        repository: "acme/platform".into(),
        commit,
        branch: "main".into(),
        author: Some(author.into()),
        created_at: 0,
        sequence,
        images: Default::default(),
        plans: Default::default(),
        dag_tree: None,
        models: Default::default(),
        config_commit: None,
        contributors: Default::default(),
    }
}

impl Platform {
    fn land(&self, sequence: i64, author: &str) -> String {
        let release = release(sequence, author);
        assert!(self.store.insert_release(&release).unwrap());
        release.id
    }

    async fn pass(&self) -> sluice::deploy::reconcile::PassReport {
        self.reconciler.pass().await.unwrap()
    }

    fn running(&self) -> Vec<(String, String)> {
        self.store
            .environment_states("acme/platform")
            .unwrap()
            .into_iter()
            .map(|state| (state.environment, state.release))
            .collect()
    }

    fn runs(&self, environment: &str) -> Option<String> {
        self.running()
            .into_iter()
            .find(|(name, _)| name == environment)
            .map(|(_, release)| release)
    }

    fn applies(&self, environment: &str) -> Vec<(String, String)> {
        RecordingTarget::calls(&self.calls)
            .into_iter()
            .filter(|call| call.call == "apply" && call.environment == environment)
            .map(|call| (call.target, call.release))
            .collect()
    }

    fn calls(&self) -> Vec<RecordedCall> {
        RecordingTarget::calls(&self.calls)
    }

    fn hold(&self, environment: &str, kind: &str) -> PathBuf {
        let path = self.calls.join(format!("hold-{environment}-{kind}"));
        std::fs::write(&path, "").unwrap();
        path
    }

    fn fail(&self, environment: &str, kind: &str, release: &str) {
        std::fs::write(
            self.calls.join(format!("fail-{environment}-{kind}")),
            release,
        )
        .unwrap();
    }

    fn history(&self, environment: &str) -> Vec<String> {
        self.store
            .audit("acme/platform", Some(environment))
            .unwrap()
            .into_iter()
            .map(|entry| {
                format!(
                    "{} {} {}: {}",
                    entry.action,
                    entry.outcome,
                    entry.release.unwrap_or_default(),
                    entry.reason
                )
            })
            .collect()
    }
}

fn no_production_gates() -> Gates {
    Gates::default()
}

#[tokio::test]
async fn inside_an_environment_targets_apply_in_order_each_after_the_previous_is_healthy() {
    let platform = platform(no_production_gates(), wednesday());
    let first = platform.land(1, "alice");
    platform.pass().await;
    let dev_calls: Vec<String> = platform
        .calls()
        .into_iter()
        .filter(|call| call.environment == "dev")
        .map(|call| format!("{} {}", call.call, call.target.as_str()))
        .collect();
    assert_eq!(
        dev_calls,
        [
            "apply terraform",
            "health terraform",
            "apply mlflow",
            "health mlflow",
            "apply kubernetes",
            "health kubernetes",
            "apply airflow",
            "health airflow"
        ],
        "infrastructure first, then the models the serving workloads restart for, DAGs last"
    );
    assert_eq!(platform.runs("dev"), Some(first.clone()));
    // Staging soaks 10 minutes after dev became healthy; nothing reaches it yet.
    assert_eq!(platform.runs("staging"), None);
    assert!(platform.applies("staging").is_empty());
}

#[tokio::test]
async fn staging_waits_for_its_soak_and_production_for_an_approval_that_is_not_the_authors() {
    let production = Gates {
        approvals: 1,
        approvers: vec!["@example/leads".into()],
        ..Gates::default()
    };
    let platform = platform(production, wednesday());
    let first = platform.land(1, "alice");
    platform.pass().await;
    platform.clock.advance(Duration::minutes(9));
    let report = platform.pass().await;
    assert_eq!(platform.runs("staging"), None);
    assert!(
        report
            .blocked
            .iter()
            .any(|(environment, _, reasons)| environment == "staging"
                && reasons[0].contains("soaking")),
        "{report:?}"
    );

    platform.clock.advance(Duration::minutes(1));
    let report = platform.pass().await;
    assert_eq!(platform.runs("staging"), Some(first.clone()));
    let production_block = report
        .blocked
        .iter()
        .find(|(environment, ..)| environment == "production")
        .expect("production waits");
    assert!(
        production_block.2[0].contains("0 of 1 approvals"),
        "{production_block:?}"
    );

    // The author approving does not count, nor does someone outside the team.
    platform
        .store
        .add_approval("acme/platform", "production", &first, "alice", 0)
        .unwrap();
    platform
        .store
        .add_approval("acme/platform", "production", &first, "bob", 0)
        .unwrap();
    platform.pass().await;
    let report = platform.pass().await;
    assert_eq!(platform.runs("production"), None, "{report:?}");
    let reasons = &report.blocked[0].2[0];
    assert!(
        reasons.contains("alice (the release's author)")
            && reasons.contains(
                "bob (not in @example/leads; @example/leads: not listed under `teams:`, per the server configuration)"
            ),
        "{reasons}"
    );

    platform
        .store
        .add_approval("acme/platform", "production", &first, "carol", 0)
        .unwrap();
    platform.pass().await;
    assert_eq!(platform.runs("production"), Some(first.clone()));
    let history = platform.history("production");
    assert!(
        history
            .iter()
            .any(|line| line.starts_with("gate blocked") && line.contains("approval")),
        "{history:#?}"
    );
    assert!(
        history
            .iter()
            .any(|line| line.starts_with("gate passed") && line.contains("carol")),
        "{history:#?}"
    );
    assert!(
        history
            .iter()
            .any(|line| line.starts_with("promote succeeded")),
        "{history:#?}"
    );
    // A held gate is recorded when its reason changes, not on every pass: the first block and
    // the one that lists the approvals not counted.
    assert_eq!(
        history
            .iter()
            .filter(|line| line.starts_with("gate blocked"))
            .count(),
        2,
        "{history:#?}"
    );
}

#[tokio::test]
async fn a_freeze_window_holds_production_until_it_ends() {
    let production = Gates {
        freeze: vec![FreezeWindow {
            from: "friday 12:00".into(),
            to: "monday 06:00".into(),
            timezone: Some("Europe/Amsterdam".into()),
            reason: Some("no production deploys over the weekend".into()),
        }],
        ..Gates::default()
    };
    // Friday 11:50 UTC = 12:50 in Amsterdam.
    let friday = Utc.with_ymd_and_hms(2026, 11, 27, 11, 50, 0).unwrap();
    let platform = platform(production, friday);
    let first = platform.land(1, "alice");
    platform.pass().await;
    platform.clock.advance(Duration::minutes(10));
    platform.pass().await;
    let report = platform.pass().await;
    assert_eq!(platform.runs("staging"), Some(first.clone()));
    assert_eq!(platform.runs("production"), None);
    assert!(
        report.blocked[0].2[0].contains("no production deploys over the weekend"),
        "{report:?}"
    );
    // Monday 05:00 UTC = 06:00 in Amsterdam: the window is over.
    platform
        .clock
        .advance(Duration::hours(65) + Duration::minutes(10));
    platform.pass().await;
    assert_eq!(platform.runs("production"), Some(first));
}

#[tokio::test]
async fn a_newer_release_supersedes_one_waiting_at_a_gate_and_the_older_never_deploys_there() {
    let platform = platform(no_production_gates(), wednesday());
    let first = platform.land(1, "alice");
    platform.pass().await;
    platform.clock.advance(Duration::minutes(5));
    let second = platform.land(2, "bob");
    platform.pass().await;
    assert_eq!(platform.runs("dev"), Some(second.clone()));
    platform.clock.advance(Duration::minutes(10));
    platform.pass().await;
    platform.pass().await;
    assert_eq!(platform.runs("staging"), Some(second.clone()));
    assert_eq!(platform.runs("production"), Some(second.clone()));
    for environment in ["staging", "production"] {
        assert!(
            platform
                .applies(environment)
                .iter()
                .all(|(_, release)| *release == second),
            "{environment} must never receive {first}: {:?}",
            platform.applies(environment)
        );
    }
}

#[tokio::test]
async fn an_older_release_recorded_late_never_replaces_a_newer_one() {
    let platform = platform(no_production_gates(), wednesday());
    let newer = platform.land(5, "alice");
    platform.pass().await;
    let older = platform.land(3, "bob");
    platform.pass().await;
    assert_eq!(platform.runs("dev"), Some(newer));
    assert!(
        platform
            .applies("dev")
            .iter()
            .all(|(_, release)| *release != older)
    );
}

#[tokio::test]
async fn a_failed_rollout_rolls_the_environment_back_and_stops_the_promotion() {
    let platform = platform(no_production_gates(), wednesday());
    let good = platform.land(1, "alice");
    platform.pass().await;
    platform.clock.advance(Duration::minutes(10));
    platform.pass().await;
    platform.pass().await;
    assert_eq!(platform.runs("production"), Some(good.clone()));

    let bad = platform.land(2, "bob");
    platform.fail("dev", "airflow", &bad);
    let report = platform.pass().await;
    assert_eq!(
        report.deployments,
        [("dev".to_owned(), bad.clone(), "rolled_back".to_owned())]
    );
    assert_eq!(
        platform.runs("dev"),
        Some(good.clone()),
        "dev stays on its previous release"
    );
    let undone: Vec<(String, Option<String>)> = platform
        .calls()
        .into_iter()
        .filter(|call| call.call == "rollback")
        .map(|call| (call.target, call.undoing))
        .collect();
    assert_eq!(
        undone,
        [
            ("airflow".to_owned(), Some(bad.clone())),
            ("kubernetes".to_owned(), Some(bad.clone())),
            ("mlflow".to_owned(), Some(bad.clone())),
            ("terraform".to_owned(), Some(bad.clone())),
        ],
        "what was applied is undone, newest first"
    );
    // The bad release is rejected: later passes never pick it again, nor does staging see it.
    platform.clock.advance(Duration::hours(1));
    platform.pass().await;
    platform.pass().await;
    assert!(
        platform
            .applies("staging")
            .iter()
            .all(|(_, release)| *release == good)
    );
    let rejected = platform.store.rejected_releases("acme/platform").unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0, bad);
    assert!(rejected[0].1.contains("airflow unhealthy"), "{rejected:?}");
}

#[tokio::test]
async fn a_rollback_request_redeploys_the_earlier_release_without_terraform_and_rejects_the_newer()
{
    let platform = platform(no_production_gates(), wednesday());
    let first = platform.land(1, "alice");
    platform.pass().await;
    let second = platform.land(2, "alice");
    platform.pass().await;
    assert_eq!(platform.runs("dev"), Some(second.clone()));
    let before = platform.calls().len();
    platform
        .store
        .add_request(&DeployRequest {
            id: 0,
            repository: "acme/platform".into(),
            environment: "dev".into(),
            release: None,
            action: RequestAction::Rollback,
            actor: Some("carol".into()),
            at: 0,
            outcome: None,
            force_reason: None,
        })
        .unwrap();
    platform.pass().await;
    assert_eq!(platform.runs("dev"), Some(first.clone()));
    let redeployed: Vec<String> = platform.calls()[before..]
        .iter()
        .filter(|call| call.call == "apply")
        .map(|call| call.target.clone())
        .collect();
    assert_eq!(redeployed, ["mlflow", "kubernetes", "airflow"]);
    // Automatic promotion does not bring the rolled-back release back.
    platform.pass().await;
    assert_eq!(platform.runs("dev"), Some(first));
    assert!(
        platform
            .history("dev")
            .iter()
            .any(|line| line.starts_with("reject recorded") && line.contains(&second))
    );
}

#[tokio::test]
async fn a_held_rollout_times_out_into_a_rollback() {
    let mut platform = platform(no_production_gates(), wednesday());
    platform.reconciler.health.timeout = std::time::Duration::from_millis(50);
    let _held = platform.hold("dev", "kubernetes");
    let first = platform.land(1, "alice");
    let report = platform.pass().await;
    assert_eq!(
        report.deployments,
        [("dev".to_owned(), first, "rolled_back".to_owned())]
    );
    assert_eq!(platform.runs("dev"), None);
    let history = platform.history("dev");
    assert!(
        history
            .iter()
            .any(|line| line.contains("kubernetes not healthy after")),
        "{history:#?}"
    );
}

#[tokio::test]
async fn a_promotion_request_waits_for_the_soak_and_is_carried_out_once_it_passes() {
    use sluice::deploy::actions::{self, Force};
    use sluice::model::access::Principal;
    let platform = platform(no_production_gates(), wednesday());
    let first = platform.land(1, "alice");
    platform.pass().await;
    let message = actions::request(
        platform.store.as_ref(),
        "acme/platform",
        "staging",
        RequestAction::Promote,
        Some(&first),
        &Principal::local("carol"),
        Force::default(),
        0,
    )
    .unwrap();
    assert!(message.contains("once staging's gates pass"), "{message}");
    platform.pass().await;
    platform.clock.advance(Duration::minutes(4));
    platform.pass().await;
    assert_eq!(platform.runs("staging"), None, "the soak is not skipped");
    let held: Vec<String> = platform
        .history("staging")
        .into_iter()
        .filter(|line| line.starts_with("gate blocked") && line.contains("requested by carol"))
        .collect();
    assert_eq!(held.len(), 1, "recorded once, not every pass: {held:#?}");
    assert!(
        held[0].contains("soaking") && held[0].contains("--force --reason TEXT"),
        "{held:#?}"
    );

    platform.clock.advance(Duration::minutes(6));
    platform.pass().await;
    assert_eq!(platform.runs("staging"), Some(first));
    let history = platform.history("staging");
    assert!(
        history
            .iter()
            .any(|line| line.starts_with("manual succeeded")),
        "{history:#?}"
    );
}

#[tokio::test]
async fn approvals_by_the_author_or_a_commit_author_are_refused_and_promotion_never_goes_back() {
    use sluice::deploy::actions::{self, ActionError, Force};
    use sluice::model::access::Principal;
    let platform = platform(no_production_gates(), wednesday());
    let mut carried = release(1, "alice");
    carried.contributors.insert("bob".into());
    platform.store.insert_release(&carried).unwrap();
    let approve = |login: &str| {
        actions::approve(
            platform.store.as_ref(),
            "acme/platform",
            "production",
            Some(&carried.id),
            &Principal::local(login),
            0,
        )
    };
    let by_author = approve("alice").unwrap_err();
    assert!(matches!(by_author, ActionError::Forbidden(_)));
    assert!(
        by_author.to_string().contains("alice is the author"),
        "{by_author}"
    );
    let by_committer = approve("bob").unwrap_err();
    assert!(
        by_committer
            .to_string()
            .contains("bob wrote, committed or pushed a commit"),
        "{by_committer}"
    );
    assert_eq!(
        approve("carol").unwrap(),
        format!("carol (local) approved {} for production", carried.id)
    );
    assert_eq!(
        platform
            .store
            .approvals("acme/platform", "production", &carried.id)
            .unwrap(),
        ["carol (local)"]
    );

    let promote = |release: &str, force: Force<'_>| {
        actions::request(
            platform.store.as_ref(),
            "acme/platform",
            "dev",
            RequestAction::Promote,
            Some(release),
            &Principal::local("carol"),
            force,
            0,
        )
    };
    let unexplained = promote(
        &carried.id,
        Force {
            force: true,
            reason: None,
        },
    )
    .unwrap_err();
    assert!(
        unexplained.to_string().contains("--reason TEXT"),
        "{unexplained}"
    );
    platform.pass().await;
    let second = platform.land(2, "alice");
    platform.pass().await;
    assert_eq!(platform.runs("dev"), Some(second));
    let backwards = promote(
        &carried.id,
        Force {
            force: true,
            reason: Some("please"),
        },
    )
    .unwrap_err();
    assert!(
        backwards.to_string().contains("sluice rollback dev --to"),
        "{backwards}"
    );
}
