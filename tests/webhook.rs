//! The webhook server end to end: a real `sluice serve` process, a real git repository, and
//! GitHub's own payloads signed with a test secret.

mod support;

use support::*;

const PIPELINE: &str = r#"
name: ci
on:
  push:
    branches: [main]
    paths-ignore: ["docs/**"]
jobs:
  test:
    steps:
      - name: unit tests
        run: echo "testing $SLUICE_SHA"
  package:
    needs: test
    steps:
      - run: echo packaging
  deploy:
    needs: package
    if: event == 'merge'
    steps:
      - run: echo deploying
"#;

fn repo_with_pipeline() -> (TestRepo, String) {
    let repo = TestRepo::new();
    let first = repo.commit(
        &[
            ("workflows/ci.yaml", PIPELINE),
            ("src/app.py", "print('v1')\n"),
        ],
        "first",
    );
    (repo, first)
}

#[test]
fn push_to_a_matching_branch_runs_the_jobs_in_needs_order() {
    let (repo, first) = repo_with_pipeline();
    let second = repo.commit(&[("src/app.py", "print('v2')\n")], "change app");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());

    let (status, _) = deliver(
        &server,
        "push",
        "delivery-1",
        &push_payload("main", &first, &second),
    );
    assert_eq!(status, 202);

    let runs = finished_runs(&server, &second, 1);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["pipeline"], "ci");
    assert_eq!(run["event"], "push");
    assert_eq!(run["ref"], "refs/heads/main");
    assert_eq!(run["status"], "succeeded", "run: {run}");
    assert_eq!(
        job_statuses(run),
        vec![
            ("test".to_owned(), "succeeded".to_owned()),
            ("package".to_owned(), "succeeded".to_owned()),
            ("deploy".to_owned(), "skipped".to_owned()),
        ]
    );
    // The log is the step's real output, at the commit that was pushed.
    let log = http()
        .get(server.url(&format!("/api/runs/{}/jobs/test/log", run["id"])))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(log.contains(&format!("testing {second}")), "log: {log}");
    // One run, with its steps, by id.
    let one: serde_json::Value = http()
        .get(server.url(&format!("/api/runs/{}", run["id"])))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(one["jobs"][0]["steps"][0]["name"], "unit tests");
    assert_eq!(one["jobs"][0]["steps"][0]["exit_code"], 0);
}

#[test]
fn a_push_touching_only_ignored_paths_records_a_skipped_run() {
    let (repo, first) = repo_with_pipeline();
    let second = repo.commit(&[("docs/guide.md", "# guide\n")], "docs only");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());

    assert_eq!(
        deliver(
            &server,
            "push",
            "docs-1",
            &push_payload("main", &first, &second)
        )
        .0,
        202
    );
    let runs = finished_runs(&server, &second, 1);
    assert_eq!(runs[0]["status"], "skipped");
    assert_eq!(runs[0]["reason"], "no matching paths");
    assert!(
        job_statuses(&runs[0])
            .iter()
            .all(|(_, status)| status == "skipped")
    );
}

#[test]
fn a_push_to_another_branch_starts_nothing() {
    let (repo, first) = repo_with_pipeline();
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let second = repo.commit(&[("src/app.py", "print('feature')\n")], "feature work");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());

    assert_eq!(
        deliver(
            &server,
            "push",
            "feature-1",
            &push_payload("feature", &first, &second)
        )
        .0,
        202
    );
    // A later delivery to main is planned after the first one (deliveries are planned in order),
    // so once its run exists the feature push has been planned too.
    let third = {
        repo.git(&["checkout", "-q", "main"]);
        repo.commit(&[("src/app.py", "print('main')\n")], "main work")
    };
    assert_eq!(
        deliver(
            &server,
            "push",
            "main-1",
            &push_payload("main", &first, &third)
        )
        .0,
        202
    );
    finished_runs(&server, &third, 1);
    assert!(server.runs(&format!("?commit={second}")).is_empty());
}

#[test]
fn a_wrong_or_missing_signature_is_refused_and_nothing_is_stored() {
    let (repo, first) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    let body = push_payload("main", &"0".repeat(40), &first);

    let wrong = http()
        .post(server.url("/webhooks/github"))
        .header("x-github-event", "push")
        .header("x-github-delivery", "sig-1")
        .header(
            "x-hub-signature-256",
            sluice::server::webhook::sign(b"another secret", &body),
        )
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let missing = http()
        .post(server.url("/webhooks/github"))
        .header("x-github-event", "push")
        .header("x-github-delivery", "sig-1")
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 401);

    // Nothing was stored: the same delivery id, correctly signed, is new (202, not 200).
    assert_eq!(deliver(&server, "push", "sig-1", &body).0, 202);
    let runs = finished_runs(&server, &first, 1);
    assert_eq!(runs.len(), 1);
}

#[test]
fn a_repeated_delivery_is_answered_200_and_runs_nothing_new() {
    let (repo, first) = repo_with_pipeline();
    let second = repo.commit(&[("src/app.py", "print('v2')\n")], "change");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    let body = push_payload("main", &first, &second);

    assert_eq!(deliver(&server, "push", "dup-1", &body).0, 202);
    let (status, text) = deliver(&server, "push", "dup-1", &body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("duplicate"));
    finished_runs(&server, &second, 1);
    // A later, different delivery is planned after the duplicate would have been.
    let third = repo.commit(&[("src/app.py", "print('v3')\n")], "again");
    assert_eq!(
        deliver(
            &server,
            "push",
            "dup-2",
            &push_payload("main", &second, &third)
        )
        .0,
        202
    );
    finished_runs(&server, &third, 1);
    assert_eq!(server.runs(&format!("?commit={second}")).len(), 1);
}

#[test]
fn bodies_over_25_mib_are_refused_with_413() {
    let (repo, _) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    let body = vec![b' '; 25 * 1024 * 1024 + 1];
    let response = http()
        .post(server.url("/webhooks/github"))
        .header("x-github-event", "push")
        .header("x-github-delivery", "big-1")
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
}

#[test]
fn malformed_json_with_a_valid_signature_gets_400_with_the_parse_error() {
    let (repo, _) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    let (status, text) = deliver(
        &server,
        "push",
        "bad-json-1",
        b"{\"ref\": \"refs/heads/main\",",
    );
    assert_eq!(status, 400);
    assert!(
        text.contains("not valid JSON") && text.contains("line 1"),
        "{text}"
    );
}

#[test]
fn ping_unknown_repositories_unhandled_events_and_form_bodies() {
    let (repo, first) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());

    let ping = serde_json::to_vec(&fixture("ping/payload.json")).unwrap();
    assert_eq!(deliver(&server, "ping", "ping-1", &ping).0, 200);

    // The real payload names Codertocat/Hello-World, which this server does not watch.
    let foreign = serde_json::to_vec(&fixture("push/with-new-branch.payload.json")).unwrap();
    let (status, text) = deliver(&server, "push", "foreign-1", &foreign);
    assert_eq!(status, 403);
    assert!(text.contains("Codertocat/Hello-World"), "{text}");

    let mut check_run = fixture("check_run/created.payload.json");
    check_run["repository"]["full_name"] = REPOSITORY.into();
    assert_eq!(
        deliver(
            &server,
            "check_run",
            "check-1",
            &serde_json::to_vec(&check_run).unwrap()
        )
        .0,
        202
    );

    // application/x-www-form-urlencoded: `payload=<json>`, signed over the form body.
    let json = String::from_utf8(push_payload("main", &"0".repeat(40), &first)).unwrap();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json)
        .finish();
    let response = http()
        .post(server.url("/webhooks/github"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "push")
        .header("x-github-delivery", "form-1")
        .header("x-hub-signature-256", sign(form.as_bytes()))
        .body(form)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let runs = finished_runs(&server, &first, 1);
    assert_eq!(runs[0]["pipeline"], "ci");

    let metrics = http()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("sluice_webhook_deliveries_total{event=\"push\",outcome=\"forbidden\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "sluice_webhook_deliveries_total{event=\"check_run\",outcome=\"accepted\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_webhook_intake_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_runs{status=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        http()
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[test]
fn a_broken_pipeline_file_fails_visibly_with_every_problem_located() {
    let repo = TestRepo::new();
    let first = repo.commit(
        &[(
            "workflows/ci.yaml",
            "name: ci\non: { push: {} }\njobs:\n  a:\n    nedds: b\n    steps: [{run: 'true'}]\n",
        )],
        "broken",
    );
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    assert_eq!(
        deliver(
            &server,
            "push",
            "broken-1",
            &push_payload("main", &"0".repeat(40), &first)
        )
        .0,
        202
    );
    let runs = finished_runs(&server, &first, 1);
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["pipeline"], "workflows/ci.yaml");
    let reason = runs[0]["reason"].as_str().unwrap();
    assert!(reason.contains("workflows/ci.yaml:5:5"), "{reason}");
    assert!(reason.contains("needs"), "{reason}");
}

#[test]
fn a_pull_request_runs_pipelines_read_at_its_head_commit() {
    let repo = TestRepo::new();
    let pipeline = "name: pr-checks\non:\n  pull_request:\n    branches: [main]\njobs:\n  lint:\n    steps:\n      - run: test -f src/new.py\n";
    let base = repo.commit(&[("workflows/pr.yaml", pipeline)], "base");
    repo.git(&["checkout", "-q", "-b", "feature/new"]);
    let head = repo.commit(&[("src/new.py", "x = 1\n")], "add new module");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());

    let mut payload = fixture("pull_request/opened.payload.json");
    payload["repository"]["full_name"] = REPOSITORY.into();
    payload["pull_request"]["head"]["sha"] = head.clone().into();
    payload["pull_request"]["head"]["ref"] = "feature/new".into();
    payload["pull_request"]["base"]["sha"] = base.clone().into();
    payload["pull_request"]["base"]["ref"] = "main".into();
    assert_eq!(
        deliver(
            &server,
            "pull_request",
            "pr-1",
            &serde_json::to_vec(&payload).unwrap()
        )
        .0,
        202
    );
    let runs = finished_runs(&server, &head, 1);
    assert_eq!(runs[0]["event"], "pull_request");
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);

    // `closed` is not among the default activity types.
    payload["action"] = "closed".into();
    assert_eq!(
        deliver(
            &server,
            "pull_request",
            "pr-2",
            &serde_json::to_vec(&payload).unwrap()
        )
        .0,
        202
    );
    let later = repo.commit(&[("src/other.py", "y = 2\n")], "more");
    payload["action"] = "synchronize".into();
    payload["pull_request"]["head"]["sha"] = later.clone().into();
    assert_eq!(
        deliver(
            &server,
            "pull_request",
            "pr-3",
            &serde_json::to_vec(&payload).unwrap()
        )
        .0,
        202
    );
    finished_runs(&server, &later, 1);
    assert_eq!(
        server.runs(&format!("?commit={head}")).len(),
        1,
        "the closed action started nothing"
    );
}

#[test]
fn a_deleted_branch_starts_nothing() {
    let (repo, first) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    let mut deletion = fixture("push/payload.json");
    deletion["repository"]["full_name"] = REPOSITORY.into();
    deletion["ref"] = "refs/heads/main".into();
    deletion["before"] = first.clone().into();
    assert_eq!(deletion["deleted"], true);
    assert_eq!(
        deliver(
            &server,
            "push",
            "deleted-1",
            &serde_json::to_vec(&deletion).unwrap()
        )
        .0,
        202
    );
    // Deliveries are planned in order: once the next one has its run, the deletion was planned.
    let second = repo.commit(&[("src/app.py", "print('v2')\n")], "after deletion");
    assert_eq!(
        deliver(
            &server,
            "push",
            "deleted-2",
            &push_payload("main", &first, &second)
        )
        .0,
        202
    );
    finished_runs(&server, &second, 1);
    assert_eq!(
        server.runs("").len(),
        1,
        "only the second delivery started a run"
    );
}

#[test]
fn a_repository_without_webhooks_is_polled_and_new_commits_run() {
    let (repo, _) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "steps: {{ user: \"0:0\" }}\nrepositories:\n  - name: {REPOSITORY}\n    url: {}\n    poll-interval: 200ms\n    host-steps: true\n",
            repo.path().display()
        ),
    )
    .unwrap();
    let server = Server::start_with(data.path(), &[], &["--config", config.to_str().unwrap()]);
    // The first poll only learns where the branches are; wait until it has, via the log.
    wait_for("the first poll", std::time::Duration::from_secs(30), || {
        std::fs::read_to_string(&server.stderr_log)
            .ok()
            .filter(|log| log.contains("polled"))
            .map(|_| ())
    });
    let second = repo.commit(
        &[("src/app.py", "print('polled')\n")],
        "no webhook for this one",
    );
    let runs = finished_runs(&server, &second, 1);
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);
}
