//! Terraform plans and locks in the store: the record types, the `TerraformStore` trait and its
//! SQLite implementation, and the plans' SQL: one row per stored plan with the sealed plan file
//! and sealed plan JSON (the store never sees plaintext), what it was made from, and what became
//! of it (superseded, applied). The locks' SQL is in `terraform_locks.rs`. Knows nothing of
//! Terraform, encryption or pull requests beyond their numbers.

use super::error::{FailureResult, StoreResult};
use super::sql::{Connection, OptionalExtension, params};
use super::sql_store::{Backend, SqlStore};
use super::terraform_locks::{
    acquire_lock, all_locks, lock_of, release_lock, release_pull_request,
};
use chrono::{DateTime, Utc};

/// Where a plan applies and what a lock guards.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TerraformTarget {
    pub repository: String,
    pub environment: String,
    pub dir: String,
}

/// A plan about to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTerraformPlan {
    pub target: TerraformTarget,
    pub workspace: String,
    pub sha256: String,
    pub commit: String,
    /// The git tree of `commit`, when known: a squash merge is matched by it.
    pub tree: Option<String>,
    /// The base branch's commit the plan was made against (a pull request's merge base).
    pub base_commit: Option<String>,
    pub pull_request: Option<u64>,
    pub created_at: DateTime<Utc>,
    /// The rendered, masked summary (plaintext: it is shown in logs and comments anyway).
    pub summary: String,
    /// `+1 ~0 -0 ±0`
    pub counts: String,
    pub sealed_plan: Vec<u8>,
    pub json_sha256: String,
    pub sealed_json: Vec<u8>,
    /// The lock generation the plan was made under: the plan is stored only if the lock is
    /// still held with it (a pull request closed mid-plan releases the lock).
    pub lock_generation: Option<i64>,
}

/// A stored plan as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerraformPlanRecord {
    pub id: i64,
    pub target: TerraformTarget,
    pub workspace: String,
    pub sha256: String,
    pub commit: String,
    pub tree: Option<String>,
    pub base_commit: Option<String>,
    pub pull_request: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub summary: String,
    pub counts: String,
    pub sealed_plan: Vec<u8>,
    pub json_sha256: String,
    pub sealed_json: Vec<u8>,
    /// The id of the newer plan for the same target that replaced this one.
    pub superseded_by: Option<i64>,
    pub applied_at: Option<DateTime<Utc>>,
    /// `applied` or `failed`.
    pub apply_status: Option<String>,
    /// JSON of `terraform output -json`, sensitive values masked.
    pub apply_outputs: Option<String>,
}

/// What storing a plan did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanInsert {
    Stored {
        id: i64,
    },
    /// The lock the plan was made under is gone or belongs to another holder now.
    LockLost,
}

/// Who holds (or wants) a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    pub pull_request: Option<u64>,
    /// For people: `pull request #12`, `sluice plan by alice`.
    pub label: String,
}

impl LockHolder {
    pub(crate) fn same_as(&self, other: &LockHolder) -> bool {
        match (self.pull_request, other.pull_request) {
            (Some(mine), Some(theirs)) => mine == theirs,
            (None, None) => self.label == other.label,
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRequest {
    pub target: TerraformTarget,
    pub holder: LockHolder,
    pub now: DateTime<Utc>,
    pub lease: chrono::Duration,
    /// Join the queue instead of being refused.
    pub queue: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRecord {
    pub target: TerraformTarget,
    pub holder: LockHolder,
    pub generation: i64,
    pub acquired_at: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
}

/// A holder waiting in a lock's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedHolder {
    pub holder: LockHolder,
    pub enqueued_at: DateTime<Utc>,
}

/// A lock with the queue behind it, first in line first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockListing {
    pub lock: LockRecord,
    pub queue: Vec<QueuedHolder>,
}

/// The answer to a lock request: contention is an outcome, not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    /// Held now by the requester (newly, or renewed) under this generation.
    Acquired { generation: i64 },
    /// Held by someone else.
    Held { by: LockRecord },
    /// Held by someone else; the requester waits at `position` (1 = next).
    Queued { by: LockRecord, position: usize },
}

pub(crate) fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn parse_time(text: String) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&text)
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_default()
}

pub(crate) fn insert_plan(
    connection: &Connection,
    plan: &NewTerraformPlan,
) -> FailureResult<PlanInsert> {
    let target = &plan.target;
    if let Some(generation) = plan.lock_generation {
        let held: Option<i64> = connection
            .query_row(
                "SELECT generation FROM terraform_locks
                 WHERE repository = ?1 AND environment = ?2 AND dir = ?3",
                params![target.repository, target.environment, target.dir],
                |row| row.get(0),
            )
            .optional()?;
        if held != Some(generation) {
            return Ok(PlanInsert::LockLost);
        }
    }
    let id: i64 = connection.query_row(
        "INSERT INTO terraform_plans (sha256, repository, environment, dir, workspace, commit_sha,
             tree_id, base_commit, pull_request, created_at, summary, counts, sealed_plan,
             json_sha256, sealed_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) RETURNING id",
        params![
            plan.sha256,
            target.repository,
            target.environment,
            target.dir,
            plan.workspace,
            plan.commit,
            plan.tree,
            plan.base_commit,
            plan.pull_request.map(|number| number as i64),
            time_text(plan.created_at),
            plan.summary,
            plan.counts,
            plan.sealed_plan,
            plan.json_sha256,
            plan.sealed_json,
        ],
        |row| row.get(0),
    )?;
    connection.execute(
        "UPDATE terraform_plans SET superseded_by = ?1
         WHERE repository = ?2 AND environment = ?3 AND dir = ?4 AND workspace = ?5
           AND id < ?1 AND superseded_by IS NULL AND applied_at IS NULL",
        params![
            id,
            target.repository,
            target.environment,
            target.dir,
            plan.workspace
        ],
    )?;
    Ok(PlanInsert::Stored { id })
}

const PLAN_COLUMNS: &str = "id, repository, environment, dir, workspace, sha256, commit_sha,
    tree_id, base_commit, pull_request, created_at, summary, counts, sealed_plan, json_sha256,
    sealed_json, superseded_by, applied_at, apply_status, apply_outputs";

fn plan_from_row(row: &super::sql::Row) -> super::sql::SqlResult<TerraformPlanRecord> {
    Ok(TerraformPlanRecord {
        id: row.get(0)?,
        target: TerraformTarget {
            repository: row.get(1)?,
            environment: row.get(2)?,
            dir: row.get(3)?,
        },
        workspace: row.get(4)?,
        sha256: row.get(5)?,
        commit: row.get(6)?,
        tree: row.get(7)?,
        base_commit: row.get(8)?,
        pull_request: row.get::<_, Option<i64>>(9)?.map(|number| number as u64),
        created_at: parse_time(row.get(10)?),
        summary: row.get(11)?,
        counts: row.get(12)?,
        sealed_plan: row.get(13)?,
        json_sha256: row.get(14)?,
        sealed_json: row.get(15)?,
        superseded_by: row.get(16)?,
        applied_at: row.get::<_, Option<String>>(17)?.map(parse_time),
        apply_status: row.get(18)?,
        apply_outputs: row.get(19)?,
    })
}

/// Every plan for the target and workspace, newest first.
pub(crate) fn plans_for(
    connection: &Connection,
    target: &TerraformTarget,
    workspace: &str,
) -> FailureResult<Vec<TerraformPlanRecord>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {PLAN_COLUMNS} FROM terraform_plans
         WHERE repository = ?1 AND environment = ?2 AND dir = ?3 AND workspace = ?4
         ORDER BY id DESC"
    ))?;
    let plans = statement
        .query_map(
            params![target.repository, target.environment, target.dir, workspace],
            plan_from_row,
        )?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    Ok(plans)
}

/// The newest plan with this content address.
pub(crate) fn plan_by_sha256(
    connection: &Connection,
    sha256: &str,
) -> FailureResult<Option<TerraformPlanRecord>> {
    let plan = connection
        .query_row(
            &format!(
                "SELECT {PLAN_COLUMNS} FROM terraform_plans WHERE sha256 = ?1 ORDER BY id DESC LIMIT 1"
            ),
            [sha256],
            plan_from_row,
        )
        .optional()?;
    Ok(plan)
}

pub(crate) fn record_apply(
    connection: &Connection,
    plan_id: i64,
    status: &str,
    outputs: &str,
    now: DateTime<Utc>,
) -> FailureResult<()> {
    connection.execute(
        "UPDATE terraform_plans SET applied_at = ?2, apply_status = ?3, apply_outputs = ?4
         WHERE id = ?1",
        params![plan_id, time_text(now), status, outputs],
    )?;
    Ok(())
}

/// The durable plans and locks. `SqliteStore` implements it; every `Store` is one.
pub trait TerraformStore: Send + Sync {
    /// Stores a plan (unless its lock is lost) and marks older unapplied plans for the same
    /// target and workspace superseded by it.
    fn insert_terraform_plan(&self, plan: &NewTerraformPlan) -> StoreResult<PlanInsert>;
    /// Every plan for the target and workspace, newest first.
    fn terraform_plans(
        &self,
        target: &TerraformTarget,
        workspace: &str,
    ) -> StoreResult<Vec<TerraformPlanRecord>>;
    /// The newest plan with this sha256.
    fn terraform_plan_by_sha256(&self, sha256: &str) -> StoreResult<Option<TerraformPlanRecord>>;
    /// Records how applying the plan went (`applied` or `failed`) and its outputs as JSON.
    fn record_terraform_apply(&self, plan_id: i64, status: &str, outputs: &str) -> StoreResult<()>;
    fn acquire_terraform_lock(&self, request: &LockRequest) -> StoreResult<LockOutcome>;
    fn terraform_lock(&self, target: &TerraformTarget) -> StoreResult<Option<LockRecord>>;
    /// Releases the lock when `pull_request` holds it, or whoever holds it when `None`.
    fn release_terraform_lock(
        &self,
        target: &TerraformTarget,
        pull_request: Option<u64>,
    ) -> StoreResult<Option<LockRecord>>;
    /// Releases every lock and queue place of a pull request in the repository.
    fn release_terraform_locks_of_pull_request(
        &self,
        repository: &str,
        pull_request: u64,
    ) -> StoreResult<Vec<LockRecord>>;
    /// Every lock held now (leases expired or not), with its queue.
    fn terraform_locks(&self) -> StoreResult<Vec<LockListing>>;
}

impl<B: Backend> TerraformStore for SqlStore<B> {
    fn insert_terraform_plan(&self, plan: &NewTerraformPlan) -> StoreResult<PlanInsert> {
        let plan = plan.clone();
        self.backend
            .write("storing a terraform plan", move |connection| {
                insert_plan(connection, &plan)
            })
    }

    fn terraform_plans(
        &self,
        target: &TerraformTarget,
        workspace: &str,
    ) -> StoreResult<Vec<TerraformPlanRecord>> {
        self.backend.read("listing terraform plans", |connection| {
            plans_for(connection, target, workspace)
        })
    }

    fn terraform_plan_by_sha256(&self, sha256: &str) -> StoreResult<Option<TerraformPlanRecord>> {
        self.backend.read("reading a terraform plan", |connection| {
            plan_by_sha256(connection, sha256)
        })
    }

    fn record_terraform_apply(&self, plan_id: i64, status: &str, outputs: &str) -> StoreResult<()> {
        let status = status.to_owned();
        let outputs = outputs.to_owned();
        self.backend
            .write("recording a terraform apply", move |connection| {
                record_apply(connection, plan_id, &status, &outputs, Utc::now())
            })
    }

    fn acquire_terraform_lock(&self, request: &LockRequest) -> StoreResult<LockOutcome> {
        let request = request.clone();
        self.backend
            .write("taking a terraform lock", move |connection| {
                acquire_lock(connection, &request)
            })
    }

    fn terraform_lock(&self, target: &TerraformTarget) -> StoreResult<Option<LockRecord>> {
        self.backend.read("reading a terraform lock", |connection| {
            lock_of(connection, target)
        })
    }

    fn release_terraform_lock(
        &self,
        target: &TerraformTarget,
        pull_request: Option<u64>,
    ) -> StoreResult<Option<LockRecord>> {
        let target = target.clone();
        self.backend
            .write("releasing a terraform lock", move |connection| {
                release_lock(connection, &target, pull_request)
            })
    }

    fn release_terraform_locks_of_pull_request(
        &self,
        repository: &str,
        pull_request: u64,
    ) -> StoreResult<Vec<LockRecord>> {
        let repository = repository.to_owned();
        self.backend.write(
            "releasing a pull request's terraform locks",
            move |connection| release_pull_request(connection, &repository, pull_request),
        )
    }

    fn terraform_locks(&self) -> StoreResult<Vec<LockListing>> {
        self.backend.read("listing terraform locks", all_locks)
    }
}
