//! The history of registered-model alias moves, which MLflow itself does not keep: every time a
//! deploy or a rollback points an alias (or a legacy stage) of a model at another version, one
//! row in `model_alias_moves`. Knows nothing of MLflow's API or of how versions are chosen.

use super::error::{FailureResult, StoreResult};
use super::sql::{Connection, params};
use super::sql_store::{Backend, SqlStore};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One alias move about to be recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAliasMove {
    pub environment: String,
    pub model: String,
    /// The alias, or the stage name in stage mode.
    pub alias: String,
    /// `alias` or `stage`.
    pub mode: String,
    /// The version that held the alias before; `None` when nothing did.
    pub from_version: Option<String>,
    /// The version that holds it now; `None` when the alias was removed.
    pub to_version: Option<String>,
    /// The release that moved it.
    pub release_id: String,
    /// `deploy`, `rollback` or `heal` (put back where it had drifted from the release).
    pub reason: String,
}

/// One recorded alias move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasMove {
    pub id: i64,
    #[serde(flatten)]
    pub recorded: NewAliasMove,
    pub moved_at: DateTime<Utc>,
}

/// Which moves `alias_moves` returns; `None` means no restriction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AliasMoveFilter {
    pub environment: Option<String>,
    pub model: Option<String>,
    pub alias: Option<String>,
    pub limit: Option<usize>,
}

/// The model history part of the store. Methods may block on IO.
pub trait ModelHistory: Send + Sync {
    /// Durable when it returns; returns the new row's id.
    fn record_alias_move(&self, alias_move: &NewAliasMove) -> StoreResult<i64>;

    /// Newest first.
    fn alias_moves(&self, filter: &AliasMoveFilter) -> StoreResult<Vec<AliasMove>>;
}

impl<B: Backend> ModelHistory for SqlStore<B> {
    fn record_alias_move(&self, alias_move: &NewAliasMove) -> StoreResult<i64> {
        let alias_move = alias_move.clone();
        self.backend
            .write("recording a model alias move", move |connection| {
                insert_alias_move(connection, &alias_move, Utc::now())
            })
    }

    fn alias_moves(&self, filter: &AliasMoveFilter) -> StoreResult<Vec<AliasMove>> {
        self.backend
            .read("listing model alias moves", |connection| {
                select_alias_moves(connection, filter)
            })
    }
}

fn insert_alias_move(
    connection: &Connection,
    alias_move: &NewAliasMove,
    moved_at: DateTime<Utc>,
) -> FailureResult<i64> {
    let id = connection
        .prepare_cached(
            "INSERT INTO model_alias_moves
             (environment, model, alias, mode, from_version, to_version, release_id, reason, moved_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        )?
        .query_row(params![
            alias_move.environment,
            alias_move.model,
            alias_move.alias,
            alias_move.mode,
            alias_move.from_version,
            alias_move.to_version,
            alias_move.release_id,
            alias_move.reason,
            moved_at.to_rfc3339(),
        ],
        |row| row.get(0),
    )?;
    Ok(id)
}

fn select_alias_moves(
    connection: &Connection,
    filter: &AliasMoveFilter,
) -> FailureResult<Vec<AliasMove>> {
    let limit = filter.limit.map(|limit| limit as i64).unwrap_or(i64::MAX);
    let mut statement = connection.prepare_cached(
        "SELECT id, environment, model, alias, mode, from_version, to_version, release_id, reason,
                moved_at
         FROM model_alias_moves
         WHERE (CAST(?1 AS TEXT) IS NULL OR environment = ?1)
           AND (CAST(?2 AS TEXT) IS NULL OR model = ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR alias = ?3)
         ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = statement
        .query_map(
            params![filter.environment, filter.model, filter.alias, limit],
            |row| {
                let moved_at: String = row.get(9)?;
                Ok(AliasMove {
                    id: row.get(0)?,
                    recorded: NewAliasMove {
                        environment: row.get(1)?,
                        model: row.get(2)?,
                        alias: row.get(3)?,
                        mode: row.get(4)?,
                        from_version: row.get(5)?,
                        to_version: row.get(6)?,
                        release_id: row.get(7)?,
                        reason: row.get(8)?,
                    },
                    moved_at: DateTime::parse_from_rfc3339(&moved_at)
                        .map(|time| time.with_timezone(&Utc))
                        .unwrap_or_default(),
                })
            },
        )?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    Ok(rows)
}

/// The newest recorded move of one alias, if any.
pub fn last_alias_move(
    history: &dyn ModelHistory,
    environment: &str,
    model: &str,
    alias: &str,
) -> StoreResult<Option<AliasMove>> {
    let mut moves = history.alias_moves(&AliasMoveFilter {
        environment: Some(environment.to_string()),
        model: Some(model.to_string()),
        alias: Some(alias.to_string()),
        limit: Some(1),
    })?;
    Ok(moves.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_move(environment: &str, model: &str, from: Option<&str>, to: &str) -> NewAliasMove {
        NewAliasMove {
            environment: environment.to_string(),
            model: model.to_string(),
            alias: "staging".to_string(),
            mode: "alias".to_string(),
            from_version: from.map(str::to_string),
            to_version: Some(to.to_string()),
            release_id: format!("r-{to}"),
            reason: "deploy".to_string(),
        }
    }

    #[test]
    fn moves_come_back_newest_first_filtered_by_environment_and_model_and_survive_reopening() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("sluice.db");
        {
            let store = super::super::SqliteStore::open(&path).unwrap();
            store
                .record_alias_move(&new_move("staging", "churn", None, "1"))
                .unwrap();
            store
                .record_alias_move(&new_move("staging", "churn", Some("1"), "2"))
                .unwrap();
            store
                .record_alias_move(&new_move("dev", "churn", None, "2"))
                .unwrap();
            store
                .record_alias_move(&new_move("staging", "fraud", None, "7"))
                .unwrap();
        }
        let store = super::super::SqliteStore::open(&path).unwrap();
        let moves = store
            .alias_moves(&AliasMoveFilter {
                environment: Some("staging".to_string()),
                model: Some("churn".to_string()),
                ..AliasMoveFilter::default()
            })
            .unwrap();
        let versions: Vec<_> = moves
            .iter()
            .map(|alias_move| {
                (
                    alias_move.recorded.from_version.clone(),
                    alias_move.recorded.to_version.clone(),
                )
            })
            .collect();
        assert_eq!(
            versions,
            vec![
                (Some("1".to_string()), Some("2".to_string())),
                (None, Some("1".to_string()))
            ]
        );
        let last = last_alias_move(&store, "staging", "churn", "staging")
            .unwrap()
            .unwrap();
        assert_eq!(last.recorded.to_version.as_deref(), Some("2"));
        assert_eq!(last.recorded.release_id, "r-2");
        assert!(
            last_alias_move(&store, "production", "churn", "staging")
                .unwrap()
                .is_none()
        );
    }
}
