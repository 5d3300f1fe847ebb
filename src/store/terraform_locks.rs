//! Terraform locks as SQL: one row per repository + environment + directory with a holder, a
//! generation (new for every new holder, so a plan made under a lock released meanwhile is
//! recognised) and a lease, plus a first-in-first-out queue of waiting holders. Knows nothing
//! of Terraform or of what the holders do.

use super::error::FailureResult;
use super::sql::{Connection, OptionalExtension, params};
use super::terraform::{
    LockHolder, LockListing, LockOutcome, LockRecord, LockRequest, QueuedHolder, TerraformTarget,
    parse_time, time_text,
};

pub(crate) fn lock_from_row(row: &super::sql::Row) -> super::sql::SqlResult<LockRecord> {
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
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
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
            params![
                target.repository,
                target.environment,
                target.dir,
                number as i64
            ],
        )?,
        None => connection.execute(
            "DELETE FROM terraform_lock_queue
             WHERE repository = ?1 AND environment = ?2 AND dir = ?3
               AND pull_request IS NULL AND holder = ?4",
            params![
                target.repository,
                target.environment,
                target.dir,
                holder.label
            ],
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

/// Every lock, ordered by repository, environment and directory, each with the holders queued
/// behind it, first in line first.
pub(crate) fn all_locks(connection: &Connection) -> FailureResult<Vec<LockListing>> {
    let mut statement = connection.prepare_cached(
        "SELECT repository, environment, dir, pull_request, holder, generation, acquired_at,
                lease_expires_at
         FROM terraform_locks ORDER BY repository, environment, dir",
    )?;
    let locks = statement
        .query_map(params![], lock_from_row)?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    let mut queued = connection.prepare_cached(
        "SELECT pull_request, holder, enqueued_at FROM terraform_lock_queue
         WHERE repository = ?1 AND environment = ?2 AND dir = ?3 ORDER BY id",
    )?;
    let mut listings = Vec::with_capacity(locks.len());
    for lock in locks {
        let target = &lock.target;
        let queue = queued
            .query_map(
                params![target.repository, target.environment, target.dir],
                |row| {
                    Ok(QueuedHolder {
                        holder: LockHolder {
                            pull_request: row.get::<_, Option<i64>>(0)?.map(|number| number as u64),
                            label: row.get(1)?,
                        },
                        enqueued_at: parse_time(row.get(2)?),
                    })
                },
            )?
            .collect::<super::sql::SqlResult<Vec<_>>>()?;
        listings.push(LockListing { lock, queue });
    }
    Ok(listings)
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
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
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

/// The migration that creates the Terraform plan and lock tables (plans: `terraform.rs`).
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
