//! Drift through the reconciler with recording targets: what a check stores and shows, the drift
//! gate holding a release and `drift.block: false` letting it through with the drift recorded,
//! healing the domains an environment opts into (in the history), a target that answers 503
//! reported as "could not check" and never as "no drift", and the schedule.

mod support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sluice::config::drift::DriftSettings;
use sluice::config::environment::Environment;
use sluice::deploy::Release;
use sluice::deploy::execute::HealthSettings;
use sluice::deploy::gates::StaticTeams;
use sluice::deploy::reconcile::Reconciler;
use sluice::deploy::recording::RecordingTarget;
use sluice::store::{CheckOutcome, DeployStore, SqliteStore};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use support::recording::{Recording, TestClock, Trees};

const REPOSITORY: &str = "acme/platform";

struct Platform {
    _directory: tempfile::TempDir,
    calls: PathBuf,
    store: Arc<SqliteStore>,
    clock: Arc<TestClock>,
    reconciler: Reconciler,
}

fn environment(name: &str, after: Option<&str>, drift: DriftSettings) -> Environment {
    let mut environment = Environment::named(name);
    environment.after = after.map(str::to_owned);
    environment.drift = drift;
    environment
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

fn platform(staging: DriftSettings) -> Platform {
    let directory = tempfile::tempdir().unwrap();
    let calls = directory.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let store = Arc::new(SqliteStore::open(&directory.path().join("sluice.db")).unwrap());
    let clock = Arc::new(TestClock(Mutex::new(start())));
    let reconciler = Reconciler {
        store: store.clone(),
        repository: REPOSITORY.into(),
        environments: vec![
            environment("dev", None, DriftSettings::default()),
            environment("staging", Some("dev"), staging),
        ],
        targets: Arc::new(Recording(calls.clone())),
        trees: Arc::new(Trees(directory.path().to_path_buf())),
        clock: clock.clone(),
        teams: Arc::new(StaticTeams::default()),
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

impl Platform {
    fn land(&self, sequence: i64) -> String {
        let commit = format!("{sequence:0>40}");
        let mut release = Release::unrecorded(REPOSITORY, &commit, "main", Some("dev"));
        release.id = Release::new_id(sequence, &commit);
        release.sequence = sequence;
        assert!(self.store.insert_release(&release).unwrap());
        release.id
    }

    fn runs(&self, environment: &str) -> Option<String> {
        self.store
            .environment_states(REPOSITORY)
            .unwrap()
            .into_iter()
            .find(|state| state.environment == environment)
            .map(|state| state.release)
    }

    /// Someone changes `object` in `kind` behind sluice's back.
    fn drift(&self, environment: &str, kind: &str, object: &str) {
        let drift = serde_json::json!([{"object": object, "expected": "2", "actual": "5, set by kubectl-edit"}]);
        std::fs::write(
            self.calls.join(format!("drift-{environment}-{kind}")),
            drift.to_string(),
        )
        .unwrap();
    }

    fn unreachable(&self, environment: &str, kind: &str) -> PathBuf {
        let path = self.calls.join(format!("unreachable-{environment}-{kind}"));
        std::fs::write(&path, "").unwrap();
        path
    }

    fn history(&self, action: &str) -> Vec<(String, String)> {
        self.store
            .audit(REPOSITORY, None)
            .unwrap()
            .into_iter()
            .filter(|entry| entry.action == action)
            .map(|entry| (entry.outcome, entry.reason))
            .collect()
    }

    fn view(&self, environment: &str) -> sluice::deploy::drift::EnvironmentView {
        sluice::deploy::drift::view(self.store.as_ref(), Some(REPOSITORY), Some(environment))
            .unwrap()
            .remove(0)
    }
}

const OBJECT: &str = "apps/v1 Deployment ml/serving-api: spec.replicas";

#[tokio::test]
async fn drift_is_stored_shown_and_holds_the_next_release_until_it_is_gone() {
    let platform = platform(DriftSettings::default());
    let first = platform.land(1);
    platform.reconciler.pass().await.unwrap();
    platform.reconciler.pass().await.unwrap();
    assert_eq!(platform.runs("staging").as_deref(), Some(first.as_str()));

    platform.drift("staging", "kubernetes", OBJECT);
    let checked = platform
        .reconciler
        .check_drift(Some("staging"), None)
        .await
        .unwrap();
    assert_eq!(checked.len(), 1);
    assert_eq!(checked[0].release.as_deref(), Some(first.as_str()));
    let kubernetes = checked[0]
        .domains
        .iter()
        .find(|domain| domain.domain == "kubernetes")
        .unwrap();
    assert_eq!(kubernetes.outcome, CheckOutcome::Drifted);
    assert_eq!(kubernetes.drifts[0].object, OBJECT);
    let view = platform.view("staging");
    assert_eq!(view.objects(), 1);
    let stored = &view
        .domains
        .iter()
        .find(|d| d.domain == "kubernetes")
        .unwrap()
        .drift[0];
    assert_eq!(
        (stored.expected.as_str(), stored.actual.as_str()),
        ("2", "5, set by kubectl-edit")
    );
    assert_eq!(stored.first_seen, start().timestamp());
    assert_eq!(
        platform.history("drift"),
        [(
            "found".to_owned(),
            format!("kubernetes: {OBJECT} (expected 2, found 5, set by kubectl-edit)")
        )]
    );
    let status = sluice_status(&platform);
    assert!(
        status.contains(
            "drift: kubernetes: 1 object differs from its release (checked 2026-11-25 09:00:00)"
        ),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "  {OBJECT}: expected 2, found 5, set by kubectl-edit (since 2026-11-25 09:00:00)"
        )),
        "{status}"
    );

    // A newer release reaches dev but not the drifted staging.
    let second = platform.land(2);
    platform.clock.advance(Duration::minutes(1));
    let report = platform.reconciler.pass().await.unwrap();
    assert_eq!(platform.runs("dev").as_deref(), Some(second.as_str()));
    let report = if report.blocked.is_empty() {
        platform.reconciler.pass().await.unwrap()
    } else {
        report
    };
    assert_eq!(platform.runs("staging").as_deref(), Some(first.as_str()));
    let (environment, release, reasons) = &report.blocked[0];
    assert_eq!(
        (environment.as_str(), release.as_str()),
        ("staging", second.as_str())
    );
    assert_eq!(
        reasons[0],
        format!(
            "drift: 1 object differs from the release it runs (kubernetes: {OBJECT}); put them back (or heal them with `drift.heal`) and run `sluice drift staging`, or set `drift.block: false`"
        )
    );
    // The same drift seen again is not a new history entry; its first sighting stays.
    assert_eq!(platform.history("drift").len(), 1);
    assert_eq!(
        platform.view("staging").domains[1].drift[0].first_seen,
        start().timestamp()
    );

    // Put back by hand: the gate checks again and lets the release in.
    std::fs::remove_file(platform.calls.join("drift-staging-kubernetes")).unwrap();
    platform.reconciler.pass().await.unwrap();
    assert_eq!(platform.runs("staging").as_deref(), Some(second.as_str()));
    assert_eq!(platform.view("staging").objects(), 0);
}

/// `sluice status` on the platform's data directory, as a person runs it.
fn sluice_status(platform: &Platform) -> String {
    support::sluice_ok(platform._directory.path(), &["status"])
}

#[tokio::test]
async fn with_block_false_the_release_enters_and_the_drift_stays_recorded() {
    let platform = platform(DriftSettings {
        block: false,
        ..DriftSettings::default()
    });
    platform.land(1);
    platform.reconciler.pass().await.unwrap();
    platform.reconciler.pass().await.unwrap();
    platform.drift("staging", "airflow", "dags/extra.py");
    let second = platform.land(2);
    platform.reconciler.pass().await.unwrap();
    platform.reconciler.pass().await.unwrap();
    assert_eq!(platform.runs("staging").as_deref(), Some(second.as_str()));
    let passed = platform.history("gate");
    let reason = &passed.last().unwrap().1;
    assert!(
        reason.contains("drift: 1 object differs from the release it runs (airflow: dags/extra.py); recorded, not blocking (`drift.block: false`)"),
        "{reason}"
    );
    assert_eq!(platform.view("staging").objects(), 1);
}

#[tokio::test]
async fn a_domain_opted_into_healing_is_put_back_and_the_history_says_so() {
    let platform = platform(DriftSettings {
        heal: vec!["kubernetes".into()],
        ..DriftSettings::default()
    });
    let first = platform.land(1);
    platform.reconciler.pass().await.unwrap();
    platform.reconciler.pass().await.unwrap();
    platform.drift("staging", "kubernetes", OBJECT);
    platform.drift("staging", "terraform", "terraform_data.bucket");

    let checked = platform
        .reconciler
        .check_drift(Some("staging"), Some("carol (local)"))
        .await
        .unwrap();
    let domain = |name: &str| {
        checked[0]
            .domains
            .iter()
            .find(|domain| domain.domain == name)
            .unwrap()
            .clone()
    };
    let kubernetes = domain("kubernetes");
    assert_eq!(kubernetes.outcome, CheckOutcome::Clean);
    assert_eq!(kubernetes.healed.as_ref().unwrap().drifts[0].object, OBJECT);
    // Terraform is not in `heal` (and could not be): its drift stays for review.
    assert_eq!(domain("terraform").outcome, CheckOutcome::Drifted);
    let heals: Vec<String> = RecordingTarget::calls(&platform.calls)
        .into_iter()
        .filter(|call| call.call == "heal")
        .map(|call| format!("{} {} {}", call.environment, call.target, call.release))
        .collect();
    assert_eq!(heals, [format!("staging kubernetes {first}")]);
    assert_eq!(
        platform.history("drift-heal"),
        [(
            "healed".to_owned(),
            format!(
                "kubernetes: {OBJECT} (expected 2, found 5, set by kubectl-edit); recorded heal of 1 drifted"
            )
        )]
    );
    let view = platform.view("staging");
    assert_eq!(view.objects(), 1, "only terraform's drift remains");
    let healer = platform
        .store
        .audit(REPOSITORY, Some("staging"))
        .unwrap()
        .into_iter()
        .find(|entry| entry.action == "drift-heal")
        .and_then(|entry| entry.actor);
    assert_eq!(
        healer.as_deref(),
        Some("carol (local)"),
        "who asked for the check"
    );
}

#[tokio::test]
async fn a_target_answering_503_is_could_not_check_and_keeps_what_was_found() {
    let platform = platform(DriftSettings::default());
    platform.land(1);
    platform.reconciler.pass().await.unwrap();
    platform.reconciler.pass().await.unwrap();
    platform.drift("staging", "mlflow", "churn@staging");
    platform
        .reconciler
        .check_drift(Some("staging"), None)
        .await
        .unwrap();

    let unreachable = platform.unreachable("staging", "mlflow");
    std::fs::remove_file(platform.calls.join("drift-staging-mlflow")).unwrap();
    let checked = platform
        .reconciler
        .check_drift(Some("staging"), None)
        .await
        .unwrap();
    let mlflow = checked[0]
        .domains
        .iter()
        .find(|domain| domain.domain == "mlflow")
        .unwrap();
    assert_eq!(mlflow.outcome, CheckOutcome::CouldNotCheck);
    assert_eq!(
        mlflow.reason.as_deref(),
        Some("mlflow answered 503 Service Unavailable")
    );
    let view = platform.view("staging");
    let stored = view.domains.iter().find(|d| d.domain == "mlflow").unwrap();
    assert_eq!(stored.outcome, CheckOutcome::CouldNotCheck);
    assert_eq!(stored.drift.len(), 1, "what was found before still stands");
    assert_eq!(view.unchecked().len(), 1);

    std::fs::remove_file(unreachable).unwrap();
    platform
        .reconciler
        .check_drift(Some("staging"), None)
        .await
        .unwrap();
    assert_eq!(platform.view("staging").objects(), 0);
}

#[tokio::test]
async fn checks_run_on_each_environments_interval_and_after_a_deployment() {
    let platform = platform(DriftSettings {
        interval: Some("30m".into()),
        ..DriftSettings::default()
    });
    // Nothing deployed: nothing to check.
    assert!(
        platform
            .reconciler
            .check_due_drift(&[])
            .await
            .unwrap()
            .is_empty()
    );
    platform.land(1);
    platform.reconciler.pass().await.unwrap();
    let checked: Vec<String> = platform
        .reconciler
        .check_due_drift(&[])
        .await
        .unwrap()
        .into_iter()
        .map(|environment| environment.environment)
        .collect();
    assert_eq!(checked, ["dev", "staging"], "deployed and never checked");
    platform.clock.advance(Duration::minutes(9));
    assert!(
        platform
            .reconciler
            .check_due_drift(&[])
            .await
            .unwrap()
            .is_empty()
    );
    // Just deployed: checked whatever the interval says.
    let staging = platform
        .reconciler
        .check_due_drift(&["staging".to_owned()])
        .await
        .unwrap();
    assert_eq!(staging.len(), 1);
    platform.clock.advance(Duration::minutes(2));
    let due: Vec<String> = platform
        .reconciler
        .check_due_drift(&[])
        .await
        .unwrap()
        .into_iter()
        .map(|environment| environment.environment)
        .collect();
    assert_eq!(
        due,
        ["dev"],
        "dev's default 10m passed; staging's 30m did not"
    );
    let unknown = platform
        .reconciler
        .check_drift(Some("prod"), None)
        .await
        .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "no environment `prod` in acme/platform; environments: dev, staging"
    );
}
