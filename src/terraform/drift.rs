//! Terraform's side of a drift check: a `-refresh-only` plan says what changed outside Terraform,
//! a normal plan against the applied state says what applying the configuration would change
//! back. Both with `-detailed-exitcode`, in the release's checkout, against the environment's
//! state. Turning what they say into drift and storing a plan for review is the target's.

use super::operations::{OperationError, TerraformJob};
use super::summary::{self, PlanSummary};

/// What the two plans found.
#[derive(Clone, Debug, Default)]
pub struct DriftPlans {
    /// The resources that changed outside Terraform (`resource_drift` of the refresh-only plan).
    pub outside: PlanSummary,
    /// The plan that would put the infrastructure back, when it changes anything: its bytes,
    /// `show -json` and summary.
    pub revert: Option<(Vec<u8>, serde_json::Value, PlanSummary)>,
}

pub async fn drift_plans(job: &TerraformJob) -> Result<DriftPlans, OperationError> {
    let run = job.start()?;
    run.init().await?;
    let mut found = DriftPlans::default();
    if run.plan_changes(true).await?.is_some() {
        let plan = run.show_json().await?;
        let drift = serde_json::json!({
            "resource_changes": plan.get("resource_drift").cloned().unwrap_or_default()
        });
        found.outside = summary::summarize(&drift)?;
    }
    if let Some(bytes) = run.plan_changes(false).await? {
        let plan = run.show_json().await?;
        let plan_summary = summary::summarize(&plan)?;
        if !plan_summary.counts.is_empty() {
            found.revert = Some((bytes, plan, plan_summary));
        }
    }
    Ok(found)
}

/// Applies a plan a person reviewed, exactly; Terraform refuses it if the state moved since.
pub async fn apply_reviewed(job: &TerraformJob, plan: &[u8]) -> Result<(), OperationError> {
    let run = job.start()?;
    run.init().await?;
    run.apply(plan).await?;
    Ok(())
}
