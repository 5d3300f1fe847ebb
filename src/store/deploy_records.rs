//! What promotion records, as plain types: the release an environment runs, deployments with their
//! per-target steps, approvals, requests from people and the audit history; and `DeployStore`,
//! the narrow storage contract the reconciler needs. The SQLite implementation is `deploy.rs`.
//! Knows nothing of what promotion decides with these records.

use super::StoreResult;
use super::drift::DriftStore;
use crate::model::Release;
use serde::{Deserialize, Serialize};

/// The release an environment runs and since when it has been healthy with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentState {
    pub environment: String,
    pub release: String,
    /// Unix seconds.
    pub healthy_since: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentAction {
    /// Automatic promotion along the environment order.
    Promote,
    /// A person asked for this release here (`sluice promote`).
    Manual,
    /// Back to an earlier release (`sluice rollback`, or after a failed deployment).
    Rollback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    Running,
    Succeeded,
    /// Failed and the environment was put back on its previous release.
    RolledBack,
    /// Failed and could not be put back: needs a person.
    Failed,
}

macro_rules! text_enum {
    ($type:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self { $($type::$variant => $text),* }
            }
            pub fn parse(text: &str) -> Option<$type> {
                match text { $($text => Some($type::$variant),)* _ => None }
            }
        }
    };
}

text_enum!(DeploymentAction { Promote => "promote", Manual => "manual", Rollback => "rollback" });
text_enum!(DeploymentStatus {
    Running => "running",
    Succeeded => "succeeded",
    RolledBack => "rolled_back",
    Failed => "failed",
});
text_enum!(StepPhase { Applied => "applied", Healthy => "healthy", Failed => "failed", RolledBack => "rolled_back" });
text_enum!(RequestAction { Promote => "promote", Rollback => "rollback" });

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: i64,
    pub repository: String,
    pub environment: String,
    pub release: String,
    /// What the environment ran before; a failed deployment returns to it.
    pub previous: Option<String>,
    pub action: DeploymentAction,
    pub status: DeploymentStatus,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDeployment {
    pub repository: String,
    pub environment: String,
    pub release: String,
    pub previous: Option<String>,
    pub action: DeploymentAction,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    /// `apply` returned; its rollback data is recorded. Health not yet seen.
    Applied,
    Healthy,
    Failed,
    RolledBack,
}

/// One target's progress within a deployment. Written before the next call, so a restart resumes
/// from it instead of applying again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// The target's registered name (`terraform`, `kubernetes`, ...).
    pub target: String,
    pub phase: StepPhase,
    pub summary: String,
    pub rollback: serde_json::Value,
    pub outputs: serde_json::Value,
    pub at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestAction {
    Promote,
    Rollback,
}

/// Something a person asked for, carried out by the reconciler on its next pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    pub id: i64,
    pub repository: String,
    pub environment: String,
    /// `None` for a rollback means "the release before the current one".
    pub release: Option<String>,
    pub action: RequestAction,
    pub actor: Option<String>,
    pub at: i64,
    pub outcome: Option<String>,
    /// A promotion an admin forced past the gates, with the reason they gave; `None` = gates apply.
    #[serde(default)]
    pub force_reason: Option<String>,
}

/// One line of history: a deployment, a gate decision, an approval, a rejection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub repository: String,
    pub environment: Option<String>,
    pub release: Option<String>,
    /// `release`, `gate`, `deploy`, `rollback`, `approve`, `reject`, `request`.
    pub action: String,
    pub actor: Option<String>,
    /// `started`, `succeeded`, `failed`, `blocked`, `passed`, `recorded`, ...
    pub outcome: String,
    pub reason: String,
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry<'a> {
    pub repository: &'a str,
    pub environment: Option<&'a str>,
    pub release: Option<&'a str>,
    pub action: &'a str,
    pub actor: Option<&'a str>,
    pub outcome: &'a str,
    pub reason: &'a str,
    pub at: i64,
}

/// Every method is durable when it returns.
pub trait DeployStore: DriftStore + Send + Sync {
    /// `false` when a release for the same commit exists (nothing written).
    fn insert_release(&self, release: &Release) -> StoreResult<bool>;
    /// Newest first (by git order).
    fn releases(&self, repository: &str) -> StoreResult<Vec<Release>>;
    fn release(&self, repository: &str, id: &str) -> StoreResult<Option<Release>>;
    /// Marks the release rejected: automatic promotion never picks it again.
    fn reject_release(&self, repository: &str, id: &str, reason: &str) -> StoreResult<()>;
    /// Release id → why it was rejected.
    fn rejected_releases(&self, repository: &str) -> StoreResult<Vec<(String, String)>>;

    fn environment_states(&self, repository: &str) -> StoreResult<Vec<EnvironmentState>>;
    /// The environments in promotion order as promotion last read them from the default branch
    /// (empty before its first pass): how status, the API and the web UI list them.
    fn environment_order(&self, repository: &str) -> StoreResult<Vec<String>>;
    /// Keeps the promotion order; written only when it changed.
    fn record_environment_order(&self, repository: &str, names: &[String]) -> StoreResult<()>;

    /// Starts a deployment unless one is running for the environment (`None` then): the durable lock.
    fn start_deployment(&self, deployment: &NewDeployment) -> StoreResult<Option<i64>>;
    fn running_deployments(&self, repository: &str) -> StoreResult<Vec<Deployment>>;
    fn deployments(
        &self,
        repository: &str,
        environment: Option<&str>,
    ) -> StoreResult<Vec<Deployment>>;
    fn record_step(&self, deployment: i64, step: &StepState) -> StoreResult<()>;
    /// The deployment's steps, the one changed longest ago first.
    fn steps(&self, deployment: i64) -> StoreResult<Vec<StepState>>;
    /// Ends the deployment at `finished_at`; with `now_running = Some(release)` the environment is
    /// recorded as running that release, healthy since `finished_at`, in the same transaction.
    fn finish_deployment_at(
        &self,
        deployment: i64,
        status: DeploymentStatus,
        reason: Option<&str>,
        finished_at: i64,
        now_running: Option<&str>,
    ) -> StoreResult<()>;
    /// Ends the deployment; with `now_running = Some((release, at))` the environment is recorded as
    /// running that release, healthy since `at`, in the same transaction, and the deployment
    /// finished at `at`; without it the deployment finished now (wall clock).
    fn finish_deployment(
        &self,
        deployment: i64,
        status: DeploymentStatus,
        reason: Option<&str>,
        now_running: Option<(&str, i64)>,
    ) -> StoreResult<()> {
        let finished_at = now_running.map_or_else(|| chrono::Utc::now().timestamp(), |(_, at)| at);
        let release = now_running.map(|(release, _)| release);
        self.finish_deployment_at(deployment, status, reason, finished_at, release)
    }

    /// `false` if this person had already approved.
    fn add_approval(
        &self,
        repository: &str,
        environment: &str,
        release: &str,
        approver: &str,
        at: i64,
    ) -> StoreResult<bool>;
    fn approvals(
        &self,
        repository: &str,
        environment: &str,
        release: &str,
    ) -> StoreResult<Vec<String>>;

    fn add_request(&self, request: &DeployRequest) -> StoreResult<i64>;
    /// Requests without an outcome, oldest first.
    fn pending_requests(&self, repository: &str) -> StoreResult<Vec<DeployRequest>>;
    fn complete_request(&self, id: i64, outcome: &str) -> StoreResult<()>;

    fn record_audit(&self, entry: &NewAuditEntry<'_>) -> StoreResult<()>;
    /// Oldest first; all environments when `environment` is `None`.
    fn audit(&self, repository: &str, environment: Option<&str>) -> StoreResult<Vec<AuditEntry>>;
    /// The id of the newest history entry of any repository (0 for none): grows whenever
    /// promotion records something, so live pages know to look again.
    fn audit_high_water(&self) -> StoreResult<i64>;
    /// The history entries of one action (`reject`, `deploy`, ...) in every environment,
    /// recorded at or after `since` (Unix seconds), oldest first.
    fn audit_of_action(
        &self,
        repository: &str,
        action: &str,
        since: i64,
    ) -> StoreResult<Vec<AuditEntry>>;
    /// Repositories with at least one release.
    fn release_repositories(&self) -> StoreResult<Vec<String>>;
}
