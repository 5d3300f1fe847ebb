//! Crash safety: kill -9 the server at awkward moments, start it again, and check that nothing
//! accepted is lost and nothing runs twice.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn deliveries_accepted_before_a_kill_are_each_planned_exactly_once_after_restart() {
    let repo = TestRepo::new();
    let pipeline = "name: ci\non: { push: { branches: [main] } }\njobs:\n  check:\n    steps:\n      - run: 'true'\n";
    let mut previous = repo.commit(&[("workflows/ci.yaml", pipeline)], "pipeline");
    let mut commits = Vec::new();
    for index in 0..15 {
        let next = repo.commit(
            &[("src/counter.txt", &index.to_string())],
            &format!("change {index}"),
        );
        commits.push((previous.clone(), next.clone()));
        previous = next;
    }
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path(), repo.path());
    for (index, (before, after)) in commits.iter().enumerate() {
        let (status, text) = deliver(
            &server,
            "push",
            &format!("burst-{index}"),
            &push_payload("main", before, after),
        );
        assert_eq!(status, 202, "{text}");
    }
    // Killed while the intake worker is still planning and running the burst.
    server.kill_hard();

    let server = Server::start(data.path(), repo.path());
    for (_, after) in &commits {
        let runs = finished_runs(&server, after, 1);
        assert_eq!(runs.len(), 1, "exactly one run for {after}: {runs:?}");
        assert!(
            matches!(
                runs[0]["status"].as_str(),
                Some("succeeded") | Some("failed")
            ),
            "{}",
            runs[0]
        );
    }
    // Redelivering after the restart is still recognised as a duplicate.
    let (before, after) = &commits[0];
    assert_eq!(
        deliver(
            &server,
            "push",
            "burst-0",
            &push_payload("main", before, after)
        )
        .0,
        200
    );
}

#[test]
fn a_job_running_during_a_kill_is_failed_with_a_reason_and_never_run_twice() {
    let repo = TestRepo::new();
    let scratch = tempfile::tempdir().unwrap();
    let starts = scratch.path().join("starts");
    let pipeline = format!(
        r#"name: deploy
on: {{ push: {{ branches: [main] }} }}
jobs:
  slow:
    steps:
      - run: |
          echo start >> {starts}
          while true; do sleep 0.05; done
  report:
    needs: slow
    if: always()
    steps:
      - run: echo "slow finished as ${{{{ needs.slow.result }}}}"
"#,
        starts = starts.display()
    );
    let commit = repo.commit(&[("workflows/deploy.yaml", &pipeline)], "pipeline");
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path(), repo.path());
    assert_eq!(
        deliver(
            &server,
            "push",
            "slow-1",
            &push_payload("main", &"0".repeat(40), &commit)
        )
        .0,
        202
    );
    wait_for("the slow job to start", Duration::from_secs(60), || {
        std::fs::read_to_string(&starts)
            .ok()
            .filter(|text| text.contains("start"))
    });
    server.kill_hard();

    let server = Server::start(data.path(), repo.path());
    let runs = finished_runs(&server, &commit, 1);
    let run = &runs[0];
    assert_eq!(run["status"], "failed");
    let slow = &run["jobs"][0];
    assert_eq!(slow["name"], "slow");
    assert_eq!(slow["status"], "failed");
    assert!(
        slow["reason"].as_str().unwrap().contains("interrupted"),
        "{slow}"
    );
    assert_eq!(
        run["jobs"][1]["status"], "succeeded",
        "the always() job still runs: {run}"
    );
    // The step started once, and its process died with the old server.
    assert_eq!(std::fs::read_to_string(&starts).unwrap().lines().count(), 1);
}
