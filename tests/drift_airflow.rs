//! Drift of a DAG folder against a real Airflow 3 (`airflow standalone`, tests/support/airflow.rs):
//! after a deploy nothing drifts; a file written into the live folder by hand (a DAG with a
//! syntax error) and an existing file changed in place are reported exactly, with the import
//! error Airflow then shows; heal puts the release's folder back and Airflow drops the error. A
//! DAG paused through the REST API is reported and unpaused by heal. An Airflow answering 503
//! makes the check unavailable, never clean.

#[path = "support/airflow.rs"]
mod airflow_support;
mod support;

use airflow_support::{Airflow, airflow, exclusive};
use serde_json::{Value, json};
use sluice::config::environment::Environment;
use sluice::deploy::{DeployContext, Drift, DriftReport, Release, Target, TargetError};
use sluice::targets::airflow::{from_environment, scan};
use std::path::Path;
use std::time::{Duration, Instant};
use support::write_tree;

fn dag_source(dag_id: &str) -> String {
    format!(
        r#"import pendulum
from airflow.sdk import DAG, task

with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False,
         default_args={{"owner": "ml-platform"}}, tags=["test"]):
    @task
    def hello():
        return 1

    hello()
"#
    )
}

fn environment(folder: &Path, api: &str, auth: Option<&Airflow>, unpause: &[&str]) -> Environment {
    let mut section = json!({
        "dags": "dags",
        "folder": folder,
        "api": api,
        "validate": false,
        "keep": 3,
        "parse_timeout": "150s",
        "unpause": unpause,
    });
    if let Some(airflow) = auth {
        section["auth"] =
            json!({"username": airflow.username, "password_file": airflow.password_file()});
        section["python"] = json!(airflow.python());
    }
    serde_json::from_value(json!({"name": "test", "airflow": section})).unwrap()
}

fn context(environment: &Environment, tree: &Path) -> DeployContext {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    DeployContext {
        environment: environment.clone(),
        release: Release {
            id: Release::new_id(1, commit),
            sequence: 1,
            ..Release::unrecorded("acme/ml-platform", commit, "main", None)
        },
        tree: tree.to_path_buf(),
        previous: None,
        applied: Default::default(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sha(text: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..12])
}

/// Deploys `files` as a release with the real Airflow; the target, its context (with the
/// apply's outputs) and the release's tree.
fn deployed(
    airflow: &Airflow,
    files: &[(&str, &str)],
    unpause: &[&str],
) -> (Box<dyn Target>, DeployContext, tempfile::TempDir) {
    let tree = tempfile::tempdir().unwrap();
    write_tree(tree.path(), files);
    let environment = environment(
        &airflow.dags_folder,
        &airflow.base_url,
        Some(airflow),
        unpause,
    );
    let target = from_environment(&environment).unwrap().unwrap();
    let mut context = context(&environment, tree.path());
    let applied = runtime()
        .block_on(target.apply(&context))
        .unwrap_or_else(|error| panic!("{error}\n{}", airflow.log_tail()));
    context.applied.insert("airflow".into(), applied.outputs);
    (target, context, tree)
}

fn drift(target: &dyn Target, context: &DeployContext) -> DriftReport {
    runtime()
        .block_on(target.drift(context))
        .unwrap_or_else(|error| panic!("{error}"))
}

/// Polls the REST API until `check` holds on `/api/v2<path>`.
fn wait_for_api(airflow: &Airflow, path: &str, what: &str, check: impl Fn(&Value) -> bool) {
    let started = Instant::now();
    loop {
        let answer = airflow.get(path);
        if check(&answer) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "airflow never showed {what}: {answer}\n{}",
            airflow.log_tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn files_changed_by_hand_and_the_import_error_they_cause_are_reported_and_healed() {
    let Some(airflow) = airflow() else { return };
    let _turn = exclusive();
    let steady = dag_source("sluice_drift_steady");
    let (target, context, tree) = deployed(
        airflow,
        &[
            ("dags/steady.py", &steady),
            ("dags/lib/helpers.py", "X = 1\n"),
        ],
        &[],
    );
    let clean = drift(target.as_ref(), &context);
    assert_eq!(clean.drifts, []);
    assert_eq!(clean.calls["list import errors"], 1);
    assert_eq!(clean.calls["stat file"], 2);

    // Out of band: a DAG file with a syntax error written into the live folder, a helper
    // changed in place.
    let broken = "from airflow.sdk import DAG\n\ndef broken(:\n    pass\n";
    std::fs::write(airflow.dags_folder.join("broken.py"), broken).unwrap();
    std::fs::write(airflow.dags_folder.join("lib/helpers.py"), "X = 2\n").unwrap();
    wait_for_api(airflow, "/importErrors", "the import error", |answer| {
        answer["import_errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|error| error["filename"] == "broken.py"))
    });
    let found = drift(target.as_ref(), &context);
    assert_eq!(
        found.drifts,
        [
            Drift {
                object: "dags/broken.py".into(),
                expected: "absent".into(),
                actual: format!("present ({})", sha(broken)),
            },
            Drift {
                object: "dags/lib/helpers.py".into(),
                expected: sha("X = 1\n"),
                actual: sha("X = 2\n"),
            },
            Drift {
                object: "import error: broken.py".into(),
                expected: "none".into(),
                actual: "SyntaxError: invalid syntax".into(),
            },
        ]
    );

    let healed = runtime()
        .block_on(target.heal(&context, &found))
        .unwrap_or_else(|error| panic!("{error}\n{}", airflow.log_tail()));
    assert!(
        healed.summary.starts_with(&format!(
            "DAG version {} re-published (1 file(s) copied, 1 linked)",
            context.applied["airflow"]["version"].as_str().unwrap()
        )),
        "{}",
        healed.summary
    );
    assert_eq!(
        scan(&airflow.dags_folder).unwrap(),
        scan(&tree.path().join("dags")).unwrap()
    );
    assert!(!airflow.dags_folder.join("broken.py").exists());
    assert_eq!(airflow.get("/importErrors")["total_entries"], 0);
    assert_eq!(drift(target.as_ref(), &context).drifts, []);
}

#[test]
fn a_dag_paused_by_hand_is_reported_and_unpaused_by_heal() {
    let Some(airflow) = airflow() else { return };
    let _turn = exclusive();
    let dag_id = "sluice_drift_unpaused";
    let (target, context, _tree) = deployed(
        airflow,
        &[("dags/unpaused.py", &dag_source(dag_id))],
        &[dag_id],
    );
    assert_eq!(airflow.get(&format!("/dags/{dag_id}"))["is_paused"], false);
    let clean = drift(target.as_ref(), &context);
    assert_eq!(clean.drifts, []);
    assert_eq!(clean.calls["list dags"], 1);

    let response = reqwest::blocking::Client::new()
        .patch(format!(
            "{}/api/v2/dags/{dag_id}?update_mask=is_paused",
            airflow.base_url
        ))
        .bearer_auth(airflow.token())
        .json(&json!({"is_paused": true}))
        .send()
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().unwrap()
    );
    let found = drift(target.as_ref(), &context);
    assert_eq!(
        found.drifts,
        [Drift {
            object: format!("dag {dag_id}"),
            expected: "unpaused".into(),
            actual: "paused".into(),
        }]
    );
    let healed = runtime()
        .block_on(target.heal(&context, &found))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(healed.summary, format!("unpaused {dag_id}"));
    assert_eq!(airflow.get(&format!("/dags/{dag_id}"))["is_paused"], false);
    assert_eq!(drift(target.as_ref(), &context).drifts, []);
}

/// Needs no Airflow: the folder is compared without it, and the API answers 503.
#[test]
fn an_airflow_answering_503_makes_the_check_unavailable_and_says_so() {
    let api = support::always_503();
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("release");
    write_tree(&tree, &[("dags/etl.py", "dag = 1\n")]);
    let folder = scratch.path().join("live/dags");
    let environment = environment(&folder, &api, None, &[]);
    let target = from_environment(&environment).unwrap().unwrap();
    let context = context(&environment, &tree);

    let error = runtime()
        .block_on(target.drift(&context))
        .expect_err("an Airflow that cannot be asked is no clean report");
    let TargetError::Unavailable(message) = &error else {
        panic!("not Unavailable: {error:?}");
    };
    assert_eq!(
        message,
        &format!(
            "environment `test`: airflow answered GET {api}/api/v2/importErrors?limit=100&offset=0 with 503 Service Unavailable: \"no healthy upstream\"; import errors and paused DAGs are unknown (the DAG folder itself shows 1 drifted file(s))"
        )
    );

    // Without an API the folder alone is compared: the release's file is not there.
    let no_api: Environment = serde_json::from_value(json!({
        "name": "test",
        "airflow": {"dags": "dags", "folder": folder, "validate": false},
    }))
    .unwrap();
    let found = runtime()
        .block_on(from_environment(&no_api).unwrap().unwrap().drift(&context))
        .unwrap();
    assert_eq!(
        found.drifts,
        [Drift {
            object: "dags/etl.py".into(),
            expected: sha("dag = 1\n"),
            actual: "absent".into(),
        }]
    );
}
