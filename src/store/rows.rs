//! Column values <-> model values: timestamps as fixed-width RFC 3339 text (so that text order
//! is time order), statuses and event kinds as their snake_case names, job `needs` as a JSON
//! array. A value that does not parse is reported as a conversion error naming the column.

use super::sql::{Row, SqlError};
use crate::model::{EventKind, Status};
use chrono::{DateTime, SecondsFormat, Utc};

pub(crate) fn timestamp_text(timestamp: DateTime<Utc>) -> String {
    timestamp.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn conversion_error(column: &str, message: String) -> SqlError {
    super::sql::conversion_error(column, message)
}

pub(crate) fn timestamp(row: &Row, column: &str) -> super::sql::SqlResult<DateTime<Utc>> {
    let text: String = row.get(column)?;
    parse_timestamp(column, &text)
}

pub(crate) fn optional_timestamp(
    row: &Row,
    column: &str,
) -> super::sql::SqlResult<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(column)?;
    text.map(|text| parse_timestamp(column, &text)).transpose()
}

pub(crate) fn parse_timestamp(column: &str, text: &str) -> super::sql::SqlResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|timestamp| timestamp.with_timezone(&Utc))
        .map_err(|error| conversion_error(column, format!("`{text}` is not a timestamp: {error}")))
}

pub(crate) fn status(row: &Row, column: &str) -> super::sql::SqlResult<Status> {
    let text: String = row.get(column)?;
    Status::parse(&text)
        .ok_or_else(|| conversion_error(column, format!("`{text}` is not a status")))
}

pub(crate) fn event_kind(row: &Row, column: &str) -> super::sql::SqlResult<EventKind> {
    let text: String = row.get(column)?;
    EventKind::parse(&text)
        .ok_or_else(|| conversion_error(column, format!("`{text}` is not an event kind")))
}

pub(crate) fn needs_text(needs: &[String]) -> String {
    serde_json::to_string(needs).unwrap_or_else(|_| "[]".to_string())
}

pub(crate) fn needs(row: &Row, column: &str) -> super::sql::SqlResult<Vec<String>> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|error| {
        conversion_error(
            column,
            format!("`{text}` is not a list of job names: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_nanoseconds_and_sort_as_text_in_time_order() {
        let earlier = DateTime::parse_from_rfc3339("2025-03-01T09:59:59.999999999Z")
            .unwrap()
            .with_timezone(&Utc);
        let later = DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp_text(later), "2025-03-01T10:00:00.000000000Z");
        assert!(timestamp_text(earlier) < timestamp_text(later));
        assert_eq!(
            parse_timestamp("received_at", &timestamp_text(earlier)).unwrap(),
            earlier
        );
    }

    #[test]
    fn an_unreadable_timestamp_names_its_column_and_value() {
        let error = parse_timestamp("created_at", "yesterday").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("created_at"), "{message}");
        assert!(message.contains("`yesterday`"), "{message}");
    }
}
