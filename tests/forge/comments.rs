//! One living comment per pull request and pipeline: created once, edited in place, marked
//! stale, split when too long, and harmless whatever a plan contains.

use super::support::{
    REPOSITORY, assert_harmless, forge, job, payload, pull_request_run, requests,
};
use serde_json::json;
use sluice::forge::comment::{self, COMMENT_LIMIT, Section, SectionKind, escape};
use sluice::forge::report::render_run_comment;
use sluice::forge::{OutboxItem, PolicyOutcome, PolicyResult};
use sluice::model::Status;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const COMMENTS: &str = "/repos/Codertocat/Hello-World/issues/2/comments";

fn terraform_section(body_markdown: String) -> Section {
    Section {
        environment: "dev".to_owned(),
        kind: SectionKind::Terraform,
        title: "infra/network".to_owned(),
        body_markdown,
    }
}

#[tokio::test]
async fn the_first_commit_creates_one_comment_and_the_second_edits_it() {
    let server = MockServer::start().await;
    let (forge, outbox) = forge(&server);
    let opened = payload("pull_request/opened.payload.json");
    let first_run = pull_request_run(&opened, 41, vec![job("plan", Status::Succeeded, None)]);
    let first_parts = render_run_comment(&first_run, vec![], vec![], forge.run_url(41));
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 5, "body": "Looks good to me, @Codertocat"}
        ])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 77})))
        .mount(&server)
        .await;
    let delivered = forge
        .send(OutboxItem::Comment {
            repository: REPOSITORY.to_owned(),
            pull_request: 2,
            pipeline: "platform".to_owned(),
            parts: first_parts.clone(),
        })
        .await;
    assert!(delivered);
    assert_eq!(
        requests(&server).await,
        vec![
            (
                "GET".to_owned(),
                format!("{COMMENTS}?per_page=100&page=1"),
                json!(null)
            ),
            (
                "POST".to_owned(),
                COMMENTS.to_owned(),
                json!({"body": first_parts[0]})
            ),
        ]
    );

    // The next commit: the same comment is found by its marker and edited, never a second one.
    server.reset().await;
    let mut synchronize = payload("pull_request/synchronize.payload.json");
    synchronize["pull_request"]["head"]["sha"] = json!("9a1b2c3d4e5f60718293a4b5c6d7e8f901234567");
    let second_run = pull_request_run(
        &synchronize,
        42,
        vec![job(
            "plan",
            Status::Failed,
            Some("step `plan` exited with 1"),
        )],
    );
    let second_parts = render_run_comment(&second_run, vec![], vec![], forge.run_url(42));
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 5, "body": "Looks good to me, @Codertocat"},
            {"id": 77, "body": first_parts[0]}
        ])))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/Codertocat/Hello-World/issues/comments/77"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77})))
        .mount(&server)
        .await;
    let ids = forge
        .publish_comment(REPOSITORY, 2, "platform", &second_parts)
        .await
        .unwrap();
    assert_eq!(ids, vec![77]);
    assert_eq!(
        requests(&server).await,
        vec![
            (
                "GET".to_owned(),
                format!("{COMMENTS}?per_page=100&page=1"),
                json!(null)
            ),
            (
                "PATCH".to_owned(),
                "/repos/Codertocat/Hello-World/issues/comments/77".to_owned(),
                json!({"body": second_parts[0]})
            ),
        ]
    );
    assert!(
        second_parts[0].contains("Commit `9a1b2c3d4e5f`"),
        "{}",
        second_parts[0]
    );
    assert!(second_parts[0].contains("[run 42](https://sluice.example.com/runs/42)"));
    assert!(outbox_is_empty(&outbox));
}

fn outbox_is_empty(outbox: &sluice::store::MemoryOutbox) -> bool {
    use sluice::store::Outbox;
    outbox.pending().unwrap().is_empty()
}

#[tokio::test]
async fn a_newer_commit_marks_the_comment_stale_at_once() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    let opened = payload("pull_request/opened.payload.json");
    let run = pull_request_run(&opened, 41, vec![job("plan", Status::Succeeded, None)]);
    let parts = render_run_comment(&run, vec![], vec![], None);
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([{"id": 77, "body": parts[0]}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/Codertocat/Hello-World/issues/comments/77"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77})))
        .mount(&server)
        .await;
    let marked = forge
        .mark_stale(REPOSITORY, 2, "platform", "9a1b2c3d4e5f60718293")
        .await
        .unwrap();
    assert!(marked);
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 2);
    let body = sent[1].2["body"].as_str().unwrap();
    assert!(body.starts_with(&comment::marker("platform")), "{body}");
    assert!(
        body.contains("**Stale:**") && body.contains("`9a1b2c3d4e5f`"),
        "{body}"
    );
    assert!(
        body.contains("Commit `ec26c3e57ca3`"),
        "the old content stays: {body}"
    );
}

#[tokio::test]
async fn a_70000_character_plan_is_split_into_valid_numbered_parts() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    let opened = payload("pull_request/opened.payload.json");
    let mut plan = String::new();
    let mut index = 0;
    while plan.len() < 70_000 {
        plan.push_str(&format!(
            "+ aws_s3_bucket.logs[{index}]  # will be created\n"
        ));
        index += 1;
    }
    let section = terraform_section(escape::code_block(&plan, "diff"));
    let run = pull_request_run(&opened, 41, vec![job("plan", Status::Succeeded, None)]);
    let parts = render_run_comment(&run, vec![section], vec![], None);
    assert!(parts.len() >= 2, "{} part(s)", parts.len());
    for (number, part) in parts.iter().enumerate() {
        assert!(
            part.chars().count() <= COMMENT_LIMIT,
            "part {} is {} chars",
            number + 1,
            part.len()
        );
        assert_harmless(part);
        let expected_marker = if number == 0 {
            comment::marker("platform")
        } else {
            comment::part_marker("platform", number + 1)
        };
        assert!(part.starts_with(&expected_marker), "part {}", number + 1);
    }
    let all: String = parts.concat();
    for line in plan.lines() {
        assert!(all.contains(line), "a plan line was lost: {line}");
    }

    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    forge
        .publish_comment(REPOSITORY, 2, "platform", &parts)
        .await
        .unwrap();
    let posted: Vec<_> = requests(&server)
        .await
        .into_iter()
        .filter(|(verb, _, _)| verb == "POST")
        .map(|(_, _, body)| body["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(posted, parts);
}

#[test]
fn a_plan_with_a_team_mention_a_fence_and_html_renders_harmless() {
    let opened = payload("pull_request/opened.payload.json");
    let hostile_plan = "~ aws_iam_policy.admins\n    description: \"ping @org/team\"\n```\n<img src=x onerror=alert(1)>\n@org/team </details>\n";
    let section = Section {
        environment: "dev <b>".to_owned(),
        kind: SectionKind::Terraform,
        title: "modules/@org/team`x`.tf".to_owned(),
        body_markdown: format!(
            "Changed in {}:\n\n{}",
            escape::inline("files/@org/team.tf"),
            escape::code_block(hostile_plan, "diff")
        ),
    };
    // A careless contributor: raw HTML and a mention outside any code block.
    let careless = Section {
        environment: "dev <b>".to_owned(),
        kind: SectionKind::Models,
        title: "model".to_owned(),
        body_markdown: "cc @org/team </details><script>x</script>\n```\nunclosed".to_owned(),
    };
    let policy = PolicyResult {
        outcome: PolicyOutcome::Deny,
        rule: "terraform.tags.deny".to_owned(),
        message: "@org/team must tag `aws_s3_bucket.logs` <now>".to_owned(),
    };
    let mut run = pull_request_run(
        &opened,
        41,
        vec![job("plan@org/team", Status::Failed, Some("@org/team ```"))],
    );
    run.pipeline = "platform".to_owned();
    let parts = render_run_comment(&run, vec![section, careless], vec![policy], None);
    assert_eq!(parts.len(), 1);
    assert_harmless(&parts[0]);
    // The plan text is still there for people to read, inside its code block.
    assert!(
        parts[0].contains("description: \"ping @org/team\""),
        "{}",
        parts[0]
    );
}

/// Writes `docs/pr-comment-sample.md`, the comment for a realistic run, so reviewers can see
/// it rendered. Fails when the file is out of date; `SLUICE_BLESS=1` rewrites it.
#[test]
fn the_rendered_sample_is_up_to_date() {
    let plan_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/terraform-plans/test_multiple_failures.json");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plan_path).unwrap()).unwrap();
    let summary = sluice::terraform::summary::summarize(&plan).unwrap();
    let opened = payload("pull_request/opened.payload.json");
    let mut run = pull_request_run(
        &opened,
        42,
        vec![
            job("plan-dev", Status::Succeeded, None),
            job("plan-staging", Status::Succeeded, None),
            job("policy", Status::Failed, Some("1 policy denied the plan")),
            job("docs", Status::Skipped, Some("no matching paths")),
        ],
    );
    run.status = Status::Failed;
    let sections = vec![
        comment::terraform_section("dev", "infra/network", &summary),
        comment::terraform_section("staging", "infra/network", &summary),
    ];
    let policies = vec![
        PolicyResult {
            outcome: PolicyOutcome::Deny,
            rule: "terraform.tags.deny".to_owned(),
            message: "aws_s3_bucket.logs has no `owner` tag".to_owned(),
        },
        PolicyResult {
            outcome: PolicyOutcome::Warn,
            rule: "terraform.cost.warn".to_owned(),
            message: "3 new instances".to_owned(),
        },
        PolicyResult {
            outcome: PolicyOutcome::Passed,
            rule: "terraform.encryption.deny".to_owned(),
            message: String::new(),
        },
    ];
    let parts = render_run_comment(
        &run,
        sections,
        policies,
        Some("https://sluice.example.com/runs/42".to_owned()),
    );
    assert_eq!(parts.len(), 1);
    assert_harmless(&parts[0]);
    let sample = format!(
        "<!-- Generated by `cargo test --test forge the_rendered_sample_is_up_to_date` (SLUICE_BLESS=1 rewrites it). -->\n\n# Sample pull-request comment\n\nWhat sluice posts on a pull request for a failed run of pipeline `platform`. Everything below the rule is the comment body exactly as posted; viewed on GitHub, this file renders as the comment does.\n\n---\n\n{}",
        parts[0]
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/pr-comment-sample.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != sample {
        if std::env::var_os("SLUICE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, sample).unwrap();
        } else {
            panic!("docs/pr-comment-sample.md is out of date; run the test with SLUICE_BLESS=1");
        }
    }
}
