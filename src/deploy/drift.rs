//! Drift: where an environment no longer matches the release it runs. Each target says what
//! differs in its own system (`Target::drift`) and, where it may, puts the release's state back
//! (`Target::heal`); the reconciler (`reconcile/drift.rs`) decides when to look, stores what was
//! found, heals the domains an environment opts into, and holds promotions into a drifted
//! environment. A check that cannot run is recorded as such, never as "no drift".

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
