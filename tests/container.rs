//! `run` steps with `image:` go through the real Docker engine (scripts/setup-docker.sh starts one
//! and imports the `local/busybox:1` base image).

mod support;

use support::TestRepo;

fn run_json(
    repo: &TestRepo,
    commit: &str,
    data: &std::path::Path,
    docker_host: Option<&str>,
) -> (Option<i32>, serde_json::Value, String) {
    let mut command = support::sluice_command(data);
    command.args([
        "run",
        "--repo",
        repo.path().to_str().unwrap(),
        "--commit",
        commit,
        "--json",
    ]);
    if let Some(host) = docker_host {
        command.env("DOCKER_HOST", host);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let runs = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        output.status.code(),
        runs,
        format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
    )
}

const PIPELINE: &str = "name: ci\non: { push: {} }\njobs:\n  in-container:\n    steps:\n      - image: local/busybox:1\n        run: |\n          cat data/hello.txt\n          echo \"event=$SLUICE_EVENT\"\n";

#[test]
fn a_step_with_an_image_runs_in_a_container_with_the_commit_mounted() {
    let repo = TestRepo::new();
    let commit = repo.commit(
        &[
            ("workflows/ci.yaml", PIPELINE),
            ("data/hello.txt", "hello from the commit\n"),
        ],
        "container",
    );
    let data = tempfile::tempdir().unwrap();
    let (code, runs, output) = run_json(&repo, &commit, data.path(), None);
    assert_eq!(
        code,
        Some(0),
        "is the Docker engine running? scripts/setup-docker.sh starts one.\n{output}"
    );
    let logs = support::sluice(
        data.path(),
        &["logs", &runs[0]["id"].to_string(), "in-container"],
    );
    let log = String::from_utf8_lossy(&logs.stdout);
    assert!(log.contains("hello from the commit"), "{log}");
    assert!(log.contains("event=push"), "{log}");
}

#[test]
fn an_unreachable_engine_fails_the_job_naming_the_address_tried() {
    let repo = TestRepo::new();
    let commit = repo.commit(
        &[("workflows/ci.yaml", PIPELINE), ("data/hello.txt", "x\n")],
        "container",
    );
    let data = tempfile::tempdir().unwrap();
    let (code, runs, output) = run_json(
        &repo,
        &commit,
        data.path(),
        Some("unix:///nonexistent/docker.sock"),
    );
    assert_eq!(code, Some(1), "{output}");
    let reason = runs[0]["jobs"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("unix:///nonexistent/docker.sock"),
        "{reason}"
    );
    assert!(reason.contains("start one"), "{reason}");
}
