//! What sluice keeps of pull-request comment commands: each command's progress (pending, acting,
//! answered, interrupted) with when it was acknowledged and answered; approvals given in a pull
//! request before its merge became a release; and which lock-queue heads were asked to plan
//! again. Knows nothing of GitHub or of what the commands do.

use super::error::{FailureResult, StoreResult};
use super::sql::{Connection, Dialect, params};
use super::sql_store::{Backend, SqlStore};
use super::terraform::{TerraformTarget, parse_time, time_text};
use chrono::{DateTime, Utc};

/// Where a command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandState {
    /// Accepted, not yet looked at.
    Pending,
    /// Being carried out; after a restart in this state it is `Interrupted`, never done again.
    Acting,
    Answered,
    /// The server stopped while carrying it out.
    Interrupted,
}

impl CommandState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Pending => "pending",
            CommandState::Acting => "acting",
            CommandState::Answered => "answered",
            CommandState::Interrupted => "interrupted",
        }
    }
}

/// One command as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    pub delivery_id: String,
    pub repository: String,
    pub pull_request: u64,
    pub state: String,
    pub outcome: Option<String>,
    pub received_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// An approval given in a pull request for the release its merge will become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingApproval {
    pub repository: String,
    pub environment: String,
    pub pull_request: u64,
    /// The head the approver saw: only a merge of exactly this head inherits the approval.
    pub head_sha: String,
    pub approver: String,
    pub at: i64,
}

/// A waiting plan whose lock is free: the pull request to plan again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueHead {
    pub target: TerraformTarget,
    pub pull_request: u64,
}

pub trait CommandRecords: Send + Sync {
    /// `false` when the delivery's command was recorded before.
    fn enqueue_command(
        &self,
        delivery_id: &str,
        repository: &str,
        pull_request: u64,
        received_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Delivery ids in `state`, oldest first.
    fn commands_in_state(&self, state: CommandState) -> StoreResult<Vec<String>>;
    /// Moves a command from `from` to `to`; `false` when it was not in `from`.
    fn move_command(
        &self,
        delivery_id: &str,
        from: CommandState,
        to: CommandState,
    ) -> StoreResult<bool>;
    fn finish_command(
        &self,
        delivery_id: &str,
        state: CommandState,
        outcome: &str,
        answered_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    fn commands(&self, limit: usize) -> StoreResult<Vec<CommandRecord>>;

    /// `false` when the same person had approved the same head for the environment.
    fn add_pending_approval(&self, approval: &PendingApproval) -> StoreResult<bool>;
    /// Approvals given in `repository` for any of `heads`.
    fn pending_approvals(
        &self,
        repository: &str,
        heads: &[String],
    ) -> StoreResult<Vec<PendingApproval>>;

    /// Queue heads of free (or expired) locks not asked to plan again since `asked_before`.
    fn queue_heads_to_plan(
        &self,
        now: DateTime<Utc>,
        asked_before: DateTime<Utc>,
    ) -> StoreResult<Vec<QueueHead>>;
    fn mark_queue_head_asked(&self, head: &QueueHead, at: DateTime<Utc>) -> StoreResult<()>;
    /// The newest `pull_request` delivery about pull request `number` of `repository`.
    fn latest_pull_request_delivery(
        &self,
        repository: &str,
        number: u64,
    ) -> StoreResult<Option<crate::model::Delivery>>;
}

impl<B: Backend> CommandRecords for SqlStore<B> {
    fn enqueue_command(
        &self,
        delivery_id: &str,
        repository: &str,
        pull_request: u64,
        received_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (id, repository) = (delivery_id.to_owned(), repository.to_owned());
        self.backend
            .write("recording a comment command", move |connection| {
                let inserted = connection.execute(
                    "INSERT INTO comment_commands
                 (delivery_id, repository, pull_request, state, received_at)
                 VALUES (?1, ?2, ?3, 'pending', ?4) ON CONFLICT DO NOTHING",
                    params![id, repository, pull_request as i64, time_text(received_at)],
                )?;
                Ok(inserted == 1)
            })
    }

    fn commands_in_state(&self, state: CommandState) -> StoreResult<Vec<String>> {
        self.backend
            .read("reading comment commands", move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT delivery_id FROM comment_commands WHERE state = ?1
                     ORDER BY received_at, delivery_id",
                )?;
                let ids = statement
                    .query_map(params![state.as_str()], |row| row.get(0))?
                    .collect::<super::sql::SqlResult<Vec<String>>>()?;
                Ok(ids)
            })
    }

    fn move_command(
        &self,
        delivery_id: &str,
        from: CommandState,
        to: CommandState,
    ) -> StoreResult<bool> {
        let id = delivery_id.to_owned();
        self.backend
            .write("updating a comment command", move |connection| {
                let changed = connection.execute(
                    "UPDATE comment_commands SET state = ?3 WHERE delivery_id = ?1 AND state = ?2",
                    params![id, from.as_str(), to.as_str()],
                )?;
                Ok(changed == 1)
            })
    }

    fn finish_command(
        &self,
        delivery_id: &str,
        state: CommandState,
        outcome: &str,
        answered_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let (id, outcome) = (delivery_id.to_owned(), outcome.to_owned());
        self.backend
            .write("recording a command's answer", move |connection| {
                connection.execute(
                    "UPDATE comment_commands SET state = ?2, outcome = ?3,
                        answered_at = COALESCE(?4, answered_at)
                 WHERE delivery_id = ?1",
                    params![id, state.as_str(), outcome, answered_at.map(time_text)],
                )?;
                Ok(())
            })
    }

    fn commands(&self, limit: usize) -> StoreResult<Vec<CommandRecord>> {
        self.backend
            .read("reading comment commands", move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT delivery_id, repository, pull_request, state, outcome, received_at,
                        answered_at
                 FROM comment_commands ORDER BY received_at DESC, delivery_id DESC LIMIT ?1",
                )?;
                let rows = statement
                    .query_map(params![limit as i64], |row| {
                        Ok(CommandRecord {
                            delivery_id: row.get(0)?,
                            repository: row.get(1)?,
                            pull_request: row.get::<_, i64>(2)? as u64,
                            state: row.get(3)?,
                            outcome: row.get(4)?,
                            received_at: parse_time(row.get(5)?),
                            answered_at: row.get::<_, Option<String>>(6)?.map(parse_time),
                        })
                    })?
                    .collect::<super::sql::SqlResult<Vec<_>>>()?;
                Ok(rows)
            })
    }

    fn add_pending_approval(&self, approval: &PendingApproval) -> StoreResult<bool> {
        let approval = approval.clone();
        self.backend
            .write("recording an approval", move |connection| {
                let inserted = connection.execute(
                    "INSERT INTO pull_request_approvals
                 (repository, environment, pull_request, head_sha, approver, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                    params![
                        approval.repository,
                        approval.environment,
                        approval.pull_request as i64,
                        approval.head_sha,
                        approval.approver,
                        approval.at
                    ],
                )?;
                Ok(inserted == 1)
            })
    }

    fn pending_approvals(
        &self,
        repository: &str,
        heads: &[String],
    ) -> StoreResult<Vec<PendingApproval>> {
        let (repository, heads) = (repository.to_owned(), heads.to_vec());
        self.backend
            .read("reading pull-request approvals", move |connection| {
                let mut found = Vec::new();
                for head in &heads {
                    found.extend(approvals_of_head(connection, &repository, head)?);
                }
                Ok(found)
            })
    }

    fn queue_heads_to_plan(
        &self,
        now: DateTime<Utc>,
        asked_before: DateTime<Utc>,
    ) -> StoreResult<Vec<QueueHead>> {
        self.backend
            .read("reading the lock queues", move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT q.repository, q.environment, q.dir, q.pull_request, q.replan_asked_at
                 FROM terraform_lock_queue q
                 WHERE q.id = (SELECT MIN(first.id) FROM terraform_lock_queue first
                               WHERE first.repository = q.repository
                                 AND first.environment = q.environment AND first.dir = q.dir)
                   AND q.pull_request IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM terraform_locks l
                                   WHERE l.repository = q.repository
                                     AND l.environment = q.environment AND l.dir = q.dir
                                     AND l.lease_expires_at > ?1)
                 ORDER BY q.id",
                )?;
                let rows = statement
                    .query_map(params![time_text(now)], |row| {
                        Ok((
                            QueueHead {
                                target: TerraformTarget {
                                    repository: row.get(0)?,
                                    environment: row.get(1)?,
                                    dir: row.get(2)?,
                                },
                                pull_request: row.get::<_, i64>(3)? as u64,
                            },
                            row.get::<_, Option<String>>(4)?,
                        ))
                    })?
                    .collect::<super::sql::SqlResult<Vec<_>>>()?;
                Ok(rows
                    .into_iter()
                    .filter(|(_, asked)| {
                        asked
                            .clone()
                            .map(parse_time)
                            .is_none_or(|asked| asked < asked_before)
                    })
                    .map(|(head, _)| head)
                    .collect())
            })
    }

    fn latest_pull_request_delivery(
        &self,
        repository: &str,
        number: u64,
    ) -> StoreResult<Option<crate::model::Delivery>> {
        self.latest_pull_request_delivery_of(repository, number)
    }

    fn mark_queue_head_asked(&self, head: &QueueHead, at: DateTime<Utc>) -> StoreResult<()> {
        let head = head.clone();
        self.backend
            .write("marking a queued plan as asked", move |connection| {
                connection.execute(
                    "UPDATE terraform_lock_queue SET replan_asked_at = ?5
                 WHERE repository = ?1 AND environment = ?2 AND dir = ?3 AND pull_request = ?4",
                    params![
                        head.target.repository,
                        head.target.environment,
                        head.target.dir,
                        head.pull_request as i64,
                        time_text(at)
                    ],
                )?;
                Ok(())
            })
    }
}

impl<B: Backend> SqlStore<B> {
    fn latest_pull_request_delivery_of(
        &self,
        repository: &str,
        number: u64,
    ) -> StoreResult<Option<crate::model::Delivery>> {
        let repository = repository.to_owned();
        self.backend.read(
            "reading a pull request's newest delivery",
            move |connection| {
                let number_path = match connection.dialect() {
                    Dialect::Sqlite => "json_extract(CAST(payload AS TEXT), '$.number')",
                    Dialect::Postgres => {
                        "CAST(convert_from(payload, 'UTF8') AS jsonb) ->> 'number'"
                    }
                };
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT id, event, repository, payload, received_at FROM deliveries
                     WHERE event = 'pull_request' AND repository = ?1 AND {number_path} = ?2
                     ORDER BY sequence DESC LIMIT 1"
                ))?;
                let mut rows = statement.query_map(
                    params![repository, number as i64],
                    super::reads::delivery_from_row,
                )?;
                Ok(rows.next().transpose()?)
            },
        )
    }
}

fn approvals_of_head(
    connection: &Connection,
    repository: &str,
    head: &str,
) -> FailureResult<Vec<PendingApproval>> {
    let mut statement = connection.prepare_cached(
        "SELECT environment, pull_request, approver, at FROM pull_request_approvals
         WHERE repository = ?1 AND head_sha = ?2 ORDER BY id",
    )?;
    let rows = statement
        .query_map(params![repository, head], |row| {
            Ok(PendingApproval {
                repository: repository.to_owned(),
                environment: row.get(0)?,
                pull_request: row.get::<_, i64>(1)? as u64,
                head_sha: head.to_owned(),
                approver: row.get(2)?,
                at: row.get(3)?,
            })
        })?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    Ok(rows)
}

/// The migration for comment commands, pull-request approvals and queue re-plan marks.
pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE comment_commands (
        delivery_id  TEXT PRIMARY KEY,
        repository   TEXT NOT NULL,
        pull_request INTEGER NOT NULL,
        state        TEXT NOT NULL,
        outcome      TEXT,
        received_at  TEXT NOT NULL,
        answered_at  TEXT
    );
    CREATE INDEX comment_commands_by_state ON comment_commands (state);

    CREATE TABLE pull_request_approvals (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        repository   TEXT NOT NULL,
        environment  TEXT NOT NULL,
        pull_request INTEGER NOT NULL,
        head_sha     TEXT NOT NULL,
        approver     TEXT NOT NULL,
        at           INTEGER NOT NULL,
        UNIQUE (repository, environment, head_sha, approver)
    );

    ALTER TABLE terraform_lock_queue ADD COLUMN replan_asked_at TEXT;
"#;
