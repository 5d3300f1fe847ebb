//! A target that records every call instead of deploying: for tests and for trying a promotion
//! flow without the real systems (`SLUICE_RECORDING_TARGETS=DIR`). Calls are appended as JSON lines
//! to `DIR/calls.jsonl`; files in `DIR` steer health so that a test (or a person) can make a rollout
//! stall or fail: `hold-ENV-KIND` present → progressing; `fail-ENV-KIND` containing a release id →
//! that release is degraded there.

use crate::config::environment::Environment;
use crate::deploy::{
    Applied, DeployContext, Drift, DriftReport, Health, Target, TargetDiff, TargetError,
    TargetFuture, TargetKind,
};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedCall {
    pub environment: String,
    /// The target's registered name (`terraform`, `kubernetes`, ...).
    pub target: String,
    /// `diff`, `apply`, `health`, `current`, `rollback`.
    pub call: String,
    pub release: String,
    /// For `rollback`: the release whose apply is being undone (from the rollback data).
    #[serde(default)]
    pub undoing: Option<String>,
}

pub struct RecordingTarget {
    pub kind: TargetKind,
    pub directory: PathBuf,
}

impl RecordingTarget {
    pub fn log_path(directory: &Path) -> PathBuf {
        directory.join("calls.jsonl")
    }

    /// Every call recorded so far in `directory`, oldest first.
    pub fn calls(directory: &Path) -> Vec<RecordedCall> {
        std::fs::read_to_string(Self::log_path(directory))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    fn record(&self, context: &DeployContext, call: &str, undoing: Option<String>) {
        let entry = RecordedCall {
            environment: context.environment.name.clone(),
            target: self.kind.as_str().to_owned(),
            call: call.to_owned(),
            release: context.release.id.clone(),
            undoing,
        };
        let line = serde_json::to_string(&entry).expect("plain data serialises") + "\n";
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Self::log_path(&self.directory))
            .and_then(|mut file| {
                file.write_all(line.as_bytes())?;
                file.sync_data()
            });
        if let Err(error) = appended {
            tracing::error!(%error, "cannot record a target call");
        }
    }

    fn control_file(&self, prefix: &str, environment: &str) -> PathBuf {
        self.directory
            .join(format!("{prefix}-{environment}-{}", self.kind.as_str()))
    }
}

impl Target for RecordingTarget {
    fn kind(&self) -> TargetKind {
        self.kind
    }

    fn diff<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, TargetDiff> {
        Box::pin(async move {
            self.record(context, "diff", None);
            Ok(TargetDiff::default())
        })
    }

    fn apply<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            self.record(context, "apply", None);
            Ok(Applied {
                summary: format!("recorded {} for {}", self.kind.as_str(), context.release.id),
                rollback: serde_json::json!({ "applied": context.release.id }),
                outputs: serde_json::Value::Null,
            })
        })
    }

    fn health<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Health> {
        Box::pin(async move {
            self.record(context, "health", None);
            let environment = &context.environment.name;
            if let Ok(failing) = std::fs::read_to_string(self.control_file("fail", environment))
                && failing.trim() == context.release.id
            {
                return Ok(Health::Degraded(format!(
                    "{} reports {} unhealthy",
                    self.kind.as_str(),
                    context.release.id
                )));
            }
            if self.control_file("hold", environment).exists() {
                return Ok(Health::Progressing("held".to_owned()));
            }
            Ok(Health::Healthy)
        })
    }

    fn current<'a>(&'a self, _environment: &'a Environment) -> TargetFuture<'a, serde_json::Value> {
        Box::pin(async move { Ok(serde_json::Value::Null) })
    }

    fn rollback<'a>(
        &'a self,
        context: &'a DeployContext,
        rollback: &'a serde_json::Value,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            let undoing = rollback["applied"].as_str().map(str::to_owned);
            self.record(context, "rollback", undoing);
            Ok(Applied {
                summary: "recorded rollback".to_owned(),
                ..Applied::default()
            })
        })
    }

    /// The drift a test wrote to `drift-ENV-KIND` (a JSON list of `Drift`); `unreachable-ENV-KIND`
    /// makes the check fail as an unreachable system would.
    fn drift<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, DriftReport> {
        // Not recorded in the call log: a drift check is a read, made before and after every
        // deployment, and the log is for what changed the environment.
        Box::pin(async move {
            let environment = &context.environment.name;
            if self.control_file("unreachable", environment).exists() {
                return Err(TargetError::Unavailable(format!(
                    "{} answered 503 Service Unavailable",
                    self.kind.as_str()
                )));
            }
            let drifts = std::fs::read_to_string(self.control_file("drift", environment))
                .ok()
                .and_then(|text| serde_json::from_str::<Vec<Drift>>(&text).ok())
                .unwrap_or_default();
            Ok(DriftReport {
                drifts,
                ..DriftReport::default()
            })
        })
    }

    fn heal<'a>(
        &'a self,
        context: &'a DeployContext,
        found: &'a DriftReport,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            self.record(context, "heal", None);
            if self.kind.as_str() == "terraform" {
                return Err(TargetError::Rejected(
                    "terraform is never healed automatically".to_owned(),
                ));
            }
            let _ = std::fs::remove_file(self.control_file("drift", &context.environment.name));
            Ok(Applied {
                summary: format!("recorded heal of {} drifted", found.drifts.len()),
                ..Applied::default()
            })
        })
    }
}
