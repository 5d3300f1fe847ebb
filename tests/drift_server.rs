//! Drift in a real server process with recording targets standing in for the systems: the API
//! checks on demand (approvers only) and heals the domain the environment opts into, `GET
//! /api/drift` and `/metrics` show what remains, and `sluice drift` and `sluice status` on the
//! data directory say the same, with a target that answers 503 reported as "could not check".

mod support;

use sluice::deploy::recording::RecordingTarget;
use std::path::Path;
use std::time::Duration;
use support::*;

const PIPELINE: &str = "name: ci\non: { push: { branches: [main] } }\njobs:\n  check:\n    steps:\n      - run: 'true'\n";
const DEV: &str = "name: dev\nkubernetes: { namespace: ml-dev, manifests: k8s }\n";
const STAGING: &str = "name: staging\nafter: dev\nterraform: { dir: infra/staging }\nkubernetes: { namespace: ml-staging, manifests: k8s }\nairflow: { dags: dags, folder: /srv/airflow/staging/dags }\ndrift: { heal: [kubernetes] }\n";
const SERVER_CONFIG: &str = "promotion: { interval: 200ms, health-poll: 50ms }\n";
const TOKEN: &str = "drift-test-admin-token";

fn control(calls: &Path, name: &str, object: &str) {
    let drift = serde_json::json!([{"object": object, "expected": "2", "actual": "5, set by kubectl-edit"}]);
    std::fs::write(calls.join(name), drift.to_string()).unwrap();
}

#[test]
fn the_api_checks_and_heals_and_the_api_metrics_and_command_line_show_what_remains() {
    let repo = TestRepo::new();
    let base = repo.commit(
        &[
            ("workflows/ci.yaml", PIPELINE),
            ("environments/dev.yaml", DEV),
            ("environments/staging.yaml", STAGING),
            ("dags/train.py", "# a DAG\n"),
        ],
        "platform",
    );
    let merge = repo.commit(&[("dags/train.py", "# a better DAG\n")], "Better DAG");
    let data = tempfile::tempdir().unwrap();
    let calls = data.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let config = data.path().join("server.yaml");
    std::fs::write(&config, SERVER_CONFIG).unwrap();
    let server = Server::start_with_env(
        data.path(),
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &["--config", config.to_str().unwrap()],
        &[
            ("SLUICE_RECORDING_TARGETS", calls.as_path()),
            ("SLUICE_API_TOKEN", Path::new(TOKEN)),
        ],
    );
    let (status, text) = deliver(
        &server,
        "push",
        "merge-1",
        &push_payload("main", &base, &merge),
    );
    assert_eq!(status, 202, "{text}");
    let release = wait_for(
        "staging to run the release",
        Duration::from_secs(60),
        || {
            let output = sluice(data.path(), &["status"]);
            let status = String::from_utf8_lossy(&output.stdout);
            let line = status
                .lines()
                .find(|line| line.starts_with("staging") && line.contains(" runs "))?;
            let release = line.split_whitespace().nth(2)?.trim_end_matches(',');
            Some(release.to_owned())
        },
    );

    // Checked once right after the deployment; the next scheduled check is 10 minutes away.
    wait_for(
        "staging's check after its deployment",
        Duration::from_secs(30),
        || {
            let listed: serde_json::Value = http()
                .get(server.url("/api/drift?environment=staging"))
                .send()
                .ok()?
                .json()
                .ok()?;
            (listed[0]["domains"].as_array()?.len() == 3).then_some(())
        },
    );

    // Behind sluice's back: a field in Kubernetes, a file in the DAG folder.
    control(
        &calls,
        "drift-staging-kubernetes",
        "apps/v1 Deployment ml-staging/serving-api: spec.replicas",
    );
    control(&calls, "drift-staging-airflow", "dags/extra.py");

    // A pushed side branch that would heal airflow too and stop drift from blocking decides
    // nothing: staging's drift section is read from main.
    repo.git(&["checkout", "-q", "-b", "tamper"]);
    let tampered = STAGING.replace(
        "drift: { heal: [kubernetes] }",
        "drift: { heal: [kubernetes, airflow], block: false }",
    );
    let side = repo.commit(
        &[("environments/staging.yaml", &tampered)],
        "heal everything",
    );
    repo.git(&["checkout", "-q", "main"]);
    let (status, text) = deliver(
        &server,
        "push",
        "tamper-1",
        &push_payload("tamper", &merge, &side),
    );
    assert_eq!(status, 202, "{text}");
    let mirror = data.path().join(format!("mirrors/{REPOSITORY}.git"));
    wait_for(
        "the side branch in the mirror",
        Duration::from_secs(30),
        || {
            let found = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(&mirror)
                .args(["rev-parse", "--verify", "-q", "refs/heads/tamper"])
                .output()
                .ok()?;
            (String::from_utf8_lossy(&found.stdout).trim() == side).then_some(())
        },
    );

    let refused = http()
        .post(server.url("/api/drift/staging"))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let checked: serde_json::Value = http()
        .post(server.url("/api/drift/staging"))
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let staging = &checked[0];
    assert_eq!(staging["release"], release.as_str(), "{checked}");
    let domain = |name: &str| {
        staging["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|domain| domain["domain"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(domain("kubernetes")["outcome"], "clean", "{checked}");
    assert_eq!(
        domain("kubernetes")["healed"]["drifts"][0]["object"],
        "apps/v1 Deployment ml-staging/serving-api: spec.replicas"
    );
    assert_eq!(domain("airflow")["outcome"], "drifted");
    assert_eq!(domain("terraform")["outcome"], "clean");
    let heals: Vec<String> = RecordingTarget::calls(&calls)
        .into_iter()
        .filter(|call| call.call == "heal")
        .map(|call| format!("{} {}", call.environment, call.target))
        .collect();
    assert_eq!(heals, ["staging kubernetes"]);

    let listed: serde_json::Value = http()
        .get(server.url("/api/drift?environment=staging"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let airflow = listed[0]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|domain| domain["domain"] == "airflow")
        .unwrap();
    assert_eq!(airflow["drift"][0]["object"], "dags/extra.py", "{listed}");
    assert_eq!(airflow["drift"][0]["actual"], "5, set by kubectl-edit");
    let metrics = http()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for line in [
        format!(
            "sluice_drift_objects{{repository=\"{REPOSITORY}\",environment=\"staging\",domain=\"airflow\"}} 1"
        ),
        format!(
            "sluice_drift_objects{{repository=\"{REPOSITORY}\",environment=\"staging\",domain=\"kubernetes\"}} 0"
        ),
        format!(
            "sluice_drift_check_up{{repository=\"{REPOSITORY}\",environment=\"staging\",domain=\"airflow\"}} 1"
        ),
    ] {
        assert!(metrics.contains(&line), "missing {line} in:\n{metrics}");
    }

    // Terraform's system answers 503: could not check, never "no drift".
    std::fs::write(calls.join("unreachable-staging-terraform"), "").unwrap();
    let output = sluice_command(data.path())
        .args(["drift", "staging"])
        .env("SLUICE_RECORDING_TARGETS", &calls)
        .output()
        .unwrap();
    let printed_text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{printed_text}");
    for expected in [
        format!("staging (runs {release})"),
        "  terraform   could not check: terraform answered 503 Service Unavailable".to_owned(),
        "  airflow     drift: 1 object".to_owned(),
        "    dags/extra.py: expected 2, found 5, set by kubectl-edit".to_owned(),
        "  kubernetes  no drift".to_owned(),
    ] {
        assert!(
            printed_text.contains(&expected),
            "missing `{expected}` in:\n{printed_text}"
        );
    }
    let status = sluice_ok(data.path(), &["status"]);
    assert!(
        status.contains("drift: terraform: could not check at")
            && status.contains("terraform answered 503 Service Unavailable")
            && status.contains("drift: airflow: 1 object differs from its release"),
        "{status}"
    );
    // An admin at the data directory heals airflow by hand, though staging heals only kubernetes.
    std::fs::remove_file(calls.join("unreachable-staging-terraform")).unwrap();
    let healed = sluice_command(data.path())
        .args([
            "drift", "staging", "--heal", "airflow", "--as", "carol", "--json",
        ])
        .env("SLUICE_RECORDING_TARGETS", &calls)
        .output()
        .unwrap();
    assert_eq!(healed.status.code(), Some(0), "{}", printed(&healed));
    let answer: serde_json::Value = serde_json::from_slice(&healed.stdout).unwrap();
    assert_eq!(answer[0]["domains"][0]["domain"], "airflow", "{answer}");
    assert_eq!(answer[0]["domains"][0]["outcome"], "clean");
    assert_eq!(
        answer[0]["domains"][0]["healed"]["drifts"][0]["object"],
        "dags/extra.py"
    );
    let history = sluice_ok(data.path(), &["history", "staging"]);
    assert!(history.contains("drift-heal healed"), "{history}");
    assert!(
        history.contains("carol (local) airflow: dags/extra.py"),
        "the heal by hand names who did it: {history}"
    );
    drop(server);
}
