//! What one engine said about one plan, and the per-plan timings of a pass over all plans, with
//! the statistics the report prints. Knows nothing of any engine.

use std::collections::BTreeMap;
use std::time::Duration;

/// One engine's verdict on one plan: the sorted messages of every rule that produced any, or
/// the error that stopped it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Messages(BTreeMap<String, Vec<String>>),
    Error(String),
}

impl Verdict {
    /// The messages of `rule`, empty when it said nothing or the plan failed.
    pub fn messages(&self, rule: &str) -> &[String] {
        match self {
            Verdict::Messages(by_rule) => by_rule.get(rule).map_or(&[], Vec::as_slice),
            Verdict::Error(_) => &[],
        }
    }
}

/// The median time of each plan over the repeated passes, in plan order.
#[derive(Clone, Debug, Default)]
pub struct PerPlan {
    pub medians: Vec<Duration>,
}

impl PerPlan {
    /// Builds the medians from `samples[plan][repeat]`.
    pub fn from_samples(samples: &[Vec<Duration>]) -> PerPlan {
        let medians = samples
            .iter()
            .map(|plan_samples| median(&mut plan_samples.clone()))
            .collect();
        PerPlan { medians }
    }

    pub fn total(&self) -> Duration {
        self.medians.iter().sum()
    }

    pub fn mean(&self) -> Duration {
        if self.medians.is_empty() {
            return Duration::ZERO;
        }
        self.total() / self.medians.len() as u32
    }

    /// The `percent`-th percentile of the per-plan medians (nearest rank).
    pub fn percentile(&self, percent: f64) -> Duration {
        let mut sorted = self.medians.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

pub fn median(samples: &mut [Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    samples[samples.len() / 2]
}
