//! Promotion in a real server process: a merge to main becomes a release that walks through dev,
//! staging and production (recording targets stand in for the systems); kill -9 in the middle of
//! staging's rollout, start again, and the promotion completes without applying anything twice.
//! Also the CLI's view of it: `sluice releases`, `status`, `history`, `approve`.

mod support;

use std::path::Path;
use std::time::Duration;
use support::recording::{RECORDED_DEV, RECORDED_STAGING, applies, wait_for_health_call};
use support::*;

const PIPELINE: &str = "name: ci\non: { push: { branches: [main] } }\njobs:\n  check:\n    steps:\n      - run: 'true'\n";
const PRODUCTION: &str = "name: production\nafter: staging\ngates: { approvals: 1 }\nkubernetes: { namespace: ml-prod, manifests: k8s }\nmlflow: { tracking_uri: \"http://127.0.0.1:5500\", pins: models/production.yaml }\n";
const SERVER_CONFIG: &str = "promotion: { interval: 200ms, health-poll: 50ms }\n";

fn start(data: &Path, repo: &TestRepo, calls: &Path, config: &Path) -> Server {
    Server::start_with_env(
        data,
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &["--config", config.to_str().unwrap()],
        &[("SLUICE_RECORDING_TARGETS", calls)],
    )
}

#[test]
fn a_merge_is_promoted_through_every_environment_and_a_kill_mid_rollout_deploys_nothing_twice() {
    let repo = TestRepo::new();
    let base = repo.commit(
        &[
            ("workflows/ci.yaml", PIPELINE),
            ("environments/dev.yaml", RECORDED_DEV),
            ("environments/staging.yaml", RECORDED_STAGING),
            ("environments/production.yaml", PRODUCTION),
            ("dags/train.py", "# a DAG\n"),
            (
                "models/production.yaml",
                "churn-classifier: { version: 3 }\n",
            ),
        ],
        "platform",
    );
    let merge = repo.commit(&[("dags/train.py", "# a better DAG\n")], "Better DAG");
    let data = tempfile::tempdir().unwrap();
    let calls = data.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let config = data.path().join("server.yaml");
    std::fs::write(&config, SERVER_CONFIG).unwrap();
    // Staging's Kubernetes rollout stalls until the test lets it go.
    let hold = calls.join("hold-staging-kubernetes");
    std::fs::write(&hold, "").unwrap();

    let mut server = start(data.path(), &repo, &calls, &config);
    let (status, text) = deliver(
        &server,
        "push",
        "merge-1",
        &push_payload("main", &base, &merge),
    );
    assert_eq!(status, 202, "{text}");
    // A health call comes only after the apply was recorded: killing then must not apply again.
    wait_for_health_call(&calls, "staging", "kubernetes", Duration::from_secs(60));
    server.kill_hard();

    std::fs::remove_file(&hold).unwrap();
    let server = start(data.path(), &repo, &calls, &config);
    let status_text = wait_for(
        "production to wait for its approval",
        Duration::from_secs(60),
        || {
            let status = sluice_ok(data.path(), &["status"]);
            status.contains("waiting").then_some(status)
        },
    );
    assert!(status_text.contains("0 of 1 approvals"), "{status_text}");
    assert_eq!(
        applies(&calls, "dev"),
        ["terraform", "kubernetes", "airflow"]
    );
    assert_eq!(
        applies(&calls, "staging"),
        ["terraform", "kubernetes", "airflow"],
        "after the restart staging resumed: kubernetes was not applied again"
    );
    assert!(applies(&calls, "production").is_empty());

    let releases = sluice_ok(data.path(), &["releases"]);
    let release_id = releases
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(release_id.ends_with(&merge[..12]), "{releases}");
    assert!(releases.contains("DAGs"), "{releases}");

    // Someone other than the author approves (the test repo's commits are by "sluice-tests").
    let approved = sluice_ok(data.path(), &["approve", "production", "--as", "carol"]);
    assert!(
        approved.contains(&format!(
            "carol (local) approved {release_id} for production"
        )),
        "{approved}"
    );
    wait_for(
        "production to run the release",
        Duration::from_secs(60),
        || {
            let status = sluice_ok(data.path(), &["status"]);
            status
                .lines()
                .any(|line| line.starts_with("production") && line.contains(&release_id))
                .then_some(())
        },
    );
    assert_eq!(applies(&calls, "production"), ["mlflow", "kubernetes"]);
    let history = sluice_ok(data.path(), &["history", "production"]);
    for expected in [
        "gate      blocked",
        "approve   recorded",
        "gate      passed",
        "promote   succeeded",
    ] {
        assert!(
            history.contains(expected),
            "missing `{expected}` in:\n{history}"
        );
    }
    drop(server);
}
