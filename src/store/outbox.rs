//! The forge outbox: comments, commit statuses and check runs that GitHub did not accept when
//! they were made, kept durably until a later attempt delivers them, and the ids of the check
//! runs GitHub made, so that later states of a job update its check run. Payloads are opaque
//! text (the forge layer's JSON); the store only orders them by when they are due.
//! The store itself is the durable outbox (tables from migrations 6 and 9), on either database;
//! `MemoryOutbox` serves tests and runs without a database.

use super::error::StoreResult;
use super::sql::{OptionalExtension, params};
use super::sql_store::{Backend, SqlStore};
use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// One undelivered item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    /// What the item is about; a newer item with the same key replaces it.
    pub key: String,
    pub payload: String,
    /// Failed deliveries so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
}

/// A check run GitHub made for an outbox key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckRunRecord {
    pub id: u64,
    /// Annotations already sent to it (GitHub appends each update's).
    pub annotations_sent: usize,
}

pub trait Outbox: Send + Sync {
    /// Records a failed delivery; replaces a pending item with the same key (keeping its count).
    fn enqueue(
        &self,
        key: &str,
        payload: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Items due at `now`, the earliest first.
    fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<OutboxEntry>>;

    /// Every pending item, due or not.
    fn pending(&self) -> StoreResult<Vec<OutboxEntry>>;

    /// The item was delivered: forget it.
    fn delivered(&self, id: i64) -> StoreResult<()>;

    /// Another failed attempt: count it and try again at `next_attempt_at`.
    fn failed_again(&self, id: i64, error: &str, next_attempt_at: DateTime<Utc>)
    -> StoreResult<()>;

    /// The check run recorded for `key`, if any.
    fn check_run(&self, key: &str) -> StoreResult<Option<CheckRunRecord>>;

    /// Records (or replaces) the check run for `key`.
    fn record_check_run(&self, key: &str, record: CheckRunRecord) -> StoreResult<()>;
}

fn entry_from_row(row: &super::sql::Row) -> super::sql::SqlResult<OutboxEntry> {
    let next_attempt_at: String = row.get(5)?;
    Ok(OutboxEntry {
        id: row.get(0)?,
        key: row.get(1)?,
        payload: row.get(2)?,
        attempts: row.get(3)?,
        last_error: row.get(4)?,
        next_attempt_at: DateTime::parse_from_rfc3339(&next_attempt_at)
            .map(|time| time.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now()),
    })
}

const COLUMNS: &str = "id, key, payload, attempts, last_error, next_attempt_at";

impl<B: Backend> Outbox for SqlStore<B> {
    fn enqueue(
        &self,
        key: &str,
        payload: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (key, payload, error) = (key.to_string(), payload.to_string(), error.to_string());
        self.backend.write("enqueue outbox item", move |connection| {
            connection.execute(
                "INSERT INTO forge_outbox (key, payload, attempts, last_error, created_at, next_attempt_at)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5)
                 ON CONFLICT (key) DO UPDATE SET payload = excluded.payload,
                     attempts = attempts + 1, last_error = excluded.last_error,
                     next_attempt_at = excluded.next_attempt_at",
                params![key, payload, error, Utc::now().to_rfc3339(), next_attempt_at.to_rfc3339()],
            )?;
            Ok(())
        })
    }

    fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<OutboxEntry>> {
        self.backend.read("read due outbox items", |connection| {
            let mut statement = connection.prepare(&format!(
                "SELECT {COLUMNS} FROM forge_outbox WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2"
            ))?;
            statement
                .query_map(params![now.to_rfc3339(), limit as i64], entry_from_row)?
                .collect::<super::sql::SqlResult<_>>()
                .map_err(Into::into)
        })
    }

    fn pending(&self) -> StoreResult<Vec<OutboxEntry>> {
        self.backend.read("read outbox items", |connection| {
            let mut statement =
                connection.prepare(&format!("SELECT {COLUMNS} FROM forge_outbox ORDER BY id"))?;
            statement
                .query_map(params![], entry_from_row)?
                .collect::<super::sql::SqlResult<_>>()
                .map_err(Into::into)
        })
    }

    fn delivered(&self, id: i64) -> StoreResult<()> {
        self.backend
            .write("remove delivered outbox item", move |connection| {
                connection.execute("DELETE FROM forge_outbox WHERE id = ?1", [id])?;
                Ok(())
            })
    }

    fn failed_again(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let error = error.to_string();
        self.backend.write("reschedule outbox item", move |connection| {
            let found: Option<i64> = connection
                .query_row("SELECT id FROM forge_outbox WHERE id = ?1", [id], |row| row.get(0))
                .optional()?;
            if found.is_some() {
                connection.execute(
                    "UPDATE forge_outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                    params![id, error, next_attempt_at.to_rfc3339()],
                )?;
            }
            Ok(())
        })
    }

    fn check_run(&self, key: &str) -> StoreResult<Option<CheckRunRecord>> {
        self.backend.read("read check run", |connection| {
            connection
                .query_row(
                    "SELECT check_run_id, annotations_sent FROM forge_check_runs WHERE key = ?1",
                    [key],
                    |row| {
                        Ok(CheckRunRecord {
                            id: row.get::<_, i64>(0)? as u64,
                            annotations_sent: row.get::<_, i64>(1)? as usize,
                        })
                    },
                )
                .optional()
                .map_err(Into::into)
        })
    }

    fn record_check_run(&self, key: &str, record: CheckRunRecord) -> StoreResult<()> {
        let key = key.to_string();
        self.backend.write("record check run", move |connection| {
            connection.execute(
                "INSERT INTO forge_check_runs (key, check_run_id, annotations_sent, recorded_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET check_run_id = excluded.check_run_id,
                     annotations_sent = excluded.annotations_sent,
                     recorded_at = excluded.recorded_at",
                params![
                    key,
                    record.id as i64,
                    record.annotations_sent as i64,
                    Utc::now().to_rfc3339()
                ],
            )?;
            Ok(())
        })
    }
}

/// The outbox in memory: lost on restart.
#[derive(Default)]
pub struct MemoryOutbox {
    entries: Mutex<(i64, Vec<OutboxEntry>)>,
    check_runs: Mutex<std::collections::HashMap<String, CheckRunRecord>>,
}

impl Outbox for MemoryOutbox {
    fn enqueue(
        &self,
        key: &str,
        payload: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut guard = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (next_id, entries) = &mut *guard;
        if let Some(entry) = entries.iter_mut().find(|entry| entry.key == key) {
            entry.payload = payload.to_owned();
            entry.attempts += 1;
            entry.last_error = Some(error.to_owned());
            entry.next_attempt_at = next_attempt_at;
        } else {
            *next_id += 1;
            entries.push(OutboxEntry {
                id: *next_id,
                key: key.to_owned(),
                payload: payload.to_owned(),
                attempts: 1,
                last_error: Some(error.to_owned()),
                next_attempt_at,
            });
        }
        Ok(())
    }

    fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<OutboxEntry>> {
        let guard = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut due: Vec<OutboxEntry> = guard
            .1
            .iter()
            .filter(|entry| entry.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|entry| (entry.next_attempt_at, entry.id));
        due.truncate(limit);
        Ok(due)
    }

    fn pending(&self) -> StoreResult<Vec<OutboxEntry>> {
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .1
            .clone())
    }

    fn delivered(&self, id: i64) -> StoreResult<()> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .1
            .retain(|entry| entry.id != id);
        Ok(())
    }

    fn failed_again(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut guard = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = guard.1.iter_mut().find(|entry| entry.id == id) {
            entry.attempts += 1;
            entry.last_error = Some(error.to_owned());
            entry.next_attempt_at = next_attempt_at;
        }
        Ok(())
    }

    fn check_run(&self, key: &str) -> StoreResult<Option<CheckRunRecord>> {
        Ok(self
            .check_runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(key)
            .copied())
    }

    fn record_check_run(&self, key: &str, record: CheckRunRecord) -> StoreResult<()> {
        self.check_runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.to_owned(), record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_survives_reopening_and_a_newer_one_with_its_key_replaces_it() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("sluice.db");
        drop(super::super::SqliteStore::open(&path).unwrap());
        let now = Utc::now();
        {
            let outbox = super::super::SqliteStore::open(&path).unwrap();
            outbox.enqueue("comment:a#1", "old", "502", now).unwrap();
            outbox.enqueue("comment:a#1", "new", "503", now).unwrap();
            outbox
                .enqueue("status:x", "later", "502", now + chrono::Duration::hours(1))
                .unwrap();
        }
        let outbox = super::super::SqliteStore::open(&path).unwrap();
        let due = outbox.due(now, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].payload, "new");
        assert_eq!(due[0].attempts, 2);
        assert_eq!(due[0].last_error.as_deref(), Some("503"));
        outbox.delivered(due[0].id).unwrap();
        assert_eq!(outbox.pending().unwrap().len(), 1);
    }

    #[test]
    fn a_check_run_id_survives_reopening_and_a_newer_record_replaces_it() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("sluice.db");
        drop(super::super::SqliteStore::open(&path).unwrap());
        let key = "check:a/b@abc:7/plan";
        {
            let outbox = super::super::SqliteStore::open(&path).unwrap();
            assert_eq!(outbox.check_run(key).unwrap(), None);
            let first = CheckRunRecord {
                id: 4_000_000_001,
                annotations_sent: 0,
            };
            outbox.record_check_run(key, first).unwrap();
            outbox
                .record_check_run(
                    key,
                    CheckRunRecord {
                        annotations_sent: 50,
                        ..first
                    },
                )
                .unwrap();
        }
        let outbox = super::super::SqliteStore::open(&path).unwrap();
        assert_eq!(
            outbox.check_run(key).unwrap(),
            Some(CheckRunRecord {
                id: 4_000_000_001,
                annotations_sent: 50
            })
        );
        assert_eq!(outbox.check_run("check:a/b@abc:7/other").unwrap(), None);
    }
}
