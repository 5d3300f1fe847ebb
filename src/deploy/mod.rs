//! Releases and the targets they are deployed to. A release is the unit that moves through the
//! environments; a target is one system an environment's state lives in (Terraform, Kubernetes,
//! Airflow, MLflow). This module defines both contracts; the promotion reconciler drives them and
//! each target lives in its own module. It knows nothing of webhooks, runs or pull requests.

pub mod actions;
pub mod delivery_metrics;
pub mod drift;
pub mod execute;
pub mod gates;
pub mod preview;
pub mod reconcile;
pub mod recording;
pub mod target;

pub use crate::model::Release;
pub use drift::{Drift, DriftReport};
pub use target::{
    Applied, Change, ChangeAction, DeployContext, Health, Target, TargetDiff, TargetError,
    TargetFuture, TargetKind,
};
