//! Terraform: what a plan would do (`summary`), driving the `terraform` CLI (`runner`), the
//! environment's settings (`settings`), sealing plans at rest (`seal`), which stored plan a merge
//! may apply (`review`), where a policy finding points in the sources (`locate`), locks as people meet them (`locks`), and whole plan and apply operations
//! (`operations`). It knows plans, the store's plan and lock records and the policies; it knows
//! nothing of webhooks, runs or HTTP.

pub mod container;
pub mod drift;
pub mod locate;
pub mod locks;
pub mod operations;
pub mod review;
pub mod runner;
pub mod seal;
pub mod settings;
pub mod summary;

pub use operations::{
    ApplyOutcome, OperationError, PlanOrigin, PlanOutcome, PlannedChange, TerraformJob,
    apply_after_merge, apply_stored, plan_and_store, plan_only,
};
pub use review::{Decision, MergedCommit, Refusal};
pub use runner::{TerraformError, locate_terraform};
pub use seal::{PlanKey, SealError};
pub use settings::{ApplyMode, ApplyRequirement, LockMode, TerraformSection, TerraformSettings};
