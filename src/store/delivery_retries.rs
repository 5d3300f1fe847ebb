//! Deliveries whose planning failed for a reason that may pass, as SQL: recording a failed attempt
//! with the time of the next one, and when the earliest deferred delivery is due (which pending
//! deliveries are due now is the claim's condition, `replicas.rs`). Times are stored as fixed-width RFC 3339 text, so text order is time
//! order. Knows nothing of why planning failed or how long to wait; the scheduler decides that.

use super::error::{Failure, FailureResult};
use super::rows::{self, timestamp_text};
use super::sql::{Connection, OptionalExtension, params};
use chrono::{DateTime, Utc};

/// One failed attempt more for a pending delivery; a delivery planned meanwhile is left as it is.
/// Returns the failed attempts recorded so far.
pub(crate) fn defer_delivery(
    connection: &Connection,
    delivery_id: &str,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> FailureResult<u32> {
    let deferred: Option<u32> = connection
        .prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
             WHERE id = ?1 AND planned_at IS NULL
             RETURNING attempts",
        )?
        .query_row(
            params![delivery_id, error, timestamp_text(next_attempt_at)],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(attempts) = deferred {
        return Ok(attempts);
    }
    connection
        .prepare_cached("SELECT attempts FROM deliveries WHERE id = ?1")?
        .query_row([delivery_id], |row| row.get(0))
        .optional()?
        .ok_or_else(|| Failure::UnknownDelivery(delivery_id.to_string()))
}

pub(crate) fn next_delivery_retry(connection: &Connection) -> FailureResult<Option<DateTime<Utc>>> {
    let earliest: Option<String> = connection
        .prepare_cached(
            "SELECT min(next_attempt_at) FROM deliveries
             WHERE planned_at IS NULL AND next_attempt_at IS NOT NULL",
        )?
        .query_row(params![], |row| row.get(0))?;
    Ok(earliest
        .map(|text| rows::parse_timestamp("next_attempt_at", &text))
        .transpose()?)
}

#[cfg(test)]
mod tests {
    use super::super::{SqliteStore, Store};
    use crate::model::Delivery;
    use crate::store::Coordination;
    use chrono::{DateTime, TimeDelta, Utc};

    fn delivery(id: &str) -> Delivery {
        Delivery {
            id: id.to_string(),
            event: "push".to_string(),
            repository: Some("acme/ml-platform".to_string()),
            payload: b"{}".to_vec(),
            received_at: Utc::now(),
        }
    }

    fn due_ids(store: &SqliteStore, now: DateTime<Utc>) -> Vec<(String, u32)> {
        store
            .claim_deliveries("replica-1", now, 10)
            .unwrap()
            .into_iter()
            .map(|pending| (pending.delivery.id, pending.failed_attempts))
            .collect()
    }

    #[test]
    fn a_deferred_delivery_waits_for_its_time_while_later_ones_are_due_and_keeps_it_after_reopening()
     {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("sluice.db");
        let now = Utc::now();
        let retry_at = now + TimeDelta::seconds(30);
        {
            let store = SqliteStore::open(&path).unwrap();
            for id in ["d-1", "d-2", "d-3"] {
                store.insert_delivery(&delivery(id)).unwrap();
            }
            assert_eq!(store.next_delivery_retry().unwrap(), None);
            let attempts = store
                .defer_delivery("d-1", "cannot fetch acme/ml-platform", retry_at)
                .unwrap();
            assert_eq!(attempts, 1);
            assert_eq!(
                due_ids(&store, now),
                [("d-2".to_string(), 0), ("d-3".to_string(), 0)]
            );
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.next_delivery_retry().unwrap(), Some(retry_at));
        assert_eq!(
            due_ids(&store, retry_at),
            [
                ("d-1".to_string(), 1),
                ("d-2".to_string(), 0),
                ("d-3".to_string(), 0)
            ]
        );
        let later = retry_at + TimeDelta::seconds(60);
        assert_eq!(
            store.defer_delivery("d-1", "still failing", later).unwrap(),
            2
        );
        assert_eq!(store.next_delivery_retry().unwrap(), Some(later));
    }

    #[test]
    fn a_completed_delivery_is_neither_due_nor_deferred_again() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&directory.path().join("sluice.db")).unwrap();
        let now = Utc::now();
        store.insert_delivery(&delivery("d-1")).unwrap();
        store
            .defer_delivery("d-1", "commit not fetchable yet", now)
            .unwrap();
        store
            .complete_delivery("d-1", "error: commit not fetchable yet", &[])
            .unwrap();
        assert_eq!(store.next_delivery_retry().unwrap(), None);
        assert!(due_ids(&store, now + TimeDelta::hours(1)).is_empty());
        assert_eq!(store.defer_delivery("d-1", "late", now).unwrap(), 1);
        assert!(due_ids(&store, now + TimeDelta::hours(1)).is_empty());
        let unknown = store.defer_delivery("d-404", "late", now).unwrap_err();
        assert!(
            unknown.to_string().contains("no delivery `d-404`"),
            "{unknown}"
        );
    }
}
