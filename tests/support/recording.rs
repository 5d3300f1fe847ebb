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

/// dev and staging of a platform with Terraform, Kubernetes and Airflow, for servers whose
/// targets record (`SLUICE_RECORDING_TARGETS`).
pub const RECORDED_DEV: &str = "name: dev\nterraform: { dir: infra/dev }\nkubernetes: { namespace: ml-dev, manifests: k8s }\nairflow: { dags: dags, folder: /srv/airflow/dev/dags }\n";
pub const RECORDED_STAGING: &str = "name: staging\nafter: dev\nterraform: { dir: infra/staging }\nkubernetes: { namespace: ml-staging, manifests: k8s }\nairflow: { dags: dags, folder: /srv/airflow/staging/dags }\n";

/// The targets the recording targets in `calls` applied to `environment`, in order.
pub fn applies(calls: &std::path::Path, environment: &str) -> Vec<String> {
    RecordingTarget::calls(calls)
        .into_iter()
        .filter(|call| call.call == "apply" && call.environment == environment)
        .map(|call| call.target.as_str().to_owned())
        .collect()
}

/// Waits until `environment`'s `target` is asked for its health, which comes only after its
/// apply was recorded: a server killed then must not apply it again.
pub fn wait_for_health_call(
    calls: &std::path::Path,
    environment: &str,
    target: &str,
    limit: std::time::Duration,
) {
    super::wait_for(
        &format!("{environment}'s {target} apply, recorded and waiting for health"),
        limit,
        || {
            RecordingTarget::calls(calls)
                .iter()
                .any(|call| {
                    call.call == "health"
                        && call.environment == environment
                        && call.target.as_str() == target
                })
                .then_some(())
        },
    );
}
