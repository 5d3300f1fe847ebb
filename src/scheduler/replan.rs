//! Planning a pull request again without a push: `/sluice plan [ENV]` and a plan that waited in a
//! lock's queue. An internal delivery (`sluice_replan`, refused from outside like every `sluice_*`
//! event) carries the pull request as GitHub describes it now (or as its newest delivery did)
//! and which environment to plan; the intake worker plans it like a `pull_request` delivery and
//! keeps only the jobs that plan Terraform (for that environment) and the jobs they need.

use super::event::PayloadError;
use crate::config::workflow::TerraformCommand;
use crate::model::Delivery;
use crate::planner::PlannedRun;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The event name of a re-plan.
pub const REPLAN_EVENT: &str = "sluice_replan";

/// Which jobs of a re-planned run are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanSelection {
    /// Only the plans of this environment; every environment's when `None`.
    pub environment: Option<String>,
    /// Who or what asked, for the log: `/sluice plan by dana`, `the lock of dev was released`.
    pub reason: String,
}

/// The internal delivery that plans pull request `document` (GitHub's pull-request object)
/// again. `id` makes it idempotent: the same command or queue turn never plans twice.
pub fn replan_delivery(
    id: String,
    repository: &str,
    document: &Value,
    selection: &PlanSelection,
) -> Delivery {
    let number = document.get("number").cloned().unwrap_or(Value::Null);
    let pull_request = json!({
        "action": "synchronize",
        "number": number,
        "pull_request": document,
        "repository": { "full_name": repository },
    });
    let payload = json!({
        "environment": selection.environment,
        "reason": selection.reason,
        "delivery": {
            "event": "pull_request",
            "payload": pull_request.to_string(),
        },
    });
    Delivery {
        id,
        event: REPLAN_EVENT.to_owned(),
        repository: Some(repository.to_owned()),
        payload: payload.to_string().into_bytes(),
        received_at: chrono::Utc::now(),
    }
}

/// For a re-plan: the `pull_request` delivery to plan (under the re-plan's own id) and the
/// selection. A re-plan that does not read is a payload error.
pub fn unwrap_replan(
    delivery: &Delivery,
) -> Result<Option<(Delivery, PlanSelection)>, PayloadError> {
    let Some((inner, wrapper)) = super::approval::carried_delivery(delivery, REPLAN_EVENT)? else {
        return Ok(None);
    };
    let text = |pointer: &str| {
        wrapper
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(Some((
        inner,
        PlanSelection {
            environment: text("/environment"),
            reason: text("/reason").unwrap_or_default(),
        },
    )))
}

/// Keeps the jobs that plan Terraform (for the selected environment) and, transitively, the
/// jobs they need. `false` when no job of the run plans it (the run is then not recorded).
pub fn select_plan_jobs(run: &mut PlannedRun, selection: &PlanSelection) -> bool {
    let plans = |job: &crate::planner::PlannedJob| {
        job.steps.iter().any(|step| {
            step.terraform.as_ref().is_some_and(|terraform| {
                terraform.command == TerraformCommand::Plan
                    && selection
                        .environment
                        .as_deref()
                        .is_none_or(|wanted| terraform.environment == wanted)
            })
        })
    };
    let mut keep: BTreeSet<String> = run
        .jobs
        .iter()
        .filter(|job| plans(job))
        .map(|job| job.id.clone())
        .collect();
    if keep.is_empty() {
        return false;
    }
    // Jobs come in a topological order of `needs`: walking backwards adds every ancestor.
    for job in run.jobs.iter().rev() {
        if keep.contains(&job.id) {
            keep.extend(job.needs.iter().cloned());
        }
    }
    run.jobs.retain(|job| keep.contains(&job.id));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replan_carries_the_pull_request_and_the_selection() {
        let document = json!({ "number": 7, "head": { "sha": "a".repeat(40) } });
        let selection = PlanSelection {
            environment: Some("dev".to_owned()),
            reason: "/sluice plan dev by dana".to_owned(),
        };
        let delivery = replan_delivery("replan:c-1".to_owned(), "acme/ml", &document, &selection);
        let (inner, read) = unwrap_replan(&delivery).unwrap().unwrap();
        assert_eq!(inner.event, "pull_request");
        assert_eq!(inner.id, "replan:c-1");
        let payload: Value = serde_json::from_slice(&inner.payload).unwrap();
        assert_eq!(payload["number"], 7);
        assert_eq!(payload["action"], "synchronize");
        assert_eq!(read, selection);
    }

    #[test]
    fn only_the_selected_plans_and_what_they_need_are_kept() {
        let files = [crate::config::SourceFile {
            path: "workflows/ci.yaml".to_owned(),
            contents: b"name: ci\non: { pull_request: {} }\njobs:
  test:
    steps: [{ run: 'true' }]
  validate-dev:
    steps: [{ run: 'true' }]
  plan-dev:
    needs: validate-dev
    steps: [{ terraform: { environment: dev, command: plan } }]
  plan-prod:
    steps: [{ terraform: { environment: production, command: plan } }]
"
            .to_vec(),
        }];
        let project = crate::config::load_project(&files);
        assert!(project.diagnostics.is_empty(), "{:?}", project.diagnostics);
        let event = crate::scheduler::tests::pull_request_event("feature", "synchronize");
        let planned = crate::planner::plan(&project.workflows, &event);
        let ids = |environment: Option<&str>| {
            let mut run = planned[0].clone();
            let kept = select_plan_jobs(
                &mut run,
                &PlanSelection {
                    environment: environment.map(str::to_owned),
                    reason: String::new(),
                },
            );
            let mut ids: Vec<String> = run.jobs.iter().map(|job| job.id.clone()).collect();
            ids.sort();
            (kept, ids)
        };
        let names = |list: &[&str]| list.iter().map(|name| name.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ids(Some("dev")),
            (true, names(&["plan-dev", "validate-dev"]))
        );
        assert_eq!(
            ids(None),
            (true, names(&["plan-dev", "plan-prod", "validate-dev"]))
        );
        assert!(!ids(Some("staging")).0);
    }
}
