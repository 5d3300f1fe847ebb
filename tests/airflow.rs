//! The Airflow target against a real Airflow 3 (`airflow standalone`, started once for this test
//! binary by tests/support/airflow.rs): good DAGs deploy and Airflow lists them without import
//! errors; a broken import is rejected before the folder changes; an error only Airflow sees
//! rolls the folder back; an unchanged deploy copies nothing; and a deploy killed with SIGKILL
//! mid-copy leaves the previous version live.

#[path = "support/airflow.rs"]
mod airflow_support;
mod support;

use airflow_support::{Airflow, airflow, exclusive};
use serde_json::{Value, json};
use sluice::config::environment::Environment;
use sluice::deploy::{DeployContext, Health, Release, Target, TargetError};
use sluice::policy::{PolicyContext, PolicySet, SystemClock, load_sources};
use sluice::targets::airflow::{VersionedFolder, from_environment, scan, validate_dags};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{repository_root, write_tree};

/// A minimal DAG file with an owner, tags and one task.
fn dag_source(dag_id: &str, preamble: &str) -> String {
    format!(
        r#"{preamble}
import pendulum
from airflow.sdk import DAG, task

with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False,
         max_active_runs=1, default_args={{"owner": "ml-platform"}}, tags=["test"]):
    @task
    def hello():
        return 1

    hello()
"#
    )
}

fn environment(airflow: &Airflow, python: &Path, extra: Value) -> Environment {
    let mut section = json!({
        "dags": "dags",
        "folder": airflow.dags_folder,
        "api": airflow.base_url,
        "auth": {"username": airflow.username, "password_file": airflow.password_file()},
        "python": python,
        "keep": 3,
        "parse_timeout": "150s",
    });
    for (key, value) in extra.as_object().unwrap() {
        section[key] = value.clone();
    }
    serde_json::from_value(json!({"name": "test", "airflow": section})).unwrap()
}

fn context(environment: Environment, tree: &Path) -> DeployContext {
    let release = Release {
        id: "r1-0123456789ab".into(),
        repository: "acme/ml-platform".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        branch: "main".into(),
        author: None,
        created_at: 0,
        sequence: 1,
        images: Default::default(),
        plans: Default::default(),
        dag_tree: None,
        models: Default::default(),
        config_commit: None,
        contributors: Default::default(),
    };
    DeployContext {
        environment,
        release,
        tree: tree.to_path_buf(),
        previous: None,
        applied: Default::default(),
    }
}

fn target(environment: &Environment) -> Box<dyn Target> {
    from_environment(environment)
        .expect("the section parses")
        .expect("an airflow section")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn live_link(airflow: &Airflow) -> Option<PathBuf> {
    std::fs::read_link(&airflow.dags_folder).ok()
}

fn versions_listing(airflow: &Airflow) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(airflow.dags_folder.with_file_name("dags.versions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
    names.sort();
    names
}

/// Deploys `files` as the release tree; the error text when the target refuses.
fn deploy(
    airflow: &Airflow,
    python: &Path,
    files: &[(&str, &str)],
    extra: Value,
) -> Result<sluice::deploy::Applied, TargetError> {
    let tree = tempfile::tempdir().unwrap();
    write_tree(tree.path(), files);
    let environment = environment(airflow, python, extra);
    runtime().block_on(target(&environment).apply(&context(environment.clone(), tree.path())))
}

#[test]
fn the_example_platform_dags_pass_validation_and_policies_deploy_and_run_unpaused() {
    let Some(airflow) = airflow() else { return };
    let _turn = exclusive();
    let tree = tempfile::tempdir().unwrap();
    let dags = tree.path().join("dags");
    for entry in std::fs::read_dir(repository_root().join("platform/dags"))
        .unwrap()
        .flatten()
    {
        std::fs::create_dir_all(&dags).unwrap();
        std::fs::copy(entry.path(), dags.join(entry.file_name())).unwrap();
    }
    let environment = environment(
        airflow,
        &airflow.python(),
        json!({
            "unpause": ["train_churn_model", "batch_score"],
            "variables": {"platform_environment": "test", "mlflow_tracking_uri": "http://mlflow.test:5000"},
        }),
    );
    let target = target(&environment);
    let context = context(environment, tree.path());
    let runtime = runtime();

    let diff = runtime.block_on(target.diff(&context)).unwrap();
    let dag_ids: Vec<&str> = diff.facts["dags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|dag| dag["dag_id"].as_str().unwrap())
        .collect();
    assert_eq!(dag_ids, ["batch_score", "train_churn_model"]);
    assert_eq!(diff.facts["import_errors"], json!([]));
    let policies =
        PolicySet::compile(&load_sources(&repository_root().join("policies")).unwrap()).unwrap();
    let evaluation = policies.evaluate(
        &json!({"airflow": diff.facts}),
        &PolicyContext::at(&SystemClock),
    );
    assert!(
        evaluation.passed(),
        "the example DAGs break policies: {:?}",
        evaluation.denials().collect::<Vec<_>>()
    );

    let applied = runtime
        .block_on(target.apply(&context))
        .unwrap_or_else(|error| panic!("{error}\n{}", airflow.log_tail()));
    assert!(
        applied.summary.contains("file(s) copied"),
        "{}",
        applied.summary
    );
    let listed = airflow.get("/dags?limit=100");
    for dag_id in ["train_churn_model", "batch_score"] {
        let dag = listed["dags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|dag| dag["dag_id"] == dag_id);
        let dag = dag.unwrap_or_else(|| panic!("{dag_id} missing from {listed}"));
        assert_eq!(dag["is_paused"], false, "{dag_id} is still paused");
    }
    let import_errors = airflow.get("/importErrors");
    assert_eq!(import_errors["total_entries"], 0, "{import_errors}");
    assert_eq!(
        airflow.get("/variables/platform_environment")["value"],
        "test"
    );
    assert_eq!(
        runtime.block_on(target.health(&context)).unwrap(),
        Health::Healthy
    );
}

#[test]
fn a_dag_with_a_broken_import_is_rejected_before_the_folder_changes() {
    let Some(airflow) = airflow() else { return };
    let _turn = exclusive();
    let python = airflow.python();
    deploy(
        airflow,
        &python,
        &[(
            "dags/steady.py",
            &dag_source("sluice_steady_before_broken", ""),
        )],
        json!({}),
    )
    .unwrap();
    let link_before = live_link(airflow);
    let versions_before = versions_listing(airflow);

    let broken = dag_source("sluice_broken", "import sluice_no_such_module");
    let error = deploy(
        airflow,
        &python,
        &[
            (
                "dags/steady.py",
                &dag_source("sluice_steady_before_broken", ""),
            ),
            ("dags/broken.py", &broken),
        ],
        json!({}),
    )
    .expect_err("a broken import must be rejected");
    let message = error.to_string();
    assert!(matches!(error, TargetError::Rejected(_)), "{error:?}");
    assert!(
        message.contains("broken.py")
            && message.contains("No module named 'sluice_no_such_module'"),
        "{message}"
    );
    assert_eq!(live_link(airflow), link_before);
    assert_eq!(versions_listing(airflow), versions_before);
}

#[test]
fn an_import_error_only_airflow_sees_rolls_the_folder_back() {
    let Some(airflow) = airflow() else { return };
    let _turn = exclusive();
    // The validation interpreter has a module on its path that Airflow's processes lack, as a CI
    // image with extra packages would.
    let validation_environment = tempfile::tempdir().unwrap();
    let extra_path = validation_environment.path().join("extra");
    write_tree(&extra_path, &[("sluice_ci_only.py", "VALUE = 1\n")]);
    let wrapper = validation_environment.path().join("python");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nPYTHONPATH='{}' exec '{}' \"$@\"\n",
            extra_path.display(),
            airflow.python().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let steady = dag_source("sluice_steady", "");
    deploy(
        airflow,
        &airflow.python(),
        &[("dags/steady.py", &steady)],
        json!({}),
    )
    .unwrap();
    let link_before = live_link(airflow).unwrap();

    let needs_helper = dag_source("sluice_needs_ci_helper", "import sluice_ci_only");
    let error = deploy(
        airflow,
        &wrapper,
        &[
            ("dags/steady.py", &steady),
            ("dags/needs_helper.py", &needs_helper),
        ],
        json!({}),
    )
    .expect_err("airflow cannot import the helper; the deploy must fail");
    let message = error.to_string();
    assert!(
        message.contains("needs_helper.py") && message.contains("sluice_ci_only"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "rolled the DAG folder back to {}",
            link_before.file_name().unwrap().to_string_lossy()
        )),
        "{message}"
    );
    assert_eq!(live_link(airflow).unwrap(), link_before);
    assert!(!airflow.dags_folder.join("needs_helper.py").exists());
}

#[test]
fn an_unchanged_deploy_copies_no_file() {
    let Some(airflow) = airflow() else { return };
    let _turn = exclusive();
    let files = [
        ("dags/unchanged.py", dag_source("sluice_unchanged", "")),
        ("dags/lib/helpers.py", "X = 1\n".to_owned()),
    ];
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, text)| (*path, text.as_str()))
        .collect();
    deploy(airflow, &airflow.python(), &files, json!({})).unwrap();
    let link_before = live_link(airflow);
    let again = deploy(airflow, &airflow.python(), &files, json!({})).unwrap();
    assert_eq!(
        (
            again.outputs["files_copied"].clone(),
            again.outputs["files_linked"].clone()
        ),
        (json!(0), json!(0)),
        "{}",
        again.summary
    );
    assert!(again.summary.contains("already live"), "{}", again.summary);
    assert_eq!(live_link(airflow), link_before);
}

/// Needs no Airflow: the target refuses before validation, or anything else, reads a file.
#[test]
fn a_release_whose_dags_link_out_of_its_tree_is_refused_before_validation() {
    let scratch = tempfile::tempdir().unwrap();
    let environment: Environment = serde_json::from_value(json!({
        "name": "test",
        "airflow": {
            "dags": "dags",
            "folder": scratch.path().join("live/dags"),
            // Validation would fail on this interpreter with another message.
            "python": scratch.path().join("no-python"),
        },
    }))
    .unwrap();
    let apply = |tree: &Path| {
        runtime()
            .block_on(target(&environment).apply(&context(environment.clone(), tree)))
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default()
    };

    let tree = scratch.path().join("release");
    write_tree(&tree, &[("dags/etl.py", "dag = 1\n")]);
    std::os::unix::fs::symlink("/etc/passwd", tree.join("dags/passwd.py")).unwrap();
    let message = apply(&tree);
    assert!(
        message.starts_with(&format!(
            "symlink `passwd.py` in the DAG folder `{}` points to `/etc/passwd`, which is outside it",
            tree.join("dags").display()
        )) && message.ends_with("replace the link by the file it stands for"),
        "{message}"
    );

    let linked_tree = scratch.path().join("linked-release");
    write_tree(
        &scratch.path().join("elsewhere"),
        &[("etl.py", "dag = 1\n")],
    );
    std::fs::create_dir_all(&linked_tree).unwrap();
    std::os::unix::fs::symlink(scratch.path().join("elsewhere"), linked_tree.join("dags")).unwrap();
    let message = apply(&linked_tree);
    assert!(
        message.contains("`airflow.dags` is `dags`, which leads out of release"),
        "{message}"
    );
    assert!(
        !scratch.path().join("live").exists(),
        "nothing was deployed"
    );
}

const CHILD_VARIABLE: &str = "SLUICE_TEST_CHILD_DEPLOY";

/// Not a test of its own: the body of the child process `kill_9_during_a_deploy...` kills.
#[test]
fn child_deploys_a_folder_when_asked() {
    let Ok(arguments) = std::env::var(CHILD_VARIABLE) else {
        return;
    };
    let [source, folder, versions]: [&str; 3] = arguments
        .split('\n')
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let folder = VersionedFolder {
        folder: folder.into(),
        versions: versions.into(),
        keep: 3,
    };
    folder.deploy(Path::new(source)).unwrap();
}

#[test]
fn kill_9_during_a_deploy_leaves_the_previous_version_intact() {
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("source");
    let folder = VersionedFolder {
        folder: scratch.path().join("dags"),
        versions: scratch.path().join("dags.versions"),
        keep: 3,
    };
    let small: Vec<(String, String)> = (0..50)
        .map(|index| {
            (
                format!("dag_{index}.py"),
                format!("# version one {index}\n"),
            )
        })
        .collect();
    write_tree(
        &source,
        &small
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_str()))
            .collect::<Vec<_>>(),
    );
    let first = folder.deploy(&source).unwrap();
    let first_manifest = scan(&folder.folder).unwrap();

    // A large second version, so the child is still copying when it is killed.
    let chunk = "x".repeat(64 * 1024);
    for index in 0..3000 {
        let path = source.join(format!("dag_{index}.py"));
        std::fs::write(path, format!("# version two {index}\n{chunk}")).unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_deploys_a_folder_when_asked",
            "--test-threads=1",
        ])
        .env(
            CHILD_VARIABLE,
            format!(
                "{}\n{}\n{}",
                source.display(),
                folder.folder.display(),
                folder.versions.display()
            ),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let incoming = loop {
        let partial = std::fs::read_dir(&folder.versions)
            .unwrap()
            .flatten()
            .find(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".incoming-")
                    && std::fs::read_dir(entry.path()).is_ok_and(|files| files.count() >= 20)
            });
        if let Some(partial) = partial {
            break partial.path();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before it could be killed mid-copy"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the child never started copying"
        );
        std::thread::yield_now();
    };
    assert!(
        child.try_wait().unwrap().is_none(),
        "the child finished before it could be killed mid-copy"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    assert_eq!(
        folder.live_version().unwrap().as_deref(),
        Some(first.version.as_str())
    );
    assert_eq!(
        scan(&folder.folder).unwrap(),
        first_manifest,
        "the live folder changed"
    );
    assert!(
        incoming.exists(),
        "the half-written version should still be where the kill left it"
    );

    let second = folder.deploy(&source).unwrap();
    assert_eq!(second.previous.as_deref(), Some(first.version.as_str()));
    assert!(
        !incoming.exists(),
        "the next deploy removes what the killed one left"
    );
    assert_eq!(scan(&folder.folder).unwrap(), scan(&source).unwrap());
}

#[test]
fn validation_reports_each_broken_file_with_the_last_lines_of_its_trace() {
    let Some(venv) = airflow_support::airflow_venv() else {
        return;
    };
    let tree = tempfile::tempdir().unwrap();
    write_tree(
        tree.path(),
        &[
            ("good.py", &dag_source("sluice_validated", "")),
            (
                "syntax.py",
                "from airflow.sdk import DAG\ndef broken(:\n    pass\n",
            ),
            (
                "missing.py",
                &dag_source("sluice_missing", "import sluice_absent_module"),
            ),
        ],
    );
    let validation = runtime()
        .block_on(validate_dags(
            &venv.join("bin/python"),
            tree.path(),
            Duration::from_secs(120),
        ))
        .unwrap();
    let errors: Vec<(&str, bool)> = validation
        .import_errors
        .iter()
        .map(|error| (error.file.as_str(), error.message.lines().count() <= 6))
        .collect();
    assert_eq!(errors, [("missing.py", true), ("syntax.py", true)]);
    assert!(
        validation.import_errors[0]
            .message
            .contains("No module named 'sluice_absent_module'")
    );
    assert!(
        validation.import_errors[1].message.contains("SyntaxError"),
        "{}",
        validation.import_errors[1].message
    );
    assert_eq!(
        validation
            .dags
            .iter()
            .map(|dag| dag.dag_id.as_str())
            .collect::<Vec<_>>(),
        ["sluice_validated"]
    );
    assert_eq!(validation.dags[0].owner.as_deref(), Some("ml-platform"));
}
