//! The target contract, shaped like a reconciler: given the desired state (a release in an
//! environment) a target can say what would change, make it so, report health, describe what is
//! there now, and undo its last apply from the rollback data it returned. Every call is idempotent
//! and ignores why it was made; the reconciler owns ordering, gates, locks and history.

use crate::config::environment::Environment;
use crate::deploy::{DriftReport, Release};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A registered target as the reconciler sees it: its name (the environment file's key and the
/// store's column), its place in the deploy order, and whether a rollback deploys it. Made by the
/// registry in `crate::targets`, which decides which targets there are and in what order; kinds
/// order by that place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKind {
    position: usize,
    name: &'static str,
    joins_rollbacks: bool,
}

impl TargetKind {
    pub const fn new(position: usize, name: &'static str, joins_rollbacks: bool) -> TargetKind {
        TargetKind {
            position,
            name,
            joins_rollbacks,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.name
    }

    /// Whether a rollback deploys an older release to this target.
    pub fn joins_rollbacks(self) -> bool {
        self.joins_rollbacks
    }
}

/// Everything a target may read to deploy `release` to `environment`.
#[derive(Clone, Debug)]
pub struct DeployContext {
    pub environment: Environment,
    pub release: Release,
    /// A checkout of the release's commit: manifests, DAGs, pins and Terraform are read from here.
    pub tree: PathBuf,
    /// The release the environment runs now, if any.
    pub previous: Option<Release>,
    /// What the targets applied earlier in this deployment reported (`Applied.outputs`), by target name:
    /// a later target follows what an earlier one actually did (the Kubernetes target restarts
    /// the workloads serving a model at the version the MLflow target moved its alias to). For a
    /// diff nothing is applied yet; whoever asks fills in what the earlier targets' diffs predict.
    pub applied: std::collections::BTreeMap<String, serde_json::Value>,
}

impl DeployContext {
    /// Model → the version the workloads serving it should run: what a model registry's target
    /// reported earlier in this deployment (`Applied.outputs.serving`, or a diff's
    /// `facts.models[].to` when a preview asks). Empty when no such target ran before the asking one.
    pub fn served_models(&self) -> std::collections::BTreeMap<String, String> {
        let mut versions = std::collections::BTreeMap::new();
        for value in self.applied.values() {
            if let Some(serving) = value.get("serving").and_then(|serving| serving.as_object()) {
                for (model, version) in serving {
                    if let Some(version) = version.as_str() {
                        versions.insert(model.clone(), version.to_owned());
                    }
                }
            } else if let Some(models) = value.get("models").and_then(|models| models.as_array()) {
                for model in models {
                    if let (Some(name), Some(version)) =
                        (model["model"].as_str(), model["to"].as_str())
                    {
                        versions.insert(name.to_owned(), version.to_owned());
                    }
                }
            }
        }
        versions
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Create,
    Update,
    Delete,
    Replace,
    NoOp,
}

/// One object that a deploy would touch: a resource address, a Kubernetes object, a DAG file,
/// a model alias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub address: String,
    pub action: ChangeAction,
    /// A short human-readable detail (a field diff, `v3 → v4`), already free of secrets.
    #[serde(default)]
    pub detail: Option<String>,
}

/// What deploying the context's release would change; feeds the PR comment and the policy input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetDiff {
    pub changes: Vec<Change>,
    /// Facts for the policy input (`input.<kind>`), in the target's own shape.
    #[serde(default)]
    pub facts: serde_json::Value,
}

/// The outcome of an apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// One line for history and the PR comment: "3 objects written, 1 pruned".
    pub summary: String,
    /// What `rollback` needs to undo this apply (previous alias versions, the previous DAG
    /// version directory, ...). Recorded durably by the reconciler before health is awaited.
    #[serde(default)]
    pub rollback: serde_json::Value,
    /// Outputs worth recording (Terraform outputs, new object versions).
    #[serde(default)]
    pub outputs: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Health {
    Healthy,
    /// Still converging; ask again.
    Progressing(String),
    /// Will not become healthy without a change: roll back.
    Degraded(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The environment's section for this target is wrong: names the field and what to do.
    #[error("{0}")]
    Configuration(String),
    /// The release cannot go here (a failed validation, gate or policy): not retried.
    #[error("{0}")]
    Rejected(String),
    /// The target's system failed or could not be reached: may be retried.
    #[error("{0}")]
    Unavailable(String),
}

pub type TargetFuture<'a, T> = BoxFuture<'a, Result<T, TargetError>>;

pub trait Target: Send + Sync {
    fn kind(&self) -> TargetKind;
    /// What `apply` would change, without changing anything.
    fn diff<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, TargetDiff>;
    /// Make the environment match the release. Idempotent: applying twice writes nothing the second time.
    fn apply<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Applied>;
    /// Whether what `apply` wrote is healthy.
    fn health<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Health>;
    /// What the environment runs now, as the target sees it.
    fn current<'a>(&'a self, environment: &'a Environment) -> TargetFuture<'a, serde_json::Value>;
    /// Undo an apply with the rollback data it returned.
    fn rollback<'a>(
        &'a self,
        context: &'a DeployContext,
        rollback: &'a serde_json::Value,
    ) -> TargetFuture<'a, Applied>;
    /// What differs between the environment and `context.release`, the release it runs, without
    /// changing anything. `context.applied` holds what each target's last apply of that release
    /// reported. A system that cannot be asked is `Unavailable`, never a clean report.
    fn drift<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, DriftReport>;
    /// Put back the release's state where `drift` found `found`. Targets whose system must not
    /// be changed without review (Terraform) refuse.
    fn heal<'a>(
        &'a self,
        context: &'a DeployContext,
        found: &'a DriftReport,
    ) -> TargetFuture<'a, Applied> {
        let _ = (context, found);
        let kind = self.kind().as_str();
        Box::pin(async move {
            Err(TargetError::Rejected(format!(
                "{kind} is never healed automatically; review the stored plan"
            )))
        })
    }
}
