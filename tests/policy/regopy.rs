//! The default policies against `regopy`, an independent Rego engine: the same messages from
//! every rule over the 121 real plans in `tests/fixtures/terraform-plans` and a few crafted ones.

use super::support::repository_root;
use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Evaluates the given rules over every plan with regopy and prints one JSON line per plan:
/// `{"plan": name, "results": {rule: [message, ...]}}`. Messages travel base64-encoded through
/// the query because regopy's own output does not escape quotes inside strings.
const REGOPY_SCRIPT: &str = r#"
import base64, json, sys
from regopy import Interpreter
job = json.load(open(sys.argv[1]))
interpreter = Interpreter()
for module in job["modules"]:
    interpreter.add_module(module["path"], module["text"])
interpreter.add_data_json(json.dumps(job["data"]))
parts = []
for rule in job["rules"]:
    reference = "data." + rule
    parts.append(json.dumps(rule) + ": array.concat("
        + "[base64.encode(m) | some m in " + reference + "; is_string(m)], "
        + "[base64.encode(m.msg) | some m in " + reference + "; is_object(m); is_string(m.msg)])")
query = "x := {" + ", ".join(parts) + "}"
for plan_path in job["plans"]:
    with open(plan_path) as plan_file:
        interpreter.set_input({"terraform": json.load(plan_file)})
    output = interpreter.query(query)
    text = str(output)
    if text == "undefined" or not output.ok():
        print(json.dumps({"plan": plan_path, "error": text}), flush=True)
        continue
    encoded = json.loads(text)["bindings"]["x"]
    results = {rule: sorted(base64.b64decode(m).decode("utf-8") for m in messages)
               for rule, messages in encoded.items()}
    print(json.dumps({"plan": plan_path, "results": results}), flush=True)
"#;

/// The Python with regopy: `SLUICE_REGOPY_PYTHON`, else `.venv-regopy/bin/python` as
/// `scripts/setup-regopy.sh` makes it. Under `scripts/test.sh` (`SLUICE_REQUIRE_REGOPY=1`) a
/// missing one fails the test; elsewhere the test says how to get it and returns.
fn regopy_python() -> Option<PathBuf> {
    let candidate = std::env::var_os("SLUICE_REGOPY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository_root().join(".venv-regopy/bin/python"));
    let works = Command::new(&candidate)
        .args(["-c", "import regopy"])
        .output()
        .is_ok_and(|output| output.status.success());
    if works {
        return Some(candidate);
    }
    let message = format!(
        "regopy is not importable by {}; run scripts/setup-regopy.sh (or set SLUICE_REGOPY_PYTHON)",
        candidate.display()
    );
    if std::env::var("SLUICE_REQUIRE_REGOPY").is_ok_and(|value| value == "1") {
        panic!("{message}");
    }
    eprintln!("skipping the differential test: {message}");
    None
}

/// What one pass of the differential found.
#[derive(Default)]
struct Comparison {
    disagreements: Vec<String>,
    total_findings: usize,
    rules_that_fired: std::collections::BTreeSet<String>,
}

/// Evaluates every plan in one context with sluice and with regopy and compares the messages
/// of every rule.
fn compare_with_regopy(
    python: &Path,
    sources: &PolicySources,
    policy_set: &PolicySet,
    plan_paths: &[PathBuf],
    context: &PolicyContext,
    comparison: &mut Comparison,
) {
    let mut data = sources.data.clone();
    assert!(sluice::policy::merge_data(&mut data, context.to_data(), "context").is_empty());
    let rules: Vec<String> = policy_set.rules().iter().map(|rule| rule.path()).collect();
    let job = json!({
        "modules": sources.modules.iter().map(|file| json!({"path": file.path, "text": file.text})).collect::<Vec<_>>(),
        "data": data,
        "rules": rules,
        "plans": plan_paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>(),
    });
    let work = tempfile::tempdir().unwrap();
    let job_path = work.path().join("job.json");
    let script_path = work.path().join("regopy_eval.py");
    std::fs::write(&job_path, job.to_string()).unwrap();
    std::fs::write(&script_path, REGOPY_SCRIPT).unwrap();
    let output = Command::new(python)
        .arg(&script_path)
        .arg(&job_path)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "regopy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let regopy_lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(regopy_lines.len(), plan_paths.len());
    let context_name = format!(
        "{} {} {}",
        context.environment.as_deref().unwrap_or("-"),
        context.event.as_deref().unwrap_or("-"),
        context.time
    );
    for (plan_path, regopy_line) in plan_paths.iter().zip(&regopy_lines) {
        let plan: Value =
            serde_json::from_str(&std::fs::read_to_string(plan_path).unwrap()).unwrap();
        let evaluation = policy_set.evaluate(&terraform_input(&plan), context);
        let name = plan_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !evaluation.errors.is_empty() || regopy_line.get("error").is_some() {
            comparison.disagreements.push(format!(
                "{name} ({context_name}): errors: sluice {:?}, regopy {}",
                evaluation.errors, regopy_line["error"]
            ));
            continue;
        }
        for rule in &rules {
            let mut ours: Vec<String> = evaluation
                .findings
                .iter()
                .filter(|finding| &finding.rule == rule)
                .map(|finding| finding.message.clone())
                .collect();
            ours.sort();
            let theirs: Vec<String> =
                serde_json::from_value(regopy_line["results"][rule].clone()).unwrap_or_default();
            if ours != theirs {
                comparison.disagreements.push(format!(
                    "{name} ({context_name}) {rule}:\n  sluice: {ours:?}\n  regopy: {theirs:?}"
                ));
            }
            if !ours.is_empty() {
                comparison.rules_that_fired.insert(rule.clone());
            }
            comparison.total_findings += ours.len();
        }
    }
}

/// Plans that make the rules no real plan triggers speak: a destroyed stateful resource
/// (`terraform.stateful`), a GPU pool kept warm (`terraform.instance_types.warn`), and a
/// compliant production plan, written as files beside nothing else.
fn crafted_plans(directory: &Path) -> Vec<PathBuf> {
    let dropped_database = json!({"address": "module.mlflow.terraform_data.database[0]", "mode": "managed", "type": "terraform_data", "name": "database",
        "change": {"actions": ["delete"], "before": {"input": {}}, "after": null}});
    let replaced_bucket = json!({"address": "aws_s3_bucket.artifacts", "mode": "managed", "type": "aws_s3_bucket", "name": "artifacts",
        "change": {"actions": ["delete", "create"], "before": {"bucket": "artifacts"}, "after": {"bucket": "artifacts", "tags": tags("production")}}});
    let warm_gpu_pool = resource(
        "module.cluster.terraform_data.node_pool[\"gpu\"]",
        &["create"],
        json!({"instance_type": "g5.xlarge", "budget": "large", "min_size": 2, "gpu": true, "tags": tags("production")}),
    );
    let plans = [
        (
            "crafted_stateful_destroy.json",
            json!({"resource_changes": [dropped_database, replaced_bucket]}),
        ),
        (
            "crafted_warm_gpu_pool.json",
            with_extra(compliant_plan("production", "large"), warm_gpu_pool),
        ),
        (
            "crafted_compliant.json",
            compliant_plan("production", "large"),
        ),
    ];
    plans
        .into_iter()
        .map(|(name, plan)| {
            let path = directory.join(name);
            std::fs::write(&path, plan.to_string()).unwrap();
            path
        })
        .collect()
}

#[test]
fn the_default_policies_agree_with_regopy_on_every_real_plan() {
    let Some(python) = regopy_python() else {
        return;
    };
    let sources = load_sources(&repository_root().join("policies")).unwrap();
    let policy_set = PolicySet::compile(&sources).unwrap();
    let plans_directory = repository_root().join("tests/fixtures/terraform-plans");
    let mut plan_paths: Vec<PathBuf> = std::fs::read_dir(&plans_directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    plan_paths.sort();
    assert_eq!(plan_paths.len(), 121);
    let crafted_directory = tempfile::tempdir().unwrap();
    plan_paths.extend(crafted_plans(crafted_directory.path()));
    let mut comparison = Comparison::default();
    // Production at a Friday merge: the freeze and the production-only denials take part.
    // Dev on a Thursday pull request: the small budget tier and the warnings take part.
    // Production on a Friday pull request, approved: the freeze and stateful warnings.
    let mut approved_pull_request = context("production", "pull_request", FRIDAY);
    approved_pull_request.approvals = vec!["bob".to_owned()];
    for context in [
        context("production", "merge", FRIDAY),
        context("dev", "pull_request", THURSDAY),
        approved_pull_request,
    ] {
        compare_with_regopy(
            &python,
            &sources,
            &policy_set,
            &plan_paths,
            &context,
            &mut comparison,
        );
    }
    assert!(
        comparison.disagreements.is_empty(),
        "{} disagreement(s):\n{}",
        comparison.disagreements.len(),
        comparison.disagreements.join("\n")
    );
    // The comparison means something only if the plans make the policies speak.
    assert!(
        comparison.total_findings > 1000,
        "{} findings",
        comparison.total_findings
    );
    // Every rule of the default Terraform set is compared, and every one of them fired.
    let terraform_sources = load_sources(&repository_root().join("policies/terraform")).unwrap();
    let terraform_rules: Vec<String> = PolicySet::compile(&terraform_sources)
        .unwrap()
        .rules()
        .iter()
        .map(|rule| rule.path())
        .collect();
    assert_eq!(terraform_rules.len(), 12, "{terraform_rules:?}");
    for rule in &terraform_rules {
        assert!(
            policy_set
                .rules()
                .iter()
                .any(|compared| &compared.path() == rule),
            "{rule} is not compared"
        );
        assert!(
            comparison.rules_that_fired.contains(rule),
            "{rule} never fired: {:?}",
            comparison.rules_that_fired
        );
    }
}
