//! `sluice migrate` as an operator runs it: an installation's SQLite history copied into an empty
//! PostgreSQL database, read back there through the store as the server would read it, and a
//! second copy into the same database refused without printing its password.

use chrono::{DateTime, Utc};
use sluice::model::access::Role;
use sluice::model::release::Release;
use sluice::model::{Delivery, EventKind, RunId, Status, StepRecord};
use sluice::store::{
    ApiTokens, DeployStore, DeploymentAction, Inserted, NewApiToken, NewAuditEntry, NewDeployment,
    NewJob, NewRun, PostgresStore, RunFilter, SqliteStore, Store,
};
use std::path::Path;
use std::process::{Command, Output};

// Only the cluster is needed here, not the helper that runs a test on both stores.
#[allow(dead_code)]
#[path = "support/databases.rs"]
mod databases;

const PASSWORD: &str = "correct-horse-battery";
const REPOSITORY: &str = "acme/ml-platform";

fn sluice_migrate(from: &str, to: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["migrate", "--from", from, "--to", to])
        .env_remove("SLUICE_DATABASE_URL")
        .output()
        .expect("sluice runs")
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn delivery(id: &str) -> Delivery {
    Delivery {
        id: id.to_string(),
        event: "push".to_string(),
        repository: Some(REPOSITORY.to_string()),
        payload: format!(r#"{{"delivery":"{id}"}}"#).into_bytes(),
        received_at: DateTime::parse_from_rfc3339("2026-11-01T09:30:00.25Z")
            .unwrap()
            .with_timezone(&Utc),
    }
}

fn new_run(commit: &str) -> NewRun {
    let job = |name: &str, needs: &[&str]| NewJob {
        name: name.to_string(),
        needs: needs.iter().map(|need| need.to_string()).collect(),
        status: Status::Queued,
        reason: None,
    };
    NewRun {
        repository: REPOSITORY.to_string(),
        commit: commit.to_string(),
        git_ref: "refs/heads/main".to_string(),
        event: EventKind::Push,
        pipeline: "train".to_string(),
        status: Status::Queued,
        reason: None,
        concurrency_group: Some("train-main".to_string()),
        plan: r#"{"pipeline":"train"}"#.to_string(),
        jobs: vec![job("build", &[]), job("test", &["build"])],
    }
}

/// A finished run: both jobs ran their steps and logged; `build` logged more lines than one
/// insert of the copy carries.
fn run_to_the_end(store: &SqliteStore, run: RunId) {
    for job in ["build", "test"] {
        store
            .set_job_status(run, job, Status::Running, None)
            .unwrap();
        store
            .upsert_step(
                run,
                job,
                &StepRecord {
                    index: 0,
                    name: format!("{job} it"),
                    status: Status::Succeeded,
                    exit_code: Some(0),
                    reason: None,
                    started_at: None,
                    finished_at: None,
                },
            )
            .unwrap();
        store
            .set_job_status(run, job, Status::Succeeded, None)
            .unwrap();
    }
    for line in 0..230 {
        store
            .append_log(run, "build", &format!("step 1 line {line}\n"))
            .unwrap();
    }
    store
        .append_log(run, "test", "all 12 tests passed\n")
        .unwrap();
    let outputs = [("digest".to_string(), "sha256:4f2a".to_string())].into();
    store.set_job_outputs(run, "build", &outputs).unwrap();
    store.set_run_status(run, Status::Succeeded, None).unwrap();
}

/// An installation with history: two deliveries (one planned into a run), a run started without
/// a delivery, a release deployed to dev with its history line, and an API token.
fn installation_with_history(path: &Path) -> Vec<RunId> {
    let store = SqliteStore::open(path).unwrap();
    store.insert_delivery(&delivery("delivery-1")).unwrap();
    store.insert_delivery(&delivery("delivery-2")).unwrap();
    let mut runs = store
        .complete_delivery("delivery-1", "1 run", &[new_run("a1b2c3")])
        .unwrap();
    runs.extend(store.insert_runs(&[new_run("d4e5f6")]).unwrap());
    for run in &runs {
        run_to_the_end(&store, *run);
    }
    let mut release = Release {
        id: "r1-a1b2c3000000".to_string(),
        repository: REPOSITORY.to_string(),
        commit: "a1b2c3".to_string(),
        branch: "main".to_string(),
        author: Some("alice".to_string()),
        created_at: 1_790_000_000,
        sequence: 1,
        images: Default::default(),
        plans: Default::default(),
        dag_tree: None,
        models: Default::default(),
        config_commit: None,
        contributors: Default::default(),
    };
    release.images.insert(
        "trainer".to_string(),
        "registry/trainer@sha256:4f2a".to_string(),
    );
    assert!(store.insert_release(&release).unwrap());
    store
        .start_deployment(&NewDeployment {
            repository: REPOSITORY.to_string(),
            environment: "dev".to_string(),
            release: release.id.clone(),
            previous: None,
            action: DeploymentAction::Promote,
            actor: None,
            reason: None,
            at: 1_790_000_100,
        })
        .unwrap()
        .expect("no deployment runs yet");
    store
        .record_audit(&NewAuditEntry {
            repository: REPOSITORY,
            environment: Some("dev"),
            release: Some(&release.id),
            action: "deploy",
            actor: None,
            outcome: "started",
            reason: "promotion",
            at: 1_790_000_100,
        })
        .unwrap();
    store
        .insert_api_token(&NewApiToken {
            name: "alice".to_string(),
            role: Role::Approver,
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_string(),
            created_at: 1_790_000_000,
            expires_at: None,
        })
        .unwrap();
    runs
}

#[test]
fn migrate_copies_the_history_and_refuses_to_copy_twice_without_printing_the_password() {
    let Some(cluster) = databases::postgres_cluster() else {
        return;
    };
    let url = cluster.database("migrated").unwrap().replacen(
        "postgres://sluice@",
        &format!("postgres://sluice:{PASSWORD}@"),
        1,
    );
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("sluice.db");
    let runs = installation_with_history(&path);

    let output = sluice_migrate(&format!("sqlite:{}", path.display()), &url);
    let printed_first = printed(&output);
    assert!(output.status.success(), "{printed_first}");
    assert!(printed_first.contains("log_chunks"), "{printed_first}");
    assert!(
        printed_first.contains("runs") && printed_first.contains("2 rows"),
        "{printed_first}"
    );
    assert!(printed_first.contains("sluice:***@"), "{printed_first}");
    assert!(!printed_first.contains(PASSWORD), "{printed_first}");
    assert!(!printed_first.contains("replicas"), "{printed_first}");

    let sqlite = SqliteStore::open(&path).unwrap();
    let postgres = PostgresStore::open(&url).unwrap();
    let everything = RunFilter::default();
    assert_eq!(
        postgres.list_runs(&everything).unwrap(),
        sqlite.list_runs(&everything).unwrap()
    );
    for run in &runs {
        assert_eq!(
            postgres.get_run(*run).unwrap(),
            sqlite.get_run(*run).unwrap()
        );
        for job in ["build", "test"] {
            assert_eq!(
                postgres.job_log(*run, job).unwrap(),
                sqlite.job_log(*run, job).unwrap()
            );
        }
    }
    let build_log = postgres.job_log(runs[0], "build").unwrap().unwrap();
    assert!(build_log.ends_with("step 1 line 229\n"), "{build_log}");
    assert_eq!(
        postgres.delivery("delivery-2").unwrap(),
        Some(delivery("delivery-2"))
    );
    assert_eq!(
        postgres.insert_delivery(&delivery("delivery-1")).unwrap(),
        Inserted::Duplicate
    );
    assert_eq!(
        postgres.releases(REPOSITORY).unwrap(),
        sqlite.releases(REPOSITORY).unwrap()
    );
    assert_eq!(
        postgres.running_deployments(REPOSITORY).unwrap(),
        sqlite.running_deployments(REPOSITORY).unwrap()
    );
    assert_eq!(
        postgres.deployments(REPOSITORY, None).unwrap(),
        sqlite.deployments(REPOSITORY, None).unwrap()
    );
    assert_eq!(
        postgres.audit(REPOSITORY, None).unwrap(),
        sqlite.audit(REPOSITORY, None).unwrap()
    );
    assert_eq!(postgres.api_tokens().unwrap(), sqlite.api_tokens().unwrap());

    // The database numbers new rows after the copied ones instead of colliding with them.
    let new_run = postgres.insert_runs(&[new_run("0a0b0c")]).unwrap()[0];
    assert!(
        new_run > *runs.iter().max().unwrap(),
        "new run {new_run} after {runs:?}"
    );
    postgres.append_log(new_run, "build", "fresh\n").unwrap();
    assert_eq!(
        postgres.job_log(new_run, "build").unwrap().as_deref(),
        Some("fresh\n")
    );
    drop(postgres);

    let second = sluice_migrate(path.to_str().unwrap(), &url);
    let printed_second = printed(&second);
    assert!(!second.status.success(), "{printed_second}");
    assert!(printed_second.contains("already holds"), "{printed_second}");
    assert!(printed_second.contains("`deliveries`"), "{printed_second}");
    assert!(printed_second.contains("/migrated"), "{printed_second}");
    assert!(!printed_second.contains(PASSWORD), "{printed_second}");
}

#[test]
fn a_to_that_is_not_a_postgres_url_is_a_usage_error_naming_the_flag() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("sluice.db");
    let output = sluice_migrate(
        &format!("sqlite:{}", path.display()),
        "mysql://sluice:hunter2@127.0.0.1/sluice",
    );
    let message = printed(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("--to"), "{message}");
    assert!(message.contains("postgres://"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        !path.exists(),
        "a refused command created {}",
        path.display()
    );
}

#[test]
fn a_missing_sqlite_file_is_a_usage_error_and_is_not_created() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("typo.db");
    let output = sluice_migrate(
        &format!("sqlite:{}", path.display()),
        "postgres://sluice@127.0.0.1:1/sluice",
    );
    let message = printed(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("--from"), "{message}");
    assert!(message.contains("typo.db"), "{message}");
    assert!(!path.exists(), "sluice migrate created {}", path.display());
}
