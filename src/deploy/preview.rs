//! What a release would change in one environment, target by target, and the one policy input
//! built from it: `input.<target>` is each target's diff facts (the reviewed Terraform plan, the
//! rendered Kubernetes objects, the DAG folder's facts, the model decisions). The same preview
//! feeds the pull-request comment and the promotion gate, so both judge the same document.
//! Targets are asked in deploy order and each sees what the earlier ones' diffs predict (the
//! Kubernetes target restarts serving workloads at the version the MLflow diff would move to).

use crate::deploy::{Change, DeployContext, Target, TargetError};
use crate::policy::{Evaluation, PolicyContext, PolicySet};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One target's part of a preview.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainPreview {
    /// The target's name: `terraform`, `kubernetes`, `airflow`, `mlflow`.
    pub target: String,
    pub changes: Vec<Change>,
    /// `input.<target>`; `null` when the diff failed.
    pub facts: serde_json::Value,
    /// Why the target could not say what would change, if it could not.
    #[serde(default)]
    pub problem: Option<String>,
    /// Whether that problem may go away by asking again (the target's system was unreachable).
    #[serde(default)]
    pub transient: bool,
}

/// Every configured target's part, in deploy order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub environment: String,
    pub domains: Vec<DomainPreview>,
}

impl Preview {
    /// The policy input: `{"terraform": …, "kubernetes": …, "airflow": …, "mlflow": …}` for the
    /// targets the environment configures (a failed diff is `null`: its rules find nothing).
    pub fn policy_input(&self) -> serde_json::Value {
        let mut input = serde_json::Map::new();
        for domain in &self.domains {
            input.insert(domain.target.clone(), domain.facts.clone());
        }
        serde_json::Value::Object(input)
    }

    /// Problems of targets whose system could not be reached: the preview is incomplete and
    /// asking again later may complete it.
    pub fn transient_problems(&self) -> Vec<String> {
        self.domains
            .iter()
            .filter(|domain| domain.transient)
            .filter_map(|domain| {
                domain
                    .problem
                    .as_ref()
                    .map(|problem| format!("{}: {problem}", domain.target))
            })
            .collect()
    }
}

/// Asks each target (sorted into deploy order here) what deploying `context`'s release would
/// change. Never fails: a target's error is recorded in its part.
pub async fn preview(targets: &[Arc<dyn Target>], context: &DeployContext) -> Preview {
    let mut ordered: Vec<&Arc<dyn Target>> = targets.iter().collect();
    ordered.sort_by_key(|target| target.kind());
    let mut context = context.clone();
    context.applied.clear();
    let mut domains = Vec::new();
    for target in ordered {
        let name = target.kind().as_str().to_owned();
        let part = match target.diff(&context).await {
            Ok(diff) => {
                context.applied.insert(name.clone(), diff.facts.clone());
                DomainPreview {
                    target: name,
                    changes: diff.changes,
                    facts: diff.facts,
                    problem: None,
                    transient: false,
                }
            }
            Err(error) => DomainPreview {
                target: name,
                changes: Vec::new(),
                facts: serde_json::Value::Null,
                transient: matches!(error, TargetError::Unavailable(_)),
                problem: Some(error.to_string()),
            },
        };
        domains.push(part);
    }
    Preview {
        environment: context.environment.name.clone(),
        domains,
    }
}

/// Evaluates the policy set on the preview's one input.
pub fn evaluate(policies: &PolicySet, preview: &Preview, context: &PolicyContext) -> Evaluation {
    policies.evaluate(&preview.policy_input(), context)
}

/// One line per denial and policy error, `rule: message`, as the history and the gate record them.
pub fn blocking_lines(evaluation: &Evaluation) -> Vec<String> {
    let mut lines: Vec<String> = evaluation
        .denials()
        .map(|finding| format!("{}: {}", finding.rule, finding.message))
        .collect();
    lines.extend(
        evaluation
            .errors
            .iter()
            .map(|error| format!("policy error: {error}")),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{Applied, Health, TargetDiff, TargetFuture, TargetKind};
    use crate::targets::registry::named;

    struct Fixed {
        kind: TargetKind,
        answer: Result<serde_json::Value, String>,
    }

    impl Target for Fixed {
        fn kind(&self) -> TargetKind {
            self.kind
        }
        fn diff<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, TargetDiff> {
            Box::pin(async move {
                match &self.answer {
                    Ok(facts) => Ok(TargetDiff {
                        changes: Vec::new(),
                        // What the earlier targets predicted, for the test to see.
                        facts: serde_json::json!({"mine": facts, "seen": context.served_models()}),
                    }),
                    Err(reason) => Err(TargetError::Unavailable(reason.clone())),
                }
            })
        }
        fn apply<'a>(&'a self, _: &'a DeployContext) -> TargetFuture<'a, Applied> {
            unreachable!("a preview applies nothing")
        }
        fn health<'a>(&'a self, _: &'a DeployContext) -> TargetFuture<'a, Health> {
            unreachable!()
        }
        fn current<'a>(
            &'a self,
            _: &'a crate::config::environment::Environment,
        ) -> TargetFuture<'a, serde_json::Value> {
            unreachable!()
        }
        fn rollback<'a>(
            &'a self,
            _: &'a DeployContext,
            _: &'a serde_json::Value,
        ) -> TargetFuture<'a, Applied> {
            unreachable!()
        }
        fn drift<'a>(
            &'a self,
            _context: &'a DeployContext,
        ) -> TargetFuture<'a, crate::deploy::DriftReport> {
            Box::pin(async { Ok(crate::deploy::DriftReport::clean()) })
        }
    }

    #[tokio::test]
    async fn targets_are_asked_in_deploy_order_and_a_failure_is_a_null_domain() {
        let targets: Vec<Arc<dyn Target>> = vec![
            Arc::new(Fixed {
                kind: named("kubernetes").unwrap(),
                answer: Ok(serde_json::json!(1)),
            }),
            Arc::new(Fixed {
                kind: named("airflow").unwrap(),
                answer: Err("connection refused".to_owned()),
            }),
            Arc::new(Fixed {
                kind: named("mlflow").unwrap(),
                answer: Ok(serde_json::json!(2)),
            }),
        ];
        let context = DeployContext {
            environment: crate::config::environment::Environment::named("dev"),
            release: crate::model::Release::unrecorded(
                "acme/platform",
                "0123456789abcdef",
                "main",
                None,
            ),
            tree: std::path::PathBuf::from("/nonexistent"),
            previous: None,
            applied: Default::default(),
        };
        let preview = preview(&targets, &context).await;
        let names: Vec<&str> = preview
            .domains
            .iter()
            .map(|domain| domain.target.as_str())
            .collect();
        assert_eq!(names, ["mlflow", "kubernetes", "airflow"]);
        let input = preview.policy_input();
        assert_eq!(input["mlflow"]["mine"], 2);
        assert_eq!(input["airflow"], serde_json::Value::Null);
        assert_eq!(
            preview.transient_problems(),
            ["airflow: connection refused"]
        );
    }
}
