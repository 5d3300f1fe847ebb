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
use support::repository_root;

#[path = "policy/command_line.rs"]
mod command_line;
#[path = "policy/example_plans.rs"]
mod example_plans;
#[path = "policy/regopy.rs"]
mod regopy;
mod support;

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
