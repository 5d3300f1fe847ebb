//! What drift checks found: one row per object that differs from the release an environment
//! runs (with when it was first and last seen), and one row per environment and domain saying how
//! the last check went: clean, drifted, or could not check (and why). A check that could not run
//! keeps what earlier checks found; it never clears it. Knows nothing of targets.

use super::error::{FailureResult, StoreResult};
use super::sql::{Connection, params};
use super::sql_store::{Backend, SqlStore};
use serde::Serialize;

pub(super) const MIGRATION: &str = r#"
    CREATE TABLE drift (
        repository  TEXT NOT NULL,
        environment TEXT NOT NULL,
        domain      TEXT NOT NULL,
        object      TEXT NOT NULL,
        expected    TEXT NOT NULL,
        actual      TEXT NOT NULL,
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL,
        PRIMARY KEY (repository, environment, domain, object)
    );
    CREATE TABLE drift_checks (
        repository  TEXT NOT NULL,
        environment TEXT NOT NULL,
        domain      TEXT NOT NULL,
        release     TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        reason      TEXT,
        review      TEXT,
        checked_at  INTEGER NOT NULL,
        PRIMARY KEY (repository, environment, domain)
    );
"#;

/// One object that differs from the release, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriftRecord {
    pub repository: String,
    pub environment: String,
    pub domain: String,
    pub object: String,
    pub expected: String,
    pub actual: String,
    /// Unix seconds of the first check that found it, and of the latest.
    pub first_seen: i64,
    pub last_seen: i64,
}

/// How the last check of one domain of an environment went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    Clean,
    Drifted,
    /// The target's system could not be asked: what was found before still stands.
    CouldNotCheck,
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Clean => "clean",
            CheckOutcome::Drifted => "drifted",
            CheckOutcome::CouldNotCheck => "could_not_check",
        }
    }

    fn parse(text: &str) -> CheckOutcome {
        match text {
            "clean" => CheckOutcome::Clean,
            "drifted" => CheckOutcome::Drifted,
            _ => CheckOutcome::CouldNotCheck,
        }
    }
}

/// The last check of one domain of an environment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DriftCheck {
    pub repository: String,
    pub environment: String,
    pub domain: String,
    /// The release the environment was compared with.
    pub release: String,
    pub outcome: CheckOutcome,
    /// Why the check could not run.
    pub reason: Option<String>,
    /// What was kept for a person to review instead of healing (Terraform's plan).
    pub review: Option<serde_json::Value>,
    pub checked_at: i64,
}

/// What one check of one domain found.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// `(object, expected, actual)` for each difference (none: clean), and what to review.
    Checked {
        drifts: Vec<(String, String, String)>,
        review: Option<serde_json::Value>,
    },
    CouldNotCheck(String),
}

/// Every method is durable when it returns.
pub trait DriftStore: Send + Sync {
    /// Replaces what is known of the domain with `finding`: differences no longer found are
    /// forgotten, those found again keep their first sighting. A `CouldNotCheck` keeps them.
    fn record_drift_check(
        &self,
        repository: &str,
        environment: &str,
        domain: &str,
        release: &str,
        finding: &Finding,
        at: i64,
    ) -> StoreResult<()>;
    /// Recorded differences, of one repository (and environment) or of all; by environment,
    /// domain and object.
    fn drift(
        &self,
        repository: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<DriftRecord>>;
    /// The last check of each domain, of one repository or of all.
    fn drift_checks(&self, repository: Option<&str>) -> StoreResult<Vec<DriftCheck>>;
}

fn record(
    connection: &Connection,
    key: [&str; 4],
    finding: &Finding,
    at: i64,
) -> FailureResult<()> {
    let [repository, environment, domain, release] = key;
    let (outcome, reason, review) = match finding {
        Finding::Checked { drifts, review } => {
            let outcome = if drifts.is_empty() {
                CheckOutcome::Clean
            } else {
                CheckOutcome::Drifted
            };
            let review = review.as_ref().map(|value| value.to_string());
            (outcome, None, review)
        }
        Finding::CouldNotCheck(reason) => (CheckOutcome::CouldNotCheck, Some(reason.clone()), None),
    };
    if let Finding::Checked { drifts, .. } = finding {
        let objects: Vec<&str> = drifts
            .iter()
            .map(|(object, _, _)| object.as_str())
            .collect();
        let mut stale = connection.prepare_cached(
            "SELECT object FROM drift WHERE repository = ?1 AND environment = ?2 AND domain = ?3",
        )?;
        let known: Vec<String> = stale
            .query_map(params![repository, environment, domain], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        for object in known
            .iter()
            .filter(|object| !objects.contains(&object.as_str()))
        {
            connection.execute(
                "DELETE FROM drift WHERE repository = ?1 AND environment = ?2 AND domain = ?3 AND object = ?4",
                params![repository, environment, domain, object],
            )?;
        }
        let mut upsert = connection.prepare_cached(
            "INSERT INTO drift (repository, environment, domain, object, expected, actual, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT (repository, environment, domain, object)
             DO UPDATE SET expected = excluded.expected, actual = excluded.actual, last_seen = excluded.last_seen",
        )?;
        for (object, expected, actual) in drifts {
            upsert.execute(params![
                repository,
                environment,
                domain,
                object,
                expected,
                actual,
                at
            ])?;
        }
    }
    connection.execute(
        "INSERT INTO drift_checks (repository, environment, domain, release, outcome, reason, review, checked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (repository, environment, domain) DO UPDATE SET
             release = excluded.release, outcome = excluded.outcome, reason = excluded.reason,
             review = CASE WHEN excluded.outcome = 'could_not_check' THEN drift_checks.review ELSE excluded.review END,
             checked_at = excluded.checked_at",
        params![
            repository,
            environment,
            domain,
            release,
            outcome.as_str(),
            reason,
            review,
            at
        ],
    )?;
    Ok(())
}

impl<B: Backend> DriftStore for SqlStore<B> {
    fn record_drift_check(
        &self,
        repository: &str,
        environment: &str,
        domain: &str,
        release: &str,
        finding: &Finding,
        at: i64,
    ) -> StoreResult<()> {
        let key = [
            repository.to_owned(),
            environment.to_owned(),
            domain.to_owned(),
            release.to_owned(),
        ];
        let finding = finding.clone();
        self.backend
            .write("recording a drift check", move |connection| {
                let [repository, environment, domain, release] = &key;
                record(
                    connection,
                    [repository, environment, domain, release],
                    &finding,
                    at,
                )
            })
    }

    fn drift(
        &self,
        repository: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<DriftRecord>> {
        self.backend.read("reading drift", |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT repository, environment, domain, object, expected, actual, first_seen, last_seen
                 FROM drift
                 WHERE (CAST(?1 AS TEXT) IS NULL OR repository = ?1)
                   AND (CAST(?2 AS TEXT) IS NULL OR environment = ?2)
                 ORDER BY repository, environment, domain, object",
            )?;
            let rows = statement.query_map(params![repository, environment], |row| {
                Ok(DriftRecord {
                    repository: row.get(0)?,
                    environment: row.get(1)?,
                    domain: row.get(2)?,
                    object: row.get(3)?,
                    expected: row.get(4)?,
                    actual: row.get(5)?,
                    first_seen: row.get(6)?,
                    last_seen: row.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn drift_checks(&self, repository: Option<&str>) -> StoreResult<Vec<DriftCheck>> {
        self.backend.read("reading drift checks", |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT repository, environment, domain, release, outcome, reason, review, checked_at
                 FROM drift_checks WHERE (CAST(?1 AS TEXT) IS NULL OR repository = ?1)
                 ORDER BY repository, environment, domain",
            )?;
            let rows = statement.query_map(params![repository], |row| {
                let outcome: String = row.get(4)?;
                let review: Option<String> = row.get(6)?;
                Ok(DriftCheck {
                    repository: row.get(0)?,
                    environment: row.get(1)?,
                    domain: row.get(2)?,
                    release: row.get(3)?,
                    outcome: CheckOutcome::parse(&outcome),
                    reason: row.get(5)?,
                    review: review.and_then(|text| serde_json::from_str(&text).ok()),
                    checked_at: row.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drift(object: &str, actual: &str) -> (String, String, String) {
        (object.to_owned(), "2".to_owned(), actual.to_owned())
    }

    #[test]
    fn a_check_keeps_first_sightings_forgets_what_is_gone_and_an_unreachable_one_keeps_all() {
        let directory = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(&directory.path().join("sluice.db")).unwrap();
        let record = |finding: Finding, at: i64| {
            store
                .record_drift_check("acme/ml", "staging", "kubernetes", "r1", &finding, at)
                .unwrap()
        };
        record(
            Finding::Checked {
                drifts: vec![drift("a", "5"), drift("b", "3")],
                review: None,
            },
            100,
        );
        record(
            Finding::Checked {
                drifts: vec![drift("a", "6")],
                review: None,
            },
            200,
        );
        let found = store.drift(Some("acme/ml"), None).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].object.as_str(), found[0].actual.as_str()),
            ("a", "6")
        );
        assert_eq!((found[0].first_seen, found[0].last_seen), (100, 200));

        record(
            Finding::CouldNotCheck("503 Service Unavailable".into()),
            300,
        );
        assert_eq!(store.drift(None, Some("staging")).unwrap().len(), 1);
        let checks = store.drift_checks(None).unwrap();
        assert_eq!(checks[0].outcome, CheckOutcome::CouldNotCheck);
        assert_eq!(checks[0].reason.as_deref(), Some("503 Service Unavailable"));

        record(
            Finding::Checked {
                drifts: Vec::new(),
                review: None,
            },
            400,
        );
        assert!(store.drift(None, None).unwrap().is_empty());
        assert_eq!(
            store.drift_checks(Some("acme/ml")).unwrap()[0].outcome,
            CheckOutcome::Clean
        );
    }
}
