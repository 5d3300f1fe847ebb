//! Terraform plans and locks as SQL. Plans: one row per stored plan with the sealed plan file
//! and sealed plan JSON (the store never sees plaintext), what it was made from, and what became
//! of it (superseded, applied). Locks: one row per repository + environment + directory with a
//! holder, a generation and a lease, plus a first-in-first-out queue. Knows nothing of Terraform,
//! encryption or pull requests beyond their numbers.

use super::SqliteStore;
use super::error::{FailureResult, StoreResult};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

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
    Stored { id: i64 },
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
    fn same_as(&self, other: &LockHolder) -> bool {
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

fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_time(text: String) -> DateTime<Utc> {
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
    connection.execute(
        "INSERT INTO terraform_plans (sha256, repository, environment, dir, workspace, commit_sha,
             tree_id, base_commit, pull_request, created_at, summary, counts, sealed_plan,
             json_sha256, sealed_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
    )?;
    let id = connection.last_insert_rowid();
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

fn plan_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TerraformPlanRecord> {
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
        .collect::<rusqlite::Result<Vec<_>>>()?;
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

fn lock_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LockRecord> {
    Ok(LockRecord {
        target: TerraformTarget {
            repository: row.get(0)?,
            environment: row.get(1)?,
            dir: row.get(2)?,
        },
        holder: LockHolder {
            pull_request: row.get::<_, Option<i64>>(3)?.map(|number| number as u64),
            label: row.get(4)?,
        },
        generation: row.get(5)?,
        acquired_at: parse_time(row.get(6)?),
        lease_expires_at: parse_time(row.get(7)?),
    })
}

pub(crate) fn lock_of(
    connection: &Connection,
    target: &TerraformTarget,
) -> FailureResult<Option<LockRecord>> {
    let lock = connection
        .query_row(
            "SELECT repository, environment, dir, pull_request, holder, generation, acquired_at,
                    lease_expires_at
             FROM terraform_locks WHERE repository = ?1 AND environment = ?2 AND dir = ?3",
            params![target.repository, target.environment, target.dir],
            lock_from_row,
        )
        .optional()?;
    Ok(lock)
}

/// Takes, renews, queues for or reports the lock. An expired lease counts as free.
pub(crate) fn acquire_lock(
    connection: &Connection,
    request: &LockRequest,
) -> FailureResult<LockOutcome> {
    let target = &request.target;
    let current = lock_of(connection, target)?;
    let expires = time_text(request.now + request.lease);
    let pull_request = request.holder.pull_request.map(|number| number as i64);
    if let Some(lock) = &current {
        if lock.holder.same_as(&request.holder) {
            connection.execute(
                "UPDATE terraform_locks SET lease_expires_at = ?4
                 WHERE repository = ?1 AND environment = ?2 AND dir = ?3",
                params![target.repository, target.environment, target.dir, expires],
            )?;
            return Ok(LockOutcome::Acquired {
                generation: lock.generation,
            });
        }
        if lock.lease_expires_at > request.now {
            return Ok(contended(connection, request, lock.clone())?);
        }
    }
    // Free (or expired): the head of the queue goes first.
    let queue = queue_of(connection, target)?;
    if let Some(first) = queue.first()
        && !first.same_as(&request.holder)
    {
        let waiting_lock = LockRecord {
            target: target.clone(),
            holder: first.clone(),
            generation: 0,
            acquired_at: request.now,
            lease_expires_at: request.now,
        };
        return Ok(contended(connection, request, waiting_lock)?);
    }
    let generation: i64 = connection.query_row(
        "SELECT coalesce((SELECT last_generation FROM terraform_lock_generations
             WHERE repository = ?1 AND environment = ?2 AND dir = ?3), 0) + 1",
        params![target.repository, target.environment, target.dir],
        |row| row.get(0),
    )?;
    connection.execute(
        "INSERT INTO terraform_lock_generations (repository, environment, dir, last_generation)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (repository, environment, dir) DO UPDATE SET last_generation = excluded.last_generation",
        params![target.repository, target.environment, target.dir, generation],
    )?;
    connection.execute(
        "INSERT INTO terraform_locks (repository, environment, dir, pull_request, holder,
             generation, acquired_at, lease_expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (repository, environment, dir) DO UPDATE SET pull_request = excluded.pull_request,
             holder = excluded.holder, generation = excluded.generation,
             acquired_at = excluded.acquired_at, lease_expires_at = excluded.lease_expires_at",
        params![
            target.repository,
            target.environment,
            target.dir,
            pull_request,
            request.holder.label,
            generation,
            time_text(request.now),
            expires
        ],
    )?;
    remove_from_queue(connection, target, &request.holder)?;
    Ok(LockOutcome::Acquired { generation })
}

fn contended(
    connection: &Connection,
    request: &LockRequest,
    lock: LockRecord,
) -> FailureResult<LockOutcome> {
    if !request.queue {
        return Ok(LockOutcome::Held { by: lock });
    }
    let target = &request.target;
    let mut queue = queue_of(connection, target)?;
    if !queue.iter().any(|waiting| waiting.same_as(&request.holder)) {
        connection.execute(
            "INSERT INTO terraform_lock_queue (repository, environment, dir, pull_request, holder, enqueued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                target.repository,
                target.environment,
                target.dir,
                request.holder.pull_request.map(|number| number as i64),
                request.holder.label,
                time_text(request.now)
            ],
        )?;
        queue.push(request.holder.clone());
    }
    let position = queue
        .iter()
        .position(|waiting| waiting.same_as(&request.holder))
        .map(|index| index + 1)
        .unwrap_or(queue.len());
    Ok(LockOutcome::Queued { by: lock, position })
}

fn queue_of(connection: &Connection, target: &TerraformTarget) -> FailureResult<Vec<LockHolder>> {
    let mut statement = connection.prepare_cached(
        "SELECT pull_request, holder FROM terraform_lock_queue
         WHERE repository = ?1 AND environment = ?2 AND dir = ?3 ORDER BY id",
    )?;
    let holders = statement
        .query_map(
            params![target.repository, target.environment, target.dir],
            |row| {
                Ok(LockHolder {
                    pull_request: row.get::<_, Option<i64>>(0)?.map(|number| number as u64),
                    label: row.get(1)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(holders)
}

fn remove_from_queue(
    connection: &Connection,
    target: &TerraformTarget,
    holder: &LockHolder,
) -> FailureResult<()> {
    match holder.pull_request {
        Some(number) => connection.execute(
            "DELETE FROM terraform_lock_queue
             WHERE repository = ?1 AND environment = ?2 AND dir = ?3 AND pull_request = ?4",
            params![target.repository, target.environment, target.dir, number as i64],
        )?,
        None => connection.execute(
            "DELETE FROM terraform_lock_queue
             WHERE repository = ?1 AND environment = ?2 AND dir = ?3
               AND pull_request IS NULL AND holder = ?4",
            params![target.repository, target.environment, target.dir, holder.label],
        )?,
    };
    Ok(())
}

/// Releases the lock if `pull_request` holds it (or whoever holds it when `None`). Returns the
/// released lock.
pub(crate) fn release_lock(
    connection: &Connection,
    target: &TerraformTarget,
    pull_request: Option<u64>,
) -> FailureResult<Option<LockRecord>> {
    let Some(lock) = lock_of(connection, target)? else {
        return Ok(None);
    };
    if let Some(number) = pull_request
        && lock.holder.pull_request != Some(number)
    {
        return Ok(None);
    }
    connection.execute(
        "DELETE FROM terraform_locks WHERE repository = ?1 AND environment = ?2 AND dir = ?3",
        params![target.repository, target.environment, target.dir],
    )?;
    Ok(Some(lock))
}

/// Releases every lock a pull request holds in the repository and takes it out of every queue.
pub(crate) fn release_pull_request(
    connection: &Connection,
    repository: &str,
    pull_request: u64,
) -> FailureResult<Vec<LockRecord>> {
    let mut statement = connection.prepare_cached(
        "SELECT repository, environment, dir, pull_request, holder, generation, acquired_at,
                lease_expires_at
         FROM terraform_locks WHERE repository = ?1 AND pull_request = ?2",
    )?;
    let released = statement
        .query_map(params![repository, pull_request as i64], lock_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    connection.execute(
        "DELETE FROM terraform_locks WHERE repository = ?1 AND pull_request = ?2",
        params![repository, pull_request as i64],
    )?;
    connection.execute(
        "DELETE FROM terraform_lock_queue WHERE repository = ?1 AND pull_request = ?2",
        params![repository, pull_request as i64],
    )?;
    Ok(released)
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
    fn record_terraform_apply(&self, plan_id: i64, status: &str, outputs: &str)
    -> StoreResult<()>;
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
}

impl TerraformStore for SqliteStore {
    fn insert_terraform_plan(&self, plan: &NewTerraformPlan) -> StoreResult<PlanInsert> {
        let plan = plan.clone();
        self.writer
            .write("storing a terraform plan", move |connection| {
                insert_plan(connection, &plan)
            })
    }

    fn terraform_plans(
        &self,
        target: &TerraformTarget,
        workspace: &str,
    ) -> StoreResult<Vec<TerraformPlanRecord>> {
        self.read("listing terraform plans", |connection| {
            plans_for(connection, target, workspace)
        })
    }

    fn terraform_plan_by_sha256(&self, sha256: &str) -> StoreResult<Option<TerraformPlanRecord>> {
        self.read("reading a terraform plan", |connection| {
            plan_by_sha256(connection, sha256)
        })
    }

    fn record_terraform_apply(
        &self,
        plan_id: i64,
        status: &str,
        outputs: &str,
    ) -> StoreResult<()> {
        let status = status.to_owned();
        let outputs = outputs.to_owned();
        self.writer
            .write("recording a terraform apply", move |connection| {
                record_apply(connection, plan_id, &status, &outputs, Utc::now())
            })
    }

    fn acquire_terraform_lock(&self, request: &LockRequest) -> StoreResult<LockOutcome> {
        let request = request.clone();
        self.writer
            .write("taking a terraform lock", move |connection| {
                acquire_lock(connection, &request)
            })
    }

    fn terraform_lock(&self, target: &TerraformTarget) -> StoreResult<Option<LockRecord>> {
        self.read("reading a terraform lock", |connection| {
            lock_of(connection, target)
        })
    }

    fn release_terraform_lock(
        &self,
        target: &TerraformTarget,
        pull_request: Option<u64>,
    ) -> StoreResult<Option<LockRecord>> {
        let target = target.clone();
        self.writer
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
        self.writer
            .write("releasing a pull request's terraform locks", move |connection| {
                release_pull_request(connection, &repository, pull_request)
            })
    }
}

/// The migration that creates these tables.
pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE terraform_plans (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256        TEXT NOT NULL,
        repository    TEXT NOT NULL,
        environment   TEXT NOT NULL,
        dir           TEXT NOT NULL,
        workspace     TEXT NOT NULL,
        commit_sha    TEXT NOT NULL,
        tree_id       TEXT,
        base_commit   TEXT,
        pull_request  INTEGER,
        created_at    TEXT NOT NULL,
        summary       TEXT NOT NULL,
        counts        TEXT NOT NULL,
        sealed_plan   BLOB NOT NULL,
        json_sha256   TEXT NOT NULL,
        sealed_json   BLOB NOT NULL,
        superseded_by INTEGER,
        applied_at    TEXT,
        apply_status  TEXT,
        apply_outputs TEXT
    );
    CREATE INDEX terraform_plans_by_target
        ON terraform_plans (repository, environment, dir, workspace, id);
    CREATE INDEX terraform_plans_by_sha256 ON terraform_plans (sha256);

    CREATE TABLE terraform_locks (
        repository       TEXT NOT NULL,
        environment      TEXT NOT NULL,
        dir              TEXT NOT NULL,
        pull_request     INTEGER,
        holder           TEXT NOT NULL,
        generation       INTEGER NOT NULL,
        acquired_at      TEXT NOT NULL,
        lease_expires_at TEXT NOT NULL,
        PRIMARY KEY (repository, environment, dir)
    ) WITHOUT ROWID;
    CREATE INDEX terraform_locks_by_pull_request ON terraform_locks (repository, pull_request);

    CREATE TABLE terraform_lock_generations (
        repository      TEXT NOT NULL,
        environment     TEXT NOT NULL,
        dir             TEXT NOT NULL,
        last_generation INTEGER NOT NULL,
        PRIMARY KEY (repository, environment, dir)
    ) WITHOUT ROWID;

    CREATE TABLE terraform_lock_queue (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        repository   TEXT NOT NULL,
        environment  TEXT NOT NULL,
        dir          TEXT NOT NULL,
        pull_request INTEGER,
        holder       TEXT NOT NULL,
        enqueued_at  TEXT NOT NULL
    );
    CREATE INDEX terraform_lock_queue_by_target
        ON terraform_lock_queue (repository, environment, dir, id);
"#;
