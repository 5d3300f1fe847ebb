//! Three `sluice serve` replicas on one PostgreSQL database, each with its own data directory,
//! deliveries sent to them in turn with no balancer in front: every unique delivery is planned
//! once however often GitHub resends it, every job runs once, and when a replica is killed with
//! -9 another marks its jobs interrupted within its lease, leads promotion in its place, and no
//! environment deploys twice.

#[path = "support/databases.rs"]
mod databases;
mod support;

use sluice::store::{Coordination, PostgresStore, RunFilter, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use support::recording::{RECORDED_DEV, RECORDED_STAGING, applies, wait_for_health_call};
use support::*;

const REPLICAS_CONFIG: &str =
    "replicas: { lease: 5s, takeover: 500ms }\npromotion: { interval: 200ms, health-poll: 50ms }\n";

fn replica(data: &Path, repo: &TestRepo, url: &str, config: &Path, calls: &Path) -> Server {
    Server::start_with_env(
        data,
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &[
            "--database",
            url,
            "--config",
            config.to_str().unwrap(),
            "--max-parallel-jobs",
            "4",
        ],
        &[("SLUICE_RECORDING_TARGETS", calls)],
    )
}

/// The delivery ids each replica's log says it planned.
fn planned_by(server: &Server) -> Vec<String> {
    std::fs::read_to_string(&server.stderr_log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("delivery planned"))
        .filter_map(|line| {
            let start = line.find("delivery=")? + "delivery=".len();
            Some(line[start..].split_whitespace().next()?.to_owned())
        })
        .collect()
}

/// Runs `check`; when it panics, prints what each replica logged first.
fn logged_on_failure<T>(servers: &[&Server], check: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
        Ok(value) => value,
        Err(panic) => {
            for server in servers {
                eprintln!(
                    "--- {} ---\n{}",
                    server.stderr_log.display(),
                    std::fs::read_to_string(&server.stderr_log).unwrap_or_default()
                );
            }
            std::panic::resume_unwind(panic)
        }
    }
}

fn leads(server: &Server) -> bool {
    std::fs::read_to_string(&server.stderr_log)
        .unwrap_or_default()
        .contains("this replica leads")
}

/// Every `RUN JOB` line the steps appended, and how often each appears.
fn ran(markers: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(markers.join("ran"))
        .unwrap_or_default()
        .lines()
    {
        *counts.entry(line.to_owned()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn two_thousand_deliveries_with_duplicates_sent_to_three_replicas_are_planned_once_and_each_job_runs_once()
 {
    let Some(cluster) = databases::postgres_cluster() else {
        return;
    };
    let url = cluster.database("replicas").unwrap();
    let markers = tempfile::tempdir().unwrap();
    let pipeline = format!(
        "name: ci\non: {{ push: {{ branches: [main] }} }}\njobs:\n  build:\n    steps:\n      - run: echo \"$SLUICE_RUN_ID $SLUICE_JOB\" >> {m}/ran\n  test:\n    needs: build\n    steps:\n      - run: echo \"$SLUICE_RUN_ID $SLUICE_JOB\" >> {m}/ran\n  package:\n    needs: test\n    steps:\n      - run: echo \"$SLUICE_RUN_ID $SLUICE_JOB\" >> {m}/ran\n",
        m = markers.path().display()
    );
    let repo = TestRepo::new();
    let commit = repo.commit(&[("workflows/ci.yaml", &pipeline)], "ci");
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("server.yaml");
    std::fs::write(&config, "replicas: { lease: 10s, takeover: 500ms }\n").unwrap();
    let calls = data.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let servers: Vec<Server> = (0..3)
        .map(|index| {
            replica(
                &data.path().join(format!("replica-{index}")),
                &repo,
                &url,
                &config,
                &calls,
            )
        })
        .collect();

    // 1,400 unique deliveries: one in seven a push to main (a run of three jobs), the others
    // pushes to branches no pipeline runs on. 600 of them are sent again, to another replica.
    let unique: Vec<(String, String)> = (0..1400)
        .map(|index| {
            let branch = if index % 7 == 0 {
                "main".to_owned()
            } else {
                format!("topic-{index}")
            };
            (format!("d-{index}"), branch)
        })
        .collect();
    let mut sends: Vec<&(String, String)> = unique.iter().collect();
    sends.extend((0..600).map(|index| &unique[(index * 7 + 3) % unique.len()]));
    assert_eq!(sends.len(), 2000);
    let zero = "0".repeat(40);
    let answers: Vec<(String, u16)> = std::thread::scope(|scope| {
        let lanes: Vec<_> = (0..4)
            .map(|lane| {
                let (sends, servers, zero, commit) = (&sends, &servers, &zero, &commit);
                scope.spawn(move || {
                    let mut answers = Vec::new();
                    for (index, (id, branch)) in sends.iter().enumerate().skip(lane).step_by(4) {
                        let server = &servers[index % servers.len()];
                        let (status, text) =
                            deliver(server, "push", id, &push_payload(branch, zero, commit));
                        assert!(status == 202 || status == 200, "{id}: {status} {text}");
                        answers.push((id.clone(), status));
                    }
                    answers
                })
            })
            .collect();
        lanes
            .into_iter()
            .flat_map(|lane| lane.join().unwrap())
            .collect()
    });
    // Accepted once (202), answered as a duplicate (200) every other time.
    let accepted: BTreeSet<&str> = answers
        .iter()
        .filter(|(_, status)| *status == 202)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(accepted.len(), 1400);
    assert_eq!(
        answers.iter().filter(|(_, status)| *status == 202).count(),
        1400,
        "each unique delivery was accepted exactly once"
    );

    let store = PostgresStore::open(&url).unwrap();
    let runs = wait_for(
        "every delivery planned and every run finished",
        Duration::from_secs(600),
        || {
            let stats = store.stats().unwrap();
            let planned: u64 = stats
                .deliveries_by_event
                .iter()
                .filter(|(_, kind, _)| kind != "pending")
                .map(|(_, _, count)| count)
                .sum();
            if planned < 1400 {
                return None;
            }
            let runs = store.list_runs(&RunFilter::default()).unwrap();
            runs.iter()
                .all(|run| run.status.is_terminal())
                .then_some(runs)
        },
    );
    assert_eq!(store.stats().unwrap().pending_deliveries, 0);
    assert_eq!(runs.len(), 200, "one run per push to main, no more");
    let deliveries: BTreeSet<&str> = runs
        .iter()
        .map(|run| run.delivery.as_deref().unwrap())
        .collect();
    assert_eq!(deliveries.len(), 200, "no delivery has two runs");
    for run in &runs {
        assert_eq!(
            run.status.as_str(),
            "succeeded",
            "run {} of {:?}",
            run.id,
            run.delivery
        );
    }

    let mut planned: BTreeMap<String, usize> = BTreeMap::new();
    let mut replicas_that_planned = 0;
    for server in &servers {
        let by_this = planned_by(server);
        replicas_that_planned += usize::from(!by_this.is_empty());
        for id in by_this {
            *planned.entry(id).or_insert(0) += 1;
        }
    }
    assert_eq!(planned.len(), 1400, "every unique delivery was planned");
    let twice: Vec<_> = planned.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "planned more than once: {twice:?}");
    assert_eq!(replicas_that_planned, 3, "each replica took a share");

    let ran = ran(markers.path());
    assert_eq!(ran.len(), 600, "three jobs for each of the 200 runs");
    let repeated: Vec<_> = ran.iter().filter(|(_, count)| **count > 1).collect();
    assert!(repeated.is_empty(), "jobs that ran twice: {repeated:?}");
    for run in &runs {
        for job in ["build", "test", "package"] {
            assert!(
                ran.contains_key(&format!("{} {job}", run.id)),
                "{} {job}",
                run.id
            );
        }
    }
}

#[test]
fn a_replica_killed_mid_run_has_its_jobs_interrupted_by_another_and_the_promoter_moves_without_deploying_twice()
 {
    let Some(cluster) = databases::postgres_cluster() else {
        return;
    };
    let url = cluster.database("failover").unwrap();
    let markers = tempfile::tempdir().unwrap();
    let m = markers.path().display();
    let ci = "name: ci\non: { push: { branches: [main] } }\njobs:\n  check:\n    steps:\n      - run: 'true'\n";
    let long = format!(
        "name: long\non: {{ push: {{ branches: ['long/**'] }} }}\njobs:\n  slow:\n    steps:\n      - run: |\n          touch {m}/started-$SLUICE_RUN_ID\n          while [ ! -f {m}/release ]; do sleep 0.05; done\n          echo \"$SLUICE_RUN_ID $SLUICE_JOB\" >> {m}/ran\n  after:\n    needs: slow\n    steps:\n      - run: echo \"$SLUICE_RUN_ID $SLUICE_JOB\" >> {m}/ran\n"
    );
    let repo = TestRepo::new();
    let base = repo.commit(
        &[
            ("workflows/ci.yaml", ci),
            ("workflows/long.yaml", &long),
            ("environments/dev.yaml", RECORDED_DEV),
            ("environments/staging.yaml", RECORDED_STAGING),
            ("dags/train.py", "# a DAG\n"),
        ],
        "platform",
    );
    let merge = repo.commit(&[("dags/train.py", "# a better DAG\n")], "Better DAG");
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("server.yaml");
    std::fs::write(&config, REPLICAS_CONFIG).unwrap();
    let calls = data.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    // Staging's Kubernetes rollout stalls until the test lets it go.
    let hold = calls.join("hold-staging-kubernetes");
    std::fs::write(&hold, "").unwrap();
    let start = |index: usize| {
        replica(
            &data.path().join(format!("replica-{index}")),
            &repo,
            &url,
            &config,
            &calls,
        )
    };

    // The first replica is alone, so it leads: the merge is promoted there, and three long
    // runs start there.
    let mut first = start(0);
    wait_for("the first replica to lead", Duration::from_secs(30), || {
        leads(&first).then_some(())
    });
    let (status, text) = deliver(
        &first,
        "push",
        "merge",
        &push_payload("main", &base, &merge),
    );
    assert_eq!(status, 202, "{text}");
    logged_on_failure(&[&first], || {
        wait_for_health_call(&calls, "staging", "kubernetes", Duration::from_secs(120))
    });
    for index in 0..3 {
        let branch = format!("long/{index}");
        let payload = push_payload(&branch, &"0".repeat(40), &merge);
        assert_eq!(
            deliver(&first, "push", &format!("long-{index}"), &payload).0,
            202
        );
    }
    let store = PostgresStore::open(&url).unwrap();
    let first_id = store.replicas().unwrap()[0].id.clone();
    let held_by_first = wait_for(
        "three slow jobs running on the first replica",
        Duration::from_secs(60),
        || {
            let held: Vec<_> = store
                .held_runs(&first_id)
                .unwrap()
                .into_iter()
                .filter(|run| {
                    run.pipeline == "long"
                        && markers.path().join(format!("started-{}", run.id)).exists()
                })
                .map(|run| run.id)
                .collect();
            (held.len() == 3).then_some(held)
        },
    );

    // Two more replicas, and three long runs sent to them.
    let others = [start(1), start(2)];
    for index in 3..6 {
        let branch = format!("long/{index}");
        let payload = push_payload(&branch, &"0".repeat(40), &merge);
        let server = &others[index % 2];
        assert_eq!(
            deliver(server, "push", &format!("long-{index}"), &payload).0,
            202
        );
    }
    wait_for("six slow jobs running", Duration::from_secs(60), || {
        let started = std::fs::read_dir(markers.path())
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("started-")
            })
            .count();
        (started == 6).then_some(())
    });
    assert!(!others.iter().any(leads), "only the first replica leads");

    first.kill_hard();
    let killed_at = Instant::now();
    for run_id in &held_by_first {
        let slow = wait_for(
            "the killed replica's jobs to be marked interrupted",
            Duration::from_secs(30),
            || {
                let run = store.get_run(*run_id).unwrap().unwrap();
                let slow = run.jobs.into_iter().find(|job| job.name == "slow").unwrap();
                slow.status.is_terminal().then_some(slow)
            },
        );
        assert_eq!(slow.status.as_str(), "failed");
        let reason = slow.reason.unwrap_or_default();
        assert!(
            reason.contains("interrupted") && reason.contains(&first_id),
            "{reason}"
        );
    }
    let taken_over_after = killed_at.elapsed();
    // The lease is 5s; another replica looks for orphaned runs every lease/3.
    assert!(
        taken_over_after < Duration::from_secs(20),
        "taken over after {taken_over_after:?}"
    );
    wait_for("another replica to lead", Duration::from_secs(30), || {
        others.iter().any(leads).then_some(())
    });

    std::fs::remove_file(&hold).unwrap();
    std::fs::write(markers.path().join("release"), "").unwrap();
    let runs = wait_for(
        "every run finished and staging deployed",
        Duration::from_secs(120),
        || {
            let runs = store.list_runs(&RunFilter::default()).unwrap();
            let finished = runs.iter().all(|run| run.status.is_terminal());
            (finished && applies(&calls, "staging").len() == 3).then_some(runs)
        },
    );
    assert_eq!(
        applies(&calls, "dev"),
        ["terraform", "kubernetes", "airflow"]
    );
    assert_eq!(
        applies(&calls, "staging"),
        ["terraform", "kubernetes", "airflow"],
        "the new leader resumed staging: kubernetes was not applied again"
    );
    let status = sluice_command(&data.path().join("status"))
        .env("SLUICE_DATABASE_URL", &url)
        .arg("status")
        .output()
        .unwrap();
    let status = printed(&status);
    assert!(
        status
            .lines()
            .any(|line| line.starts_with("staging") && line.contains(&merge[..12])),
        "{status}"
    );

    let ran = ran(markers.path());
    let repeated: Vec<_> = ran.iter().filter(|(_, count)| **count > 1).collect();
    assert!(repeated.is_empty(), "jobs that ran twice: {repeated:?}");
    for run in runs.iter().filter(|run| run.pipeline == "long") {
        let interrupted = held_by_first.contains(&run.id);
        let after = run.jobs.iter().find(|job| job.name == "after").unwrap();
        if interrupted {
            assert_eq!(run.status.as_str(), "failed", "run {}", run.id);
            assert_eq!(after.status.as_str(), "skipped", "run {}", run.id);
        } else {
            assert_eq!(run.status.as_str(), "succeeded", "run {}", run.id);
            assert!(ran.contains_key(&format!("{} after", run.id)));
        }
    }
}

#[test]
fn a_browser_on_one_replica_follows_a_run_that_another_replica_runs() {
    let Some(cluster) = databases::postgres_cluster() else {
        return;
    };
    let url = cluster.database("live").unwrap();
    let markers = tempfile::tempdir().unwrap();
    let m = markers.path().display();
    let pipeline = format!(
        "name: ci\non: {{ push: {{ branches: [main] }} }}\njobs:\n  wait:\n    steps:\n      - run: |\n          echo waiting\n          while [ ! -f {m}/release ]; do sleep 0.05; done\n"
    );
    let repo = TestRepo::new();
    let commit = repo.commit(&[("workflows/ci.yaml", &pipeline)], "ci");
    let data = tempfile::tempdir().unwrap();
    let calls = data.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let config = data.path().join("server.yaml");
    std::fs::write(&config, "replicas: { lease: 10s, takeover: 500ms }\n").unwrap();
    let servers = [
        replica(&data.path().join("a"), &repo, &url, &config, &calls),
        replica(&data.path().join("b"), &repo, &url, &config, &calls),
    ];
    // A browser on each replica follows /events.
    let streams: Vec<std::sync::mpsc::Receiver<String>> = servers
        .iter()
        .map(|server| {
            let events = reqwest::blocking::Client::new()
                .get(server.url("/events"))
                .send()
                .unwrap();
            assert_eq!(events.status(), 200);
            let (lines, received) = std::sync::mpsc::channel::<String>();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(events)
                    .lines()
                    .map_while(Result::ok)
                {
                    if lines.send(line).is_err() {
                        return;
                    }
                }
            });
            received
        })
        .collect();
    // Both are ready for a load balancer: the database answers with this build's schema.
    for server in &servers {
        let ready = http().get(server.url("/readyz")).send().unwrap();
        assert_eq!(ready.status(), 200);
        assert!(ready.text().unwrap().starts_with("ready: schema version"));
    }
    let payload = push_payload("main", &"0".repeat(40), &commit);
    assert_eq!(deliver(&servers[0], "push", "live-1", &payload).0, 202);

    // Whichever replica claimed the run runs it; the other one only watches.
    let store = PostgresStore::open(&url).unwrap();
    let (run, holder) = logged_on_failure(&[&servers[0], &servers[1]], || {
        wait_for("the run to start", Duration::from_secs(60), || {
            store.replicas().unwrap().into_iter().find_map(|replica| {
                let run = store
                    .held_runs(&replica.id)
                    .unwrap()
                    .into_iter()
                    .find(|run| run.jobs.iter().any(|job| job.status.as_str() == "running"))?;
                Some((run, replica.address))
            })
        })
    });
    let watching = servers
        .iter()
        .position(|server| server.base_url.trim_start_matches("http://") != holder)
        .expect("one replica does not hold the run");
    // The watching replica's browser hears of it, though the run is not on that replica.
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected = format!("data: {}", run.id);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = streams[watching]
            .recv_timeout(left)
            .expect("a change event for the run on the watching replica's /events");
        if line == expected {
            break;
        }
    }
    std::fs::write(markers.path().join("release"), "").unwrap();
    let finished = wait_for("the run to finish", Duration::from_secs(60), || {
        let run = store.get_run(run.id).unwrap().unwrap();
        run.status.is_terminal().then_some(run)
    });
    assert_eq!(finished.status.as_str(), "succeeded");
    // The log is the watching replica's to show too.
    let log = http()
        .get(servers[watching].url(&format!("/api/runs/{}/jobs/wait/log", run.id)))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(log.contains("waiting"), "{log}");
}
