//! Tests of the delivery metrics on hand-made records, with exact numbers.

use super::*;

const NOW: i64 = 1_750_000_000;
const HOUR: i64 = 3600;
const MINUTE: i64 = 60;

fn deployment(
    id: i64,
    environment: &str,
    release: &str,
    action: DeploymentAction,
    status: DeploymentStatus,
    finished_at: i64,
) -> Deployment {
    Deployment {
        id,
        repository: "acme/app".to_owned(),
        environment: environment.to_owned(),
        release: release.to_owned(),
        previous: None,
        action,
        status,
        actor: None,
        reason: None,
        started_at: finished_at - 5 * MINUTE,
        finished_at: (status != DeploymentStatus::Running).then_some(finished_at),
    }
}

fn change(
    id: i64,
    environment: &str,
    release: &str,
    status: DeploymentStatus,
    at: i64,
) -> Deployment {
    deployment(
        id,
        environment,
        release,
        DeploymentAction::Promote,
        status,
        at,
    )
}

fn release(id: &str, commit: &str, created_at: i64) -> Release {
    let mut release = Release::unrecorded("acme/app", commit, "main", None);
    release.id = id.to_owned();
    release.created_at = created_at;
    release
}

fn rejection(environment: &str, release: &str, at: i64) -> AuditEntry {
    AuditEntry {
        id: at,
        repository: "acme/app".to_owned(),
        environment: Some(environment.to_owned()),
        release: Some(release.to_owned()),
        action: "reject".to_owned(),
        actor: None,
        outcome: "recorded".to_owned(),
        reason: String::new(),
        at,
    }
}

struct Fixture {
    deployments: Vec<Deployment>,
    releases: Vec<Release>,
    commit_times: BTreeMap<String, i64>,
    rejections: Vec<AuditEntry>,
    environments: Vec<String>,
}

impl Fixture {
    fn new(deployments: Vec<Deployment>) -> Fixture {
        Fixture {
            deployments,
            releases: Vec::new(),
            commit_times: BTreeMap::new(),
            rejections: Vec::new(),
            environments: Vec::new(),
        }
    }

    fn measure(&self, weeks: u32) -> DeliveryMetrics {
        measure(
            DeliveryRecords {
                deployments: &self.deployments,
                releases: &self.releases,
                commit_times: &self.commit_times,
                rejections: &self.rejections,
                environments: &self.environments,
            },
            Window::ending(NOW, weeks),
        )
    }

    fn environment(&self, weeks: u32, name: &str) -> EnvironmentMetrics {
        self.measure(weeks)
            .environments
            .into_iter()
            .find(|metrics| metrics.environment == name)
            .expect("the environment is measured")
    }
}

use DeploymentStatus::{Failed, RolledBack, Running, Succeeded};

#[test]
fn frequency_counts_successful_changes_per_week_of_the_window() {
    let start = NOW - 4 * WEEK;
    let fixture = Fixture::new(vec![
        change(1, "staging", "r1", Succeeded, start - 10),
        change(2, "staging", "r2", Succeeded, start + HOUR),
        change(3, "staging", "r3", Succeeded, start + WEEK + 1),
        change(4, "staging", "r4", Succeeded, start + 2 * WEEK - 1),
        change(5, "staging", "r5", Failed, start + 2 * WEEK + HOUR),
        deployment(
            6,
            "staging",
            "r4",
            DeploymentAction::Rollback,
            Succeeded,
            start + 2 * WEEK + 2 * HOUR,
        ),
        deployment(
            7,
            "staging",
            "r6",
            DeploymentAction::Manual,
            Succeeded,
            start + 3 * WEEK + 5,
        ),
        change(8, "staging", "r7", Running, NOW - 1),
        change(9, "dev", "r7", Succeeded, NOW - 1),
    ]);
    let staging = fixture.environment(4, "staging");
    let counts: Vec<usize> = staging
        .frequency
        .weeks
        .iter()
        .map(|week| week.deployments)
        .collect();
    assert_eq!(counts, vec![1, 2, 0, 1]);
    assert_eq!(staging.frequency.total, 4);
    assert_eq!(staging.frequency.per_week, 1.0);
    assert_eq!(staging.frequency.weeks[0].start, start);
    assert_eq!(staging.frequency.weeks[3].end, NOW);
    let dev = fixture.environment(4, "dev");
    assert_eq!(dev.frequency.total, 1);
    assert_eq!(dev.frequency.per_week, 0.25);
}

#[test]
fn lead_time_runs_from_the_commit_else_the_release_to_the_deployment_end() {
    let mut fixture = Fixture::new(vec![
        change(1, "prod", "r1", Succeeded, NOW - 10 * HOUR),
        change(2, "prod", "r2", Succeeded, NOW - 8 * HOUR),
        change(3, "prod", "r3", Succeeded, NOW - 6 * HOUR),
        change(4, "prod", "r4", Succeeded, NOW - 4 * HOUR),
        change(5, "prod", "r5", Succeeded, NOW - 2 * HOUR),
        change(6, "prod", "unknown", Succeeded, NOW - HOUR),
    ]);
    fixture.releases = vec![
        release("r1", "c1", NOW - 11 * HOUR),
        release("r2", "c2", NOW - 10 * HOUR),
        release("r3", "c3", 0),
        release("r4", "c4", NOW - 8 * HOUR),
        release("r5", "c5", 0),
    ];
    // r1 and r4 fall back on the release's time; the others have their commit's.
    fixture.commit_times = BTreeMap::from([
        ("c2".to_owned(), NOW - 10 * HOUR),
        ("c3".to_owned(), NOW - 9 * HOUR),
        ("c5".to_owned(), NOW - 12 * HOUR),
    ]);
    let prod = fixture.environment(12, "prod");
    let leads: Vec<i64> = prod
        .lead_time
        .points
        .iter()
        .map(|point| point.seconds)
        .collect();
    assert_eq!(leads, vec![HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR, 10 * HOUR]);
    let from_commit: Vec<bool> = prod
        .lead_time
        .points
        .iter()
        .map(|p| p.from_commit)
        .collect();
    assert_eq!(from_commit, vec![false, true, true, false, true]);
    assert_eq!(prod.lead_time.median_seconds, Some(3 * HOUR));
    assert_eq!(prod.lead_time.p90_seconds, Some(10 * HOUR));
    assert_eq!(prod.frequency.total, 6, "an unknown release still deployed");
}

#[test]
fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
    assert_eq!(
        median(&[HOUR, 2 * HOUR, 4 * HOUR, 10 * HOUR]),
        Some(3 * HOUR)
    );
    assert_eq!(median(&[1, 2]), Some(1));
    assert_eq!(median(&[]), None);
    assert_eq!(nearest_rank(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90), Some(9));
    assert_eq!(
        nearest_rank(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90),
        Some(10)
    );
    assert_eq!(nearest_rank(&[7], 90), Some(7));
    assert_eq!(nearest_rank(&[], 90), None);
}

#[test]
fn change_failure_counts_failed_rolled_back_and_rejected_changes() {
    let mut fixture = Fixture::new(vec![
        change(1, "prod", "r1", Succeeded, NOW - 20 * HOUR),
        change(2, "prod", "r2", Failed, NOW - 19 * HOUR),
        change(3, "prod", "r3", RolledBack, NOW - 18 * HOUR),
        change(4, "prod", "r4", Succeeded, NOW - 17 * HOUR),
        change(5, "prod", "r5", Succeeded, NOW - 16 * HOUR),
        deployment(
            6,
            "prod",
            "r4",
            DeploymentAction::Rollback,
            Succeeded,
            NOW - 15 * HOUR,
        ),
        change(7, "prod", "r6", Succeeded, NOW - 14 * HOUR),
        change(8, "prod", "r7", Succeeded, NOW - 13 * HOUR),
        change(9, "prod", "r8", Succeeded, NOW - 12 * HOUR),
        change(10, "staging", "r5", Succeeded, NOW - 17 * HOUR),
    ]);
    fixture.rejections = vec![
        // The reconciler's own rejections after the failures: already counted.
        rejection("prod", "r2", NOW - 19 * HOUR),
        rejection("prod", "r3", NOW - 18 * HOUR),
        // A person rolled prod back from r5.
        rejection("prod", "r5", NOW - 15 * HOUR - 10 * MINUTE),
        // Rejected in another environment: not prod's failure, not staging's either.
        rejection("qa", "r6", NOW - 13 * HOUR),
    ];
    let prod = fixture.environment(12, "prod");
    let failure = &prod.change_failure;
    assert_eq!((failure.failed, failure.attempted), (3, 8));
    assert_eq!(failure.percent, Some(38), "37.5% rounds to 38%");
    let kinds: Vec<(i64, FailureKind)> = failure
        .failures
        .iter()
        .map(|f| (f.deployment, f.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (2, FailureKind::Failed),
            (3, FailureKind::RolledBack),
            (5, FailureKind::Rejected)
        ]
    );
    assert_eq!(failure.failures[2].at, NOW - 15 * HOUR - 10 * MINUTE);
    let staging = fixture.environment(12, "staging");
    assert_eq!(staging.change_failure.percent, Some(0));
    assert_eq!(staging.change_failure.attempted, 1);
}

#[test]
fn time_to_restore_runs_from_a_failure_to_the_next_success_there() {
    let t = NOW - 30 * HOUR;
    let mut fixture = Fixture::new(vec![
        change(1, "prod", "r1", Succeeded, t),
        // Two failures in a row are one incident, restored by r4 forty minutes after the first.
        change(2, "prod", "r2", RolledBack, t + HOUR),
        change(3, "prod", "r3", Failed, t + HOUR + 10 * MINUTE),
        change(4, "prod", "r4", Succeeded, t + HOUR + 40 * MINUTE),
        // r5 is rolled back by a person twenty minutes after the rejection.
        change(5, "prod", "r5", Succeeded, t + 2 * HOUR),
        deployment(
            6,
            "prod",
            "r4",
            DeploymentAction::Rollback,
            Succeeded,
            t + 3 * HOUR + 20 * MINUTE,
        ),
        // Still failing now.
        change(7, "prod", "r6", Failed, t + 5 * HOUR),
        // In staging, a rollback that ends in the same second as the rejection closes it at once.
        change(8, "staging", "r5", Succeeded, t),
        deployment(
            9,
            "staging",
            "r4",
            DeploymentAction::Rollback,
            Succeeded,
            t + HOUR,
        ),
    ]);
    fixture.rejections = vec![
        rejection("prod", "r2", t + HOUR),
        rejection("prod", "r3", t + HOUR + 10 * MINUTE),
        rejection("prod", "r5", t + 3 * HOUR),
        rejection("prod", "r6", t + 5 * HOUR),
        rejection("staging", "r5", t + HOUR),
    ];
    let prod = fixture.environment(12, "prod");
    let incidents: Vec<(i64, Option<i64>, Option<i64>)> = prod
        .restore
        .incidents
        .iter()
        .map(|incident| (incident.opened_by, incident.restored_by, incident.seconds))
        .collect();
    assert_eq!(
        incidents,
        vec![
            (2, Some(4), Some(40 * MINUTE)),
            (5, Some(6), Some(20 * MINUTE)),
            (7, None, None),
        ]
    );
    assert_eq!(prod.restore.median_seconds, Some(30 * MINUTE));
    let staging = fixture.environment(12, "staging");
    assert_eq!(staging.restore.incidents.len(), 1);
    assert_eq!(staging.restore.incidents[0].seconds, Some(0));
    assert_eq!(staging.restore.median_seconds, Some(0));
}

#[test]
fn incidents_and_changes_before_the_window_are_left_out() {
    let start = NOW - 2 * WEEK;
    let fixture = Fixture::new(vec![
        change(1, "prod", "r1", Failed, start - HOUR),
        change(2, "prod", "r2", Succeeded, start + HOUR),
    ]);
    let prod = fixture.environment(2, "prod");
    assert!(prod.restore.incidents.is_empty());
    assert_eq!(prod.restore.median_seconds, None);
    assert_eq!(
        (prod.change_failure.failed, prod.change_failure.attempted),
        (0, 1)
    );
}

#[test]
fn an_environment_without_deployments_has_empty_measures() {
    let mut fixture = Fixture::new(vec![change(1, "dev", "r1", Succeeded, NOW - HOUR)]);
    fixture.environments = vec!["prod".to_owned(), "dev".to_owned()];
    let prod = fixture.environment(DEFAULT_WEEKS, "prod");
    assert!(prod.is_empty());
    assert_eq!(prod.frequency.total, 0);
    assert_eq!(prod.frequency.per_week, 0.0);
    assert_eq!(prod.frequency.weeks.len(), 12);
    assert!(
        prod.frequency
            .weeks
            .iter()
            .all(|week| week.deployments == 0)
    );
    assert_eq!(prod.lead_time.median_seconds, None);
    assert_eq!(prod.lead_time.p90_seconds, None);
    assert_eq!(prod.change_failure.percent, None);
    assert_eq!(prod.restore.median_seconds, None);
    assert!(Fixture::new(Vec::new()).measure(12).environments.is_empty());
}

#[test]
fn environments_come_in_the_order_they_were_first_deployed_to() {
    let mut fixture = Fixture::new(vec![
        change(3, "prod", "r1", Succeeded, NOW - HOUR),
        change(2, "staging", "r1", Succeeded, NOW - 2 * HOUR),
        change(1, "dev", "r1", Succeeded, NOW - 3 * HOUR),
        change(4, "dev", "r2", Succeeded, NOW - 30 * MINUTE),
    ]);
    fixture.environments = vec!["staging".to_owned(), "qa".to_owned()];
    let names: Vec<String> = fixture
        .measure(12)
        .environments
        .into_iter()
        .map(|m| m.environment)
        .collect();
    assert_eq!(names, vec!["dev", "staging", "prod", "qa"]);
}

#[test]
fn the_window_is_whole_weeks_ending_now() {
    assert_eq!(
        Window::ending(NOW, 12),
        Window {
            start: NOW - 12 * WEEK,
            end: NOW,
            weeks: 12
        }
    );
    assert_eq!(Window::ending(NOW, 0).weeks, 1);
    assert_eq!(Window::ending(NOW, 1000).weeks, MAX_WEEKS);
}
