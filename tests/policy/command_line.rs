//! `sluice policy check` and `sluice policy test` from the command line: every finding with its
//! rule, file and line for a syntax error, each unit test reported, exit 1 on a deny or a failure.

use super::support::{printed, repository_root, sluice_command};
use super::*;
use std::path::Path;

/// `sluice ARGUMENTS` from the repository's root: its exit code and what it printed.
fn sluice(arguments: &[&str]) -> (i32, String) {
    let data = tempfile::tempdir().unwrap();
    let output = sluice_command(data.path())
        .args(arguments)
        .current_dir(repository_root())
        .output()
        .expect("sluice runs");
    (output.status.code().unwrap_or(-1), printed(&output))
}

fn write_plan(directory: &Path, plan: &Value) -> String {
    let path = directory.join("plan.json");
    std::fs::write(&path, plan.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn policy_check_prints_every_finding_with_its_rule_and_exits_1_on_a_deny() {
    let directory = tempfile::tempdir().unwrap();
    let passing = write_plan(directory.path(), &compliant_plan("production", "large"));
    let (code, text) = sluice(&[
        "policy",
        "check",
        "--terraform-plan",
        &passing,
        "--env",
        "production",
        "--time",
        THURSDAY,
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("0 denied, 0 warning(s), 0 error(s)") && text.contains("passed"),
        "{text}"
    );

    let (code, text) = sluice(&[
        "policy",
        "check",
        "--plan",
        &passing,
        "--env",
        "production",
        "--time",
        FRIDAY,
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("DENY  terraform.freeze.deny: production: no applies on Friday"),
        "{text}"
    );
    assert!(text.contains("FAILED"), "{text}");

    let (code, text) = sluice(&[
        "policy",
        "check",
        "--plan",
        &passing,
        "--env",
        "production",
        "--time",
        FRIDAY,
        "--event",
        "pull_request",
        "--json",
    ]);
    assert_eq!(code, 0, "a warning alone passes: {text}");
    let document: Value = serde_json::from_str(&text).expect("--json prints JSON");
    assert_eq!(document["passed"], json!(true));
    assert_eq!(document["warnings"], json!(1));
    assert_eq!(
        document["findings"][0]["rule"],
        json!("terraform.freeze.warn")
    );
    assert_eq!(document["findings"][0]["severity"], json!("warn"));
}

#[test]
fn policy_check_fails_with_file_and_line_on_a_syntax_error() {
    let directory = tempfile::tempdir().unwrap();
    let policies = directory.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("ok.rego"),
        "package ok\nimport rego.v1\ndeny contains \"never\" if false\n",
    )
    .unwrap();
    std::fs::write(policies.join("typo.rego"), "package typo\nimport rego.v1\n\ndeny contains msg if {\n  msg := sprintf(\"%s\", [input.terraform.x]\n}\n").unwrap();
    let plan = write_plan(directory.path(), &json!({"resource_changes": []}));
    let policies_argument = policies.display().to_string();
    let (code, text) = sluice(&[
        "policy",
        "check",
        "--plan",
        &plan,
        "--policies",
        &policies_argument,
    ]);
    assert_eq!(code, 1, "{text}");
    let expected_prefix = format!("ERROR {}:", policies.join("typo.rego").display());
    let error_line = text
        .lines()
        .find(|line| line.starts_with(&expected_prefix))
        .unwrap_or_else(|| panic!("no error naming typo.rego in {text}"));
    let line_number: u32 = error_line[expected_prefix.len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no line number in {error_line}"));
    assert!((5..=6).contains(&line_number), "{error_line}");
    assert!(error_line.contains("parse error"), "{error_line}");

    let (code, text) = sluice(&["policy", "check", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("terraform show -json"), "{text}");
}

#[test]
fn policy_test_reports_each_test_and_exits_1_on_a_failure() {
    let (code, text) = sluice(&["policy", "test", "policies"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("PASS  terraform.freeze_test.test_production_apply_on_friday_is_denied  (policies/terraform/freeze_test.rego:"), "{text}");
    assert!(text.contains("FAIL: 0  ERROR: 0"), "{text}");

    let directory = tempfile::tempdir().unwrap();
    std::fs::write(
        directory.path().join("rule.rego"),
        "package rule\nimport rego.v1\ndeny contains \"no\" if input.kubernetes.bad\n",
    )
    .unwrap();
    std::fs::write(
        directory.path().join("rule_test.rego"),
        "package rule_test\nimport rego.v1\nimport data.rule\n\ntest_bad_is_denied if {\n  count(rule.deny) == 1 with input.kubernetes as {\"bad\": true}\n}\n\ntest_wrong_expectation if {\n  count(rule.deny) == 1 with input.kubernetes as {\"bad\": false}\n}\n\ntodo_test_later if false\n",
    )
    .unwrap();
    let directory_argument = directory.path().display().to_string();
    let (code, text) = sluice(&["policy", "test", &directory_argument]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("PASS  rule_test.test_bad_is_denied"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  rule_test.test_wrong_expectation"),
        "{text}"
    );
    assert!(text.contains("SKIP  rule_test.todo_test_later"), "{text}");
    assert!(
        text.contains("PASS: 1/3  FAIL: 1  ERROR: 0  SKIP: 1"),
        "{text}"
    );
}
