//! Policies as a user meets them: the default set's findings on crafted plans (and silence on a
//! compliant one), `sluice policy check` and `sluice policy test` from the command line, errors
//! with file:line, conftest-style policies, and a differential run of the default set over the
//! 121 real plans against `regopy`, an independent Rego engine. Every plan is checked as sluice
//! checks one: as the policy input `{"terraform": plan}`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sluice::policy::{
    FixedClock, PolicyContext, PolicyErrorKind, PolicySet, PolicySources, Severity, load_sources,
    run_tests, terraform_input,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn default_policies() -> PolicySet {
    let sources = load_sources(&repository_root().join("policies")).expect("the policies load");
    PolicySet::compile(&sources).expect("the policies compile")
}

fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time)
        .unwrap()
        .with_timezone(&Utc)
}

/// Thursday 2025-01-02 10:00 UTC: outside every freeze.
const THURSDAY: &str = "2025-01-02T10:00:00Z";
const FRIDAY: &str = "2025-01-03T16:00:00Z";

fn context(environment: &str, event: &str, time: &str) -> PolicyContext {
    let mut context = PolicyContext::at(&FixedClock(at(time)));
    context.environment = Some(environment.to_owned());
    context.event = Some(event.to_owned());
    context.author = Some("alice".to_owned());
    context.commit = Some("3f9c2ab".to_owned());
    context
}

fn tags(environment: &str) -> Value {
    json!({"owner": "ml-platform", "team": "ml-platform", "cost_center": "cc-4021",
           "environment": environment, "managed_by": "sluice"})
}

fn resource(address: &str, actions: &[&str], input: Value) -> Value {
    let name = address
        .rsplit('.')
        .next()
        .unwrap()
        .split('[')
        .next()
        .unwrap();
    json!({"address": address, "mode": "managed", "type": "terraform_data", "name": name,
           "change": {"actions": actions, "before": null, "after": {"input": input}}})
}

/// A plan shaped like the example platform's: a cluster, a node pool, MLflow's database and bucket.
fn compliant_plan(environment: &str, budget: &str) -> Value {
    json!({"format_version": "1.2", "resource_changes": [
        resource("module.cluster.terraform_data.control_plane", &["create"],
            json!({"name": "ml", "budget": budget, "endpoint_public": false, "tags": tags(environment)})),
        resource("module.cluster.terraform_data.node_pool[\"general\"]", &["create"],
            json!({"instance_type": "t3.large", "budget": budget, "min_size": 1, "gpu": false, "tags": tags(environment)})),
        resource("module.mlflow.terraform_data.database[0]", &["create"],
            json!({"instance_type": "db.t3.micro", "publicly_exposed": false, "tags": tags(environment)})),
        resource("module.mlflow.terraform_data.artifact_bucket[0]", &["update"],
            json!({"name": "artifacts", "publicly_exposed": false, "tags": tags(environment)})),
    ]})
}

fn with_extra(mut plan: Value, extra: Value) -> Value {
    plan["resource_changes"].as_array_mut().unwrap().push(extra);
    plan
}

/// Checks the denials and warnings of the default set: `expect` lists (severity, rule,
/// fragment) and must account for every finding.
fn check(plan: Value, context: PolicyContext, expect: &[(Severity, &str, &str)]) {
    let evaluation = default_policies().evaluate(&terraform_input(&plan), &context);
    assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
    let shown: Vec<String> = evaluation
        .findings
        .iter()
        .map(|finding| {
            format!(
                "{:?} {}: {}",
                finding.severity, finding.rule, finding.message
            )
        })
        .collect();
    assert_eq!(evaluation.findings.len(), expect.len(), "{shown:#?}");
    for (severity, rule, fragment) in expect {
        assert!(
            evaluation
                .findings
                .iter()
                .any(|finding| finding.severity == *severity
                    && finding.rule == *rule
                    && finding.message.contains(fragment)),
            "no {severity:?} from {rule} containing {fragment:?} in {shown:#?}"
        );
    }
    let denied = expect
        .iter()
        .any(|(severity, _, _)| *severity == Severity::Deny);
    assert_eq!(evaluation.passed(), !denied);
}

#[test]
fn compliant_plans_pass_in_every_environment() {
    check(
        compliant_plan("dev", "small"),
        context("dev", "pull_request", THURSDAY),
        &[],
    );
    check(
        compliant_plan("production", "large"),
        context("production", "merge", THURSDAY),
        &[],
    );
}

#[test]
fn the_default_policies_deny_what_the_platform_forbids() {
    use Severity::{Deny, Warn};
    let thursday_production = || context("production", "merge", THURSDAY);
    check(
        with_extra(
            compliant_plan("dev", "small"),
            resource(
                "module.cluster.terraform_data.node_pool[\"training\"]",
                &["create"],
                json!({"instance_type": "m5.2xlarge", "budget": "small", "min_size": 0, "gpu": false, "tags": tags("dev")}),
            ),
        ),
        context("dev", "pull_request", THURSDAY),
        &[(
            Deny,
            "terraform.instance_types.deny",
            "instance type `m5.2xlarge` is not allowed for budget `small`",
        )],
    );
    let mut untagged = tags("production");
    untagged.as_object_mut().unwrap().remove("owner");
    check(
        with_extra(
            compliant_plan("production", "large"),
            resource(
                "module.airflow.terraform_data.scheduler[0]",
                &["create"],
                json!({"tags": untagged}),
            ),
        ),
        thursday_production(),
        &[(
            Deny,
            "terraform.tags.deny",
            "module.airflow.terraform_data.scheduler[0]: required tag `owner` is missing",
        )],
    );
    let open_group = json!({"address": "aws_security_group.web", "mode": "managed", "type": "aws_security_group", "name": "web",
        "change": {"actions": ["create"], "after": {"ingress": [{"cidr_blocks": ["0.0.0.0/0"], "from_port": 22, "to_port": 22}], "tags": tags("production")}}});
    check(
        with_extra(compliant_plan("production", "large"), open_group.clone()),
        thursday_production(),
        &[(
            Deny,
            "terraform.ingress.deny",
            "aws_security_group.web: ingress open to the internet in production: 0.0.0.0/0 on port 22",
        )],
    );
    check(
        with_extra(compliant_plan("staging", "medium"), open_group),
        context("staging", "merge", THURSDAY),
        &[(Warn, "terraform.ingress.warn", "production refuses this")],
    );
    let public_bucket = json!({"address": "aws_s3_bucket.reports", "mode": "managed", "type": "aws_s3_bucket", "name": "reports",
        "change": {"actions": ["create"], "after": {"bucket": "reports", "acl": "public-read", "tags": tags("production")}}});
    check(
        with_extra(compliant_plan("production", "large"), public_bucket),
        thursday_production(),
        &[(
            Deny,
            "terraform.public_buckets.deny",
            "aws_s3_bucket.reports: public storage in production: ACL `public-read`",
        )],
    );
    let dropped_database = json!({"address": "module.mlflow.terraform_data.database[0]", "mode": "managed", "type": "terraform_data", "name": "database",
        "change": {"actions": ["delete"], "before": {"input": {}}, "after": null}});
    let plan = json!({"resource_changes": [dropped_database]});
    check(
        plan.clone(),
        thursday_production(),
        &[(
            Deny,
            "terraform.stateful.deny",
            "the plan destroys a stateful `terraform_data`",
        )],
    );
    let mut approved = thursday_production();
    approved.approvals = vec!["bob".to_owned()];
    check(
        plan.clone(),
        approved,
        &[(Warn, "terraform.stateful.warn", "approved by bob")],
    );
    let mut self_approved = thursday_production();
    self_approved.approvals = vec!["alice".to_owned()];
    check(
        plan,
        self_approved,
        &[(
            Deny,
            "terraform.stateful.deny",
            "someone other than the author",
        )],
    );
}

#[test]
fn production_applies_are_refused_on_fridays_by_the_injected_clock() {
    use Severity::{Deny, Warn};
    let plan = compliant_plan("production", "large");
    check(
        plan.clone(),
        context("production", "merge", FRIDAY),
        &[(
            Deny,
            "terraform.freeze.deny",
            "production: no applies on Friday (2025-01-03T16:00:00Z, UTC)",
        )],
    );
    check(plan.clone(), context("production", "merge", THURSDAY), &[]);
    check(plan.clone(), context("staging", "merge", FRIDAY), &[]);
    check(
        plan,
        context("production", "pull_request", FRIDAY),
        &[(
            Warn,
            "terraform.freeze.warn",
            "merging now would apply during the freeze",
        )],
    );
    check(
        json!({"resource_changes": []}),
        context("production", "merge", FRIDAY),
        &[],
    );
}

#[test]
fn the_default_policies_pass_their_unit_tests() {
    let sources = load_sources(&repository_root().join("policies")).unwrap();
    let report = run_tests(&sources).unwrap();
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|result| !matches!(result.outcome, sluice::policy::TestOutcome::Pass))
        .map(|result| format!("{} {:?}", result.path(), result.outcome))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    for package in [
        "terraform.tags_test",
        "terraform.instance_types_test",
        "terraform.ingress_test",
        "terraform.public_buckets_test",
        "terraform.stateful_test",
        "terraform.freeze_test",
        "kubernetes.images_test",
        "airflow.dags_test",
        "airflow.secrets_test",
        "mlflow.models_test",
    ] {
        assert!(
            report
                .results
                .iter()
                .filter(|result| result.package == package)
                .count()
                >= 4,
            "{package} has its tests"
        );
    }
}

fn sources(modules: &[(&str, &str)], tests: &[(&str, &str)]) -> PolicySources {
    PolicySources::from_memory(modules, tests, json!({}))
}

#[test]
fn conftest_style_rules_of_any_package_are_found() {
    let policy_set = PolicySet::compile(&sources(
        &[
            ("v0.rego", "package main\n\ndeny[msg] {\n  input.kind == \"Pod\"\n  msg := \"pods are not allowed\"\n}\n"),
            ("objects.rego", "package checks.objects\nimport rego.v1\nviolation contains {\"msg\": \"bad kind\", \"kind\": input.kind} if input.kind == \"Pod\"\nwarn_naming contains \"name it\" if not input.name\nallow if true\n"),
        ],
        &[],
    ))
    .unwrap();
    let rule_paths: Vec<String> = policy_set.rules().iter().map(|rule| rule.path()).collect();
    assert_eq!(
        rule_paths,
        [
            "checks.objects.violation",
            "checks.objects.warn_naming",
            "main.deny"
        ]
    );
    let evaluation =
        policy_set.evaluate(&json!({"kind": "Pod"}), &context("dev", "manual", THURSDAY));
    assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
    let messages: Vec<(&str, &str)> = evaluation
        .findings
        .iter()
        .map(|finding| (finding.rule.as_str(), finding.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        [
            ("checks.objects.violation", "bad kind"),
            ("main.deny", "pods are not allowed"),
            ("checks.objects.warn_naming", "name it"),
        ]
    );
    assert_eq!(evaluation.findings[0].metadata["kind"], json!("Pod"));
    assert!(!evaluation.passed());
}

#[test]
fn data_files_and_the_context_reach_the_rules() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(
        directory.path().join("limits.yaml"),
        "limits:\n  max_resources: 1\n",
    )
    .unwrap();
    std::fs::write(
        directory.path().join("size.rego"),
        "package size\nimport rego.v1\ndeny contains sprintf(\"%d resources in %s, at most %d\", [count(input.terraform.resource_changes), data.sluice.context.environment, data.limits.max_resources]) if count(input.terraform.resource_changes) > data.limits.max_resources\n",
    )
    .unwrap();
    let policy_set = PolicySet::compile(&load_sources(directory.path()).unwrap()).unwrap();
    let evaluation = policy_set.evaluate(
        &json!({"terraform": {"resource_changes": [1, 2]}}),
        &context("staging", "merge", THURSDAY),
    );
    assert_eq!(
        evaluation.findings[0].message,
        "2 resources in staging, at most 1"
    );
}

#[test]
fn errors_name_file_and_line_and_fail_the_check() {
    let errors = PolicySet::compile(&sources(
        &[
            (
                "policies/good.rego",
                "package good\nimport rego.v1\ndeny contains \"x\" if false\n",
            ),
            (
                "policies/broken.rego",
                "package broken\nimport rego.v1\n\ndeny contains msg if {\n  msg := \"unclosed\"\n",
            ),
        ],
        &[],
    ))
    .err()
    .expect("a syntax error fails compilation");
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].kind, PolicyErrorKind::Parse);
    assert_eq!(errors.0[0].file, "policies/broken.rego");
    assert!(errors.0[0].line.is_some(), "{errors}");

    let runtime = PolicySet::compile(&sources(
        &[("policies/conflict.rego", "package conflict\nimport rego.v1\n\nlevel := input.a\nlevel := input.b\n\ndeny contains sprintf(\"level %v\", [level]) if true\n")],
        &[],
    ))
    .unwrap();
    let evaluation = runtime.evaluate(
        &json!({"a": 1, "b": 2}),
        &context("dev", "manual", THURSDAY),
    );
    assert!(!evaluation.passed(), "an error never passes");
    assert_eq!(evaluation.errors.len(), 1, "{:?}", evaluation.errors);
    let error = &evaluation.errors[0];
    assert_eq!(error.kind, PolicyErrorKind::Runtime);
    assert!(
        error.to_string().starts_with("policies/conflict.rego:"),
        "{error}"
    );
    assert_eq!(error.rule.as_deref(), Some("conflict.deny"));

    let builtin = PolicySet::compile(&sources(
        &[(
            "policies/numbers.rego",
            "package numbers\nimport rego.v1\n\ndeny contains sprintf(\"%v\", [to_number(input.size)]) if true\n",
        )],
        &[],
    ))
    .unwrap();
    let evaluation = builtin.evaluate(
        &json!({"size": "large"}),
        &context("dev", "manual", THURSDAY),
    );
    assert!(!evaluation.passed(), "a failing built-in never passes");
    assert!(
        evaluation.errors[0]
            .location()
            .starts_with("policies/numbers.rego:4:"),
        "{:?}",
        evaluation.errors
    );

    let bad_result = PolicySet::compile(&sources(
        &[(
            "policies/numbers.rego",
            "package numbers\nimport rego.v1\n\ndeny contains 42 if true\n",
        )],
        &[],
    ))
    .unwrap();
    let evaluation = bad_result.evaluate(&json!({}), &context("dev", "manual", THURSDAY));
    assert_eq!(evaluation.errors[0].kind, PolicyErrorKind::Result);
    assert_eq!(evaluation.errors[0].location(), "policies/numbers.rego:4");
}

// ----- the command line -----

fn sluice(arguments: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(arguments)
        .current_dir(repository_root())
        .output()
        .expect("sluice runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
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
        "--terraform-plan",
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

// ----- the differential test against regopy -----

/// Evaluates the given rules over every plan, as the policy input `{"terraform": plan}`, with
/// regopy and prints one JSON line per plan: `{"plan": name, "results": {rule: [message, ...]}}`. Messages travel base64-encoded through
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

// ----- the example platform's own plans, made by real terraform -----

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

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
