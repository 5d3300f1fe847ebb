//! Which pipelines an event starts (and which report themselves skipped), job order, concurrency
//! groups, merge classification and the expression context.

use super::{merge, pull_request, push, tag};
use serde_json::{Value as Json, json};
use sluice::config::Loaded;
use sluice::config::environment::Environment;
use sluice::config::expr::{self, Context, JobStatusView};
use sluice::config::workflow::Workflow;
use sluice::model::{Event, EventKind};
use sluice::planner;
use std::collections::BTreeMap;

fn load(name: &str) -> Loaded<Workflow> {
    let path = format!(
        "{}/tests/fixtures/planner/workflows/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let value: Workflow =
        serde_saphyr::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"));
    Loaded {
        path: format!("workflows/{name}.yaml"),
        value,
    }
}

fn all_workflows() -> Vec<Loaded<Workflow>> {
    [
        "ci",
        "release",
        "platform",
        "docs",
        "labeler",
        "feature",
        "manual",
        "broken-group",
    ]
    .iter()
    .map(|name| load(name))
    .collect()
}

/// One line per planned run: `name: job, job` or `name (skipped: reason): job, job`.
fn summary(event: &Event) -> String {
    planner::plan(&all_workflows(), event)
        .iter()
        .map(|run| {
            let jobs: Vec<&str> = run.jobs.iter().map(|job| job.id.as_str()).collect();
            match &run.skipped_reason {
                Some(reason) if reason == planner::NO_MATCHING_PATHS => {
                    format!("{} (skipped: {reason}): {}", run.pipeline, jobs.join(", "))
                }
                Some(_) => format!("{} (skipped: invalid): {}", run.pipeline, jobs.join(", ")),
                None => format!("{}: {}", run.pipeline, jobs.join(", ")),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_plan(event: Event, expect: &str) {
    let expect = expect
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(summary(&event), expect, "event {event:#?}");
}

#[test]
fn pushes_start_pipelines_by_branch_tag_and_path() {
    // Unknown changed paths match every path filter.
    check_plan(
        push("main", None),
        "ci: build, test, lint
         platform: image, plan, deploy
         docs: check",
    );
    check_plan(
        push(
            "main",
            Some(&["platform/k8s/base/deployment.yaml", "README.md"]),
        ),
        "ci: build, test, lint
         platform: image, plan, deploy
         docs: check",
    );
    // Only ignored paths changed: matching ref, so the runs report themselves skipped.
    check_plan(
        push("main", Some(&["README.md", "docs/guide/setup.md"])),
        "ci: build, test, lint
         platform (skipped: no matching paths): image, plan, deploy
         docs (skipped: no matching paths): check",
    );
    check_plan(
        push("releases/2024/q3", Some(&["src/lib.rs"])),
        "ci: build, test, lint
         docs: check
         feature: preview",
    );
    check_plan(
        push("feature/login", Some(&["platform/dags/etl.py"])),
        "docs: check
         feature: preview",
    );
    // `!main/**` excludes branches under main, and the later `main/hotfix-*` includes again.
    check_plan(push("main/other", Some(&["src/x.rs"])), "docs: check");
    check_plan(
        push("main/hotfix-db", Some(&["docs/x.md"])),
        "docs (skipped: no matching paths): check
         feature: preview",
    );
    check_plan(
        push("broken", None),
        "docs: check\nfeature: preview\nbroken-group (skipped: invalid): only",
    );
}

#[test]
fn tag_pushes_match_tag_filters_and_ignore_path_filters() {
    check_plan(
        tag("v1.2.0", Some(&["README.md"])),
        "release: publish
         docs: check",
    );
    check_plan(tag("nightly", None), "docs: check");
}

#[test]
fn pull_requests_match_types_and_the_base_branch() {
    check_plan(
        pull_request(
            "opened",
            "main",
            "feature/x",
            Some(&["platform/infra/main.tf"]),
        ),
        "ci: build, test, lint
         platform: image, plan, deploy",
    );
    check_plan(
        pull_request("synchronize", "main", "feature/x", Some(&["src/lib.rs"])),
        "ci: build, test, lint
         platform (skipped: no matching paths): image, plan, deploy",
    );
    // The base branch decides, not the head branch.
    check_plan(
        pull_request("reopened", "develop", "main", Some(&["platform/a"])),
        "platform: image, plan, deploy",
    );
    check_plan(pull_request("closed", "main", "feature/x", None), "");
    check_plan(
        pull_request("labeled", "main", "feature/x", None),
        "labeler: label",
    );
}

#[test]
fn merges_answer_push_triggers() {
    check_plan(
        merge("main", Some(&["policies/terraform.rego"])),
        "ci: build, test, lint
         platform: image, plan, deploy
         docs: check",
    );
}

#[test]
fn a_deleted_branch_plans_nothing() {
    let deleted = Event {
        commit: "0000000000000000000000000000000000000000".into(),
        ..push("main", None)
    };
    assert_eq!(planner::plan(&all_workflows(), &deleted), Vec::new());
}

#[test]
fn pushes_to_a_deploy_branch_are_merges() {
    let environments: Vec<Environment> = [
        "name: dev",
        "name: staging\nafter: dev",
        "name: hotfix\nbranch: hotfix",
    ]
    .iter()
    .map(|text| serde_saphyr::from_str(text).unwrap())
    .collect();
    let cases: &[(Option<&str>, EventKind)] = &[
        (Some("main"), EventKind::Merge),
        (Some("hotfix"), EventKind::Merge),
        (Some("feature/x"), EventKind::Push),
        (Some("mainline"), EventKind::Push),
        (None, EventKind::Push),
    ];
    for (branch, expect) in cases {
        assert_eq!(
            planner::classify_push(&environments, *branch),
            *expect,
            "branch {branch:?}"
        );
    }
    assert_eq!(planner::classify_push(&[], Some("main")), EventKind::Push);
}

#[test]
fn planned_jobs_carry_names_env_timeouts_and_rendered_concurrency() {
    let runs = planner::plan(&[load("platform")], &merge("main", None));
    let run = &runs[0];
    assert_eq!(run.file, "workflows/platform.yaml");
    let concurrency = run.concurrency.as_ref().expect("run concurrency");
    assert_eq!(concurrency.group, "deploy-refs/heads/main");
    assert!(concurrency.cancel_in_progress);
    let image = &run.jobs[0];
    assert_eq!(image.name, "Trainer image");
    assert_eq!(image.timeout, Some(std::time::Duration::from_secs(600)));
    assert_eq!(image.steps.len(), 1);
    let plan_job = &run.jobs[1];
    assert_eq!(plan_job.name, "plan");
    assert_eq!(
        plan_job.env.get("REGISTRY").map(String::as_str),
        Some("registry.staging")
    );
    let deploy = &run.jobs[2];
    assert_eq!(deploy.needs, vec!["image".to_string(), "plan".to_string()]);
    assert_eq!(deploy.condition.as_deref(), Some("event == 'merge'"));
    assert_eq!(
        deploy.env.get("REGISTRY").map(String::as_str),
        Some("registry.local")
    );
    let deploy_group = deploy.concurrency.as_ref().expect("job concurrency");
    assert_eq!(
        (deploy_group.group.as_str(), deploy_group.cancel_in_progress),
        ("deploy-dev", false)
    );

    let pull_request_runs = planner::plan(
        &[load("platform")],
        &pull_request("opened", "main", "feature/x", None),
    );
    let group = &pull_request_runs[0].concurrency.as_ref().unwrap().group;
    assert_eq!(group, "deploy-refs/pull/7/merge");
}

#[test]
fn a_concurrency_group_that_cannot_render_skips_the_run_with_the_reason() {
    let runs = planner::plan(&[load("broken-group")], &push("broken", None));
    let reason = runs[0].skipped_reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("unknown property `env.MISSING`"),
        "{reason}"
    );
}

/// A pipeline started by every push whose jobs are `(id, needs)` in file order.
fn graph_workflow(jobs: &[(&str, &[&str])]) -> Loaded<Workflow> {
    let mut text = String::from("name: graph\non: {push: {}}\njobs:\n");
    for (id, needs) in jobs {
        text.push_str(&format!(
            "  {id}:\n    needs: [{}]\n    steps: [{{run: 'true'}}]\n",
            needs.join(", ")
        ));
    }
    let value: Workflow =
        serde_saphyr::from_str(&text).unwrap_or_else(|error| panic!("{text}: {error}"));
    Loaded {
        path: "workflows/graph.yaml".into(),
        value,
    }
}

fn check_order(jobs: &[(&str, &[&str])], expect_order: &str, expect_problem: Option<&str>) {
    let runs = planner::plan(&[graph_workflow(jobs)], &push("main", None));
    let order: Vec<&str> = runs[0].jobs.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(order.join(", "), expect_order, "jobs {jobs:?}");
    match (runs[0].skipped_reason.as_deref(), expect_problem) {
        (None, None) => {}
        (Some(reason), Some(fragment)) => assert!(reason.contains(fragment), "{reason}"),
        (reason, _) => panic!("jobs {jobs:?}: unexpected skipped reason {reason:?}"),
    }
}

#[test]
fn jobs_are_ordered_by_needs_with_file_order_as_tie_break() {
    check_order(&[("c", &[]), ("b", &[]), ("a", &[])], "c, b, a", None);
    check_order(
        &[
            ("deploy", &["test", "build"]),
            ("test", &["build"]),
            ("build", &[]),
            ("lint", &[]),
        ],
        "build, test, deploy, lint",
        None,
    );
    check_order(
        &[
            ("package", &["compile"]),
            ("compile", &["fetch"]),
            ("fetch", &[]),
        ],
        "fetch, compile, package",
        None,
    );
    check_order(
        &[("a", &["b"]), ("b", &["a"]), ("c", &[])],
        "c, a, b",
        Some("jobs `a`, `b` need each other in a cycle"),
    );
    check_order(
        &[("build", &[]), ("test", &["biuld"])],
        "build, test",
        Some("job `test` needs unknown job `biuld`; did you mean `build`?"),
    );
}

#[test]
fn the_expression_context_describes_the_event() {
    let env = BTreeMap::from([("REGION".to_string(), "eu".to_string())]);
    let cases: &[(Event, &str, Json)] = &[
        (push("main", None), "event", json!("push")),
        (merge("main", None), "event", json!("merge")),
        (merge("main", None), "github.event_name", json!("push")),
        (push("main", None), "git.short_sha", json!("4f9d2c8")),
        (push("main", None), "git.branch", json!("main")),
        (push("main", None), "git.tag", json!(null)),
        (tag("v1.0.0", None), "git.tag", json!("v1.0.0")),
        (tag("v1.0.0", None), "github.ref_name", json!("v1.0.0")),
        (
            push("feature/a", None),
            "github.ref_name",
            json!("feature/a"),
        ),
        (push("main", None), "github.actor", json!("mona")),
        (push("main", None), "github.repository_owner", json!("acme")),
        (push("main", None), "repository", json!("acme/ml-platform")),
        (push("main", None), "pipeline", json!("platform")),
        (push("main", None), "env.REGION", json!("eu")),
        (push("main", None), "pull_request.number", json!(null)),
        (
            pull_request("opened", "main", "feature/x", None),
            "pull_request.number",
            json!(7),
        ),
        (
            pull_request("opened", "main", "feature/x", None),
            "github.base_ref",
            json!("main"),
        ),
        (
            pull_request("opened", "main", "feature/x", None),
            "github.head_ref",
            json!("feature/x"),
        ),
        (
            pull_request("opened", "main", "feature/x", None),
            "github.event_name",
            json!("pull_request"),
        ),
        (
            pull_request("opened", "main", "feature/x", None),
            "git.ref",
            json!("refs/heads/feature/x"),
        ),
    ];
    for (event, expression, expect) in cases {
        let context = Context {
            values: planner::expression_context(event, "platform", &env),
            job_status: JobStatusView::default(),
        };
        assert_eq!(
            expr::evaluate(expression, &context).unwrap(),
            *expect,
            "`{expression}` for {}",
            event.git_ref
        );
    }
}
