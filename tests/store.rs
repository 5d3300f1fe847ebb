//! The store as its callers see it, on SQLite and on PostgreSQL alike: deliveries stored once
//! and planned once, runs with their jobs, steps and logs read back as written. On SQLite also:
//! everything still there after reopening the file or killing the process, and concurrent
//! writers sharing transactions.

use chrono::{DateTime, Utc};
use sluice::model::{Delivery, EventKind, Run, Status, StepRecord};
use sluice::store::{
    Inserted, NewJob, NewRun, RunFilter, SqliteStore, Store, StoreError, StoreStats,
};
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

#[path = "support/databases.rs"]
mod databases;

fn open_store(directory: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&directory.path().join("sluice.db")).unwrap()
}

fn received_at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn delivery(id: &str, event: &str) -> Delivery {
    Delivery {
        id: id.to_string(),
        event: event.to_string(),
        repository: Some("acme/ml-platform".to_string()),
        payload: format!(r#"{{"delivery":"{id}"}}"#).into_bytes(),
        received_at: received_at("2025-06-01T12:00:00.123456789Z"),
    }
}

fn new_run(repository: &str, commit: &str, pipeline: &str, jobs: &[(&str, &[&str])]) -> NewRun {
    NewRun {
        repository: repository.to_string(),
        commit: commit.to_string(),
        git_ref: "refs/heads/main".to_string(),
        event: EventKind::Push,
        pipeline: pipeline.to_string(),
        status: Status::Queued,
        reason: None,
        concurrency_group: None,
        plan: format!(r#"{{"pipeline":"{pipeline}"}}"#),
        jobs: jobs
            .iter()
            .map(|(name, needs)| NewJob {
                name: name.to_string(),
                needs: needs.iter().map(|need| need.to_string()).collect(),
                status: Status::Queued,
                reason: None,
            })
            .collect(),
    }
}

fn pipelines(runs: &[Run]) -> Vec<String> {
    runs.iter().map(|run| run.pipeline.clone()).collect()
}

fn pending_ids(store: &dyn Store) -> Vec<String> {
    store
        .pending_deliveries(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|delivery| delivery.id)
        .collect()
}

#[test]
fn a_delivery_stored_twice_is_kept_once_with_its_first_payload() {
    databases::on_both_stores(|store| {
        let first = delivery("d-1", "push");
        assert_eq!(store.insert_delivery(&first).unwrap(), Inserted::New);
        let mut redelivered = first.clone();
        redelivered.payload = b"{}".to_vec();
        assert_eq!(
            store.insert_delivery(&redelivered).unwrap(),
            Inserted::Duplicate
        );
        assert_eq!(store.pending_deliveries(10).unwrap(), vec![first]);
    });
}

#[test]
fn pending_deliveries_come_oldest_first_and_respect_the_limit() {
    databases::on_both_stores(|store| {
        for id in ["d-3", "d-1", "d-2"] {
            store.insert_delivery(&delivery(id, "push")).unwrap();
        }
        assert_eq!(pending_ids(store), ["d-3", "d-1", "d-2"]);
        let first_two: Vec<String> = store
            .pending_deliveries(2)
            .unwrap()
            .into_iter()
            .map(|delivery| delivery.id)
            .collect();
        assert_eq!(first_two, ["d-3", "d-1"]);
    });
}

#[test]
fn completing_a_delivery_twice_creates_its_runs_once() {
    databases::on_both_stores(|store| {
        store.insert_delivery(&delivery("d-1", "push")).unwrap();
        store.insert_delivery(&delivery("d-2", "star")).unwrap();
        let runs = [
            new_run("acme/ml-platform", "c1", "platform", &[("build", &[])]),
            new_run("acme/ml-platform", "c1", "models", &[("train", &[])]),
        ];

        let first_ids = store.complete_delivery("d-1", "2 runs", &runs).unwrap();
        let second_ids = store.complete_delivery("d-1", "2 runs", &runs).unwrap();

        assert_eq!(first_ids.len(), 2);
        assert_eq!(second_ids, first_ids);
        let listed = store.list_runs(&RunFilter::default()).unwrap();
        assert_eq!(pipelines(&listed), ["models", "platform"]);
        assert!(
            listed
                .iter()
                .all(|run| run.delivery.as_deref() == Some("d-1"))
        );
        assert_eq!(pending_ids(store), ["d-2"]);

        let ignored = store
            .complete_delivery("d-2", "ignored: event `star` is not handled", &[])
            .unwrap();
        assert!(ignored.is_empty());
        assert!(pending_ids(store).is_empty());
    });
}

#[test]
fn completing_an_unknown_delivery_is_an_error_naming_it() {
    databases::on_both_stores(|store| {
        let error = store
            .complete_delivery("d-404", "1 run", &[new_run("acme/a", "c1", "p", &[])])
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::UnknownDelivery { delivery, .. } if delivery == "d-404"),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("sluice.db") || message.contains("postgres://sluice@"),
            "the message names the database: {message}"
        );
        assert!(store.list_runs(&RunFilter::default()).unwrap().is_empty());
    });
}

#[test]
fn runs_are_listed_newest_first_by_repository_and_commit() {
    databases::on_both_stores(|store| {
        store
            .insert_runs(&[
                new_run("acme/ml", "c1", "first", &[]),
                new_run("acme/ml", "c2", "second", &[]),
                new_run("acme/web", "c1", "third", &[]),
            ])
            .unwrap();
        store
            .insert_runs(&[new_run("acme/ml", "c1", "fourth", &[])])
            .unwrap();

        let check = |repository: Option<&str>, commit: Option<&str>, limit, expect: &[&str]| {
            let filter = RunFilter {
                repository: repository.map(str::to_string),
                commit: commit.map(str::to_string),
                limit,
                ..Default::default()
            };
            let listed = pipelines(&store.list_runs(&filter).unwrap());
            assert_eq!(listed, expect, "{filter:?}");
        };
        check(None, None, None, &["fourth", "third", "second", "first"]);
        check(Some("acme/ml"), None, None, &["fourth", "second", "first"]);
        check(None, Some("c1"), None, &["fourth", "third", "first"]);
        check(Some("acme/ml"), Some("c1"), None, &["fourth", "first"]);
        check(None, None, Some(2), &["fourth", "third"]);
        check(Some("acme/ml"), None, Some(1), &["fourth"]);
        check(Some("acme/unknown"), None, None, &[]);
        check(None, Some("c9"), None, &[]);
        check(None, None, Some(0), &[]);
    });
}

#[test]
fn a_run_with_jobs_and_steps_reads_back_as_written() {
    databases::on_both_stores(|store| {
        let mut run = new_run(
            "acme/ml-platform",
            "0123abc",
            "platform",
            &[
                ("image", &[]),
                ("plan", &["image"]),
                ("deploy", &["image", "plan"]),
            ],
        );
        run.event = EventKind::Merge;
        run.concurrency_group = Some("deploy-main".to_string());
        run.jobs[2].status = Status::Skipped;
        run.jobs[2].reason = Some("if: event == 'merge' was false".to_string());
        let run_id = store.insert_runs(&[run]).unwrap()[0];

        store.set_run_status(run_id, Status::Running, None).unwrap();
        store
            .set_job_status(run_id, "image", Status::Running, None)
            .unwrap();
        let checkout = StepRecord {
            index: 0,
            name: "checkout".to_string(),
            status: Status::Running,
            exit_code: None,
            reason: None,
            started_at: None,
            finished_at: None,
        };
        store.upsert_step(run_id, "image", &checkout).unwrap();
        let checkout_done = StepRecord {
            status: Status::Succeeded,
            exit_code: Some(0),
            ..checkout
        };
        store.upsert_step(run_id, "image", &checkout_done).unwrap();
        let build_failed = StepRecord {
            index: 1,
            name: "docker build".to_string(),
            status: Status::Failed,
            exit_code: Some(2),
            reason: Some("exit code 2".to_string()),
            started_at: None,
            finished_at: None,
        };
        store.upsert_step(run_id, "image", &build_failed).unwrap();
        store
            .set_job_status(
                run_id,
                "image",
                Status::Failed,
                Some("step `docker build` failed"),
            )
            .unwrap();
        store
            .set_run_status(run_id, Status::Failed, Some("job `image` failed"))
            .unwrap();

        let stored = store.get_run(run_id).unwrap().unwrap();
        assert_eq!(stored.id, run_id);
        assert_eq!(stored.repository, "acme/ml-platform");
        assert_eq!(stored.commit, "0123abc");
        assert_eq!(stored.git_ref, "refs/heads/main");
        assert_eq!(stored.event, EventKind::Merge);
        assert_eq!(stored.status, Status::Failed);
        assert_eq!(stored.reason.as_deref(), Some("job `image` failed"));
        assert_eq!(stored.concurrency_group.as_deref(), Some("deploy-main"));
        assert_eq!(stored.delivery, None);
        let finished_at = stored.finished_at.expect("a failed run has finished");
        assert!(finished_at >= stored.created_at);

        let job_names: Vec<&str> = stored.jobs.iter().map(|job| job.name.as_str()).collect();
        assert_eq!(job_names, ["image", "plan", "deploy"]);
        let image = &stored.jobs[0];
        assert_eq!(image.status, Status::Failed);
        assert_eq!(image.reason.as_deref(), Some("step `docker build` failed"));
        assert!(image.started_at.is_some() && image.finished_at.is_some());
        let untimed: Vec<StepRecord> = image
            .steps
            .iter()
            .map(|step| StepRecord {
                started_at: None,
                finished_at: None,
                ..step.clone()
            })
            .collect();
        assert_eq!(untimed, vec![checkout_done, build_failed]);
        // The store times each step: both started, and both finished.
        assert!(
            image
                .steps
                .iter()
                .all(|step| step.started_at.is_some() && step.finished_at.is_some()),
            "{:?}",
            image.steps
        );
        let plan = &stored.jobs[1];
        assert_eq!(
            (plan.status, plan.started_at, plan.finished_at),
            (Status::Queued, None, None)
        );
        assert_eq!(plan.needs, ["image"]);
        let deploy = &stored.jobs[2];
        assert_eq!(deploy.needs, ["image", "plan"]);
        assert_eq!(deploy.status, Status::Skipped);
        assert_eq!(deploy.started_at, None);
        assert!(deploy.finished_at.is_some(), "a skipped job has finished");

        let listed = store.list_runs(&RunFilter::default()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].jobs.len(), 3);
        assert!(listed[0].jobs.iter().all(|job| job.steps.is_empty()));
        assert_eq!(
            store.run_plan(run_id).unwrap().as_deref(),
            Some(r#"{"pipeline":"platform"}"#)
        );
    });
}

#[test]
fn reads_of_a_missing_run_find_nothing() {
    databases::on_both_stores(|store| {
        assert_eq!(store.get_run(42).unwrap(), None);
        assert_eq!(store.run_plan(42).unwrap(), None);
        assert_eq!(store.job_log(42, "build").unwrap(), None);
    });
}

#[test]
fn updates_to_a_missing_run_or_job_are_errors_naming_them() {
    databases::on_both_stores(|store| {
        let run_id = store
            .insert_runs(&[new_run("acme/a", "c1", "p", &[("build", &[])])])
            .unwrap()[0];
        let step = StepRecord {
            index: 0,
            name: "compile".to_string(),
            status: Status::Running,
            exit_code: None,
            reason: None,
            started_at: None,
            finished_at: None,
        };

        let missing_run = store.set_run_status(run_id + 1, Status::Cancelled, None);
        assert!(
            matches!(missing_run, Err(StoreError::UnknownRun { run, .. }) if run == run_id + 1)
        );
        let missing_run_job = store.set_job_status(run_id + 1, "build", Status::Running, None);
        assert!(matches!(
            missing_run_job,
            Err(StoreError::UnknownRun { .. })
        ));

        let missing_job_errors = [
            store.set_job_status(run_id, "tset", Status::Running, None),
            store.upsert_step(run_id, "tset", &step),
            store.append_log(run_id, "tset", "hello\n"),
        ];
        for error in missing_job_errors {
            let error = error.unwrap_err();
            assert!(
                matches!(&error, StoreError::UnknownJob { job, .. } if job == "tset"),
                "{error:?}"
            );
            assert!(error.to_string().contains("no job `tset`"), "{error}");
        }
        let untouched = store.get_run(run_id).unwrap().unwrap();
        assert_eq!(untouched.jobs[0].status, Status::Queued);
    });
}

#[test]
fn log_chunks_read_back_concatenated_in_the_order_appended() {
    databases::on_both_stores(|store| {
        let run_id = store
            .insert_runs(&[new_run(
                "acme/a",
                "c1",
                "p",
                &[("build", &[]), ("test", &[])],
            )])
            .unwrap()[0];
        let mut expected_log = String::new();
        for line_number in 0..300 {
            let line = format!("line {line_number}: ünïcödé ✓\n");
            store.append_log(run_id, "build", &line).unwrap();
            expected_log.push_str(&line);
        }
        store.append_log(run_id, "build", "").unwrap();
        store.append_log(run_id, "build", "no newline").unwrap();
        expected_log.push_str("no newline");

        assert_eq!(store.job_log(run_id, "build").unwrap(), Some(expected_log));
        assert_eq!(store.job_log(run_id, "test").unwrap(), Some(String::new()));
        assert_eq!(store.job_log(run_id, "deploy").unwrap(), None);
    });
}

#[test]
fn unfinished_runs_are_the_queued_and_running_ones_oldest_first() {
    databases::on_both_stores(|store| {
        let mut already_skipped = new_run("acme/a", "c1", "skipped", &[]);
        already_skipped.status = Status::Skipped;
        already_skipped.reason = Some("no matching paths".to_string());
        let run_ids = store
            .insert_runs(&[
                new_run("acme/a", "c1", "one", &[("build", &[])]),
                already_skipped,
                new_run("acme/a", "c1", "two", &[]),
                new_run("acme/a", "c1", "three", &[]),
            ])
            .unwrap();
        store
            .set_run_status(run_ids[2], Status::Running, None)
            .unwrap();
        store
            .set_run_status(run_ids[3], Status::Cancelled, Some("superseded"))
            .unwrap();

        let unfinished = store.unfinished_runs().unwrap();
        assert_eq!(pipelines(&unfinished), ["one", "two"]);
        assert_eq!(unfinished[0].jobs.len(), 1);

        store
            .set_run_status(run_ids[0], Status::Succeeded, None)
            .unwrap();
        assert_eq!(pipelines(&store.unfinished_runs().unwrap()), ["two"]);
        let skipped = store.get_run(run_ids[1]).unwrap().unwrap();
        assert!(
            skipped.finished_at.is_some(),
            "a run created skipped has finished"
        );
    });
}

#[test]
fn stats_count_runs_jobs_and_deliveries_by_kind() {
    databases::on_both_stores(|store| {
        for (id, event) in [
            ("d-1", "push"),
            ("d-2", "push"),
            ("d-3", "star"),
            ("d-4", "push"),
        ] {
            store.insert_delivery(&delivery(id, event)).unwrap();
        }
        let run_ids = store
            .complete_delivery(
                "d-1",
                "2 runs",
                &[
                    new_run("acme/a", "c1", "p", &[("build", &[]), ("test", &["build"])]),
                    new_run("acme/a", "c1", "q", &[("lint", &[])]),
                ],
            )
            .unwrap();
        store
            .complete_delivery(
                "d-2",
                "error: workflows/p.yaml:3:1: unknown key `jbos`",
                &[],
            )
            .unwrap();
        store
            .complete_delivery("d-3", "ignored: event `star` is not handled", &[])
            .unwrap();
        store
            .set_run_status(run_ids[1], Status::Succeeded, None)
            .unwrap();
        store
            .set_job_status(run_ids[1], "lint", Status::Succeeded, None)
            .unwrap();
        store
            .set_job_status(run_ids[0], "build", Status::Running, None)
            .unwrap();

        let owned = |rows: &[(&str, &str, u64)]| -> Vec<(String, String, u64)> {
            rows.iter()
                .map(|(event, kind, count)| (event.to_string(), kind.to_string(), *count))
                .collect()
        };
        assert_eq!(
            store.stats().unwrap(),
            StoreStats {
                runs_by_status: vec![(Status::Queued, 1), (Status::Succeeded, 1)],
                jobs_by_status: vec![
                    (Status::Queued, 1),
                    (Status::Running, 1),
                    (Status::Succeeded, 1)
                ],
                deliveries_by_event: owned(&[
                    ("push", "error", 1),
                    ("push", "pending", 1),
                    ("push", "planned", 1),
                    ("star", "ignored", 1),
                ]),
                pending_deliveries: 1,
            }
        );
    });
}

#[test]
fn everything_written_is_found_after_reopening_the_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory
        .path()
        .join("state")
        .join("nested")
        .join("sluice.db");
    let (run_id, written_run) = {
        let store = SqliteStore::open(&path).unwrap();
        store.insert_delivery(&delivery("d-1", "push")).unwrap();
        store.insert_delivery(&delivery("d-2", "push")).unwrap();
        let run_id = store
            .complete_delivery(
                "d-1",
                "1 run",
                &[new_run("acme/a", "c1", "p", &[("build", &[])])],
            )
            .unwrap()[0];
        store
            .set_job_status(run_id, "build", Status::Running, None)
            .unwrap();
        store.append_log(run_id, "build", "compiling\n").unwrap();
        (run_id, store.get_run(run_id).unwrap().unwrap())
    };

    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.get_run(run_id).unwrap(), Some(written_run));
    assert_eq!(pending_ids(&reopened), ["d-2"]);
    assert_eq!(
        reopened.job_log(run_id, "build").unwrap().as_deref(),
        Some("compiling\n")
    );
    assert_eq!(pipelines(&reopened.unfinished_runs().unwrap()), ["p"]);
    let next_id = reopened
        .insert_runs(&[new_run("acme/a", "c2", "p", &[])])
        .unwrap()[0];
    assert!(next_id > run_id, "run ids keep growing after a reopen");
}

#[test]
fn opening_a_directory_as_the_database_fails_naming_the_path() {
    let directory = tempfile::tempdir().unwrap();
    let error = match SqliteStore::open(directory.path()) {
        Ok(_) => panic!("a directory opened as a database"),
        Err(error) => error,
    };
    let message = error.to_string();
    assert!(
        message.contains(&directory.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn eight_threads_inserting_deliveries_at_once_all_succeed_in_shared_transactions() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 2_000;
    let directory = tempfile::tempdir().unwrap();
    let store = open_store(&directory);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread_number in 0..THREADS {
            let store = &store;
            scope.spawn(move || {
                for delivery_number in 0..PER_THREAD {
                    let id = format!("t{thread_number}-{delivery_number}");
                    assert_eq!(
                        store.insert_delivery(&delivery(&id, "push")).unwrap(),
                        Inserted::New
                    );
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let total = (THREADS * PER_THREAD) as u64;
    let counts = store.write_counts();
    println!(
        "{total} durable delivery inserts from {THREADS} threads in {elapsed:.2?}: \
         {:.0} inserts/s, {} transactions, {:.1} inserts per transaction",
        total as f64 / elapsed.as_secs_f64(),
        counts.batches,
        counts.writes as f64 / counts.batches.max(1) as f64,
    );

    let stored: HashSet<String> = pending_ids(&store).into_iter().collect();
    assert_eq!(stored.len() as u64, total);
    assert!(stored.contains("t0-0") && stored.contains("t7-1999"));
    assert_eq!(store.stats().unwrap().pending_deliveries, total);
    assert_eq!(counts.writes, total);
    assert!(
        counts.batches < total,
        "{} transactions for {total} concurrent inserts: writes were not grouped",
        counts.batches
    );
}

const CHILD_DATABASE_VARIABLE: &str = "SLUICE_TEST_STORE_CHILD_DATABASE";
const ACKNOWLEDGED: &str = "acknowledged ";

/// Run by `acknowledged_deliveries_survive_kill_9` in a child process, which it kills.
#[test]
#[ignore = "runs only as the child process of acknowledged_deliveries_survive_kill_9"]
fn child_inserting_deliveries_until_killed() {
    let database = std::env::var(CHILD_DATABASE_VARIABLE).expect("run by the kill -9 test");
    let store = SqliteStore::open(Path::new(&database)).unwrap();
    std::thread::scope(|scope| {
        for thread_number in 0..4 {
            let store = &store;
            scope.spawn(move || {
                for delivery_number in 0.. {
                    let id = format!("t{thread_number}-{delivery_number}");
                    store.insert_delivery(&delivery(&id, "push")).unwrap();
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "{ACKNOWLEDGED}{id}").unwrap();
                    stdout.flush().unwrap();
                }
            });
        }
    });
}

#[test]
fn acknowledged_deliveries_survive_kill_9() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("sluice.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "child_inserting_deliveries_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DATABASE_VARIABLE, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 500 {
        let line = lines
            .next()
            .expect("the child stopped before acknowledging 500 deliveries")
            .unwrap();
        if let Some(id) = line.strip_prefix(ACKNOWLEDGED) {
            acknowledged.push(id.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no last commit.
    child.wait().unwrap();
    // Acknowledgements already in the pipe were made before the kill and count too.
    for line in lines {
        if let Some(id) = line.unwrap().strip_prefix(ACKNOWLEDGED) {
            acknowledged.push(id.to_string());
        }
    }

    let store = SqliteStore::open(&path).unwrap();
    let stored: HashSet<String> = pending_ids(&store).into_iter().collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after kill -9: {lost:?}"
    );
    assert!(stored.len() >= acknowledged.len());
}
