//! Pull-request commands through a real `sluice serve` and a local fake of GitHub's REST API fed
//! with GitHub's real payloads: the flow a team lives in (open a pull request, see the plan
//! comment, `/sluice plan dev`, `/sluice approve staging`, merge, approve production in the
//! pull request's thread), who may command what (a writer, a reader, a bot, an edited comment, a
//! quoted reply, the pull request's own author), `/sluice apply` refused until the environment's
//! requirements hold and then applying exactly the stored plan, and a plan queued behind a lock
//! that runs once `/sluice unlock` releases it.

mod support;

#[path = "support/github.rs"]
mod github;

use github::{FakeGithub, comment_payload, pull_request_document, pull_request_payload};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::*;

const PLAN_KEY: &str = "636f6d6d616e6473207465737420706c616e206b657920303132333435363738";
const TEAM: &str = "example/ml-platform-leads";

const PIPELINE: &str = "name: platform
on:
  pull_request: { branches: [main] }
  push: { branches: [main] }
jobs:
  check:
    steps:
      - run: 'true'
  plan-dev:
    if: event == 'pull_request'
    steps:
      - terraform: { environment: dev, command: plan }
  plan-staging:
    if: event == 'pull_request'
    steps:
      - terraform: { environment: staging, command: plan }
";

fn infra(value: &str) -> String {
    format!(
        "terraform {{\n  backend \"local\" {{}}\n}}\n\nresource \"terraform_data\" \"bucket\" {{\n  input = \"{value}\"\n}}\n"
    )
}

/// A repository on `main` with the pipeline, three environments and their Terraform.
fn platform(repo: &TestRepo, dev: &str) -> String {
    repo.commit(
        &[
            ("workflows/platform.yaml", PIPELINE),
            ("environments/dev.yaml", dev),
            (
                "environments/staging.yaml",
                "name: staging\nafter: dev\nbranch: main\ngates: { approvals: 1 }\nterraform: { dir: infra/staging }\n",
            ),
            (
                "environments/production.yaml",
                "name: production\nafter: staging\nbranch: main\ngates:\n  approvals: 1\n  approvers: [\"@example/ml-platform-leads\"]\nkubernetes: { namespace: ml-prod, manifests: k8s }\n",
            ),
            ("infra/dev/main.tf", &infra("v1")),
            ("infra/staging/main.tf", &infra("v1")),
        ],
        "platform",
    )
}

struct Setup {
    github: FakeGithub,
    server: Server,
    repo: TestRepo,
    base: String,
    _data: tempfile::TempDir,
    data_dir: PathBuf,
    next_comment: std::cell::Cell<u64>,
}

fn start(dev_environment: &str) -> Setup {
    let github = FakeGithub::start();
    for (login, permission) in [
        ("dana", "write"),
        ("erin", "write"),
        ("frank", "write"),
        ("gina", "write"),
        ("pat", "write"),
        ("rita", "read"),
    ] {
        github.grant(login, permission);
    }
    let repo = TestRepo::new();
    let base = platform(&repo, dev_environment);
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("server");
    let calls = data.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let config = data.path().join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "promotion: {{ interval: 200ms, health-poll: 50ms }}\ngithub:\n  api-url: {}\n  token-env: SLUICE_GITHUB_TOKEN\n",
            github.uri()
        ),
    )
    .unwrap();
    let server = Server::start_with_env(
        &data_dir,
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &["--config", config.to_str().unwrap()],
        &[
            ("SLUICE_PLAN_KEY", Path::new(PLAN_KEY)),
            ("SLUICE_GITHUB_TOKEN", Path::new("fake-github-token")),
            ("SLUICE_RECORDING_TARGETS", &calls),
        ],
    );
    Setup {
        github,
        server,
        repo,
        base,
        _data: data,
        data_dir,
        next_comment: std::cell::Cell::new(700),
    }
}

impl Setup {
    /// A branch off `main` changing dev's and staging's Terraform input to `value`; its head.
    fn branch(&self, name: &str, value: &str) -> String {
        self.repo.git(&["checkout", "-q", "-b", name, "main"]);
        let head = self.repo.commit(
            &[
                ("infra/dev/main.tf", &infra(value)),
                ("infra/staging/main.tf", &infra(value)),
            ],
            &format!("Set the input to {value}"),
        );
        self.repo.git(&["checkout", "-q", "main"]);
        head
    }

    /// Opens pull request `number` for `head` on `branch` by `author`; waits for its run.
    fn open(&self, number: u64, branch: &str, head: &str, author: &str) -> Vec<Value> {
        let document = pull_request_document(REPOSITORY, number, branch, head, &self.base, author);
        self.github.with(|state| {
            state.pulls.insert(number, document.clone());
            state.commits.insert(
                number,
                json!([{ "author": { "login": author }, "committer": { "login": author } }]),
            );
        });
        let (status, text) = deliver(
            &self.server,
            "pull_request",
            &format!("pr-{number}-{head}"),
            &pull_request_payload(REPOSITORY, "opened", &document),
        );
        assert_eq!(status, 202, "{text}");
        finished_runs(&self.server, head, 1)
    }

    /// Sends a comment; returns its id and when the delivery was accepted.
    fn send_comment(&self, number: u64, login: &str, body: &str) -> (u64, Instant) {
        let id = self.next_comment.get() + 1;
        self.next_comment.set(id);
        let payload = comment_payload(REPOSITORY, number, id, login, body);
        self.send_payload(&payload, id)
    }

    fn send_payload(&self, payload: &Value, id: u64) -> (u64, Instant) {
        let (status, text) = deliver(
            &self.server,
            "issue_comment",
            &format!("comment-{id}"),
            &serde_json::to_vec(payload).unwrap(),
        );
        assert_eq!(status, 202, "{text}");
        (id, Instant::now())
    }

    /// Comments `body` as `login` and waits for sluice's one answer; returns it.
    fn command(&self, number: u64, login: &str, body: &str) -> (u64, String) {
        let before = self.github.answers_on(number).len();
        let (id, _) = self.send_comment(number, login, body);
        let answer = wait_for(
            &format!("the answer to {body:?} by {login}"),
            Duration::from_secs(60),
            || self.github.answers_on(number).get(before).cloned(),
        );
        (id, answer.body)
    }

    fn history(&self) -> Vec<Value> {
        http()
            .get(
                self.server
                    .url(&format!("/api/history?repository={REPOSITORY}")),
            )
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    fn status(&self) -> Vec<Value> {
        http()
            .get(
                self.server
                    .url(&format!("/api/status?repository={REPOSITORY}")),
            )
            .send()
            .unwrap()
            .json::<Value>()
            .map(|value| value.as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn release_in(&self, environment: &str) -> Option<String> {
        self.status()
            .into_iter()
            .find(|entry| entry["environment"] == environment)
            .and_then(|entry| entry["release"].as_str().map(str::to_owned))
    }
}

/// The job called `name` of a run as the API shows it.
fn job_named(run: &Value, name: &str) -> Value {
    run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {run:#?}"))
        .clone()
}

/// The newest of `runs`.
fn newest(runs: &[Value]) -> &Value {
    runs.iter().max_by_key(|run| run["id"].as_i64()).unwrap()
}

fn jobs_of(run: &Value) -> Vec<String> {
    job_statuses(run)
        .into_iter()
        .map(|(name, status)| format!("{name}={status}"))
        .collect()
}

#[test]
fn a_pull_request_is_planned_approved_merged_and_promoted_from_its_comment_thread() {
    let setup = start("name: dev\nbranch: main\nterraform: { dir: infra/dev }\n");
    let head = setup.branch("feature", "v2");
    let runs = setup.open(7, "feature", &head, "pat");
    assert_eq!(runs[0]["status"], "succeeded", "{:#?}", runs[0]);
    // The plan comment arrives.
    let comment = wait_for("the plan comment", Duration::from_secs(30), || {
        setup.github.comments_on(7).into_iter().next()
    });
    assert!(comment.body.contains("Terraform"), "{}", comment.body);

    // A writer plans dev again: acknowledged, answered once, and only dev's plan runs.
    let (plan_comment, answer) = setup.command(7, "dana", "/sluice plan dev");
    assert!(
        answer.contains(&format!("planning `dev` again at `{}`", &head[..12])),
        "{answer}"
    );
    assert_eq!(
        setup.github.reactions_to(plan_comment),
        vec!["eyes", "rocket"]
    );
    let runs = finished_runs(&setup.server, &head, 2);
    let newest = newest(&runs);
    assert_eq!(jobs_of(newest), vec!["plan-dev=succeeded"], "{newest:#?}");

    // A reader is refused, and says so; a bot, an edited comment, a deleted one and a quoted
    // reply get nothing at all.
    let (read_comment, refusal) = setup.command(7, "rita", "/sluice plan");
    assert!(refusal.contains("`read` permission"), "{refusal}");
    assert_eq!(setup.github.reactions_to(read_comment), vec!["eyes", "-1"]);
    let answers_before = setup.github.answers_on(7).len();
    let mut silent = Vec::new();
    let mut bot = comment_payload(REPOSITORY, 7, 801, "sluice-ci", "/sluice apply");
    bot["comment"]["user"]["type"] = json!("Bot");
    silent.push(setup.send_payload(&bot, 801).0);
    let mut edited = comment_payload(REPOSITORY, 7, 802, "dana", "/sluice plan");
    edited["action"] = json!("edited");
    silent.push(setup.send_payload(&edited, 802).0);
    let mut deleted = comment_payload(REPOSITORY, 7, 803, "dana", "/sluice plan");
    deleted["action"] = json!("deleted");
    silent.push(setup.send_payload(&deleted, 803).0);
    let quoted = comment_payload(REPOSITORY, 7, 804, "dana", "> /sluice apply\n\nwhy apply?");
    silent.push(setup.send_payload(&quoted, 804).0);
    // Deliveries are taken in order: once this one is answered, those above were looked at.
    let (_, help) = setup.command(7, "dana", "/sluice help");
    assert!(help.contains("/sluice approve ENV [RELEASE]"), "{help}");
    assert_eq!(setup.github.answers_on(7).len(), answers_before + 1);
    for id in silent {
        assert!(
            setup.github.reactions_to(id).is_empty(),
            "comment {id} got a reaction"
        );
    }

    // Staging is approved before the merge, by someone other than the author.
    let (_, own) = setup.command(7, "pat", "/sluice approve staging");
    assert!(own.contains("authored this pull request"), "{own}");
    let (_, approved) = setup.command(7, "erin", "/sluice approve staging");
    assert!(
        approved.contains("recorded @erin's approval for `staging`"),
        "{approved}"
    );

    // The merge.
    setup.repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "feature",
        "-m",
        "Merge pull request #7",
    ]);
    let merge = setup.repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let document = setup.github.with(|state| {
        let document = state.pulls.get_mut(&7).unwrap();
        document["state"] = json!("closed");
        document["merged"] = json!(true);
        document["merge_commit_sha"] = json!(merge);
        document.clone()
    });
    deliver(
        &setup.server,
        "pull_request",
        "pr-7-closed",
        &pull_request_payload(REPOSITORY, "closed", &document),
    );
    deliver(
        &setup.server,
        "push",
        "merge-7",
        &push_payload("main", &setup.base, &merge),
    );
    let release = wait_for("staging runs the merge", Duration::from_secs(120), || {
        setup.release_in("staging")
    });
    assert!(release.ends_with(&merge[..12]), "{release}");
    let history = setup.history();
    assert!(
        history.iter().any(|entry| entry["action"] == "approve"
            && entry["outcome"] == "carried"
            && entry["actor"] == "erin"
            && entry["environment"] == "staging"),
        "{history:#?}"
    );
    assert_eq!(setup.release_in("production"), None);

    // Production's approvers are a GitHub team: a pending invitation is not membership.
    setup.github.set_membership(TEAM, "gina", "pending");
    setup.github.set_membership(TEAM, "frank", "active");
    let (_, pending) = setup.command(7, "gina", "/sluice approve production");
    assert!(
        pending.contains("membership pending, per GitHub"),
        "{pending}"
    );
    let (_, approved) = setup.command(7, "frank", "/sluice approve production");
    assert!(
        approved.contains(&format!(
            "recorded @frank's approval of release `{release}` for `production` (member of `@example/ml-platform-leads`, per GitHub"
        )),
        "{approved}"
    );
    wait_for("production runs the merge", Duration::from_secs(60), || {
        (setup.release_in("production").as_deref() == Some(release.as_str())).then_some(())
    });
    let gate = setup
        .history()
        .into_iter()
        .find(|entry| {
            entry["action"] == "gate"
                && entry["outcome"] == "passed"
                && entry["environment"] == "production"
        })
        .expect("production's gate decision is in the history");
    assert!(
        gate["reason"]
            .as_str()
            .unwrap()
            .contains("frank (@example/ml-platform-leads, per GitHub)"),
        "{gate:#?}"
    );

    // How long a command waits for its acknowledgement and its answer.
    let mut to_reaction = Vec::new();
    let mut to_answer = Vec::new();
    for _ in 0..20 {
        let before = setup.github.answers_on(7).len();
        let (id, sent) = setup.send_comment(7, "erin", "/sluice unlock dev");
        let answer = wait_for("an answer", Duration::from_secs(30), || {
            setup.github.answers_on(7).get(before).cloned()
        });
        assert!(
            answer.body.contains("holds no Terraform lock"),
            "{}",
            answer.body
        );
        let reacted = setup.github.first_reaction_at(id).unwrap();
        to_reaction.push(reacted.saturating_duration_since(sent));
        to_answer.push(answer.at.saturating_duration_since(sent));
    }
    to_reaction.sort();
    to_answer.sort();
    eprintln!(
        "command latency over 20 `/sluice unlock dev`: delivery accepted -> reaction median {:?} (max {:?}), -> answer median {:?} (max {:?})",
        to_reaction[10], to_reaction[19], to_answer[10], to_answer[19]
    );
}

/// The terraform state sluice keeps for `environment`, as text.
fn state_of(data_dir: &Path, environment: &str) -> String {
    let mut found = String::new();
    let mut stack = vec![data_dir.join("terraform")];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|name| name == "terraform.tfstate")
                && path.to_string_lossy().contains(environment)
            {
                found = std::fs::read_to_string(&path).unwrap_or_default();
            }
        }
    }
    found
}

#[test]
fn apply_from_a_comment_waits_for_approved_mergeable_and_undiverged_then_applies_the_stored_plan() {
    let setup = start(
        "name: dev\nbranch: main\nterraform:\n  dir: infra/dev\n  apply: on-comment\n  apply_requirements: [approved, mergeable, undiverged]\n",
    );
    let head = setup.branch("feature", "v2");
    setup.open(9, "feature", &head, "pat");
    // main moves on after the branch left it, and GitHub has no review and sees conflicts.
    setup.repo.commit(&[("README.md", "# platform\n")], "Docs");
    setup.github.with(|state| {
        state.pulls.get_mut(&9).unwrap()["mergeable"] = json!(false);
    });
    let (refused_id, refused) = setup.command(9, "dana", "/sluice apply dev");
    assert!(refused.contains("refused"), "{refused}");
    for unmet in ["approved:", "mergeable:", "undiverged: `main` moved"] {
        assert!(refused.contains(unmet), "{unmet} in {refused}");
    }
    assert_eq!(setup.github.reactions_to(refused_id), vec!["eyes", "-1"]);
    assert!(
        state_of(&setup.data_dir, "dev").is_empty(),
        "nothing was applied"
    );
    let (_, after_merge_only) = setup.command(9, "dana", "/sluice apply staging");
    assert!(
        after_merge_only.contains("applies only after the merge"),
        "{after_merge_only}"
    );

    // Reviewed, mergeable, and main merged into the branch: a new head, planned again.
    setup.repo.git(&["checkout", "-q", "feature"]);
    setup
        .repo
        .git(&["merge", "-q", "--no-ff", "main", "-m", "Merge main"]);
    let new_head = setup.repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    setup.repo.git(&["checkout", "-q", "main"]);
    let document = setup.github.with(|state| {
        state.reviews.insert(
            9,
            json!([{ "user": { "login": "erin" }, "state": "APPROVED" }]),
        );
        let document = state.pulls.get_mut(&9).unwrap();
        document["mergeable"] = json!(true);
        document["head"]["sha"] = json!(new_head);
        document.clone()
    });
    deliver(
        &setup.server,
        "pull_request",
        "pr-9-sync",
        &pull_request_payload(REPOSITORY, "synchronize", &document),
    );
    let runs = finished_runs(&setup.server, &new_head, 1);
    let plan_job = job_named(&runs[0], "plan-dev");
    let planned_sha = plan_job["outputs"]["plan_sha256"]
        .as_str()
        .expect("the plan job records its plan's sha256")
        .to_owned();
    let (applied_id, applied) = setup.command(9, "dana", "/sluice apply dev");
    assert!(
        applied.contains(&format!(
            "applied the reviewed plan `{}`",
            &planned_sha[..12]
        )),
        "{applied}"
    );
    assert_eq!(
        setup.github.reactions_to(applied_id),
        vec!["eyes", "rocket"]
    );
    assert!(state_of(&setup.data_dir, "dev").contains("\"v2\""));
    let history = setup.history();
    assert!(
        history.iter().any(|entry| entry["action"] == "apply"
            && entry["outcome"] == "applied"
            && entry["actor"] == "dana"
            && entry["reason"].as_str().unwrap().contains(&planned_sha)),
        "{history:#?}"
    );
    // The plan is spent: applying again is refused.
    let (_, again) = setup.command(9, "dana", "/sluice apply dev");
    assert!(again.contains("no reviewed plan"), "{again}");
}

#[test]
fn a_plan_queued_behind_a_lock_runs_when_the_holder_unlocks() {
    let setup = start("name: dev\nbranch: main\nterraform: { dir: infra/dev, lock: queue }\n");
    let first = setup.branch("first", "v2");
    let second = setup.branch("second", "v3");
    setup.open(11, "first", &first, "pat");
    let runs = setup.open(12, "second", &second, "pat");
    let queued = job_named(&runs[0], "plan-dev");
    assert_eq!(queued["status"], "failed", "{queued:#?}");
    assert!(
        queued["reason"]
            .as_str()
            .unwrap()
            .contains("queued at position 1"),
        "{queued:#?}"
    );

    // The second pull request cannot release a lock it does not hold.
    let (_, refused) = setup.command(12, "dana", "/sluice unlock dev");
    assert!(
        refused.contains("holds no Terraform lock on `dev`")
            && refused.contains("held by pull request #11"),
        "{refused}"
    );
    let (_, released) = setup.command(11, "dana", "/sluice unlock");
    assert!(
        released.contains("released the lock on `dev`"),
        "{released}"
    );
    // The queued pull request's dev plan runs by itself and takes the lock.
    let runs = finished_runs(&setup.server, &second, 2);
    let newest = newest(&runs);
    assert_eq!(jobs_of(newest), vec!["plan-dev=succeeded"], "{newest:#?}");
    let history = setup.history();
    assert!(
        history
            .iter()
            .any(|entry| entry["action"] == "unlock" && entry["actor"] == "dana"),
        "{history:#?}"
    );
}

#[test]
fn a_fork_s_waiting_runs_start_when_a_writer_comments_run() {
    let setup = start("name: dev\nbranch: main\nterraform: { dir: infra/dev }\n");
    let head = setup.branch("outside", "v9");
    let mut document =
        pull_request_document(REPOSITORY, 13, "outside", &head, &setup.base, "stranger");
    document["head"]["repo"]["full_name"] = json!("stranger/ml-platform");
    document["head"]["repo"]["fork"] = json!(true);
    setup
        .github
        .with(|state| state.pulls.insert(13, document.clone()));
    deliver(
        &setup.server,
        "pull_request",
        "fork-13",
        &pull_request_payload(REPOSITORY, "opened", &document),
    );
    let waiting = finished_runs(&setup.server, &head, 1);
    let reason = waiting[0]["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.starts_with("waiting for approval") && reason.contains("`/sluice run`"),
        "{reason}"
    );
    let (_, refused) = setup.command(13, "rita", "/sluice run");
    assert!(refused.contains("`read` permission"), "{refused}");
    let (_, applied) = setup.command(13, "dana", "/sluice apply dev");
    assert!(applied.contains("comes from a fork"), "{applied}");
    let (_, approved) = setup.command(13, "dana", "/sluice run");
    assert!(
        approved.contains(&format!("approved run #{}", waiting[0]["id"])),
        "{approved}"
    );
    // The approved run is planned again as approved: it no longer waits.
    let runs = finished_runs(&setup.server, &head, 2);
    let started = runs
        .iter()
        .find(|run| run["id"] != waiting[0]["id"])
        .expect("the approved run");
    assert!(
        !started["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("waiting for approval"),
        "{started:#?}"
    );
    let (_, again) = setup.command(13, "dana", "/sluice run");
    assert!(
        again.contains("no run of this pull request waits"),
        "{again}"
    );
    // Planning a fork's pull request again does not make it trusted: the re-plan waits too.
    let (_, planned) = setup.command(13, "dana", "/sluice plan");
    assert!(planned.contains("comes from a fork"), "{planned}");
    let runs = finished_runs(&setup.server, &head, 3);
    let replanned = newest(&runs);
    assert!(
        replanned["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("waiting for approval"),
        "{replanned:#?}"
    );
}
