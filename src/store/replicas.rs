//! Several `sluice serve` replicas on one database, as SQL. Each replica has a row in `replicas`
//! with a lease it renews; a replica whose lease ran out is dead to the others. Deliveries and
//! runs are claimed by one replica at a time (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! replicas claiming at once take different rows without waiting for each other). A run taken
//! from a dead replica has the jobs that replica was running marked interrupted in the same
//! transaction: they are never started again, so no job runs twice. A job starts only while its
//! run is still held by the replica starting it (`start_job`). SQLite is one machine's file: the
//! replica that registers owns everything the ones before it left.

use super::error::FailureResult;
use super::rows::timestamp_text;
use super::sql::{Connection, Dialect, OptionalExtension, params};
use super::sql_store::{Backend, SqlStore};
use super::{PendingDelivery, StoreResult};
use crate::model::{Run, RunId, Status};
use chrono::{DateTime, Utc};

/// One replica as the others see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaRecord {
    pub id: String,
    /// Where it serves HTTP, as it reported.
    pub address: String,
    pub started_at: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

/// Who leads: held while the value lives (a PostgreSQL session advisory lock; always held on
/// SQLite, which one process serves).
pub trait Leadership: Send {
    /// Asks the database whether the lock is still held; false once its connection is gone.
    fn still_held(&self) -> bool;
}

/// What the replicas of one installation share beyond the store's records.
pub trait Coordination: Send + Sync {
    /// Records the replica and its lease until `lease_until`. On SQLite, the replica registering
    /// is the only one: the leases of earlier processes end now.
    fn register_replica(
        &self,
        replica: &str,
        address: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Renews the replica's lease; false when its row is gone (it was told to stop).
    fn renew_replica(&self, replica: &str, lease_until: DateTime<Utc>) -> StoreResult<bool>;

    /// Ends the replica's lease at once, so that the others take over its work now.
    fn forget_replica(&self, replica: &str) -> StoreResult<()>;

    /// Every replica with a lease, live or not, oldest first.
    fn replicas(&self) -> StoreResult<Vec<ReplicaRecord>>;

    /// Claims up to `limit` deliveries due for planning at `now` (never tried, or deferred to
    /// `now` or earlier by `defer_delivery`) that no live replica holds, oldest first, with those
    /// the replica already holds, and their failed attempts.
    fn claim_deliveries(
        &self,
        replica: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<PendingDelivery>>;

    /// Claims up to `limit` unfinished runs no live replica holds (never a run whose
    /// concurrency group a live replica is running), marking the jobs a dead holder was running
    /// as interrupted. Returns the runs claimed.
    fn claim_runs(
        &self,
        replica: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RunId>>;

    /// The unfinished runs the replica holds; jobs come without their steps.
    fn held_runs(&self, replica: &str) -> StoreResult<Vec<Run>>;

    /// Marks the queued job running if the replica still holds its run; false otherwise (another
    /// replica took the run over), and then the job must not start.
    fn start_job(&self, replica: &str, run: RunId, job: &str) -> StoreResult<bool>;

    /// The leader's lock when this replica can take it now; `None` while another holds it.
    fn try_lead(&self) -> StoreResult<Option<Box<dyn Leadership>>>;

    /// Sends `payloads` to every replica listening on `channel` (PostgreSQL's NOTIFY); nothing
    /// on SQLite, where no other replica listens.
    fn publish(&self, channel: &str, payloads: &[String]) -> StoreResult<()>;

    /// What other replicas publish on `channel`, as it arrives; `None` on SQLite.
    fn subscribe(
        &self,
        channel: &str,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>;
}

/// The parts only one database can do: leadership and messages between replicas.
pub trait ReplicaBackend {
    /// Renews the lease on a path that never waits behind other work: a replica whose renewals
    /// queue behind its own claims would look dead to the others while it works.
    fn renew_lease(&self, replica: &str, lease_until: String) -> StoreResult<bool>;
    fn try_lead(&self) -> StoreResult<Option<Box<dyn Leadership>>>;
    fn publish(&self, channel: &str, payloads: &[String]) -> StoreResult<()>;
    fn subscribe(
        &self,
        channel: &str,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>;
}

/// Rows other replicas are claiming at this moment are skipped rather than waited for.
fn skip_locked(connection: &Connection) -> &'static str {
    match connection.dialect() {
        Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    }
}

const LIVE: &str = "SELECT id FROM replicas WHERE lease_until >= ?2";

/// Deliveries due for planning that no live replica holds (or that `?1` holds).
const CLAIMABLE_DELIVERIES: &str = "FROM deliveries
     WHERE planned_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= ?2)
       AND (claimed_by IS NULL OR claimed_by = ?1
            OR claimed_by NOT IN (SELECT id FROM replicas WHERE lease_until >= ?2))";

fn claim_deliveries(
    connection: &Connection,
    replica: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> FailureResult<Vec<PendingDelivery>> {
    let sql = format!(
        "UPDATE deliveries SET claimed_by = ?1 WHERE sequence IN (
             SELECT sequence {CLAIMABLE_DELIVERIES} ORDER BY sequence LIMIT ?3 {})
         RETURNING sequence, id, event, repository, payload, received_at, attempts",
        skip_locked(connection)
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut claimed = connection
        .prepare_cached(&sql)?
        .query_map(params![replica, timestamp_text(now), limit], |row| {
            Ok((
                row.get::<_, i64>("sequence")?,
                PendingDelivery {
                    delivery: super::reads::delivery_from_row(row)?,
                    failed_attempts: row.get("attempts")?,
                },
            ))
        })?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    claimed.sort_by_key(|(sequence, _)| *sequence);
    Ok(claimed.into_iter().map(|(_, pending)| pending).collect())
}

/// Whether a claim would find anything: asked in a read-only snapshot first, so that replicas
/// looking for work that is not there never contend in write transactions.
fn anything_to_claim(
    connection: &Connection,
    from: &str,
    replica: &str,
    now: DateTime<Utc>,
) -> FailureResult<bool> {
    let sql = format!("SELECT 1 {from} LIMIT 1");
    let found = connection
        .query_row(&sql, params![replica, timestamp_text(now)], |row| {
            row.get::<_, i64>(0)
        })
        .optional()?;
    Ok(found.is_some())
}

/// Unfinished runs no live replica holds, but never one whose concurrency group another live
/// replica is running.
fn claimable_runs() -> String {
    let unfinished = format!(
        "('{}', '{}')",
        Status::Queued.as_str(),
        Status::Running.as_str()
    );
    format!(
        "FROM runs
         WHERE status IN {unfinished}
           AND (replica IS NULL OR (replica <> ?1 AND replica NOT IN ({LIVE})))
           AND (concurrency_group IS NULL OR NOT EXISTS (
               SELECT 1 FROM runs other
               WHERE other.concurrency_group = runs.concurrency_group
                 AND other.status IN {unfinished} AND other.id <> runs.id
                 AND other.replica <> ?1 AND other.replica IN ({LIVE})))"
    )
}

fn claim_runs(
    connection: &Connection,
    replica: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> FailureResult<Vec<RunId>> {
    let sql = format!(
        "SELECT id, replica {} ORDER BY id LIMIT ?3 {}",
        claimable_runs(),
        skip_locked(connection)
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let candidates = connection
        .prepare_cached(&sql)?
        .query_map(params![replica, timestamp_text(now), limit], |row| {
            Ok((row.get::<_, RunId>(0)?, row.get::<_, Option<String>>(1)?))
        })?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    let now_text = timestamp_text(now);
    for (run, previous) in &candidates {
        connection.execute(
            "UPDATE runs SET replica = ?1 WHERE id = ?2",
            params![replica, run],
        )?;
        let reason = match previous {
            Some(previous) => format!(
                "interrupted: replica {previous} stopped (its lease ran out) while this job was \
                 running; it is not restarted automatically so that it never runs twice"
            ),
            None => "interrupted: the server stopped while this job was running; it is not \
                     restarted automatically so that it never runs twice"
                .to_string(),
        };
        connection.execute(
            "UPDATE jobs SET status = ?1, reason = ?2, finished_at = ?3
             WHERE run_id = ?4 AND status = ?5",
            params![
                Status::Failed.as_str(),
                reason,
                now_text,
                run,
                Status::Running.as_str()
            ],
        )?;
    }
    Ok(candidates.into_iter().map(|(run, _)| run).collect())
}

fn start_job(
    connection: &Connection,
    replica: &str,
    run: RunId,
    job: &str,
    now: DateTime<Utc>,
) -> FailureResult<bool> {
    let started = connection.execute(
        "UPDATE jobs SET status = ?1, reason = NULL, started_at = coalesce(started_at, ?2)
         WHERE run_id = ?3 AND name = ?4 AND status = ?5
           AND EXISTS (SELECT 1 FROM runs WHERE id = ?3 AND replica = ?6)",
        params![
            Status::Running.as_str(),
            timestamp_text(now),
            run,
            job,
            Status::Queued.as_str(),
            replica
        ],
    )?;
    Ok(started == 1)
}

fn replica_from_row(row: &super::sql::Row) -> super::sql::SqlResult<ReplicaRecord> {
    Ok(ReplicaRecord {
        id: row.get("id")?,
        address: row.get("address")?,
        started_at: super::rows::timestamp(row, "started_at")?,
        lease_until: super::rows::timestamp(row, "lease_until")?,
    })
}

impl<B: Backend + ReplicaBackend> Coordination for SqlStore<B> {
    fn register_replica(
        &self,
        replica: &str,
        address: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (replica, address) = (replica.to_string(), address.to_string());
        self.backend
            .write("registering a replica", move |connection| {
                if connection.dialect() == Dialect::Sqlite {
                    connection.execute("DELETE FROM replicas", params![])?;
                }
                connection.execute(
                    "INSERT INTO replicas (id, address, started_at, lease_until)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until",
                    params![
                        replica,
                        address,
                        timestamp_text(now),
                        timestamp_text(lease_until)
                    ],
                )?;
                Ok(())
            })
    }

    fn renew_replica(&self, replica: &str, lease_until: DateTime<Utc>) -> StoreResult<bool> {
        self.backend
            .renew_lease(replica, timestamp_text(lease_until))
    }

    fn forget_replica(&self, replica: &str) -> StoreResult<()> {
        let replica = replica.to_string();
        self.backend
            .write("ending a replica's lease", move |connection| {
                connection.execute("DELETE FROM replicas WHERE id = ?1", [&replica])?;
                Ok(())
            })
    }

    fn replicas(&self) -> StoreResult<Vec<ReplicaRecord>> {
        self.backend.read("listing replicas", |connection| {
            Ok(connection
                .prepare_cached(
                    "SELECT id, address, started_at, lease_until FROM replicas
                     ORDER BY started_at, id",
                )?
                .query_map(params![], replica_from_row)?
                .collect::<super::sql::SqlResult<Vec<_>>>()?)
        })
    }

    fn claim_deliveries(
        &self,
        replica: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<PendingDelivery>> {
        let replica = replica.to_string();
        self.backend
            .write("claiming deliveries", move |connection| {
                claim_deliveries(connection, &replica, now, limit)
            })
    }

    fn claim_runs(
        &self,
        replica: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RunId>> {
        let waiting = self
            .backend
            .read("looking for runs to claim", |connection| {
                anything_to_claim(connection, &claimable_runs(), replica, now)
            })?;
        if !waiting {
            return Ok(Vec::new());
        }
        let replica = replica.to_string();
        self.backend.write("claiming runs", move |connection| {
            claim_runs(connection, &replica, now, limit)
        })
    }

    fn held_runs(&self, replica: &str) -> StoreResult<Vec<Run>> {
        self.backend
            .read("listing the runs a replica holds", |connection| {
                super::reads::unfinished_runs_of(connection, replica)
            })
    }

    fn start_job(&self, replica: &str, run: RunId, job: &str) -> StoreResult<bool> {
        let (replica, job) = (replica.to_string(), job.to_string());
        self.backend.write("starting a job", move |connection| {
            start_job(connection, &replica, run, &job, Utc::now())
        })
    }

    fn try_lead(&self) -> StoreResult<Option<Box<dyn Leadership>>> {
        self.backend.try_lead()
    }

    fn publish(&self, channel: &str, payloads: &[String]) -> StoreResult<()> {
        self.backend.publish(channel, payloads)
    }

    fn subscribe(
        &self,
        channel: &str,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<String>>> {
        self.backend.subscribe(channel)
    }
}

/// SQLite's single process always leads.
struct AlwaysLeads;

impl Leadership for AlwaysLeads {
    fn still_held(&self) -> bool {
        true
    }
}

/// The statement that renews a lease, on either database.
pub(crate) const RENEW: &str = "UPDATE replicas SET lease_until = ?2 WHERE id = ?1";

impl ReplicaBackend for super::sqlite::Sqlite {
    fn renew_lease(&self, replica: &str, lease_until: String) -> StoreResult<bool> {
        let replica = replica.to_string();
        self.write("renewing a replica's lease", move |connection| {
            Ok(connection.execute(RENEW, params![replica, lease_until])? == 1)
        })
    }

    fn try_lead(&self) -> StoreResult<Option<Box<dyn Leadership>>> {
        Ok(Some(Box::new(AlwaysLeads)))
    }

    fn publish(&self, _channel: &str, _payloads: &[String]) -> StoreResult<()> {
        Ok(())
    }

    fn subscribe(
        &self,
        _channel: &str,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<String>>> {
        Ok(None)
    }
}

pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE replicas (
        id          TEXT PRIMARY KEY,
        address     TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        lease_until TEXT NOT NULL
    );
    ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
    ALTER TABLE runs ADD COLUMN replica TEXT;
    CREATE INDEX runs_unfinished_by_replica ON runs (replica) WHERE status IN ('queued', 'running');
"#;
