//! The example platform's own plans, made by real `terraform` in a copy of `platform/infra`: they
//! pass on a weekday, and production's is frozen on a Friday.

use super::support::{copy_tree, repository_root};
use super::*;
use std::path::Path;
use std::process::Command;

/// `terraform show -json` of a fresh plan of one environment of the example platform, made in a
/// copy so that nothing is written into the checkout; `None` when terraform is not installed.
fn example_plan(infra_copy: &Path, environment: &str) -> Option<Value> {
    let directory = infra_copy.join("envs").join(environment);
    let data_directory = directory.join(".terraform-data");
    let terraform = |arguments: &[&str]| {
        Command::new("terraform")
            .arg(format!("-chdir={}", directory.display()))
            .args(arguments)
            .env("TF_DATA_DIR", &data_directory)
            .env("TF_IN_AUTOMATION", "1")
            .output()
    };
    let init = match terraform(&["init", "-input=false", "-no-color"]) {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => panic!("terraform cannot start: {error}"),
    };
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let plan = terraform(&["plan", "-input=false", "-no-color", "-out=plan.tfplan"]).unwrap();
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let show = terraform(&["show", "-json", "plan.tfplan"]).unwrap();
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    Some(serde_json::from_slice(&show.stdout).unwrap())
}

#[test]
fn the_example_platforms_plans_pass_on_a_weekday_and_production_freezes_on_friday() {
    let work = tempfile::tempdir().unwrap();
    copy_tree(&repository_root().join("platform/infra"), work.path());
    let policy_set = default_policies();
    for environment in ["dev", "staging", "production"] {
        let Some(plan) = example_plan(work.path(), environment) else {
            eprintln!(
                "skipping: terraform is not installed; install it to check the example's plans"
            );
            return;
        };
        let summary = sluice::terraform::summary::summarize(&plan).unwrap();
        assert!(
            summary.counts.create > 5,
            "{environment}: {:?}",
            summary.counts
        );
        let input = terraform_input(&plan);
        let weekday = policy_set.evaluate(&input, &context(environment, "merge", THURSDAY));
        assert!(
            weekday.errors.is_empty() && weekday.findings.is_empty(),
            "{environment}: {:?} {:?}",
            weekday.findings,
            weekday.errors
        );
        let friday = policy_set.evaluate(&input, &context(environment, "merge", FRIDAY));
        let denied_rules: Vec<&str> = friday
            .denials()
            .map(|finding| finding.rule.as_str())
            .collect();
        if environment == "production" {
            assert_eq!(denied_rules, ["terraform.freeze.deny"]);
        } else {
            assert!(denied_rules.is_empty(), "{environment}: {denied_rules:?}");
        }
    }
}
