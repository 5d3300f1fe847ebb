//! When planning a delivery is tried again: the two kinds of planning failure (the payload itself
//! is unusable, which never changes; git or the mirror failed, which may pass) and the exponential
//! backoff between attempts. Pure: no clock, no store; the intake worker applies the decision.

use super::event::PayloadError;
use std::time::Duration;

/// Why planning a delivery failed, by what trying again can change.
#[derive(Debug, thiserror::Error)]
pub enum PlanningError {
    /// The payload cannot be planned (not JSON, a field missing): recorded at once, never retried.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// Git or the mirror failed (remote unreachable, the commit not fetchable yet): tried again
    /// later, on the delivery's own schedule.
    #[error("{0:#}")]
    Transient(#[from] anyhow::Error),
}

impl PlanningError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, PlanningError::Payload(_))
    }
}

/// Exponential backoff: `first_delay`, doubling after each failed attempt up to `max_delay`,
/// for at most `max_attempts` attempts in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub max_attempts: u32,
}

impl RetrySchedule {
    /// Planning: six attempts over about half a minute (1 s, 2 s, 4 s, 8 s, 16 s between them),
    /// long enough for GitHub's push to become fetchable or a remote to come back.
    pub const PLANNING: RetrySchedule = RetrySchedule {
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(300),
        max_attempts: 6,
    };

    /// How long to wait after `failed_attempts` failed attempts, or `None` when they are used up
    /// and the last error becomes the outcome.
    pub fn delay_after(&self, failed_attempts: u32) -> Option<Duration> {
        if failed_attempts == 0 || failed_attempts >= self.max_attempts {
            return None;
        }
        let doublings = (failed_attempts - 1).min(31);
        let delay = self
            .first_delay
            .checked_mul(1 << doublings)
            .unwrap_or(self.max_delay);
        Some(delay.min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(schedule: RetrySchedule) -> Vec<Option<u64>> {
        (1..=schedule.max_attempts)
            .map(|failed| schedule.delay_after(failed).map(|delay| delay.as_secs()))
            .collect()
    }

    #[test]
    fn planning_waits_twice_as_long_after_each_failure_and_gives_up_after_six_attempts() {
        assert_eq!(
            delays(RetrySchedule::PLANNING),
            [Some(1), Some(2), Some(4), Some(8), Some(16), None]
        );
    }

    #[test]
    fn the_delay_never_exceeds_the_cap_even_after_many_attempts() {
        let schedule = RetrySchedule {
            first_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
            max_attempts: 100,
        };
        assert_eq!(schedule.delay_after(3), Some(Duration::from_secs(40)));
        assert_eq!(schedule.delay_after(4), Some(Duration::from_secs(60)));
        assert_eq!(schedule.delay_after(99), Some(Duration::from_secs(60)));
        assert_eq!(schedule.delay_after(100), None);
    }

    #[test]
    fn a_payload_error_is_permanent_and_a_git_error_is_not() {
        let missing = PlanningError::from(PayloadError::MissingField {
            event: "push".to_owned(),
            field: "/after".to_owned(),
        });
        assert!(missing.is_permanent());
        assert_eq!(
            missing.to_string(),
            "push payload has no `/after`; GitHub always sends it, so check what sent this delivery"
        );
        let fetch = PlanningError::from(anyhow::anyhow!("cannot fetch acme/ml-platform"));
        assert!(!fetch.is_permanent());
    }
}
