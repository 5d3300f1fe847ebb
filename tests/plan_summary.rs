//! Plan summaries over the 121 real plans in `tests/fixtures/terraform-plans` (from
//! terraform-compliance, MIT, see the LICENSE there): every plan summarises, the counts agree
//! with a count made here straight from `resource_changes[].change.actions`, and what reaches a
//! pull-request comment masks sensitive and unknown values and stays inside its code block.

use serde_json::Value;
use sluice::terraform::summary::{
    Action, Counts, ReplaceOrder, Shown, render_markdown, render_text, summarize,
};
use std::path::PathBuf;

fn plan_paths() -> Vec<PathBuf> {
    let directory =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/terraform-plans");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("the plan fixtures exist")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    paths
}

fn read_plan(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/terraform-plans")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Counts actions without the summary's code: the joined action list of every entry.
fn independent_counts(plan: &Value) -> Counts {
    let mut counts = Counts::default();
    let entries = plan["resource_changes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for entry in entries {
        let actions: Vec<String> = entry["change"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|action| action.as_str().unwrap().to_owned())
            .collect();
        match actions.join(",").as_str() {
            "create" => counts.create += 1,
            "update" => counts.update += 1,
            "delete" => counts.delete += 1,
            "delete,create" | "create,delete" => counts.replace += 1,
            "read" => counts.read += 1,
            "no-op" => counts.no_op += 1,
            other => panic!("an action list no plan should hold: {other}"),
        }
    }
    counts
}

#[test]
fn all_real_plans_summarise_and_their_counts_match_an_independent_count() {
    let paths = plan_paths();
    assert_eq!(paths.len(), 121, "the fixture set is complete");
    let mut total = Counts::default();
    for path in &paths {
        let plan: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|error| panic!("{} is JSON: {error}", path.display()));
        let summary =
            summarize(&plan).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let expected = independent_counts(&plan);
        assert_eq!(summary.counts, expected, "{}", path.display());
        assert_eq!(
            summary.resources.len(),
            plan["resource_changes"].as_array().map_or(0, Vec::len),
            "{}",
            path.display()
        );
        let text = render_text(&summary);
        assert!(
            text.ends_with('\n') && !text.trim().is_empty(),
            "{}",
            path.display()
        );
        total.create += summary.counts.create;
        total.update += summary.counts.update;
        total.delete += summary.counts.delete;
        total.read += summary.counts.read;
        total.no_op += summary.counts.no_op;
    }
    // The set as a whole exercises every common action; a regression that reads every entry
    // as one action would show here.
    assert_eq!(
        (
            total.create,
            total.update,
            total.delete,
            total.read,
            total.no_op
        ),
        (530, 29, 2, 2, 109)
    );
}

#[test]
fn every_markdown_rendering_keeps_its_fence_closed() {
    for path in plan_paths() {
        let plan: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let markdown = render_markdown(&summarize(&plan).unwrap());
        let fence_lines: Vec<&str> = markdown
            .lines()
            .filter(|line| line.starts_with("```"))
            .collect();
        assert!(
            fence_lines.is_empty() || fence_lines.len() == 2,
            "{}: {fence_lines:?}",
            path.display()
        );
        assert!(
            markdown.starts_with("**Terraform plan:** `+"),
            "{}",
            path.display()
        );
    }
}

#[test]
fn sensitive_and_unknown_values_are_masked_as_terraform_masks_them() {
    let summary = summarize(&read_plan("test_issue_522.json")).unwrap();
    let parameter = summary
        .resources
        .iter()
        .find(|resource| resource.address == "aws_ssm_parameter.lambda_sg_id")
        .unwrap();
    assert_eq!(parameter.action, Action::Create);
    let value = parameter
        .attributes
        .iter()
        .find(|attribute| attribute.path == "value")
        .unwrap();
    assert_eq!(value.after, Some(Shown::Sensitive));
    let arn = parameter
        .attributes
        .iter()
        .find(|attribute| attribute.path == "arn")
        .unwrap();
    assert_eq!(arn.after, Some(Shown::KnownAfterApply));
    let text = render_text(&summary);
    assert!(text.contains("    + value = (sensitive value)\n"), "{text}");
    assert!(text.contains("    + arn = (known after apply)\n"), "{text}");
    assert!(text.contains("- aws_cloudwatch_event_rule.Metricos_custom_alert_schedule_frequent[0]  # will be destroyed\n"), "{text}");
}

#[test]
fn updates_show_old_and_new_values() {
    let summary = summarize(&read_plan("actions_regular.json")).unwrap();
    let text = render_text(&summary);
    let updated: Vec<&str> = text.lines().filter(|line| line.starts_with("~ ")).collect();
    assert_eq!(updated.len(), summary.counts.update, "{text}");
    assert!(
        text.lines()
            .any(|line| line.trim_start().starts_with("~ ") && line.contains(" -> ")),
        "{text}"
    );
}

#[test]
fn replacements_are_told_apart_by_their_order() {
    let plan = serde_json::json!({"resource_changes": [
        {"address": "aws_db_instance.main", "change": {"actions": ["delete", "create"], "before": {"engine_version": "15"}, "after": {"engine_version": "16"}, "replace_paths": [["engine_version"]]}},
        {"address": "aws_lb.front", "change": {"actions": ["create", "delete"], "before": {}, "after": {}}},
    ]});
    let summary = summarize(&plan).unwrap();
    assert_eq!(
        summary.resources[0].action,
        Action::Replace(ReplaceOrder::DeleteThenCreate)
    );
    assert_eq!(
        summary.resources[1].action,
        Action::Replace(ReplaceOrder::CreateThenDelete)
    );
    assert_eq!(summary.counts.symbols(), "+0 ~0 -0 ±2");
    let text = render_text(&summary);
    assert!(text.contains("-/+ aws_db_instance.main"), "{text}");
    assert!(text.contains("+/- aws_lb.front"), "{text}");
    assert!(
        text.contains("~ engine_version = \"15\" -> \"16\"  # forces replacement"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 2 to add, 0 to change, 2 to destroy."),
        "{text}"
    );
}
