//! Promotion without real systems: a clock the test moves, every registered target as a
//! `RecordingTarget` writing to one directory, and a release tree that is one fixed directory.

use chrono::{DateTime, Duration, Utc};
use sluice::config::environment::Environment;
use sluice::deploy::reconcile::{TargetFactory, TreeSource};
use sluice::deploy::recording::RecordingTarget;
use sluice::deploy::{Release, Target, TargetError, TargetKind};
use sluice::policy::Clock;
use sluice::targets::registry::registered;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct TestClock(pub Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

pub struct Recording(pub PathBuf);

impl TargetFactory for Recording {
    fn targets(
        &self,
        _repository: &str,
        _environment: &Environment,
    ) -> Result<Vec<Arc<dyn Target>>, TargetError> {
        // Every registered target, handed over backwards on purpose: the reconciler owns the order.
        let mut kinds: Vec<TargetKind> = registered().map(|(kind, _)| kind).collect();
        kinds.reverse();
        Ok(kinds
            .into_iter()
            .map(|kind| {
                Arc::new(RecordingTarget {
                    kind,
                    directory: self.0.clone(),
                }) as Arc<dyn Target>
            })
            .collect())
    }
}

pub struct Trees(pub PathBuf);

impl TreeSource for Trees {
    fn tree<'a>(
        &'a self,
        _release: &'a Release,
    ) -> futures_util::future::BoxFuture<'a, Result<PathBuf, String>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}
