//! Logs as people read them: a Terraform step's output keeps its line breaks in `sluice logs`.

mod support;

use std::process::Command;
use support::TestRepo;

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
