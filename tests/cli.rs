//! The command line as a user types it: `validate`, `run`, `runs`, `logs`, and what `serve`
//! refuses to start with.

mod support;

use support::{TestRepo, sluice, sluice_command};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_passes_on_the_reference_configuration() {
    let data = tempfile::tempdir().unwrap();
    let output = sluice(data.path(), &["validate", env!("CARGO_MANIFEST_DIR")]);
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(text(&output.stdout).contains("valid"));
}

#[test]
fn validate_reports_every_problem_with_its_location_and_exits_1() {
    let repo = TestRepo::new();
    repo.commit(
        &[
            ("workflows/a.yaml", "name: a\non: { push: {} }\njobs:\n  build:\n    nedds: test\n    steps: [{run: 'true'}]\n  test:\n    needs: [lint]\n    steps: [{run: 'true'}]\n"),
            ("environments/staging.yaml", "name: staging\nafter: dve\n"),
            ("environments/dev.yaml", "name: dev\n"),
        ],
        "broken",
    );
    let data = tempfile::tempdir().unwrap();
    let output = sluice(data.path(), &["validate", repo.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("environments/staging.yaml:2:8:"),
        "{stdout}"
    );
    assert!(stdout.contains("workflows/a.yaml:5:5:"), "{stdout}");
    assert!(stdout.contains("workflows/a.yaml:8:13:"), "{stdout}");
    assert!(
        stdout.contains("dev"),
        "the hint names the nearest environment: {stdout}"
    );
}

#[test]
fn run_executes_a_commit_locally_and_exits_by_the_outcome() {
    let repo = TestRepo::new();
    let good = repo.commit(
        &[("workflows/ci.yaml", "name: ci\non: { push: {} }\njobs:\n  hello:\n    steps:\n      - run: echo hello from $SLUICE_EVENT\n")],
        "good",
    );
    let data = tempfile::tempdir().unwrap();
    let output = sluice(
        data.path(),
        &[
            "run",
            "--repo",
            repo.path().to_str().unwrap(),
            "--commit",
            &good,
            "--event",
            "push",
            "--json",
        ],
    );
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let runs: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints runs");
    assert_eq!(runs[0]["commit"], good.as_str());
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["jobs"][0]["name"], "hello");

    let logs = sluice(data.path(), &["logs", &runs[0]["id"].to_string(), "hello"]);
    assert!(
        text(&logs.stdout).contains("hello from push"),
        "{}",
        text(&logs.stdout)
    );
    let listed = sluice(data.path(), &["runs"]);
    assert!(
        text(&listed.stdout).contains("succeeded"),
        "{}",
        text(&listed.stdout)
    );

    let bad = repo.commit(
        &[(
            "workflows/ci.yaml",
            "name: ci\non: { push: {} }\njobs:\n  hello:\n    steps:\n      - run: exit 3\n",
        )],
        "bad",
    );
    let output = sluice(
        data.path(),
        &[
            "run",
            "--repo",
            repo.path().to_str().unwrap(),
            "--commit",
            &bad,
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(
        text(&output.stdout).contains("exited with code 3"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn secrets_reach_steps_but_never_the_log() {
    let repo = TestRepo::new();
    let commit = repo.commit(
        &[("workflows/ci.yaml", "name: ci\non: { push: {} }\njobs:\n  use-token:\n    steps:\n      - run: test \"$TOKEN\" = s3cr3t-value && echo \"token is $TOKEN\"\n        env: { TOKEN: \"${{ secrets.REGISTRY_TOKEN }}\" }\n")],
        "secret",
    );
    let data = tempfile::tempdir().unwrap();
    let output = sluice_command(data.path())
        .args([
            "run",
            "--repo",
            repo.path().to_str().unwrap(),
            "--commit",
            &commit,
            // Secrets reach trusted runs: a merge.
            "--event",
            "merge",
            "--json",
        ])
        .env("SLUICE_SECRET_REGISTRY_TOKEN", "s3cr3t-value")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let runs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let logs = sluice(data.path(), &["logs", &runs[0]["id"].to_string()]);
    let log = text(&logs.stdout);
    assert!(log.contains("token is ***"), "{log}");
    assert!(!log.contains("s3cr3t-value"), "{log}");
}

#[test]
fn a_step_timeout_kills_the_step_and_fails_the_job() {
    let repo = TestRepo::new();
    let commit = repo.commit(
        &[("workflows/ci.yaml", "name: ci\non: { push: {} }\njobs:\n  hang:\n    steps:\n      - run: sleep 600\n        timeout: 1s\n")],
        "hang",
    );
    let data = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = sluice(
        data.path(),
        &[
            "run",
            "--repo",
            repo.path().to_str().unwrap(),
            "--commit",
            &commit,
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "the step was not killed"
    );
    let runs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(runs[0]["jobs"][0]["status"], "failed");
    assert!(
        runs[0]["jobs"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{}",
        runs[0]
    );
}

/// Runs HEAD of `repo` on a new branch with this name (a valid git ref that holds shell code).
fn run_on_branch(repo: &TestRepo, branch: &str, data_dir: &std::path::Path) -> serde_json::Value {
    repo.git(&["checkout", "-q", "-b", branch]);
    repo.commit(&[], &format!("on {branch}"));
    let output = sluice(
        data_dir,
        &[
            "run",
            "--repo",
            repo.path().to_str().unwrap(),
            "--commit",
            "HEAD",
            "--json",
        ],
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "--json prints runs:\n{}{}",
            text(&output.stdout),
            text(&output.stderr)
        )
    })
}

/// A directory whose path can be part of a branch name (no component starts with a dot).
fn marker_directory() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sluice-marker-")
        .tempdir()
        .unwrap()
}

#[test]
fn a_branch_name_is_never_pasted_into_a_run_script() {
    let markers = marker_directory();
    let repo = TestRepo::new();
    repo.commit(
        &[("workflows/ci.yaml", "name: ci\non: { push: {} }\njobs:\n  greet:\n    steps:\n      - run: echo building ${{ git.branch }}\n")],
        "pipeline that pastes the branch",
    );
    let markers_path = markers.path().display().to_string();
    for branch in [
        format!("a;touch${{IFS}}{markers_path}/semicolon"),
        format!("$(touch${{IFS}}{markers_path}/substitution)"),
    ] {
        let data = tempfile::tempdir().unwrap();
        let runs = run_on_branch(&repo, &branch, data.path());
        assert_eq!(runs[0]["status"], "failed", "{runs}");
        assert_eq!(runs[0]["jobs"], serde_json::json!([]), "no job ran: {runs}");
        let reason = runs[0]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("workflows/ci.yaml:6:28: `${{ git.branch }}` in `run:` can be chosen by whoever pushes"),
            "{reason}"
        );
    }
    let created: Vec<_> = std::fs::read_dir(markers.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(
        created.is_empty(),
        "a branch name ran as shell code: {created:?}"
    );
}

#[test]
fn a_branch_name_passed_through_env_is_printed_literally() {
    let markers = marker_directory();
    let repo = TestRepo::new();
    repo.commit(
        &[("workflows/ci.yaml", "name: ci\non: { push: {} }\njobs:\n  greet:\n    steps:\n      - run: echo \"building $BRANCH\"\n        env: { BRANCH: \"${{ git.branch }}\" }\n")],
        "pipeline that passes the branch as data",
    );
    let branch = format!(
        "$(touch${{IFS}}{}/substitution)-${{{{secrets.TOKEN}}}}",
        markers.path().display()
    );
    let data = tempfile::tempdir().unwrap();
    let runs = run_on_branch(&repo, &branch, data.path());
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    let logs = sluice(data.path(), &["logs", &runs[0]["id"].to_string(), "greet"]);
    let log = text(&logs.stdout);
    assert!(log.contains(&format!("building {branch}\n")), "{log}");
    let created: Vec<_> = std::fs::read_dir(markers.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(
        created.is_empty(),
        "a branch name ran as shell code: {created:?}"
    );
}

/// A PEM-shaped key: armour lines around 64-column base64 lines, the last one shorter.
fn pem_like_key() -> String {
    use base64::Engine;
    let bytes: Vec<u8> = (0..700u32).map(|index| (index * 37 % 251) as u8).collect();
    let body = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_key_its_base64_and_its_base64url_never_reach_the_log() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let key = pem_like_key();
    let repo = TestRepo::new();
    let commit = repo.commit(
        &[(
            "workflows/ci.yaml",
            "\
name: ci
on: { push: {} }
jobs:
  print-key:
    steps:
      - env: { KEY: \"${{ secrets.DEPLOY_KEY }}\" }
        run: |
          echo \"$KEY\"
          printf '%s' \"$KEY\" | sed 's/^/line: /'
          printf '%s' \"$KEY\" | base64
          printf '%s' \"$KEY\" | base64 -w0; echo
          printf '%s' \"$KEY\" | base64 -w0 | tr '+/' '-_'; echo
          printf '%s' \"$KEY\" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo
          echo printed
",
        )],
        "print a key",
    );
    let data = tempfile::tempdir().unwrap();
    let output = sluice_command(data.path())
        .args(["run", "--repo", repo.path().to_str().unwrap()])
        .args(["--commit", &commit, "--event", "merge", "--json"])
        .env("SLUICE_SECRET_DEPLOY_KEY", &key)
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    let logs = sluice(
        data.path(),
        &["logs", &runs[0]["id"].to_string(), "print-key"],
    );
    let log = text(&logs.stdout);
    assert!(
        log.contains("line: ***") && log.contains("printed"),
        "{log}"
    );
    let mut shown: Vec<String> = key
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::to_owned)
        .collect();
    for encoded in [
        STANDARD.encode(&key),
        URL_SAFE.encode(&key),
        URL_SAFE_NO_PAD.encode(&key),
    ] {
        // Whole, and as `base64` wraps it.
        shown.extend(
            encoded
                .as_bytes()
                .chunks(76)
                .map(|chunk| String::from_utf8_lossy(chunk).into_owned()),
        );
        shown.push(encoded);
    }
    for secret_text in &shown {
        assert!(
            !log.contains(secret_text.as_str()),
            "`{secret_text}` is in the log:\n{log}"
        );
    }
}

#[test]
fn serve_refuses_a_kubernetes_api_server_it_cannot_use_and_never_echoes_its_password() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let serve = |api_server: &str| {
        sluice_command(data.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .arg("--repo")
            .arg(format!("acme/ml-platform={}", repo.path().display()))
            .args(["--kubernetes-api-server", api_server])
            .env("SLUICE_WEBHOOK_SECRET", "test-webhook-secret")
            .output()
            .expect("sluice runs")
    };
    for (api_server, says) in [
        ("127.0.0.1:8001", "is not a URL"),
        ("unix:///var/run/kube.sock", "is not an http(s) URL"),
        ("http://admin:hunter2@127.0.0.1:8001", "carries credentials"),
    ] {
        let output = serve(api_server);
        assert_eq!(output.status.code(), Some(2), "{api_server}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("--kubernetes-api-server") && stderr.contains(says),
            "{api_server}: {stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}
