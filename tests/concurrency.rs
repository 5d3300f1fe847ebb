//! `concurrency` groups: a newer run cancels the older one when asked, or waits for it.

mod support;

use std::time::Duration;
use support::*;

fn pipeline(cancel: bool, marker_dir: &std::path::Path) -> String {
    format!(
        "name: deploy\non: {{ push: {{ branches: [main] }} }}\nconcurrency:\n  group: deploy-${{{{ github.ref }}}}\n  cancel-in-progress: {cancel}\njobs:\n  rollout:\n    steps:\n      - run: |\n          touch {dir}/started-$SLUICE_SHA\n          while [ ! -f {dir}/release ]; do sleep 0.05; done\n",
        dir = marker_dir.display()
    )
}

#[test]
fn a_newer_run_cancels_the_older_one_in_the_same_group() {
    let markers = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let first = repo.commit(
        &[("workflows/deploy.yaml", &pipeline(true, markers.path()))],
        "one",
    );
    let second = repo.commit(&[("src/x", "2")], "two");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());

    assert_eq!(
        deliver(
            &server,
            "push",
            "c-1",
            &push_payload("main", &"0".repeat(40), &first)
        )
        .0,
        202
    );
    wait_for(
        "the first rollout to start",
        Duration::from_secs(60),
        || {
            markers
                .path()
                .join(format!("started-{first}"))
                .exists()
                .then_some(())
        },
    );
    assert_eq!(
        deliver(
            &server,
            "push",
            "c-2",
            &push_payload("main", &first, &second)
        )
        .0,
        202
    );
    wait_for(
        "the second rollout to start",
        Duration::from_secs(60),
        || {
            markers
                .path()
                .join(format!("started-{second}"))
                .exists()
                .then_some(())
        },
    );
    std::fs::write(markers.path().join("release"), "").unwrap();

    let older = finished_runs(&server, &first, 1);
    assert_eq!(older[0]["status"], "cancelled");
    assert!(
        older[0]["reason"].as_str().unwrap().contains("superseded"),
        "{}",
        older[0]
    );
    let newer = finished_runs(&server, &second, 1);
    assert_eq!(newer[0]["status"], "succeeded");
}

#[test]
fn without_cancel_in_progress_the_newer_run_waits_for_the_older() {
    let markers = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let first = repo.commit(
        &[("workflows/deploy.yaml", &pipeline(false, markers.path()))],
        "one",
    );
    let second = repo.commit(&[("src/x", "2")], "two");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());

    assert_eq!(
        deliver(
            &server,
            "push",
            "w-1",
            &push_payload("main", &"0".repeat(40), &first)
        )
        .0,
        202
    );
    wait_for(
        "the first rollout to start",
        Duration::from_secs(60),
        || {
            markers
                .path()
                .join(format!("started-{first}"))
                .exists()
                .then_some(())
        },
    );
    assert_eq!(
        deliver(
            &server,
            "push",
            "w-2",
            &push_payload("main", &first, &second)
        )
        .0,
        202
    );
    // The second run is recorded and waits, queued, while the first holds the group.
    let queued = wait_for(
        "the second run to be recorded",
        Duration::from_secs(60),
        || server.runs(&format!("?commit={second}")).into_iter().next(),
    );
    assert_eq!(queued["status"], "queued");
    assert!(!markers.path().join(format!("started-{second}")).exists());
    std::fs::write(markers.path().join("release"), "").unwrap();
    assert_eq!(finished_runs(&server, &first, 1)[0]["status"], "succeeded");
    assert_eq!(finished_runs(&server, &second, 1)[0]["status"], "succeeded");
}

#[test]
fn jobs_sharing_a_job_level_group_never_overlap() {
    let markers = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let pipeline = format!(
        "name: migrate\non: {{ push: {{ branches: [main] }} }}\njobs:\n  migrate-a:\n    concurrency: database\n    steps:\n      - run: |\n          touch {dir}/started-a\n          while [ ! -f {dir}/release ]; do sleep 0.05; done\n  migrate-b:\n    concurrency: database\n    steps:\n      - run: touch {dir}/started-b\n",
        dir = markers.path().display()
    );
    let commit = repo.commit(&[("workflows/migrate.yaml", &pipeline)], "migrations");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    assert_eq!(
        deliver(
            &server,
            "push",
            "j-1",
            &push_payload("main", &"0".repeat(40), &commit)
        )
        .0,
        202
    );
    wait_for("migrate-a to start", Duration::from_secs(60), || {
        markers.path().join("started-a").exists().then_some(())
    });
    let runs = server.runs(&format!("?commit={commit}"));
    assert_eq!(
        job_statuses(&runs[0])[1],
        ("migrate-b".to_owned(), "queued".to_owned())
    );
    assert!(!markers.path().join("started-b").exists());
    std::fs::write(markers.path().join("release"), "").unwrap();
    let runs = finished_runs(&server, &commit, 1);
    assert_eq!(runs[0]["status"], "succeeded");
    assert!(markers.path().join("started-b").exists());
}
