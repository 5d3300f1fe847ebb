//! `kind/name` references to Kubernetes workloads, which two sections name: the rollouts
//! `kubernetes.health` waits for and the workloads `mlflow.models.<name>.restart` restarts.

/// `deployment/serving-api` → (`deployment`, `serving-api`), kind lowercased.
pub fn parse_workload_reference(reference: &str) -> Option<(String, String)> {
    let (kind, name) = reference.split_once('/')?;
    if kind.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    Some((kind.to_ascii_lowercase(), name.to_owned()))
}
