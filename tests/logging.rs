//! Logs as people and log shippers read them: a Terraform step's output keeps its line breaks in
//! `sluice logs`, the server writes no colour codes into a file or a pipe, and `--log-format json`
//! (or `SLUICE_LOG_FORMAT=json`) writes one JSON object per line.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::{REPOSITORY, SECRET, TestRepo, push_payload, sign};

fn sluice(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_DATA_DIR", data_dir)
        // 32 bytes in hex: Terraform plans are stored encrypted.
        .env(
            "SLUICE_PLAN_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )
        .output()
        .expect("sluice runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Regression: every line Terraform printed reached `sluice logs` (and the API) glued to the
/// next one, so a plan's log was one unreadable line.
#[test]
fn a_terraform_steps_log_has_one_line_per_line_terraform_printed() {
    let repo = TestRepo::new();
    let commit = repo.commit(
        &[
            (
                "workflows/plan.yaml",
                "name: plan\non: { push: {} }\njobs:\n  plan:\n    steps:\n      - terraform: { environment: dev, command: plan }\n",
            ),
            ("environments/dev.yaml", "name: dev\nterraform: { dir: infra }\n"),
            (
                "infra/main.tf",
                "resource \"terraform_data\" \"marker\" {\n  input = \"readable\"\n}\n",
            ),
        ],
        "a plan",
    );
    let data = tempfile::tempdir().unwrap();
    let output = sluice(
        &[
            "run",
            "--repo",
            repo.path().to_str().unwrap(),
            "--commit",
            &commit,
            "--json",
        ],
        data.path(),
    );
    let runs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "--json prints runs: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        )
    });
    let logs = sluice(&["logs", &runs[0]["id"].to_string(), "plan"], data.path());
    let log = text(&logs.stdout);
    assert_eq!(runs[0]["status"], "succeeded", "{log}");
    let lines: Vec<&str> = log.lines().map(str::trim).collect();
    for expected in [
        "Terraform has been successfully initialized!",
        "# terraform_data.marker will be created",
        "Plan: 1 to add, 0 to change, 0 to destroy.",
    ] {
        assert!(
            lines.contains(&expected),
            "no line reads `{expected}`:\n{log}"
        );
    }
    let commands: Vec<&&str> = lines
        .iter()
        .filter(|line| line.starts_with("$ terraform "))
        .collect();
    assert!(
        commands
            .iter()
            .any(|line| line.starts_with("$ terraform init "))
            && commands
                .iter()
                .any(|line| line.starts_with("$ terraform plan ")),
        "each command on a line of its own:\n{log}"
    );
    assert!(
        commands.iter().all(|line| !line.contains("Terraform")),
        "a command line carries Terraform's output:\n{log}"
    );
}

/// `sluice serve` with standard error piped, `SLUICE_LOG=info`, the given extra arguments and
/// environment, and one push delivered; returns its standard error lines up to and including the
/// first that contains `until`.
fn serve_until(arguments: &[&str], environment: &[(&str, &str)], until: &str) -> Vec<String> {
    let repo = TestRepo::new();
    let before = repo.commit(&[("README.md", "one\n")], "one");
    let after = repo.commit(&[("README.md", "two\n")], "two");
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(arguments)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(["--repo", &format!("{REPOSITORY}={}", repo.path().display())])
        .env("SLUICE_WEBHOOK_SECRET", SECRET)
        .env("SLUICE_LOG", "info")
        .env_remove("SLUICE_LOG_FORMAT")
        .envs(environment.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("sluice serve starts");
    let (sender, receiver) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let wait = Duration::from_secs(60);
    let first = receiver
        .recv_timeout(wait)
        .expect("the server announces itself");
    let base_url = first
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in `{first}`"))
        .to_owned();
    lines.push(first);
    let body = push_payload("main", &before, &after);
    let status = support::http()
        .post(format!("{base_url}/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", "logging-1")
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 202);
    loop {
        let line = receiver
            .recv_timeout(wait)
            .unwrap_or_else(|_| panic!("no line with `{until}`; got:\n{}", lines.join("\n")));
        let done = line.contains(until);
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn the_servers_log_into_a_pipe_holds_no_colour_codes() {
    let lines = serve_until(&[], &[], "delivery planned");
    let planned = lines.last().unwrap();
    assert!(planned.contains("INFO"), "{planned}");
    for line in &lines {
        assert!(!line.contains("\x1b["), "a colour code in {line:?}");
    }
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    check_json_lines(&serve_until(
        &[],
        &[("SLUICE_LOG_FORMAT", "json")],
        "delivery planned",
    ));
    // The flag, which wins over the variable.
    check_json_lines(&serve_until(
        &["--log-format", "json"],
        &[("SLUICE_LOG_FORMAT", "text")],
        "delivery planned",
    ));
}

fn check_json_lines(lines: &[String]) {
    for line in lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        assert!(object["timestamp"].is_string(), "{line}");
        assert!(object["level"].is_string(), "{line}");
    }
    let planned: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(planned["level"], "INFO");
    assert_eq!(planned["fields"]["message"], "delivery planned");
    assert_eq!(planned["fields"]["delivery"], "logging-1");
}
