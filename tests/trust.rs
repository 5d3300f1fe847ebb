//! The trust boundaries, attacked through a real `sluice serve` with its defaults (steps in
//! containers from the real Docker engine, real git, real Terraform in a container): code under review never
//! reaches the server's secrets or data directory, a branch cannot make itself a deploy branch, a
//! pull request cannot weaken the policy that judges its plan or see the server's variables, and
//! a fork's pull request waits for an approval. Markers are read back ROT13-encoded (`tr`) so that the
//! log's redaction cannot hide a leak from the assertions.

mod support;

use std::path::Path;
use std::time::Duration;
use support::*;

const STEP_IMAGE: &str = "local/busybox:1";
/// python3 and terraform (scripts/setup-step-image.sh): a pipeline's Terraform runs in it.
const TERRAFORM_IMAGE: &str = "local/sluice-step:1";
const SECRET_MARKER: &str = "trust-marker-secret-4711";
const TOKEN_MARKER: &str = "trust-marker-token-4712";
/// 32 bytes in hex: a valid plan key that is also a marker.
const PLAN_KEY: &str = "7472757374206d61726b657220706c616e206b65792039383736353433323130";

/// ROT13 of the lowercase letters, as `tr 'a-z' 'n-za-m'` prints it.
fn rotated(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            other => other,
        })
        .collect()
}

fn start(data: &Path, repo: &TestRepo, extra: &[&str], config: Option<&Path>) -> Server {
    start_with_image(data, repo, STEP_IMAGE, extra, config)
}

fn start_with_image(
    data: &Path,
    repo: &TestRepo,
    image: &str,
    extra: &[&str],
    config: Option<&Path>,
) -> Server {
    let mut arguments = vec!["--step-image", image];
    arguments.extend_from_slice(extra);
    if let Some(config) = config {
        arguments.extend_from_slice(&["--config", config.to_str().unwrap()]);
    }
    Server::start_isolated(
        data,
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &arguments,
        &[
            ("SLUICE_SECRET_MARKER", Path::new(SECRET_MARKER)),
            ("SLUICE_API_TOKEN", Path::new(TOKEN_MARKER)),
            ("SLUICE_PLAN_KEY", Path::new(PLAN_KEY)),
            ("TF_VAR_probe", Path::new("server-marker-4713")),
        ],
    )
}

fn log_of(server: &Server, run: &serde_json::Value, job: &str) -> String {
    let id = run["id"].as_i64().unwrap();
    http()
        .get(server.url(&format!("/api/runs/{id}/jobs/{job}/log")))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

fn assert_no_marker(log: &str) {
    for marker in [SECRET_MARKER, TOKEN_MARKER, PLAN_KEY, "server-marker-4713"] {
        assert!(!log.contains(marker), "{marker} leaked:\n{log}");
        assert!(
            !log.contains(&marker.to_uppercase()),
            "{marker} leaked in capitals:\n{log}"
        );
        assert!(
            !log.contains(&rotated(marker)),
            "{marker} leaked rotated:\n{log}"
        );
    }
}

const PROBE_SCRIPT: &str = r#"
      - run: |
          cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' | tr 'a-z' 'n-za-m'
          env | tr 'a-z' 'n-za-m'
          echo "given=[$GIVEN]"
          echo "uid=$(id -u)"
          if test -S /var/run/docker.sock; then echo socket=present; else echo socket=absent; fi
        env: { GIVEN: "${{ secrets.MARKER }}" }
"#;

#[test]
fn a_branch_push_runs_in_a_container_without_the_servers_secrets_or_the_docker_engine() {
    let repo = TestRepo::new();
    let workflow =
        format!("name: probe\non: {{ push: {{}} }}\njobs:\n  probe:\n    steps:{PROBE_SCRIPT}");
    repo.commit(&[("workflows/probe.yaml", &workflow)], "probe");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let head = repo.commit(&[("notes.txt", "a change\n")], "change");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &repo, &[], None);

    let body = push_payload("feature", "0000000000000000000000000000000000000000", &head);
    assert_eq!(deliver(&server, "push", "probe-1", &body).0, 202);
    let runs = finished_runs(&server, &head, 1);
    assert_eq!(runs[0]["event"], "push", "{runs:?}");
    let log = log_of(&server, &runs[0], "probe");
    assert_eq!(runs[0]["status"], "succeeded", "{log}");
    assert_no_marker(&log);
    // A member event does not get a secret that is not marked for pull requests.
    assert!(log.contains("given=[]"), "{log}");
    assert!(log.contains("uid=65534"), "{log}");
    assert!(log.contains("socket=absent"), "{log}");
}

#[test]
fn an_opted_in_host_step_runs_as_nobody_and_reads_neither_the_server_nor_its_data() {
    let repo = TestRepo::new();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("server");
    std::fs::create_dir_all(&data_dir).unwrap();
    let script = format!(
        r#"
      - run: |
          for process in /proc/[0-9]*; do cat $process/environ 2>/dev/null | tr '\0' '\n' | tr 'a-z' 'n-za-m'; done
          head -c 15 {data}/sluice.db 2>/dev/null | tr 'a-z' 'n-za-m'; echo
          touch {data}/planted 2>/dev/null && echo planted-in-data
          ls {data}/mirrors 2>/dev/null && echo listed-mirrors
          echo "uid=$(id -u)"
        shell: sh
"#,
        data = data_dir.display()
    );
    let workflow =
        format!("name: probe\non: {{ push: {{}} }}\njobs:\n  probe:\n    steps:{script}");
    repo.commit(&[("workflows/probe.yaml", &workflow)], "probe");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let head = repo.commit(&[("notes.txt", "a change\n")], "change");
    let server = start(&data_dir, &repo, &["--host-steps", REPOSITORY], None);

    let body = push_payload("feature", "0000000000000000000000000000000000000000", &head);
    assert_eq!(deliver(&server, "push", "host-probe-1", &body).0, 202);
    let runs = finished_runs(&server, &head, 1);
    let log = log_of(&server, &runs[0], "probe");
    assert_eq!(runs[0]["status"], "succeeded", "{log}");
    assert_no_marker(&log);
    if sluice::steps::isolation::running_as_root() {
        assert!(log.contains("uid=65534"), "{log}");
        assert!(!log.contains(&rotated("SQLite format")), "{log}");
        assert!(!log.contains("planted-in-data"), "{log}");
        assert!(!log.contains("listed-mirrors"), "{log}");
        assert!(!data_dir.join("planted").exists());
    }
}

const GUARDED_ENVIRONMENTS: &str = "name: production\nbranch: main\ngates: { approvals: 1 }\n";

#[test]
fn a_branch_whose_own_environments_name_it_a_deploy_branch_cuts_no_release() {
    let repo = TestRepo::new();
    let workflow = "name: ci\non: { push: {} }\njobs:\n  check:\n    steps:\n      - run: 'true'\n";
    let main = repo.commit(
        &[
            ("workflows/ci.yaml", workflow),
            ("environments/production.yaml", GUARDED_ENVIRONMENTS),
        ],
        "main",
    );
    repo.git(&["checkout", "-q", "-b", "evil"]);
    let evil = repo.commit(
        &[(
            "environments/production.yaml",
            "name: production\nbranch: evil\ngates: { approvals: 0 }\n",
        )],
        "make evil a deploy branch",
    );
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &repo, &[], None);

    let body = push_payload("evil", "0000000000000000000000000000000000000000", &evil);
    assert_eq!(deliver(&server, "push", "evil-1", &body).0, 202);
    let runs = finished_runs(&server, &evil, 1);
    assert_eq!(runs[0]["event"], "push", "{runs:?}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");

    // The same server does cut a release for a push to the real deploy branch, so the absence
    // above is the trust rule and not a server that never releases.
    let body = push_payload("main", "0000000000000000000000000000000000000000", &main);
    assert_eq!(deliver(&server, "push", "main-1", &body).0, 202);
    let runs = finished_runs(&server, &main, 1);
    assert_eq!(runs[0]["event"], "merge", "{runs:?}");
    let releases: Vec<serde_json::Value> =
        wait_for("a release of main", Duration::from_secs(60), || {
            let releases: Vec<serde_json::Value> = http()
                .get(server.url("/api/releases"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            (!releases.is_empty()).then_some(releases)
        });
    let commits: Vec<&str> = releases
        .iter()
        .map(|release| release["commit"].as_str().unwrap())
        .collect();
    assert_eq!(commits, vec![main.as_str()], "{releases:?}");
    assert_eq!(releases[0]["config_commit"], main.as_str());
}

fn pull_request_payload(
    number: u64,
    head_ref: &str,
    head: &str,
    base: &str,
    head_repository: &str,
) -> Vec<u8> {
    let mut payload = fixture("pull_request/opened.payload.json");
    payload["action"] = "opened".into();
    payload["number"] = number.into();
    payload["pull_request"]["number"] = number.into();
    payload["pull_request"]["head"]["sha"] = head.into();
    payload["pull_request"]["head"]["ref"] = head_ref.into();
    payload["pull_request"]["head"]["repo"]["full_name"] = head_repository.into();
    payload["pull_request"]["base"]["sha"] = base.into();
    payload["pull_request"]["base"]["ref"] = "main".into();
    payload["pull_request"]["base"]["repo"]["full_name"] = REPOSITORY.into();
    payload["repository"]["full_name"] = REPOSITORY.into();
    serde_json::to_vec(&payload).unwrap()
}

const GUARD_POLICY: &str = "package guard\n\nimport rego.v1\n\ndeny contains msg if {\n\tsome change in input.terraform.resource_changes\n\tchange.name == \"forbidden\"\n\tmsg := \"terraform_data.forbidden is not allowed here\"\n}\n";
const WEAK_POLICY: &str =
    "package guard\n\nimport rego.v1\n\ndeny contains msg if {\n\tfalse\n\tmsg := \"never\"\n}\n";
const INFRA: &str = "variable \"probe\" {\n  type    = string\n  default = \"unset\"\n}\n\nresource \"terraform_data\" \"probe\" {\n  input = \"probe=${var.probe}\"\n}\n";

/// A forbidden resource, and one whose input is whatever the server's environment and database
/// would give away (`SERVER_PID` and `DATA_DIR` are filled in by the test).
const PRYING_INFRA: &str = r#"
resource "terraform_data" "forbidden" {
  input = "x"
}

locals {
  environ  = "/proc/SERVER_PID/environ"
  database = "DATA_DIR/sluice.db"
}

resource "terraform_data" "pry" {
  input = "${fileexists(local.environ) ? upper(file(local.environ)) : "no-server-environ"} ${fileexists(local.database) ? "database-readable" : "no-database"}"
}
"#;

#[test]
fn a_pull_request_is_judged_by_the_default_branchs_policy_and_its_plan_sees_no_server_variable() {
    let repo = TestRepo::new();
    let workflow = "name: plan\non: { pull_request: {} }\njobs:\n  plan:\n    steps:\n      - terraform: { environment: dev, command: plan }\n";
    let base = repo.commit(
        &[
            ("workflows/plan.yaml", workflow),
            (
                "environments/dev.yaml",
                "name: dev\nterraform: { dir: infra }\n",
            ),
            ("policies/guard.rego", GUARD_POLICY),
            ("infra/main.tf", INFRA),
        ],
        "base",
    );
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("server");
    let server = start_with_image(&data_dir, &repo, TERRAFORM_IMAGE, &[], None);
    // The pull request's Terraform also tries to read the server's environment and database at
    // plan time, as `file()` or a provider could.
    repo.git(&["checkout", "-q", "-b", "weaken"]);
    let prying = PRYING_INFRA
        .replace("SERVER_PID", &server.child.id().to_string())
        .replace("DATA_DIR", &data_dir.display().to_string());
    let head = repo.commit(
        &[
            ("policies/guard.rego", WEAK_POLICY),
            ("infra/main.tf", &format!("{INFRA}{prying}")),
        ],
        "add a forbidden resource, pry, and weaken the policy",
    );

    let body = pull_request_payload(3, "weaken", &head, &base, REPOSITORY);
    assert_eq!(deliver(&server, "pull_request", "weaken-1", &body).0, 202);
    let runs = finished_runs(&server, &head, 1);
    let log = log_of(&server, &runs[0], "plan");
    assert_eq!(runs[0]["status"], "failed", "{log}");
    assert!(
        log.contains("terraform_data.forbidden is not allowed here"),
        "{log}"
    );
    assert!(log.contains("probe=unset"), "{log}");
    assert!(log.contains("no-server-environ no-database"), "{log}");
    // The weakened policy is shown to the reviewers, with the proposed policies' tests.
    let proposed = runs[0]["jobs"][0]["outputs"]["proposed_configuration"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        proposed.contains("- changed `policies/guard.rego`"),
        "{proposed}\n{log}"
    );
    assert!(proposed.contains("no policy tests"), "{proposed}");
    assert_no_marker(&log);
}

#[test]
fn a_forks_pull_request_waits_for_an_approval_then_runs_without_secrets() {
    let repo = TestRepo::new();
    let workflow = format!(
        "name: probe\non: {{ pull_request: {{}} }}\njobs:\n  probe:\n    steps:{PROBE_SCRIPT}"
    );
    let base = repo.commit(&[("workflows/probe.yaml", &workflow)], "base");
    repo.git(&["checkout", "-q", "-b", "outside"]);
    let head = repo.commit(&[("notes.txt", "from a fork\n")], "a fork's change");
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("sluice.yaml");
    std::fs::write(&config, "secrets:\n  MARKER: { pull-requests: true }\n").unwrap();
    let server = start(&data.path().join("server"), &repo, &[], Some(&config));

    let body = pull_request_payload(9, "outside", &head, &base, "stranger/ml-platform");
    assert_eq!(deliver(&server, "pull_request", "fork-1", &body).0, 202);
    let waiting = finished_runs(&server, &head, 1);
    assert_eq!(waiting[0]["status"], "skipped", "{waiting:?}");
    assert!(
        waiting[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("waiting for approval"),
        "{waiting:?}"
    );
    let id = waiting[0]["id"].as_i64().unwrap();

    let refused = http()
        .post(server.url(&format!("/api/runs/{id}/approve")))
        .header("authorization", "Bearer wrong")
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let approved = http()
        .post(server.url(&format!("/api/runs/{id}/approve")))
        .header("authorization", format!("Bearer {TOKEN_MARKER}"))
        .send()
        .unwrap();
    assert_eq!(approved.status().as_u16(), 202);

    let runs = finished_runs(&server, &head, 2);
    let ran = runs
        .iter()
        .find(|run| run["id"].as_i64() != Some(id))
        .expect("the approved run");
    let log = log_of(&server, ran, "probe");
    assert_eq!(ran["status"], "succeeded", "{log}");
    assert_no_marker(&log);
    // Even a secret marked for pull requests never reaches a fork.
    assert!(log.contains("given=[]"), "{log}");
    assert!(log.contains("socket=absent"), "{log}");

    // Re-running the approved run from the web UI does not carry the old approval: the fork's
    // code waits for a new one, and then runs as untrusted as before.
    let token = sluice_ok(
        &data.path().join("server"),
        &["token", "create", "dana", "--role", "approver"],
    )
    .trim()
    .to_owned();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = sign_in(&client, &server, &token);
    let ran_id = ran["id"].as_i64().unwrap();
    let page = client
        .get(server.url(&format!("/runs/{ran_id}")))
        .header(reqwest::header::COOKIE, &session)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let rerun = client
        .post(server.url(&format!("/runs/{ran_id}/rerun")))
        .header(reqwest::header::COOKIE, &session)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .unwrap();
    assert_eq!(rerun.status().as_u16(), 200);
    let runs = finished_runs(&server, &head, 3);
    let held = runs
        .iter()
        .find(|run| run["id"].as_i64() > Some(ran_id))
        .expect("the re-run");
    assert_eq!(held["status"], "skipped", "{held:?}");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .starts_with("waiting for approval"),
        "{held:?}"
    );
    let held_id = held["id"].as_i64().unwrap();
    let approved = http()
        .post(server.url(&format!("/api/runs/{held_id}/approve")))
        .header("authorization", format!("Bearer {TOKEN_MARKER}"))
        .send()
        .unwrap();
    assert_eq!(approved.status().as_u16(), 202);
    let runs = finished_runs(&server, &head, 4);
    let rerun = runs
        .iter()
        .find(|run| run["id"].as_i64() > Some(held_id))
        .expect("the approved re-run");
    let log = log_of(&server, rerun, "probe");
    assert_eq!(rerun["status"], "succeeded", "{log}");
    assert_no_marker(&log);
    assert!(log.contains("given=[]"), "{log}");
}

#[test]
fn a_jobs_image_runs_its_steps_and_without_one_a_step_is_refused_with_the_fix() {
    let repo = TestRepo::new();
    let workflow = "name: images\non: { push: {} }\njobs:\n  with-image:\n    image: local/busybox:1\n    steps:\n      - run: echo \"in $(cat /etc/hostname | wc -c) byte hostname as $(id -u)\"\n  without-image:\n    steps:\n      - run: echo never\n";
    repo.commit(&[("workflows/images.yaml", workflow)], "images");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let head = repo.commit(&[("notes.txt", "a change\n")], "change");
    let data = tempfile::tempdir().unwrap();
    // No default image and no host steps: the server's defaults.
    let server = Server::start_isolated(
        data.path(),
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &[],
        &[],
    );
    let body = push_payload("feature", "0000000000000000000000000000000000000000", &head);
    assert_eq!(deliver(&server, "push", "images-1", &body).0, 202);
    let runs = finished_runs(&server, &head, 1);
    let with_image = log_of(&server, &runs[0], "with-image");
    assert!(with_image.contains("as 65534"), "{with_image}");
    let without_image = log_of(&server, &runs[0], "without-image");
    assert!(
        !without_image.lines().any(|line| line == "never"),
        "{without_image}"
    );
    assert!(
        without_image.contains("set `image:` on the step or the job, or `steps.image`"),
        "{without_image}"
    );
    let statuses = job_statuses(&runs[0]);
    assert!(
        statuses.contains(&("with-image".to_owned(), "succeeded".to_owned())),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("without-image".to_owned(), "failed".to_owned())),
        "{statuses:?}"
    );
}
