//! The gates a model version must pass before an alias may point at it: metric floors read from
//! the version's run, required tags, "not worse than the version holding the alias now by more
//! than ε", the registry status `READY`, and having been promoted in an earlier environment.
//! Pure: takes what was read from the registry and the history, returns every failure in words.

use super::client::ModelVersion;
use super::config::Gates;
use std::collections::BTreeMap;

/// A version with the metrics of the run that produced it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidate {
    pub version: ModelVersion,
    pub metrics: BTreeMap<String, f64>,
}

/// Every gate the candidate fails, each a sentence naming the metric or tag and the values.
/// `holder` is the version the alias points at now; `soaked` says whether the version was
/// promoted in the `soak_in` environment (`None` when that could not be checked).
pub fn failures(
    gates: &Gates,
    candidate: &Candidate,
    holder: Option<&Candidate>,
    soaked: Option<bool>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let version = &candidate.version;
    if version.status != "READY" {
        failures.push(format!(
            "status is `{}`, not READY; wait for the registry to finish creating it",
            version.status
        ));
    }
    for (metric, floor) in &gates.min_metrics {
        match candidate.metrics.get(metric) {
            None => failures.push(format!(
                "metric `{metric}` is missing from its run{}; the gate needs {metric} >= {floor}",
                run_suffix(version)
            )),
            Some(value) if value < floor => failures.push(format!(
                "metric `{metric}` is {value}, below the gate {metric} >= {floor}"
            )),
            Some(_) => {}
        }
    }
    for tag in &gates.required_tags {
        if version.tags.get(tag).is_none_or(|value| value.is_empty()) {
            failures.push(format!(
                "tag `{tag}` is missing; register the version with it"
            ));
        }
    }
    if let Some(holder) = holder.filter(|holder| holder.version.version != version.version) {
        for (metric, epsilon) in &gates.max_regression {
            let (Some(candidate_value), Some(holder_value)) =
                (candidate.metrics.get(metric), holder.metrics.get(metric))
            else {
                if candidate.metrics.get(metric).is_none() && holder.metrics.contains_key(metric) {
                    failures.push(format!(
                        "metric `{metric}` is missing from its run{}; version {} has {}, and it may be worse by at most {epsilon}",
                        run_suffix(version),
                        holder.version.version,
                        holder.metrics[metric]
                    ));
                }
                continue;
            };
            let worse_by = holder_value - candidate_value;
            if worse_by > *epsilon + 1e-12 {
                failures.push(format!(
                    "metric `{metric}` is {candidate_value}, worse than {holder_value} of version {} (which holds the alias now) by {:.4}, more than the allowed {epsilon}",
                    holder.version.version, worse_by
                ));
            }
        }
    }
    if let (Some(environment), Some(false)) = (&gates.soak_in, soaked) {
        failures.push(format!(
            "it was never promoted in `{environment}`; promote it there first"
        ));
    }
    failures
}

fn run_suffix(version: &ModelVersion) -> String {
    match &version.run_id {
        Some(run_id) => format!(" {run_id}"),
        None => " (the version has no run)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(version: &str, metrics: &[(&str, f64)], tags: &[&str]) -> Candidate {
        Candidate {
            version: ModelVersion {
                name: "churn".to_string(),
                version: version.to_string(),
                status: "READY".to_string(),
                run_id: Some(format!("run{version}")),
                current_stage: None,
                tags: tags
                    .iter()
                    .map(|tag| (tag.to_string(), "x".to_string()))
                    .collect(),
            },
            metrics: metrics
                .iter()
                .map(|(name, value)| (name.to_string(), *value))
                .collect(),
        }
    }

    fn gates(min: &[(&str, f64)], tags: &[&str], regression: &[(&str, f64)]) -> Gates {
        Gates {
            min_metrics: min.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            required_tags: tags.iter().map(|tag| tag.to_string()).collect(),
            max_regression: regression
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            soak_in: None,
        }
    }

    /// Each failure must contain every expected fragment, in order; no failure when none expected.
    fn check(gates: Gates, candidate: Candidate, holder: Option<Candidate>, expect: &[&[&str]]) {
        let found = failures(&gates, &candidate, holder.as_ref(), None);
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        for (failure, fragments) in found.iter().zip(expect) {
            for fragment in *fragments {
                assert!(failure.contains(fragment), "{failure:?} lacks {fragment:?}");
            }
        }
    }

    #[test]
    fn gates_name_the_metric_the_tag_and_the_values() {
        let floors = || gates(&[("accuracy", 0.8), ("f1", 0.6)], &[], &[]);
        check(
            floors(),
            candidate("1", &[("accuracy", 0.85), ("f1", 0.7)], &[]),
            None,
            &[],
        );
        check(
            floors(),
            candidate("1", &[("accuracy", 0.75), ("f1", 0.7)], &[]),
            None,
            &[&["`accuracy`", "0.75", ">= 0.8"]],
        );
        check(
            floors(),
            candidate("1", &[("accuracy", 0.9)], &[]),
            None,
            &[&["`f1`", "missing", "run1"]],
        );
        check(
            gates(&[], &["git_sha", "dataset_version"], &[]),
            candidate("1", &[], &["git_sha"]),
            None,
            &[&["`dataset_version`", "missing"]],
        );
        let regression = || gates(&[], &[], &[("accuracy", 0.01)]);
        check(
            regression(),
            candidate("2", &[("accuracy", 0.795)], &[]),
            Some(candidate("1", &[("accuracy", 0.80)], &[])),
            &[],
        );
        check(
            regression(),
            candidate("2", &[("accuracy", 0.75)], &[]),
            Some(candidate("1", &[("accuracy", 0.80)], &[])),
            &[&["`accuracy`", "0.75", "0.8 of version 1", "0.0500", "0.01"]],
        );
        // The holder itself is never compared with itself.
        check(
            regression(),
            candidate("1", &[("accuracy", 0.5)], &[]),
            Some(candidate("1", &[("accuracy", 0.5)], &[])),
            &[],
        );
        let mut pending = candidate("3", &[], &[]);
        pending.version.status = "PENDING_REGISTRATION".to_string();
        check(
            Gates::default(),
            pending,
            None,
            &[&["PENDING_REGISTRATION", "READY"]],
        );
    }

    #[test]
    fn a_version_never_promoted_in_the_soak_environment_fails() {
        let mut soak = Gates::default();
        soak.soak_in = Some("staging".to_string());
        let found = failures(&soak, &candidate("4", &[], &[]), None, Some(false));
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("`staging`"));
        assert!(failures(&soak, &candidate("4", &[], &[]), None, Some(true)).is_empty());
    }
}
