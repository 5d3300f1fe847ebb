//! Whether a job runs once its needs have finished.

use super::{merge, push};
use sluice::model::Status;
use sluice::planner::{self, JobDecision, PlannedJob};
use std::collections::BTreeMap;

fn job(needs: &[&str], condition: Option<&str>) -> PlannedJob {
    PlannedJob {
        id: "deploy".into(),
        name: "deploy".into(),
        needs: needs.iter().map(|need| need.to_string()).collect(),
        condition: condition.map(str::to_string),
        timeout: None,
        env: BTreeMap::new(),
        concurrency: None,
        image: None,
        steps: Vec::new(),
    }
}

fn check_decision(needs: &[(&str, Status)], condition: Option<&str>, expect: JobDecision) {
    let need_ids: Vec<&str> = needs.iter().map(|(id, _)| *id).collect();
    let statuses: BTreeMap<String, Status> = needs
        .iter()
        .map(|(id, status)| (id.to_string(), *status))
        .collect();
    let context = planner::expression_context(&merge("main", None), "platform", &BTreeMap::new());
    let decision = planner::decide_job(&job(&need_ids, condition), &statuses, &context);
    assert_eq!(decision, expect, "needs {needs:?}, condition {condition:?}");
}

fn skip(reason: &str) -> JobDecision {
    JobDecision::Skip(reason.to_string())
}

#[test]
fn jobs_run_or_skip_after_their_needs() {
    use Status::{Cancelled, Failed, Running, Skipped, Succeeded};
    let run = JobDecision::Run;
    check_decision(&[], None, run.clone());
    check_decision(&[("build", Succeeded)], None, run.clone());
    check_decision(&[("build", Failed)], None, skip("need `build` failed"));
    check_decision(
        &[("build", Succeeded), ("test", Skipped)],
        None,
        skip("need `test` was skipped"),
    );
    check_decision(
        &[("build", Cancelled)],
        None,
        skip("need `build` was cancelled"),
    );
    check_decision(
        &[("build", Failed), ("test", Failed)],
        None,
        skip("need `build` failed; need `test` failed"),
    );
    check_decision(
        &[("build", Succeeded)],
        Some("event == 'merge'"),
        run.clone(),
    );
    check_decision(
        &[("build", Succeeded)],
        Some("${{ event == 'push' }}"),
        skip("condition `${{ event == 'push' }}` is false"),
    );
    // A condition without status functions still needs every need to have succeeded.
    check_decision(
        &[("build", Failed)],
        Some("event == 'merge'"),
        skip("need `build` failed"),
    );
    check_decision(&[("build", Failed)], Some("always()"), run.clone());
    check_decision(&[("build", Skipped)], Some("always()"), run.clone());
    check_decision(&[("build", Failed)], Some("failure()"), run.clone());
    check_decision(
        &[("build", Succeeded)],
        Some("failure()"),
        skip("condition `failure()` is false"),
    );
    check_decision(
        &[("build", Skipped)],
        Some("!failure() && !cancelled()"),
        run.clone(),
    );
    check_decision(&[("build", Cancelled)], Some("cancelled()"), run.clone());
    check_decision(
        &[("build", Failed)],
        Some("success()"),
        skip("condition `success()` is false (need `build` failed)"),
    );
    check_decision(
        &[("build", Failed)],
        Some("always() && needs.build.result == 'failure'"),
        run.clone(),
    );
    check_decision(
        &[("build", Skipped)],
        Some("always() && needs.build.result == 'success'"),
        skip(
            "condition `always() && needs.build.result == 'success'` is false (need `build` was skipped)",
        ),
    );
    check_decision(
        &[("build", Running)],
        Some("always()"),
        skip("need `build` has not finished (it is running); decide once every need is finished"),
    );
}

#[test]
fn a_condition_that_cannot_be_evaluated_skips_with_the_error() {
    let statuses = BTreeMap::new();
    let context = planner::expression_context(&push("main", None), "platform", &BTreeMap::new());
    let decision = planner::decide_job(&job(&[], Some("event == ")), &statuses, &context);
    let JobDecision::Skip(reason) = decision else {
        panic!("a broken condition must not run the job")
    };
    assert!(
        reason.starts_with("condition `event ==` cannot be evaluated"),
        "{reason}"
    );
}
