//! What the web UI reads and keeps beyond runs and releases: each commit's first line and author
//! (recorded at intake from the mirror, so pages never open git), signed-in sessions (only their
//! sha256, tied to the personal token they were opened with, so revoking the token ends them),
//! and a job's log from a given chunk on, for live streaming. Knows nothing of HTTP.

use super::error::{FailureResult, StoreResult};
use super::sql::{Connection, OptionalExtension, params};
use super::sql_store::{Backend, SqlStore};
use crate::model::RunId;
use serde::Serialize;

/// A commit as people recognise it in a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitSummary {
    pub repository: String,
    pub sha: String,
    /// The first line of the message.
    pub title: String,
    pub author: String,
    /// Unix seconds of the commit (the committer's time: when it reached a branch).
    pub committed_at: i64,
}

/// A signed-in browser session about to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUiSession {
    /// Hex sha256 of the cookie's value; the value itself is never stored.
    pub sha256: String,
    /// The sha256 of the personal token it was opened with.
    pub token_sha256: String,
    /// Every form of this session carries it.
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UiSession {
    pub token_sha256: String,
    pub csrf: String,
    pub expires_at: i64,
}

/// A piece of a job's log with its position; later pieces have larger ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    pub id: i64,
    pub text: String,
}

/// The web UI's part of the store. Methods may block on IO.
pub trait UiRecords: Send + Sync {
    /// Keeps each commit's summary; a commit already known is left as it is.
    fn record_commits(&self, commits: &[CommitSummary]) -> StoreResult<()>;
    /// The summaries known of these commits of one repository.
    fn commit_summaries(
        &self,
        repository: &str,
        shas: &[String],
    ) -> StoreResult<Vec<CommitSummary>>;
    fn create_ui_session(&self, session: &NewUiSession) -> StoreResult<()>;
    /// The session whose cookie hashes to `sha256`, expired or not.
    fn ui_session(&self, sha256: &str) -> StoreResult<Option<UiSession>>;
    fn delete_ui_session(&self, sha256: &str) -> StoreResult<()>;
    /// The job's log chunks after chunk `after` (0: from the start); `None` for an unknown job.
    fn job_log_since(
        &self,
        run: RunId,
        job: &str,
        after: i64,
    ) -> StoreResult<Option<Vec<LogChunk>>>;
    /// Records that `by` asked for the run to be cancelled; `false` when someone already had.
    fn request_run_cancel(&self, run: RunId, by: &str, at: i64) -> StoreResult<bool>;
    /// Who asked to cancel each of these runs, for those someone asked to cancel.
    fn run_cancel_requests(&self, runs: &[RunId]) -> StoreResult<Vec<(RunId, String)>>;
}

fn commit_from_row(row: &super::sql::Row) -> super::sql::SqlResult<CommitSummary> {
    Ok(CommitSummary {
        repository: row.get(0)?,
        sha: row.get(1)?,
        title: row.get(2)?,
        author: row.get(3)?,
        committed_at: row.get(4)?,
    })
}

fn log_since(
    connection: &Connection,
    run: RunId,
    job: &str,
    after: i64,
) -> FailureResult<Option<Vec<LogChunk>>> {
    let job_id: Option<i64> = connection
        .prepare_cached("SELECT id FROM jobs WHERE run_id = ?1 AND name = ?2")?
        .query_row(params![run, job], |row| row.get(0))
        .optional()?;
    let Some(job_id) = job_id else {
        return Ok(None);
    };
    let chunks = connection
        .prepare_cached(
            "SELECT id, text FROM log_chunks WHERE job_id = ?1 AND id > ?2 ORDER BY id",
        )?
        .query_map(params![job_id, after], |row| {
            Ok(LogChunk {
                id: row.get(0)?,
                text: row.get(1)?,
            })
        })?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    Ok(Some(chunks))
}

impl<B: Backend> UiRecords for SqlStore<B> {
    fn record_commits(&self, commits: &[CommitSummary]) -> StoreResult<()> {
        if commits.is_empty() {
            return Ok(());
        }
        let commits = commits.to_vec();
        self.backend
            .write("recording commit summaries", move |connection| {
                let mut statement = connection.prepare_cached(
                    "INSERT INTO commit_summaries (repository, sha, title, author, committed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )?;
                for commit in &commits {
                    statement.execute(params![
                        commit.repository,
                        commit.sha,
                        commit.title,
                        commit.author,
                        commit.committed_at
                    ])?;
                }
                Ok(())
            })
    }

    fn commit_summaries(
        &self,
        repository: &str,
        shas: &[String],
    ) -> StoreResult<Vec<CommitSummary>> {
        self.backend.read("reading commit summaries", |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT repository, sha, title, author, committed_at FROM commit_summaries
                 WHERE repository = ?1 AND sha = ?2",
            )?;
            let mut found = Vec::new();
            for sha in shas {
                if let Some(commit) = statement
                    .query_row(params![repository, sha], commit_from_row)
                    .optional()?
                {
                    found.push(commit);
                }
            }
            Ok(found)
        })
    }

    fn create_ui_session(&self, session: &NewUiSession) -> StoreResult<()> {
        let session = session.clone();
        self.backend.write("storing a session", move |connection| {
            // Expired sessions go as new ones come, so the table never grows without bound.
            connection.execute(
                "DELETE FROM ui_sessions WHERE expires_at <= ?1",
                [session.created_at],
            )?;
            connection.execute(
                "INSERT INTO ui_sessions (sha256, token_sha256, csrf, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    session.sha256,
                    session.token_sha256,
                    session.csrf,
                    session.created_at,
                    session.expires_at
                ],
            )?;
            Ok(())
        })
    }

    fn ui_session(&self, sha256: &str) -> StoreResult<Option<UiSession>> {
        self.backend.read("reading a session", |connection| {
            Ok(connection
                .prepare_cached(
                    "SELECT token_sha256, csrf, expires_at FROM ui_sessions WHERE sha256 = ?1",
                )?
                .query_row([sha256], |row| {
                    Ok(UiSession {
                        token_sha256: row.get(0)?,
                        csrf: row.get(1)?,
                        expires_at: row.get(2)?,
                    })
                })
                .optional()?)
        })
    }

    fn delete_ui_session(&self, sha256: &str) -> StoreResult<()> {
        let sha256 = sha256.to_owned();
        self.backend.write("ending a session", move |connection| {
            connection.execute("DELETE FROM ui_sessions WHERE sha256 = ?1", [&sha256])?;
            Ok(())
        })
    }

    fn request_run_cancel(&self, run: RunId, by: &str, at: i64) -> StoreResult<bool> {
        let by = by.to_owned();
        self.backend
            .write("recording a request to cancel a run", move |connection| {
                let inserted = connection.execute(
                    "INSERT INTO run_cancellations (run_id, requested_by, requested_at)
                 VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    params![run, by, at],
                )?;
                Ok(inserted > 0)
            })
    }

    fn run_cancel_requests(&self, runs: &[RunId]) -> StoreResult<Vec<(RunId, String)>> {
        self.backend
            .read("reading requests to cancel runs", |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT requested_by FROM run_cancellations WHERE run_id = ?1",
                )?;
                let mut found = Vec::new();
                for run in runs {
                    if let Some(by) = statement
                        .query_row([run], |row| row.get::<_, String>(0))
                        .optional()?
                    {
                        found.push((*run, by));
                    }
                }
                Ok(found)
            })
    }

    fn job_log_since(
        &self,
        run: RunId,
        job: &str,
        after: i64,
    ) -> StoreResult<Option<Vec<LogChunk>>> {
        self.backend.read("reading a job's log", |connection| {
            log_since(connection, run, job, after)
        })
    }
}

/// Commit summaries, sessions, requests to cancel runs, the promotion order, the times each step started and finished, and the indexes the
/// runs page filters by.
pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE commit_summaries (
        repository   TEXT NOT NULL,
        sha          TEXT NOT NULL,
        title        TEXT NOT NULL,
        author       TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        PRIMARY KEY (repository, sha)
    ) WITHOUT ROWID;

    CREATE TABLE ui_sessions (
        sha256       TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL,
        csrf         TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE environment_order (
        repository TEXT PRIMARY KEY,
        names      TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE run_cancellations (
        run_id       INTEGER PRIMARY KEY REFERENCES runs (id),
        requested_by TEXT NOT NULL,
        requested_at INTEGER NOT NULL
    );

    ALTER TABLE steps ADD COLUMN started_at TEXT;
    ALTER TABLE steps ADD COLUMN finished_at TEXT;

    CREATE INDEX runs_by_ref ON runs (git_ref, id);
    CREATE INDEX runs_by_event ON runs (event, id);
"#;
