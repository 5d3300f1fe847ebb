//! Whether a workload's rollout is done, read from the object's status the way `kubectl rollout
//! status` reads it: Deployments, StatefulSets, DaemonSets and Jobs. Pure over JSON objects;
//! knows nothing of how they were fetched.

use crate::deploy::Health;
use serde_json::Value;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkloadHealth {
    Ready,
    Progressing(String),
    Failed(String),
}

/// Kinds whose rollout health is checked.
pub fn is_workload_kind(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job")
}

fn number(value: &Value, pointer: &str) -> i64 {
    value.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|condition| condition["type"].as_str() == Some(kind))
}

/// The health of one live workload object.
pub fn workload_health(kind: &str, object: &Value) -> WorkloadHealth {
    use WorkloadHealth::*;
    let generation = number(object, "/metadata/generation");
    let observed = number(object, "/status/observedGeneration");
    let desired = object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let not_observed = || {
        Progressing(format!(
            "waiting for the controller to observe generation {generation} (seen {observed})"
        ))
    };
    match kind {
        "Deployment" => {
            if let Some(progressing) = condition(object, "Progressing")
                && progressing["reason"].as_str() == Some("ProgressDeadlineExceeded")
            {
                return Failed(format!(
                    "rollout exceeded its progress deadline: {}",
                    progressing["message"].as_str().unwrap_or("no message")
                ));
            }
            if observed < generation {
                return not_observed();
            }
            let updated = number(object, "/status/updatedReplicas");
            let available = number(object, "/status/availableReplicas");
            let total = number(object, "/status/replicas");
            if updated < desired {
                Progressing(format!("{updated} of {desired} replicas updated"))
            } else if total > updated {
                Progressing(format!(
                    "{} old replicas pending termination",
                    total - updated
                ))
            } else if available < updated {
                Progressing(format!(
                    "{available} of {updated} updated replicas available"
                ))
            } else {
                Ready
            }
        }
        "StatefulSet" => {
            if observed < generation {
                return not_observed();
            }
            let ready = number(object, "/status/readyReplicas");
            let updated = number(object, "/status/updatedReplicas");
            let current_revision = object.pointer("/status/currentRevision");
            let update_revision = object.pointer("/status/updateRevision");
            if ready < desired {
                Progressing(format!("{ready} of {desired} replicas ready"))
            } else if updated < desired || current_revision != update_revision {
                Progressing(format!("{updated} of {desired} replicas updated"))
            } else {
                Ready
            }
        }
        "DaemonSet" => {
            if observed < generation {
                return not_observed();
            }
            let wanted = number(object, "/status/desiredNumberScheduled");
            let updated = number(object, "/status/updatedNumberScheduled");
            let available = number(object, "/status/numberAvailable");
            if updated < wanted {
                Progressing(format!("{updated} of {wanted} pods updated"))
            } else if available < wanted {
                Progressing(format!("{available} of {wanted} pods available"))
            } else {
                Ready
            }
        }
        "Job" => {
            if let Some(failed) = condition(object, "Failed")
                && failed["status"].as_str() == Some("True")
            {
                return Failed(format!(
                    "job failed: {}",
                    failed["reason"].as_str().unwrap_or("no reason")
                ));
            }
            let completions = object
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let complete = condition(object, "Complete")
                .is_some_and(|complete| complete["status"].as_str() == Some("True"));
            let succeeded = number(object, "/status/succeeded");
            if complete || succeeded >= completions {
                Ready
            } else {
                Progressing(format!("{succeeded} of {completions} completions"))
            }
        }
        _ => Ready,
    }
}

/// The target's health from every workload's: degraded when one failed or the rollout took
/// longer than `timeout`, progressing while one is not done, else healthy.
pub fn summarize(
    workloads: &[(String, WorkloadHealth)],
    elapsed: Duration,
    timeout: Duration,
) -> Health {
    let failed: Vec<String> = workloads
        .iter()
        .filter_map(|(address, health)| match health {
            WorkloadHealth::Failed(reason) => Some(format!("{address}: {reason}")),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Health::Degraded(failed.join("; "));
    }
    let waiting: Vec<String> = workloads
        .iter()
        .filter_map(|(address, health)| match health {
            WorkloadHealth::Progressing(reason) => Some(format!("{address}: {reason}")),
            _ => None,
        })
        .collect();
    if waiting.is_empty() {
        Health::Healthy
    } else if elapsed >= timeout {
        Health::Degraded(format!(
            "rollout not finished after {}s (kubernetes.health.timeout): {}",
            timeout.as_secs(),
            waiting.join("; ")
        ))
    } else {
        Health::Progressing(waiting.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(kind: &str, object: Value, expect: &str) {
        let shown = match workload_health(kind, &object) {
            WorkloadHealth::Ready => "ready",
            WorkloadHealth::Progressing(_) => "progressing",
            WorkloadHealth::Failed(_) => "failed",
        };
        assert_eq!(shown, expect, "{kind} {object}");
    }

    fn deployment(generation: i64, status: Value) -> Value {
        json!({"metadata": {"generation": generation}, "spec": {"replicas": 2}, "status": status})
    }

    #[test]
    fn deployments() {
        check(
            "Deployment",
            deployment(
                2,
                json!({"observedGeneration": 1, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}),
            ),
            "progressing",
        );
        check(
            "Deployment",
            deployment(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 3, "availableReplicas": 2}),
            ),
            "progressing",
        );
        check(
            "Deployment",
            deployment(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 1}),
            ),
            "progressing",
        );
        check(
            "Deployment",
            deployment(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}),
            ),
            "ready",
        );
        check(
            "Deployment",
            deployment(
                2,
                json!({"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
            ),
            "failed",
        );
    }

    #[test]
    fn other_workloads() {
        check("Job", json!({"status": {"succeeded": 1}}), "ready");
        check("Job", json!({"status": {"active": 1}}), "progressing");
        check(
            "Job",
            json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}),
            "failed",
        );
        check(
            "DaemonSet",
            json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2}}),
            "progressing",
        );
        check(
            "StatefulSet",
            json!({"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "a"}}),
            "ready",
        );
    }

    #[test]
    fn a_stalled_rollout_degrades_after_the_timeout() {
        let workloads = vec![(
            "Deployment/ml/api".to_owned(),
            WorkloadHealth::Progressing("0 of 2".into()),
        )];
        assert!(matches!(
            summarize(&workloads, Duration::from_secs(10), Duration::from_secs(60)),
            Health::Progressing(_)
        ));
        assert!(matches!(
            summarize(&workloads, Duration::from_secs(60), Duration::from_secs(60)),
            Health::Degraded(_)
        ));
    }
}
