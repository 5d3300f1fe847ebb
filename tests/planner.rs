//! The planner as a user meets it: GitHub's filter patterns, expressions, which pipelines an event
//! starts (and which report "skipped"), the order of jobs, and whether a job runs after its needs.

use serde_json::{Value as Json, json};
use sluice::config::Loaded;
use sluice::config::environment::Environment;
use sluice::config::expr::{self, Context, JobStatusView};
use sluice::config::glob::{self, Filter};
use sluice::config::workflow::Workflow;
use sluice::model::{Event, EventKind, Status};
use sluice::planner::{self, JobDecision, PlannedJob};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------------
// Filter patterns: every row of GitHub's "filter pattern cheat sheet".

fn check_glob(patterns: &[&str], value: &str, expect: bool) {
    let owned: Vec<String> = patterns.iter().map(|pattern| pattern.to_string()).collect();
    let filter = Filter::new(&owned).expect("patterns compile");
    assert_eq!(
        filter.matches(value),
        expect,
        "patterns {patterns:?} against `{value}`"
    );
}

#[test]
fn branch_and_tag_patterns_from_the_cheat_sheet() {
    let cases: &[(&str, &str, bool)] = &[
        ("feature/*", "feature/my-branch", true),
        ("feature/*", "feature/your-branch", true),
        ("feature/*", "feature/beta-a/my-branch", false),
        ("feature/**", "feature/beta-a/my-branch", true),
        ("feature/**", "feature/your-branch", true),
        ("feature/**", "feature/mona/the/octocat", true),
        ("main", "main", true),
        ("main", "main2", false),
        (
            "releases/mona-the-octocat",
            "releases/mona-the-octocat",
            true,
        ),
        ("*", "main", true),
        ("*", "releases", true),
        ("*", "releases/v1", false),
        ("**", "all/the/branches", true),
        ("**", "every/tag", true),
        ("*feature", "mona-feature", true),
        ("*feature", "feature", true),
        ("*feature", "ver-10-feature", true),
        ("*feature", "feature-x", false),
        ("v2*", "v2", true),
        ("v2*", "v2.0", true),
        ("v2*", "v2.9", true),
        ("v2*", "v3.0", false),
        ("v[12].[0-9]+.[0-9]+", "v1.10.1", true),
        ("v[12].[0-9]+.[0-9]+", "v2.0.0", true),
        ("v[12].[0-9]+.[0-9]+", "v3.0.0", false),
        ("v[12].[0-9]+.[0-9]+", "v1..1", false),
        ("[CB]at", "Cat", true),
        ("[CB]at", "Bat", true),
        ("[CB]at", "cat", false),
        ("[1-2]00", "100", true),
        ("[1-2]00", "200", true),
        ("[1-2]00", "300", false),
        ("Octo*", "Octocat", true),
    ];
    for (pattern, value, expect) in cases {
        check_glob(&[pattern], value, *expect);
    }
}

#[test]
fn path_patterns_from_the_cheat_sheet() {
    let cases: &[(&str, &str, bool)] = &[
        ("*", "README.md", true),
        ("*", "server.rb", true),
        ("*", "docs/README.md", false),
        ("*.jsx?", "page.js", true),
        ("*.jsx?", "page.jsx", true),
        ("**", "all/the/files.md", true),
        ("*.js", "app.js", true),
        ("*.js", "index.js", true),
        ("*.js", "js/index.js", false),
        ("**.js", "index.js", true),
        ("**.js", "js/index.js", true),
        ("**.js", "src/js/app.js", true),
        ("docs/*", "docs/README.md", true),
        ("docs/*", "docs/file.txt", true),
        ("docs/*", "docs/mona/octocat.txt", false),
        ("docs/**", "docs/README.md", true),
        ("docs/**", "docs/mona/octocat.txt", true),
        ("docs/**", "src/docs/a.md", false),
        ("docs/**/*.md", "docs/README.md", true),
        ("docs/**/*.md", "docs/mona/hello-world.md", true),
        ("docs/**/*.md", "docs/a/markdown/file.md", true),
        ("docs/**/*.md", "docs/a/file.txt", false),
        ("**/docs/**", "docs/hello.md", true),
        ("**/docs/**", "dir/docs/my-file.txt", true),
        ("**/docs/**", "space/docs/plan/space.doc", true),
        ("**/docs/**", "mydocs/x.md", false),
        ("**/README.md", "README.md", true),
        ("**/README.md", "js/README.md", true),
        ("**/*src/**", "a/src/app.js", true),
        ("**/*src/**", "my-src/code/js/app.js", true),
        ("**/*-post.md", "my-post.md", true),
        ("**/*-post.md", "path/their-post.md", true),
        ("**/migrate-*.sql", "migrate-10909.sql", true),
        ("**/migrate-*.sql", "db/migrate-v1.0.sql", true),
        ("**/migrate-*.sql", "db/sept/migrate-v1.sql", true),
        ("\\*.md", "*.md", true),
        ("\\*.md", "a.md", false),
        ("a\\[1\\]", "a[1]", true),
    ];
    for (pattern, value, expect) in cases {
        check_glob(&[pattern], value, *expect);
    }
}

#[test]
fn the_last_matching_pattern_decides() {
    let excluded: &[&str] = &["*.md", "!README.md"];
    check_glob(excluded, "hello.md", true);
    check_glob(excluded, "README.md", false);
    check_glob(excluded, "docs/hello.md", false);
    let included_again: &[&str] = &["*.md", "!README.md", "README*"];
    check_glob(included_again, "hello.md", true);
    check_glob(included_again, "README.md", true);
    check_glob(included_again, "README.doc", true);
    check_glob(&["!README.md", "*.md"], "README.md", true);
    check_glob(&[], "anything", false);
    check_glob(&["!main"], "feature", false);
}

#[test]
fn pattern_errors_name_the_pattern_and_what_to_do() {
    let cases: &[(&str, &str)] = &[
        ("v[12", "unclosed `[`"),
        ("+x", "no single character"),
        ("**?", "`?`"),
        ("[9-0]", "invalid range"),
        ("[a-9]", "invalid range"),
        ("a\\", "lone `\\`"),
        ("", "empty pattern"),
        ("!", "negates nothing"),
    ];
    for (pattern, fragment) in cases {
        let problem = glob::check(pattern).expect_err(pattern);
        assert!(problem.contains(fragment), "`{pattern}`: {problem}");
    }
    let problem = Filter::new(&["main".into(), "v[1".into(), "x+?".into()]).unwrap_err();
    assert!(
        problem.contains("`v[1`") && problem.contains("`x+?`"),
        "{problem}"
    );
}

#[test]
fn a_list_of_only_negative_patterns_is_reported() {
    let only_negative = vec!["!main".to_string(), "!release/**".to_string()];
    let problems = glob::check_list(&only_negative).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("at least one positive pattern"),
        "{}",
        problems[0]
    );
    assert!(glob::check_list(&["**".into(), "!main".into()]).is_ok());
    let both = glob::check_list(&["!a[".into()]).unwrap_err();
    assert_eq!(both.len(), 2, "{both:?}");
}

#[test]
fn matching_fifty_thousand_paths_against_ten_patterns_is_fast() {
    let patterns: Vec<String> = [
        "**/docs/**",
        "platform/**",
        "policies/**/*.rego",
        "**/README.md",
        "!docs/**",
        "**.py",
        "**/*src/**",
        "v[12].[0-9]+.[0-9]+",
        "**/migrate-*.sql",
        "*.jsx?",
    ]
    .iter()
    .map(|pattern| pattern.to_string())
    .collect();
    let filter = Filter::new(&patterns).unwrap();
    let paths: Vec<String> = (0..50_000)
        .map(|index| match index % 5 {
            0 => format!("platform/dags/team-{index}/dag_{index}.py"),
            1 => format!("docs/guide/chapter-{index}/README.md"),
            2 => format!("src/module{index}/deeply/nested/file{index}.rs"),
            3 => format!("policies/terraform/rule_{index}.rego"),
            _ => format!("services/api/handlers/v{index}/handler.go"),
        })
        .collect();
    let started = std::time::Instant::now();
    let matched = paths.iter().filter(|path| filter.matches(path)).count();
    let elapsed = started.elapsed();
    assert_eq!(matched, 30_000);
    // Milliseconds in a release build; the bound leaves room for an unoptimised test build on
    // a busy machine while still catching a matcher that backtracks exponentially.
    assert!(
        elapsed < std::time::Duration::from_secs(3),
        "took {elapsed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Expressions.

fn expression_values() -> Json {
    json!({
        "event": "merge",
        "github": {
            "ref": "refs/heads/main",
            "event_name": "push",
            "head_ref": "",
            "ref_name": "main",
            "event": { "labels": [{ "name": "deploy" }, { "name": "Infra" }], "number": 7 },
        },
        "env": { "REGION": "eu-west-1", "REPLICAS": "3" },
        "needs": { "build": { "result": "success", "outputs": { "tag": "v1.2.0" } } },
        "matrix": [1, 2, 3],
    })
}

fn check_expr(expression: &str, expect: Json) {
    let context = Context {
        values: expression_values(),
        job_status: JobStatusView::default(),
    };
    let value = expr::evaluate(expression, &context)
        .unwrap_or_else(|problem| panic!("`{expression}` failed: {problem}"));
    assert_eq!(value, expect, "expression `{expression}`");
}

#[test]
fn expressions_evaluate_as_on_github() {
    let cases: &[(&str, Json)] = &[
        ("true", json!(true)),
        ("null", json!(null)),
        ("42", json!(42)),
        ("-9.5", json!(-9.5)),
        ("0xff", json!(255)),
        ("'it''s'", json!("it's")),
        ("${{ event == 'merge' }}", json!(true)),
        ("event == 'MERGE'", json!(true)),
        (
            "github.ref == 'refs/heads/main' && event != 'push'",
            json!(true),
        ),
        ("github['ref']", json!("refs/heads/main")),
        ("GITHUB.REF_NAME", json!("main")),
        ("matrix[1]", json!(2)),
        ("matrix[7]", json!(null)),
        ("env.REPLICAS == 3", json!(true)),
        ("env.REPLICAS > 2", json!(true)),
        ("env.REPLICAS >= 3.0", json!(true)),
        ("'3' == '3.0'", json!(false)),
        ("'a' == 0", json!(false)),
        ("!env.MISSING", json!(true)),
        ("env.MISSING == null", json!(true)),
        ("undefined.deep.property", json!(null)),
        ("github.head_ref || github.ref_name", json!("main")),
        ("(1 < 2) == true", json!(true)),
        ("!(event == 'merge' || false)", json!(false)),
        ("contains(github.event.labels.*.name, 'INFRA')", json!(true)),
        ("contains('Hello world', 'WORLD')", json!(true)),
        ("contains(matrix, '2')", json!(true)),
        ("startsWith(github.ref, 'refs/heads/')", json!(true)),
        ("endsWith(github.ref, '/MAIN')", json!(true)),
        (
            "format('{0}-{1}-{{x}}', env.REGION, github.event.number)",
            json!("eu-west-1-7-{x}"),
        ),
        ("join(matrix, '+')", json!("1+2+3")),
        ("join(matrix)", json!("1,2,3")),
        ("toJSON(matrix)", json!("[\n  1,\n  2,\n  3\n]")),
        ("fromJSON('{\"a\": [true]}').a[0]", json!(true)),
        ("fromJSON(env.REPLICAS) == 3", json!(true)),
        ("needs.build.outputs.tag", json!("v1.2.0")),
        ("success()", json!(true)),
        ("failure()", json!(false)),
        ("always()", json!(true)),
        ("cancelled()", json!(false)),
    ];
    for (expression, expect) in cases {
        check_expr(expression, expect.clone());
    }
}

#[test]
fn expression_syntax_errors_say_where_and_what() {
    let cases: &[(&str, &str)] = &[
        ("event ==", "ends too early"),
        ("event = 'merge'", "column 7"),
        ("event == \"merge\"", "single quotes"),
        ("'open", "unterminated string"),
        ("(a || b", "`)`"),
        ("a b", "unexpected `b` at column 3"),
        ("hashFiles('x')", "unknown function `hashFiles`"),
        ("contains('a')", "takes 2 argument(s), not 1"),
        ("format('{1}', a)", "no argument"),
        ("a.", "property name"),
        ("a[0", "`]`"),
        ("", "empty expression"),
    ];
    for (expression, fragment) in cases {
        let problem = expr::check(expression).expect_err(expression);
        assert!(problem.contains(fragment), "`{expression}`: {problem}");
    }
    assert!(expr::check("${{ github.event.labels.*.name }}").is_ok());
    assert!(expr::check("needs.build-image.result == 'success'").is_ok());
}

#[test]
fn conditions_get_an_implicit_success() {
    let context = |any_failed, any_cancelled| Context {
        values: expression_values(),
        job_status: JobStatusView {
            any_failed,
            any_cancelled,
        },
    };
    let cases: &[(&str, bool, bool, bool)] = &[
        // condition, a need failed, cancelled, runs
        ("event == 'merge'", false, false, true),
        ("event == 'merge'", true, false, false),
        ("event == 'merge'", false, true, false),
        ("always()", true, true, true),
        ("failure()", true, false, true),
        ("failure()", false, false, false),
        ("cancelled()", false, true, true),
        ("!cancelled()", false, false, true),
        ("success() || event == 'merge'", true, false, true),
        ("${{ always() && event == 'push' }}", false, false, false),
    ];
    for (condition, any_failed, any_cancelled, expect) in cases {
        let runs = expr::evaluate_condition(condition, &context(*any_failed, *any_cancelled))
            .unwrap_or_else(|problem| panic!("`{condition}`: {problem}"));
        assert_eq!(
            runs, *expect,
            "condition `{condition}` (failed {any_failed}, cancelled {any_cancelled})"
        );
    }
}

#[test]
fn render_fills_templates_and_names_unknown_properties() {
    let context = Context {
        values: expression_values(),
        job_status: JobStatusView::default(),
    };
    let cases: &[(&str, &str)] = &[
        ("deploy-${{ github.ref }}", "deploy-refs/heads/main"),
        ("{{ env.REGION }}/{{env.REPLICAS}}", "eu-west-1/3"),
        ("no templates here", "no templates here"),
        ("${{ github.head_ref }}", ""),
        ("${{ matrix }}", "[1,2,3]"),
        ("a ${{ format('{{{0}}}', 1) }} b", "a {1} b"),
    ];
    for (template, expect) in cases {
        assert_eq!(
            expr::render(template, &context).as_deref(),
            Ok(*expect),
            "template `{template}`"
        );
    }
    let problem = expr::render("deploy-${{ env.REGOIN }}", &context).unwrap_err();
    assert!(
        problem.contains("unknown property `env.REGOIN`"),
        "{problem}"
    );
    let problem = expr::render("${{ vars.NAME }}", &context).unwrap_err();
    assert!(problem.contains("unknown property `vars`"), "{problem}");
    assert!(
        expr::render("${{ env.REGION", &context)
            .unwrap_err()
            .contains("unclosed")
    );
}

// ---------------------------------------------------------------------------------------------
// Planning.

const COMMIT: &str = "4f9d2c81a7e3b5d6c8f0a1b2c3d4e5f6a7b8c9d0";

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

fn event(kind: EventKind, git_ref: &str) -> Event {
    Event {
        kind,
        repository: "acme/ml-platform".into(),
        git_ref: git_ref.into(),
        commit: COMMIT.into(),
        before: None,
        base_branch: None,
        action: None,
        pull_request: None,
        actor: Some("mona".into()),
        changed_paths: None,
    }
}

fn push(branch: &str, changed: Option<&[&str]>) -> Event {
    Event {
        changed_paths: changed.map(|paths| paths.iter().map(|path| path.to_string()).collect()),
        ..event(EventKind::Push, &format!("refs/heads/{branch}"))
    }
}

fn merge(branch: &str, changed: Option<&[&str]>) -> Event {
    Event {
        kind: EventKind::Merge,
        ..push(branch, changed)
    }
}

fn tag(name: &str, changed: Option<&[&str]>) -> Event {
    Event {
        changed_paths: changed.map(|paths| paths.iter().map(|path| path.to_string()).collect()),
        ..event(EventKind::Push, &format!("refs/tags/{name}"))
    }
}

fn pull_request(action: &str, base: &str, head: &str, changed: Option<&[&str]>) -> Event {
    Event {
        base_branch: Some(base.into()),
        action: Some(action.into()),
        pull_request: Some(7),
        changed_paths: changed.map(|paths| paths.iter().map(|path| path.to_string()).collect()),
        ..event(EventKind::PullRequest, &format!("refs/heads/{head}"))
    }
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

// ---------------------------------------------------------------------------------------------
// Deciding whether a job runs after its needs.

fn job(needs: &[&str], condition: Option<&str>) -> PlannedJob {
    PlannedJob {
        id: "deploy".into(),
        name: "deploy".into(),
        needs: needs.iter().map(|need| need.to_string()).collect(),
        condition: condition.map(str::to_string),
        timeout: None,
        env: BTreeMap::new(),
        concurrency: None,
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
