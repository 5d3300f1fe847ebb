//! The schema as one ordered list of migrations for both databases, and the code that brings a
//! database up to date. The version lives in the one-row `schema_version` table. A migration, once released, is
//! never edited: changes are new entries at the end of `MIGRATIONS`.

use super::error::StoreError;
use super::sql::{Connection, Dialect, OptionalExtension, SqlError, SqlResult, params};

/// Each entry brings the schema from version `index` to version `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: deliveries, runs, jobs, steps, logs.
    r#"
    CREATE TABLE deliveries (
        sequence    INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        event       TEXT NOT NULL,
        repository  TEXT,
        payload     BLOB NOT NULL,
        received_at TEXT NOT NULL,
        planned_at  TEXT,
        outcome     TEXT
    );
    CREATE INDEX deliveries_pending ON deliveries (sequence) WHERE planned_at IS NULL;

    CREATE TABLE runs (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        repository        TEXT NOT NULL,
        commit_sha        TEXT NOT NULL,
        git_ref           TEXT NOT NULL,
        event             TEXT NOT NULL,
        pipeline          TEXT NOT NULL,
        status            TEXT NOT NULL,
        reason            TEXT,
        concurrency_group TEXT,
        delivery_id       TEXT REFERENCES deliveries (id),
        plan              TEXT NOT NULL,
        created_at        TEXT NOT NULL,
        finished_at       TEXT
    );
    CREATE INDEX runs_by_repository ON runs (repository, id);
    CREATE INDEX runs_by_commit ON runs (commit_sha, id);
    CREATE INDEX runs_by_delivery ON runs (delivery_id) WHERE delivery_id IS NOT NULL;
    CREATE INDEX runs_by_status ON runs (status, id);

    CREATE TABLE jobs (
        id          INTEGER PRIMARY KEY,
        run_id      INTEGER NOT NULL REFERENCES runs (id),
        name        TEXT NOT NULL,
        needs       TEXT NOT NULL,
        status      TEXT NOT NULL,
        reason      TEXT,
        started_at  TEXT,
        finished_at TEXT,
        UNIQUE (run_id, name)
    );
    CREATE INDEX jobs_by_status ON jobs (status);

    CREATE TABLE steps (
        job_id     INTEGER NOT NULL REFERENCES jobs (id),
        step_index INTEGER NOT NULL,
        name       TEXT NOT NULL,
        status     TEXT NOT NULL,
        exit_code  INTEGER,
        reason     TEXT,
        PRIMARY KEY (job_id, step_index)
    ) WITHOUT ROWID;

    CREATE TABLE log_chunks (
        id     INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs (id),
        text   TEXT NOT NULL
    );
    CREATE INDEX log_chunks_by_job ON log_chunks (job_id, id);
    "#,
    // 2: values a job's steps record for later jobs (a build's pushed digest).
    r#"
    CREATE TABLE job_outputs (
        job_id INTEGER NOT NULL REFERENCES jobs (id),
        name   TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (job_id, name)
    ) WITHOUT ROWID;
    "#,
    // 3: releases and their promotion: environment state, deployments with their per-target
    // steps, approvals, requests from people (promote, rollback) and the audit history.
    r#"
    CREATE TABLE releases (
        repository TEXT NOT NULL,
        id         TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        sequence   INTEGER NOT NULL,
        body       TEXT NOT NULL,
        rejected   TEXT,
        PRIMARY KEY (repository, id),
        UNIQUE (repository, commit_sha)
    );
    CREATE TABLE environment_state (
        repository    TEXT NOT NULL,
        environment   TEXT NOT NULL,
        release_id    TEXT NOT NULL,
        healthy_since INTEGER NOT NULL,
        PRIMARY KEY (repository, environment)
    ) WITHOUT ROWID;
    CREATE TABLE deployments (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        repository   TEXT NOT NULL,
        environment  TEXT NOT NULL,
        release_id   TEXT NOT NULL,
        previous_id  TEXT,
        action       TEXT NOT NULL,
        status       TEXT NOT NULL,
        actor        TEXT,
        reason       TEXT,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER
    );
    -- The durable per-environment lock: at most one running deployment.
    CREATE UNIQUE INDEX deployments_one_running ON deployments (repository, environment)
        WHERE status = 'running';
    CREATE TABLE deployment_steps (
        deployment_id INTEGER NOT NULL REFERENCES deployments (id),
        target        TEXT NOT NULL,
        phase         TEXT NOT NULL,
        summary       TEXT NOT NULL,
        rollback      TEXT NOT NULL,
        outputs       TEXT NOT NULL,
        at            INTEGER NOT NULL,
        PRIMARY KEY (deployment_id, target)
    ) WITHOUT ROWID;
    CREATE TABLE approvals (
        repository  TEXT NOT NULL,
        environment TEXT NOT NULL,
        release_id  TEXT NOT NULL,
        approver    TEXT NOT NULL,
        at          INTEGER NOT NULL,
        PRIMARY KEY (repository, environment, release_id, approver)
    ) WITHOUT ROWID;
    CREATE TABLE deploy_requests (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        repository  TEXT NOT NULL,
        environment TEXT NOT NULL,
        release_id  TEXT,
        action      TEXT NOT NULL,
        actor       TEXT,
        at          INTEGER NOT NULL,
        outcome     TEXT
    );
    CREATE TABLE deploy_audit (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        repository  TEXT NOT NULL,
        environment TEXT,
        release_id  TEXT,
        action      TEXT NOT NULL,
        actor       TEXT,
        outcome     TEXT NOT NULL,
        reason      TEXT NOT NULL,
        at          INTEGER NOT NULL
    );
    CREATE INDEX deploy_audit_by_environment ON deploy_audit (repository, environment, id);
    "#,
    // 4: Terraform plans (sealed), locks with leases and their queue.
    super::terraform_locks::MIGRATION,
    // 5: every move of a registered model's alias (or stage) by a deploy or a rollback.
    r#"
    CREATE TABLE model_alias_moves (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        environment  TEXT NOT NULL,
        model        TEXT NOT NULL,
        alias        TEXT NOT NULL,
        mode         TEXT NOT NULL,
        from_version TEXT,
        to_version   TEXT,
        release_id   TEXT NOT NULL,
        reason       TEXT NOT NULL,
        moved_at     TEXT NOT NULL
    );
    CREATE INDEX model_alias_moves_by_alias ON model_alias_moves (environment, model, alias, id);
    "#,
    // 6: comments and commit statuses GitHub did not take yet, retried later. One pending entry
    // per key: a newer comment for the same pull request and pipeline replaces an older one.
    r#"
    CREATE TABLE forge_outbox (
        id              INTEGER PRIMARY KEY,
        key             TEXT NOT NULL UNIQUE,
        payload         TEXT NOT NULL,
        attempts        INTEGER NOT NULL,
        last_error      TEXT,
        created_at      TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL
    );
    CREATE INDEX forge_outbox_due ON forge_outbox (next_attempt_at);
    "#,
    // 7: the images build steps built or pushed, which alone vouch for reusing an image.
    r#"
    CREATE TABLE built_images (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        repository     TEXT NOT NULL,
        context_digest TEXT NOT NULL,
        image          TEXT NOT NULL,
        image_id       TEXT,
        pushed_digest  TEXT,
        trust          TEXT NOT NULL,
        built          INTEGER NOT NULL,
        run_id         INTEGER NOT NULL,
        recorded_at    TEXT NOT NULL
    );
    CREATE INDEX built_images_by_content ON built_images (repository, context_digest, id);
    "#,
    // 8: planning a delivery that failed for a reason that may pass (git unreachable, commit not
    // yet fetchable) is tried again later: failed attempts, the last error, and when to retry.
    r#"
    ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE deliveries ADD COLUMN last_error TEXT;
    ALTER TABLE deliveries ADD COLUMN next_attempt_at TEXT;
    CREATE INDEX deliveries_deferred ON deliveries (next_attempt_at)
        WHERE planned_at IS NULL AND next_attempt_at IS NOT NULL;
    "#,
    // 9: the check run GitHub made for each job reported to it (keyed like the forge outbox), so
    // that a restart updates it instead of creating a second one, and how many annotations it
    // already holds, since GitHub appends the annotations of every update.
    r#"
    CREATE TABLE forge_check_runs (
        key              TEXT PRIMARY KEY,
        check_run_id     INTEGER NOT NULL,
        annotations_sent INTEGER NOT NULL,
        recorded_at      TEXT NOT NULL
    );
    "#,
    // 10: pull-request comment commands, approvals given before a merge, queued plans asked again.
    super::commands::MIGRATION,
    // 11: personal API tokens (only their sha256), and the reason a promotion was forced with.
    super::tokens::MIGRATION,
    // 12: what the web UI shows beyond runs: commit summaries, sessions, step times.
    super::ui::MIGRATION,
    // 13: what drift checks found, and how each environment's last check went.
    super::drift::MIGRATION,
    // 14: replicas and their leases, which replica claimed each delivery and holds each run.
    super::replicas::MIGRATION,
];

/// The schema version this build writes.
pub(crate) const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to `CURRENT_VERSION`, one transaction per migration, each written in
/// the session's dialect (`dialect_ddl`). Refuses a database written by a newer sluice rather
/// than guessing at its schema. Several replicas starting at once on PostgreSQL are serialised
/// by the caller (an advisory lock), so each migration is applied once.
pub(crate) fn migrate(connection: &Connection, database: &str) -> Result<(), StoreError> {
    let migrate_error = |version: i64, error: SqlError| StoreError::Migrate {
        database: database.to_string(),
        version,
        message: error.to_string(),
    };
    connection
        .execute_batch(&dialect_ddl(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            connection.dialect(),
        ))
        .map_err(|error| migrate_error(CURRENT_VERSION, error))?;
    let found_version: i64 = connection
        .query_row("SELECT version FROM schema_version", params![], |row| {
            row.get(0)
        })
        .optional()
        .map_err(|error| migrate_error(CURRENT_VERSION, error))?
        .unwrap_or(0);
    if found_version > CURRENT_VERSION {
        return Err(StoreError::NewerSchema {
            database: database.to_string(),
            found: found_version,
            supported: CURRENT_VERSION,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found_version as usize) {
        let target_version = index as i64 + 1;
        let apply = || -> SqlResult<()> {
            connection.execute_batch("BEGIN")?;
            connection.execute_batch(&dialect_ddl(migration, connection.dialect()))?;
            connection.execute("DELETE FROM schema_version", params![])?;
            connection.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [target_version],
            )?;
            connection.execute_batch("COMMIT")
        };
        if let Err(error) = apply() {
            // Already failing: the rollback's own error would add nothing.
            let _ = connection.execute_batch("ROLLBACK");
            return Err(migrate_error(target_version, error));
        }
    }
    Ok(())
}

/// A migration as the database reads it. The list is written in SQLite's DDL; PostgreSQL gets
/// 64-bit integers, identity columns where SQLite numbers rows itself (`INTEGER PRIMARY KEY`),
/// `BYTEA` for blobs and no `WITHOUT ROWID`.
pub(crate) fn dialect_ddl(sql: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => sql.to_string(),
        Dialect::Postgres => sql
            .replace(
                "INTEGER PRIMARY KEY AUTOINCREMENT",
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            )
            .replace(
                "INTEGER PRIMARY KEY,",
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,",
            )
            .replace("INTEGER", "BIGINT")
            .replace("BLOB", "BYTEA")
            .replace(" REAL", " DOUBLE PRECISION")
            .replace(") WITHOUT ROWID", ")"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(connection: &rusqlite::Connection) -> i64 {
        connection
            .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_database_reaches_the_current_version_and_migrating_again_changes_nothing() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        migrate(&connection, ":memory:").unwrap();
        assert_eq!(version(&connection), CURRENT_VERSION);
        migrate(&connection, ":memory:").unwrap();
        assert_eq!(version(&connection), CURRENT_VERSION);
        let version_rows: i64 = connection
            .query_row("SELECT count(*) FROM schema_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version_rows, 1);
    }

    #[test]
    fn a_database_from_a_newer_sluice_is_refused_with_both_versions_named() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        migrate(&connection, "/data/sluice.db").unwrap();
        connection
            .execute("UPDATE schema_version SET version = 99", [])
            .unwrap();
        let error = migrate(&connection, "/data/sluice.db").unwrap_err();
        assert!(matches!(error, StoreError::NewerSchema { found: 99, .. }));
        let message = error.to_string();
        assert!(message.contains("/data/sluice.db"), "{message}");
        assert!(message.contains("99"), "{message}");
        assert!(message.contains("upgrade sluice"), "{message}");
    }
}
