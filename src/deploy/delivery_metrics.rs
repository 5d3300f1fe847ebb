//! Delivery metrics: the four DORA measures per environment, computed from sluice's own
//! promotion records over a window of whole weeks ending at `now`. Pure: it takes records and
//! returns numbers, and reads no store, clock or network.
//!
//! What each measure reads, per environment, for a window `[start, end)` of `weeks` weeks:
//!
//! - **Deployment frequency**: deployments (`store::Deployment`) in the environment with status
//!   `succeeded`, an action of `promote` or `manual` (a `rollback` deployment delivers no change
//!   and is left out), and `finished_at` in the window. The total, the total divided by the
//!   window's weeks, and one bucket per week: bucket `i` holds `[start + 7d·i, start + 7d·(i+1))`.
//! - **Lead time for changes**: for each of those same deployments, from its release's commit
//!   time to its `finished_at`. The commit time is the commit's `committed_at` from the commit
//!   summaries (recorded at intake) when known, else the release's `created_at`. A deployment
//!   whose release is not among the records has no lead time. The median (the mean of the two
//!   middle values, rounded down, for an even count) and the 90th percentile (nearest rank: the
//!   value at rank ⌈0.9·n⌉), plus every point.
//! - **Change failure rate**: the attempted changes are the deployments with an action of
//!   `promote` or `manual`, finished (status other than `running`) with `finished_at` in the
//!   window. A change failed when its status is `failed` or `rolled_back`, or when it succeeded
//!   and its release was rejected in the same environment afterwards (an audit entry with action
//!   `reject`, the same environment and release, at or after the deployment finished and before
//!   that release's next deployment there): that is a person rolling the environment back from
//!   it. The rate is failed ÷ attempted, shown rounded to a whole percent.
//! - **Time to restore**: an incident opens in the environment at the `finished_at` of a
//!   deployment (any action) that ended `failed` or `rolled_back`, or at the `at` of a
//!   rejection that counted as a failure above; it closes at the `finished_at` of the next
//!   deployment (any action, rollbacks included) that ended `succeeded` there. A failure while an
//!   incident is open joins it. Incidents that open in the window count; one still open has no
//!   duration and stays out of the median.
//!
//! Environments come in promotion order as the records show it: by the time of each
//! environment's first deployment (promotion reaches the environments upstream first), then the
//! names given as known (from the environment states and the history) that have none.

use crate::model::Release;
use crate::store::{AuditEntry, Deployment, DeploymentAction, DeploymentStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// Seconds in a week.
pub const WEEK: i64 = 7 * 86_400;
/// The window when none is asked for: the last twelve weeks.
pub const DEFAULT_WEEKS: u32 = 12;
/// The longest window offered: two years.
pub const MAX_WEEKS: u32 = 104;

/// What the measures are computed from: one repository's records.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryRecords<'a> {
    /// Every deployment of the repository, any order.
    pub deployments: &'a [Deployment],
    pub releases: &'a [Release],
    /// Commit sha → `committed_at` (Unix seconds), from the commit summaries.
    pub commit_times: &'a BTreeMap<String, i64>,
    /// Audit entries with action `reject`, any order (older than the window may be left out).
    pub rejections: &'a [AuditEntry],
    /// Environment names known otherwise, shown even without deployments.
    pub environments: &'a [String],
}

/// `weeks` whole weeks ending at `end` (exclusive), Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    pub weeks: u32,
}

impl Window {
    /// The `weeks` weeks (at least one, at most `MAX_WEEKS`) before `now`.
    pub fn ending(now: i64, weeks: u32) -> Window {
        let weeks = weeks.clamp(1, MAX_WEEKS);
        Window {
            start: now - i64::from(weeks) * WEEK,
            end: now,
            weeks,
        }
    }

    fn holds(&self, at: i64) -> bool {
        self.start <= at && at < self.end
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryMetrics {
    pub window: Window,
    /// In promotion order.
    pub environments: Vec<EnvironmentMetrics>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvironmentMetrics {
    pub environment: String,
    pub frequency: Frequency,
    pub lead_time: LeadTime,
    pub change_failure: ChangeFailure,
    pub restore: Restore,
}

impl EnvironmentMetrics {
    /// Whether anything was deployed (or attempted) here in the window.
    pub fn is_empty(&self) -> bool {
        self.change_failure.attempted == 0 && self.frequency.total == 0
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Frequency {
    /// Successful deployments in the window.
    pub total: usize,
    pub per_week: f64,
    /// Oldest first, one per week of the window.
    pub weeks: Vec<WeekBucket>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WeekBucket {
    pub start: i64,
    pub end: i64,
    pub deployments: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadTime {
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
    /// One per successful deployment in the window, in the order they finished.
    pub points: Vec<LeadTimePoint>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadTimePoint {
    pub deployment: i64,
    pub release: String,
    pub commit: String,
    /// When the change was made: the commit time, else the release's creation.
    pub changed_at: i64,
    /// `true` when `changed_at` is the commit's own time.
    pub from_commit: bool,
    pub finished_at: i64,
    pub seconds: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeFailure {
    pub failed: usize,
    pub attempted: usize,
    /// `failed / attempted` rounded to a whole percent; `None` when nothing was attempted.
    pub percent: Option<u32>,
    /// The failed changes, in the order they finished.
    pub failures: Vec<FailedChange>,
}

/// How a change failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The deployment failed and could not be put back.
    Failed,
    /// The deployment failed and the environment was put back on its previous release.
    RolledBack,
    /// The deployment succeeded; its release was rejected here afterwards (rolled back by a person).
    Rejected,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Failed => "failed",
            FailureKind::RolledBack => "rolled_back",
            FailureKind::Rejected => "rejected",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedChange {
    pub deployment: i64,
    pub release: String,
    pub kind: FailureKind,
    /// When it was known to have failed: the deployment's end, or the rejection.
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Restore {
    pub median_seconds: Option<i64>,
    /// Incidents that opened in the window, oldest first.
    pub incidents: Vec<Incident>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub opened_at: i64,
    /// The deployment whose failure opened it.
    pub opened_by: i64,
    pub release: String,
    /// The successful deployment that closed it; `None` while open.
    pub restored_by: Option<i64>,
    pub restored_at: Option<i64>,
    pub seconds: Option<i64>,
}

/// The four measures for every environment in the records, over `window`.
pub fn measure(records: DeliveryRecords<'_>, window: Window) -> DeliveryMetrics {
    let environments = environment_order(records.deployments, records.environments);
    DeliveryMetrics {
        window,
        environments: environments
            .into_iter()
            .map(|environment| measure_environment(&records, window, environment))
            .collect(),
    }
}

/// By first deployment, then the known names without any.
fn environment_order(deployments: &[Deployment], known: &[String]) -> Vec<String> {
    let mut first: BTreeMap<&str, i64> = BTreeMap::new();
    for deployment in deployments {
        let entry = first
            .entry(&deployment.environment)
            .or_insert(deployment.started_at);
        *entry = (*entry).min(deployment.started_at);
    }
    let mut order: Vec<(i64, &str)> = first.into_iter().map(|(name, at)| (at, name)).collect();
    order.sort();
    let mut names: Vec<String> = order.into_iter().map(|(_, name)| name.to_owned()).collect();
    for name in known {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

fn is_change(deployment: &Deployment) -> bool {
    deployment.action != DeploymentAction::Rollback
}

fn measure_environment(
    records: &DeliveryRecords<'_>,
    window: Window,
    environment: String,
) -> EnvironmentMetrics {
    let mut here: Vec<&Deployment> = records
        .deployments
        .iter()
        .filter(|deployment| deployment.environment == environment)
        .filter(|deployment| deployment.status != DeploymentStatus::Running)
        .filter(|deployment| deployment.finished_at.is_some())
        .collect();
    here.sort_by_key(|deployment| (deployment.finished_at, deployment.id));
    let rejected = rejected_after_success(&here, records.rejections, &environment);
    let delivered: Vec<&Deployment> = here
        .iter()
        .copied()
        .filter(|deployment| deployment.status == DeploymentStatus::Succeeded)
        .filter(|deployment| is_change(deployment))
        .filter(|deployment| window.holds(finished(deployment)))
        .collect();
    EnvironmentMetrics {
        frequency: frequency(&delivered, window),
        lead_time: lead_time(&delivered, records),
        change_failure: change_failure(&here, &rejected, window),
        restore: restore(&here, &rejected, window),
        environment,
    }
}

fn finished(deployment: &Deployment) -> i64 {
    deployment.finished_at.unwrap_or(deployment.started_at)
}

/// Deployment id → when its release was rejected here, for successful deployments of releases
/// rejected afterwards (before the release's next deployment in the environment).
fn rejected_after_success(
    here: &[&Deployment],
    rejections: &[AuditEntry],
    environment: &str,
) -> BTreeMap<i64, i64> {
    let mut rejected = BTreeMap::new();
    for entry in rejections {
        if entry.action != "reject" || entry.environment.as_deref() != Some(environment) {
            continue;
        }
        let Some(release) = entry.release.as_deref() else {
            continue;
        };
        let latest = here
            .iter()
            .filter(|deployment| deployment.release == release)
            .filter(|deployment| finished(deployment) <= entry.at)
            .max_by_key(|deployment| (finished(deployment), deployment.id));
        if let Some(deployment) = latest
            && deployment.status == DeploymentStatus::Succeeded
            && is_change(deployment)
        {
            rejected.entry(deployment.id).or_insert(entry.at);
        }
    }
    rejected
}

fn frequency(delivered: &[&Deployment], window: Window) -> Frequency {
    let mut weeks: Vec<WeekBucket> = (0..i64::from(window.weeks))
        .map(|week| WeekBucket {
            start: window.start + week * WEEK,
            end: window.start + (week + 1) * WEEK,
            deployments: 0,
        })
        .collect();
    for deployment in delivered {
        let week = (finished(deployment) - window.start) / WEEK;
        if let Some(bucket) = usize::try_from(week).ok().and_then(|i| weeks.get_mut(i)) {
            bucket.deployments += 1;
        }
    }
    Frequency {
        total: delivered.len(),
        per_week: delivered.len() as f64 / f64::from(window.weeks),
        weeks,
    }
}

fn lead_time(delivered: &[&Deployment], records: &DeliveryRecords<'_>) -> LeadTime {
    let releases: BTreeMap<&str, &Release> = records
        .releases
        .iter()
        .map(|release| (release.id.as_str(), release))
        .collect();
    let points: Vec<LeadTimePoint> = delivered
        .iter()
        .filter_map(|deployment| {
            let release = releases.get(deployment.release.as_str())?;
            let commit_time = records.commit_times.get(&release.commit).copied();
            let changed_at = commit_time.unwrap_or(release.created_at);
            let finished_at = finished(deployment);
            Some(LeadTimePoint {
                deployment: deployment.id,
                release: release.id.clone(),
                commit: release.commit.clone(),
                changed_at,
                from_commit: commit_time.is_some(),
                finished_at,
                seconds: (finished_at - changed_at).max(0),
            })
        })
        .collect();
    let mut seconds: Vec<i64> = points.iter().map(|point| point.seconds).collect();
    seconds.sort_unstable();
    LeadTime {
        median_seconds: median(&seconds),
        p90_seconds: nearest_rank(&seconds, 90),
        points,
    }
}

/// The middle of sorted values; the mean of the two middle ones (rounded down) for an even count.
pub fn median(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]).div_euclid(2)),
    }
}

/// The `percent`th percentile of sorted values by nearest rank: the value at rank ⌈p·n/100⌉.
pub fn nearest_rank(sorted: &[i64], percent: usize) -> Option<i64> {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn failure_of(
    deployment: &Deployment,
    rejected: &BTreeMap<i64, i64>,
) -> Option<(FailureKind, i64)> {
    match deployment.status {
        DeploymentStatus::Failed => Some((FailureKind::Failed, finished(deployment))),
        DeploymentStatus::RolledBack => Some((FailureKind::RolledBack, finished(deployment))),
        DeploymentStatus::Succeeded => rejected
            .get(&deployment.id)
            .map(|at| (FailureKind::Rejected, *at)),
        DeploymentStatus::Running => None,
    }
}

fn change_failure(
    here: &[&Deployment],
    rejected: &BTreeMap<i64, i64>,
    window: Window,
) -> ChangeFailure {
    let attempted: Vec<&&Deployment> = here
        .iter()
        .filter(|deployment| is_change(deployment))
        .filter(|deployment| window.holds(finished(deployment)))
        .collect();
    let failures: Vec<FailedChange> = attempted
        .iter()
        .filter_map(|deployment| {
            let (kind, at) = failure_of(deployment, rejected)?;
            Some(FailedChange {
                deployment: deployment.id,
                release: deployment.release.clone(),
                kind,
                at,
            })
        })
        .collect();
    let (failed, attempted) = (failures.len(), attempted.len());
    ChangeFailure {
        failed,
        attempted,
        percent: (attempted > 0)
            .then(|| u32::try_from((failed * 100 + attempted / 2) / attempted).unwrap_or(u32::MAX)),
        failures,
    }
}

/// A moment in an environment's history that opens or closes an incident.
enum Event {
    Failure {
        at: i64,
        deployment: i64,
        release: String,
    },
    Success {
        at: i64,
        deployment: i64,
    },
}

fn restore(here: &[&Deployment], rejected: &BTreeMap<i64, i64>, window: Window) -> Restore {
    // Ordered by time, then deployment (one runs at a time per environment, so ids follow
    // time); a release's rejection comes right after its own deployment's end.
    let mut events: Vec<((i64, i64, u8), Event)> = Vec::new();
    for deployment in here {
        let (at, id) = (finished(deployment), deployment.id);
        let release = deployment.release.clone();
        match deployment.status {
            DeploymentStatus::Succeeded => {
                let success = Event::Success { at, deployment: id };
                events.push(((at, id, 0), success));
                if let Some(&at) = rejected.get(&id) {
                    let failure = Event::Failure {
                        at,
                        deployment: id,
                        release,
                    };
                    events.push(((at, id, 1), failure));
                }
            }
            DeploymentStatus::Failed | DeploymentStatus::RolledBack => {
                let failure = Event::Failure {
                    at,
                    deployment: id,
                    release,
                };
                events.push(((at, id, 0), failure));
            }
            DeploymentStatus::Running => {}
        }
    }
    events.sort_by_key(|(key, _)| *key);
    let mut incidents: Vec<Incident> = Vec::new();
    let mut open: Option<Incident> = None;
    for (_, event) in events {
        match event {
            Event::Failure {
                at,
                deployment,
                release,
            } => {
                if open.is_none() {
                    open = Some(Incident {
                        opened_at: at,
                        opened_by: deployment,
                        release,
                        restored_by: None,
                        restored_at: None,
                        seconds: None,
                    });
                }
            }
            Event::Success { at, deployment } => {
                if let Some(mut incident) = open.take() {
                    incident.restored_by = Some(deployment);
                    incident.restored_at = Some(at);
                    incident.seconds = Some(at - incident.opened_at);
                    incidents.push(incident);
                }
            }
        }
    }
    incidents.extend(open);
    incidents.retain(|incident| window.holds(incident.opened_at));
    let mut seconds: Vec<i64> = incidents
        .iter()
        .filter_map(|incident| incident.seconds)
        .collect();
    seconds.sort_unstable();
    Restore {
        median_seconds: median(&seconds),
        incidents,
    }
}

#[cfg(test)]
#[path = "delivery_metrics_tests.rs"]
mod tests;
