//! Drift of an environment's infrastructure. What changed outside Terraform (a refresh-only plan)
//! and what applying the release's configuration would change back (a normal plan against the
//! applied state) become drift, attribute by attribute. Terraform is never healed automatically:
//! the plan that would put it back is sealed under the plan key, kept under the data directory for
//! review, and applied only when an admin names it (`sluice drift ENV --apply-plan SHA`).

use super::TerraformTarget;
use crate::deploy::{Applied, DeployContext, Drift, DriftReport, TargetError};
use crate::terraform::drift::{apply_reviewed, drift_plans};
use crate::terraform::seal::sha256_hex;
use crate::terraform::summary::{self, Action, PlanSummary, ResourceSummary, shown};
use std::path::PathBuf;

impl TerraformTarget {
    /// Where the plans kept for review of one environment live.
    fn review_dir(&self) -> PathBuf {
        self.data_dir
            .join("terraform/drift")
            .join(self.repository.replace('/', "__"))
            .join(&self.settings.environment)
    }

    pub(super) async fn check_drift(
        &self,
        context: &DeployContext,
    ) -> Result<DriftReport, TargetError> {
        let job = self.job(context);
        let found = drift_plans(&job).await.map_err(|error| {
            TargetError::Unavailable(format!(
                "terraform in {} for {}: {error}",
                self.settings.dir, self.settings.environment
            ))
        })?;
        let mut report = DriftReport::default();
        report.calls.insert("plan".to_owned(), 2);
        for resource in &found.outside.resources {
            report.drifts.extend(outside(resource));
        }
        if let Some((plan, _, plan_summary)) = &found.revert {
            for drift in revert(plan_summary) {
                if !report
                    .drifts
                    .iter()
                    .any(|known| known.object == drift.object)
                {
                    report.drifts.push(drift);
                }
            }
            report.review = Some(self.keep_for_review(context, plan, plan_summary)?);
        }
        Ok(report)
    }

    fn keep_for_review(
        &self,
        context: &DeployContext,
        plan: &[u8],
        plan_summary: &PlanSummary,
    ) -> Result<serde_json::Value, TargetError> {
        let sha256 = sha256_hex(plan);
        let directory = self.review_dir();
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory)
            .and_then(|()| {
                std::fs::write(
                    directory.join(format!("{sha256}.plan")),
                    self.key.seal(plan, &sha256),
                )
            })
            .map_err(|error| {
                TargetError::Unavailable(format!(
                    "cannot keep the drift plan under {}: {error}",
                    directory.display()
                ))
            })?;
        let environment = &self.settings.environment;
        Ok(serde_json::json!({
            "plan": sha256,
            "release": context.release.id,
            "counts": plan_summary.counts.symbols(),
            "summary": summary::render_text(plan_summary).trim_end(),
            "who_may_apply": format!(
                "an admin: `sluice drift {environment} --apply-plan {sha256}` on the server's data directory; anyone else changes the configuration through a reviewed pull request"
            ),
        }))
    }

    /// Applies the plan kept for review, when `found` names it.
    pub(super) async fn apply_review(
        &self,
        context: &DeployContext,
        found: &DriftReport,
    ) -> Result<Applied, TargetError> {
        let Some(sha256) = found
            .review
            .as_ref()
            .and_then(|review| review["plan"].as_str())
        else {
            return Err(TargetError::Rejected(format!(
                "no drift plan of {} is kept for review; run `sluice drift {}` first",
                self.settings.environment, self.settings.environment
            )));
        };
        let path = self.review_dir().join(format!("{sha256}.plan"));
        let sealed = std::fs::read(&path).map_err(|error| {
            TargetError::Rejected(format!(
                "the drift plan {sha256} is no longer kept ({error}); run `sluice drift {}` again",
                self.settings.environment
            ))
        })?;
        let plan = self
            .key
            .open(&sealed, sha256)
            .map_err(|error| TargetError::Rejected(error.to_string()))?;
        apply_reviewed(&self.job(context), &plan)
            .await
            .map_err(|error| TargetError::Unavailable(error.to_string()))?;
        let _ = std::fs::remove_file(&path);
        Ok(Applied {
            summary: format!(
                "applied the reviewed drift plan {}",
                &sha256[..12.min(sha256.len())]
            ),
            ..Applied::default()
        })
    }
}

/// A resource changed outside Terraform: each attribute as the state had it and as it is now.
fn outside(resource: &ResourceSummary) -> Vec<Drift> {
    if resource.attributes.is_empty() {
        return vec![Drift {
            object: resource.address.clone(),
            expected: "as last applied".to_owned(),
            actual: format!("{} outside Terraform", resource.action.describe()),
        }];
    }
    resource
        .attributes
        .iter()
        .map(|change| Drift {
            object: format!("{}: {}", resource.address, change.path),
            expected: side(&change.before),
            actual: format!("{} (changed outside Terraform)", side(&change.after)),
        })
        .collect()
}

/// What the configuration would change back: the configuration's value is expected, the
/// state's is what there is.
fn revert(plan: &PlanSummary) -> Vec<Drift> {
    let mut drifts = Vec::new();
    for resource in &plan.resources {
        match resource.action {
            Action::NoOp | Action::Read => {}
            Action::Create => drifts.push(Drift {
                object: resource.address.clone(),
                expected: "present".to_owned(),
                actual: "absent".to_owned(),
            }),
            Action::Delete | Action::Forget => drifts.push(Drift {
                object: resource.address.clone(),
                expected: "absent".to_owned(),
                actual: "present".to_owned(),
            }),
            Action::Update | Action::Replace(_) if resource.attributes.is_empty() => {
                drifts.push(Drift {
                    object: resource.address.clone(),
                    expected: "as configured".to_owned(),
                    actual: format!("differs ({})", resource.action.describe()),
                })
            }
            Action::Update | Action::Replace(_) => {
                // A value known only after apply follows from the others; it is not drift.
                let set = resource
                    .attributes
                    .iter()
                    .filter(|change| change.after != Some(summary::Shown::KnownAfterApply));
                drifts.extend(set.map(|change| Drift {
                    object: format!("{}: {}", resource.address, change.path),
                    expected: side(&change.after),
                    actual: side(&change.before),
                }))
            }
        }
    }
    drifts
}

fn side(value: &Option<summary::Shown>) -> String {
    value
        .as_ref()
        .map(shown)
        .unwrap_or_else(|| "absent".to_owned())
}
