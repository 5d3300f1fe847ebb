//! Drift: where an environment no longer matches the release it runs. Each target says what
//! differs in its own system (`Target::drift`) and, where it may, puts the release's state back
//! (`Target::heal`); the reconciler (`reconcile/drift.rs`) decides when to look, stores what was
//! found, heals the domains an environment opts into, and holds promotions into a drifted
//! environment. A check that cannot run is recorded as such, never as "no drift".

use crate::store::{CheckOutcome, DeployStore, DriftRecord, StoreResult};
use serde::{Deserialize, Serialize};

/// One object that differs from what the release says it should be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// What differs, in the target's own naming: a resource address (`terraform_data.bucket`),
    /// an object and field (`apps/v1 Deployment ml/serving: spec.replicas`), a DAG file
    /// (`dags/extra.py`), a model alias (`churn@champion`).
    pub object: String,
    /// What the release says, in a few words (`2`, `sha256:ab12…`, `version 3`, `absent`).
    pub expected: String,
    /// What is there now, with who changed it where the system says (`5, set by kubectl-edit`).
    pub actual: String,
}

/// What one target found when it compared its system with the release.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub drifts: Vec<Drift>,
    /// Something stored for a person to review instead of healing (Terraform: the plan that
    /// would put the infrastructure back, its summary and who may apply it).
    #[serde(default)]
    pub review: Option<serde_json::Value>,
    /// How many calls the check made to the target's system, by kind (`list`, `get`,
    /// `dry-run`, ...), for the benchmark and the log.
    #[serde(default)]
    pub calls: std::collections::BTreeMap<String, u64>,
}

impl DriftReport {
    pub fn clean() -> DriftReport {
        DriftReport::default()
    }

    pub fn is_clean(&self) -> bool {
        self.drifts.is_empty()
    }
}

/// What is known of one domain of an environment: its last check and what differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainView {
    pub domain: String,
    pub outcome: CheckOutcome,
    /// The release the environment was compared with.
    pub release: String,
    pub checked_at: i64,
    /// Why the last check could not run; what was found before still stands below.
    pub reason: Option<String>,
    /// What waits for a person's review (Terraform's plan and who may apply it).
    pub review: Option<serde_json::Value>,
    pub drift: Vec<DriftRecord>,
}

/// What is known of one environment's drift.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvironmentView {
    pub repository: String,
    pub environment: String,
    pub domains: Vec<DomainView>,
}

impl EnvironmentView {
    pub fn objects(&self) -> usize {
        self.domains.iter().map(|domain| domain.drift.len()).sum()
    }

    /// The domains whose last check could not run.
    pub fn unchecked(&self) -> Vec<&DomainView> {
        self.domains
            .iter()
            .filter(|domain| domain.outcome == CheckOutcome::CouldNotCheck)
            .collect()
    }
}

/// The last checks and what they found, by environment, for `sluice status`, `sluice drift`,
/// `GET /api/drift`, the board and `/metrics` alike.
pub fn view(
    store: &dyn DeployStore,
    repository: Option<&str>,
    environment: Option<&str>,
) -> StoreResult<Vec<EnvironmentView>> {
    let checks = store.drift_checks(repository)?;
    let mut records = store.drift(repository, environment)?;
    let mut views: Vec<EnvironmentView> = Vec::new();
    for check in checks {
        if environment.is_some_and(|name| name != check.environment) {
            continue;
        }
        let drift: Vec<DriftRecord> = {
            let (mine, rest): (Vec<_>, Vec<_>) = records.into_iter().partition(|record| {
                record.repository == check.repository
                    && record.environment == check.environment
                    && record.domain == check.domain
            });
            records = rest;
            mine
        };
        let domain = DomainView {
            domain: check.domain,
            outcome: check.outcome,
            release: check.release,
            checked_at: check.checked_at,
            reason: check.reason,
            review: check.review,
            drift,
        };
        match views.iter_mut().find(|view| {
            view.repository == check.repository && view.environment == check.environment
        }) {
            Some(view) => view.domains.push(domain),
            None => views.push(EnvironmentView {
                repository: check.repository,
                environment: check.environment,
                domains: vec![domain],
            }),
        }
    }
    Ok(views)
}
