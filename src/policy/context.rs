//! `data.sluice.context`: where and when a policy check runs (environment, event, author,
//! commit, release, time, approvals, and the domains the input holds), with the clock injectable
//! so that time rules can be tested. Knows nothing of Rego or of where the values come from.

use super::input::domains_of;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Where the current time comes from.
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same time: for tests and for `--time`.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The context a check runs in. Unknown fields are `null` in Rego.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyContext {
    /// `dev`, `staging`, `production`, ...
    pub environment: Option<String>,
    /// `pull_request`, `push`, `merge`, `manual`, ...
    pub event: Option<String>,
    /// Who made the change (the pull request's author or the pusher).
    pub author: Option<String>,
    pub commit: Option<String>,
    /// The release being promoted (its id), when the check is a promotion gate.
    pub release: Option<String>,
    pub time: DateTime<Utc>,
    /// Who approved the change; rules decide whose approval counts.
    pub approvals: Vec<String>,
}

impl PolicyContext {
    /// A context at the clock's current time, every other field unknown.
    pub fn at(clock: &dyn Clock) -> PolicyContext {
        PolicyContext {
            environment: None,
            event: None,
            author: None,
            commit: None,
            release: None,
            time: clock.now(),
            approvals: Vec::new(),
        }
    }

    /// The JSON under `data.sluice.context`. `time` is nanoseconds since the Unix epoch, the
    /// unit of `time.now_ns()` and of every `time.*` built-in; `time_rfc3339` is the same instant
    /// for messages.
    pub fn to_json(&self) -> Value {
        json!({
            "environment": self.environment,
            "event": self.event,
            "author": self.author,
            "commit": self.commit,
            "release": self.release,
            "time": self.time.timestamp_nanos_opt().unwrap_or(i64::MAX),
            "time_rfc3339": self.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            "approvals": self.approvals,
        })
    }

    /// `{"sluice": {"context": ...}}`, ready to merge into `data`.
    pub fn to_data(&self) -> Value {
        json!({"sluice": {"context": self.to_json()}})
    }

    /// `to_data` for checking `input`: the context also says which domains the input holds
    /// (`domains`, e.g. `["terraform", "mlflow"]`).
    pub fn to_data_for(&self, input: &Value) -> Value {
        let mut context = self.to_json();
        context["domains"] = json!(domains_of(input));
        json!({"sluice": {"context": context}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_decides_the_time_and_unknowns_are_null() {
        let friday = DateTime::parse_from_rfc3339("2025-01-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut context = PolicyContext::at(&FixedClock(friday));
        context.environment = Some("production".to_owned());
        let json = context.to_json();
        assert_eq!(json["time"], json!(1_735_898_400_000_000_000_i64));
        assert_eq!(json["time_rfc3339"], json!("2025-01-03T10:00:00Z"));
        assert_eq!(json["environment"], json!("production"));
        assert_eq!(json["author"], Value::Null);
        assert_eq!(json["approvals"], json!([]));
        assert_eq!(json["release"], Value::Null);
        let data = context.to_data_for(&json!({"terraform": {}, "mlflow": {"models": []}}));
        assert_eq!(
            data["sluice"]["context"]["domains"],
            json!(["terraform", "mlflow"])
        );
        assert_eq!(
            data["sluice"]["context"]["environment"],
            json!("production")
        );
    }
}
