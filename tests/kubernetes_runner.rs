//! The Kubernetes runner against the in-process fake API server: a pipeline's jobs go through
//! the dispatcher, each becomes a Job whose pod the fake's kubelet plays by a script, and what a
//! user notices is checked: the Job and pod the cluster received, the Secret (or none), the
//! job's log and its steps' outcomes, and that nothing is left in the namespace afterwards.

use serde_json::Value;
use sluice::cli::Engine;
use sluice::config::SourceFile;
use sluice::model::{Event, EventKind, RunId, Status, TrustLevel};
use sluice::scheduler::RunUpdate;
use sluice::steps::kubernetes::pod::{Reported, report_message};
use sluice::steps::kubernetes::{KubernetesRunner, RunnerSettings};
use sluice::targets::kubernetes::fake::{ContainerScript, FakeApiServer, spawn_fake_api_server};
use std::collections::BTreeMap;
use std::sync::Arc;

const NAMESPACE: &str = "ci-jobs";
const REPOSITORY_URL: &str = "https://git.example/acme/ml.git";
const SECRET_VALUE: &str = "hunter2-registry-token";

fn settings() -> RunnerSettings {
    RunnerSettings {
        namespace: NAMESPACE.to_owned(),
        service_account: Some("sluice-steps".to_owned()),
        image: Some("debian:bookworm-slim".to_owned()),
        checkout_image: "alpine/git:2.47.2".to_owned(),
        cpu: Some("500m".to_owned()),
        memory: Some("512Mi".to_owned()),
        user: (65534, 65534),
    }
}

fn event(kind: EventKind) -> Event {
    Event {
        kind,
        repository: "acme/ml".to_owned(),
        git_ref: "refs/heads/main".to_owned(),
        commit: "c0ffee".repeat(6) + "c0ff",
        before: None,
        base_branch: (kind == EventKind::PullRequest).then(|| "main".to_owned()),
        action: (kind == EventKind::PullRequest).then(|| "opened".to_owned()),
        pull_request: (kind == EventKind::PullRequest).then_some(7),
        actor: None,
        changed_paths: None,
    }
}

fn reported(reported: Reported) -> String {
    report_message(&reported)
}

struct Harness {
    fake: FakeApiServer,
    engine: Engine,
    _data: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        let (url, fake) = spawn_fake_api_server().await;
        fake.run_pods();
        fake.script_container("checkout", ContainerScript::exits(0, "checked out\n"));
        let data = tempfile::tempdir().unwrap();
        let repositories = BTreeMap::from([("acme/ml".to_owned(), REPOSITORY_URL.to_owned())]);
        let mut engine = Engine::open(data.path(), repositories, 2).unwrap();
        engine
            .settings
            .secrets
            .insert("REGISTRY_TOKEN".to_owned(), SECRET_VALUE.to_owned());
        engine.settings.redacted.push(SECRET_VALUE.to_owned());
        let config = kube::Config::new(url.as_str().trim_end_matches('/').parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        engine.start_dispatcher(Arc::new(KubernetesRunner::new(client, settings())));
        Harness {
            fake,
            engine,
            _data: data,
        }
    }

    /// Records the pipeline's runs for the event at this trust level and wakes the dispatcher.
    fn plan(&self, pipeline: &str, event: &Event, trust: TrustLevel) -> RunId {
        let files = [SourceFile {
            path: "workflows/ci.yaml".to_owned(),
            contents: pipeline.as_bytes().to_vec(),
        }];
        let runs = sluice::scheduler::plan_runs_for(&files, event, trust, None);
        assert_eq!(runs.len(), 1, "the pipeline plans one run");
        let ids = self.engine.store.insert_runs(&runs).unwrap();
        self.engine.dispatcher_wakeup.notify_one();
        ids[0]
    }

    /// Waits for the run to finish (or, with `until_log`, for a log line containing it).
    async fn wait(
        &self,
        updates: &mut tokio::sync::broadcast::Receiver<RunUpdate>,
        run: RunId,
        until_log: Option<&str>,
    ) {
        let waiting = async {
            loop {
                match updates.recv().await {
                    Ok(RunUpdate::RunStatus {
                        run: id, status, ..
                    }) if id == run && status.is_terminal() && until_log.is_none() => {
                        return;
                    }
                    Ok(RunUpdate::LogLine { run: id, line, .. })
                        if id == run && until_log.is_some_and(|wanted| line.contains(wanted)) =>
                    {
                        return;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(error) => panic!("updates ended: {error}"),
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), waiting)
            .await
            .expect("the run finishes within a minute");
    }

    fn job(&self, run: RunId) -> (sluice::model::JobRecord, String) {
        let run_record = self.engine.store.get_run(run).unwrap().unwrap();
        let job = run_record.jobs[0].clone();
        let log = self
            .engine
            .store
            .job_log(run, &job.name)
            .unwrap()
            .unwrap_or_default();
        (job, log)
    }

    /// Objects of `kind` the fake ever stored, as first created.
    fn created(&self, kind: &str) -> Vec<Value> {
        self.fake.created(kind)
    }

    fn left_in_namespace(&self) -> Vec<String> {
        self.fake
            .objects()
            .into_iter()
            .filter(|object| object["metadata"]["namespace"] == NAMESPACE)
            .map(|object| format!("{}/{}", object["kind"], object["metadata"]["name"]))
            .collect()
    }
}

const TWO_STEPS: &str = "name: ci\non: { push: {}, pull_request: {} }\njobs:\n  test:\n    env: { TOKEN: '${{ secrets.REGISTRY_TOKEN }}' }\n    steps:\n      - name: unit tests\n        image: python:3.12\n        run: pytest -q\n      - name: report\n        if: always()\n        run: echo report\n";

fn env_of(container: &Value) -> BTreeMap<String, Value> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|variable| {
            let value = variable
                .get("value")
                .cloned()
                .unwrap_or_else(|| variable["valueFrom"].clone());
            (variable["name"].as_str().unwrap().to_owned(), value)
        })
        .collect()
}

#[tokio::test]
async fn a_trusted_push_runs_as_a_job_whose_pod_checks_out_the_commit_and_gets_a_secret_it_owns() {
    let harness = Harness::new().await;
    harness.fake.script_container(
        "step-1",
        ContainerScript::exits(0, "4 passed\ntoken is hunter2-registry-token\n")
            .with_message(&reported(Reported::Exited(0))),
    );
    harness.fake.script_container(
        "step-2",
        ContainerScript::exits(0, "report\n").with_message(&reported(Reported::Exited(0))),
    );
    let mut updates = harness.engine.updates.subscribe();
    let push = event(EventKind::Push);
    let run = harness.plan(TWO_STEPS, &push, TrustLevel::Trusted);
    harness.wait(&mut updates, run, None).await;

    let (job, log) = harness.job(run);
    assert_eq!(job.status, Status::Succeeded, "{job:?}\n{log}");
    let step_statuses: Vec<Status> = job.steps.iter().map(|step| step.status).collect();
    assert_eq!(step_statuses, [Status::Succeeded, Status::Succeeded]);
    assert!(log.contains("checked out"), "{log}");
    assert!(
        log.contains("sluice: step 1: unit tests\n4 passed\n"),
        "{log}"
    );
    assert!(log.contains("report\n"), "{log}");
    assert!(
        !log.contains(SECRET_VALUE),
        "the pod's log is redacted: {log}"
    );

    let jobs = harness.created("Job");
    assert_eq!(jobs.len(), 1);
    let created = &jobs[0];
    assert_eq!(created["metadata"]["namespace"], NAMESPACE);
    assert_eq!(created["spec"]["backoffLimit"], 0);
    let pod = &created["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "sluice-steps");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["restartPolicy"], "Never");
    let init = pod["initContainers"].as_array().unwrap();
    let names: Vec<&str> = init.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["checkout", "step-1", "step-2"]);
    let checkout = env_of(&init[0]);
    assert_eq!(checkout["SLUICE_COMMIT"], push.commit.as_str());
    assert_eq!(checkout["SLUICE_REPOSITORY_URL"], REPOSITORY_URL);
    assert!(init[0]["command"].to_string().contains("git fetch"));
    assert_eq!(init[1]["image"], "python:3.12");
    assert_eq!(
        init[2]["image"], "debian:bookworm-slim",
        "the runner's default image"
    );
    assert_eq!(init[1]["resources"]["limits"]["cpu"], "500m");
    assert_eq!(init[1]["resources"]["limits"]["memory"], "512Mi");
    let step_env = env_of(&init[1]);
    assert_eq!(step_env["SLUICE_STEP_SCRIPT"], "pytest -q");
    assert_eq!(step_env["SLUICE_STEP_RUN_WHEN"], "success");
    assert_eq!(env_of(&init[2])["SLUICE_STEP_RUN_WHEN"], "always");
    let secret_name = format!("{}-secrets", created["metadata"]["name"].as_str().unwrap());
    assert_eq!(
        step_env["TOKEN"]["secretKeyRef"]["name"], secret_name,
        "a variable holding a secret comes from the Secret"
    );
    assert!(
        !created.to_string().contains(SECRET_VALUE),
        "no secret value in the Job's spec"
    );

    let secrets = harness.created("Secret");
    assert_eq!(secrets.len(), 1, "one Secret for the job");
    let owner = &secrets[0]["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Job");
    assert_eq!(owner["uid"], created["metadata"]["uid"]);
    assert_eq!(secrets[0]["stringData"]["step-1.TOKEN"], SECRET_VALUE);

    assert_eq!(
        harness.left_in_namespace(),
        Vec::<String>::new(),
        "the Job, its pod and its Secret are deleted when the job ends"
    );
    let writes = harness.fake.write_log();
    assert!(
        writes
            .iter()
            .any(|write| write.starts_with("garbage-collect Pod/")),
        "the pod went with its Job (propagation): {writes:?}"
    );
}

#[tokio::test]
async fn an_untrusted_pull_request_gets_no_secret_and_its_variables_stay_empty() {
    let harness = Harness::new().await;
    for container in ["step-1", "step-2"] {
        harness.fake.script_container(
            container,
            ContainerScript::exits(0, "").with_message(&reported(Reported::Exited(0))),
        );
    }
    let mut updates = harness.engine.updates.subscribe();
    let run = harness.plan(
        TWO_STEPS,
        &event(EventKind::PullRequest),
        TrustLevel::Untrusted,
    );
    harness.wait(&mut updates, run, None).await;
    let (job, log) = harness.job(run);
    assert_eq!(job.status, Status::Succeeded, "{log}");
    assert_eq!(harness.created("Secret"), Vec::<Value>::new());
    let jobs = harness.created("Job");
    let init = jobs[0]["spec"]["template"]["spec"]["initContainers"].clone();
    assert_eq!(env_of(&init[1])["TOKEN"], "", "no secret reaches the step");
    assert!(!init.to_string().contains("secretKeyRef"), "{init}");
}

#[tokio::test]
async fn a_failed_step_fails_the_job_skips_what_needs_success_and_still_runs_always_steps() {
    let harness = Harness::new().await;
    let pipeline = "name: ci\non: { push: {} }\njobs:\n  test:\n    steps:\n      - run: exit 3\n      - run: echo deploy\n      - run: echo cleanup\n        if: always()\n      - run: sleep 100\n        timeout: 1s\n        if: failure()\n        continue-on-error: true\n";
    harness.fake.script_container(
        "step-1",
        ContainerScript::exits(0, "failing on purpose\n")
            .with_message(&reported(Reported::Exited(3))),
    );
    harness.fake.script_container(
        "step-2",
        ContainerScript::exits(0, "").with_message(&reported(Reported::Skipped)),
    );
    harness.fake.script_container(
        "step-3",
        ContainerScript::exits(0, "cleaning up\n").with_message(&reported(Reported::Exited(0))),
    );
    harness.fake.script_container(
        "step-4",
        ContainerScript::exits(0, "").with_message(&reported(Reported::TimedOut)),
    );
    let mut updates = harness.engine.updates.subscribe();
    let run = harness.plan(pipeline, &event(EventKind::Push), TrustLevel::Trusted);
    harness.wait(&mut updates, run, None).await;
    let (job, log) = harness.job(run);
    assert_eq!(job.status, Status::Failed, "{log}");
    assert_eq!(
        job.reason.as_deref(),
        Some("step `run: exit 3` exited with code 3"),
        "{log}"
    );
    let statuses: Vec<(Status, Option<i32>)> = job
        .steps
        .iter()
        .map(|step| (step.status, step.exit_code))
        .collect();
    assert_eq!(
        statuses,
        [
            (Status::Failed, Some(3)),
            (Status::Skipped, None),
            (Status::Succeeded, Some(0)),
            (Status::Failed, None),
        ]
    );
    assert!(log.contains("failing on purpose"), "{log}");
    assert!(log.contains("timed out after 1s"), "{log}");
    let jobs = harness.created("Job");
    let init = &jobs[0]["spec"]["template"]["spec"]["initContainers"];
    assert_eq!(env_of(&init[2])["SLUICE_STEP_RUN_WHEN"], "success");
    assert_eq!(env_of(&init[4])["SLUICE_STEP_RUN_WHEN"], "failure");
    assert_eq!(env_of(&init[4])["SLUICE_STEP_TIMEOUT"], "1");
    assert_eq!(harness.left_in_namespace(), Vec::<String>::new());
}

#[tokio::test]
async fn a_checkout_that_fails_fails_the_job_naming_the_commit() {
    let harness = Harness::new().await;
    harness.fake.script_container(
        "checkout",
        ContainerScript::exits(128, "fatal: remote error: upload-pack: not our ref\n"),
    );
    let mut updates = harness.engine.updates.subscribe();
    let push = event(EventKind::Push);
    let run = harness.plan(TWO_STEPS, &push, TrustLevel::Trusted);
    harness.wait(&mut updates, run, None).await;
    let (job, log) = harness.job(run);
    assert_eq!(job.status, Status::Failed);
    let reason = job.reason.unwrap_or_default();
    assert!(reason.contains(&push.commit), "{reason}");
    assert!(log.contains("not our ref"), "{log}");
    assert!(job.steps.iter().all(|step| step.status == Status::Skipped));
}

#[tokio::test]
async fn cancelling_a_run_deletes_its_job_with_the_pod_and_the_secret() {
    let harness = Harness::new().await;
    harness.fake.script_container(
        "step-1",
        ContainerScript::holds("training for a long while\n"),
    );
    let mut updates = harness.engine.updates.subscribe();
    let run = harness.plan(TWO_STEPS, &event(EventKind::Push), TrustLevel::Trusted);
    harness
        .wait(&mut updates, run, Some("training for a long while"))
        .await;
    assert_eq!(harness.created("Secret").len(), 1);
    assert_eq!(harness.left_in_namespace().len(), 3, "Job, pod, Secret");
    harness
        .engine
        .database
        .request_run_cancel(run, "alice", 0)
        .unwrap();
    harness.engine.dispatcher_wakeup.notify_one();
    harness.wait(&mut updates, run, None).await;
    let (job, log) = harness.job(run);
    assert_eq!(job.status, Status::Cancelled, "{log}");
    let statuses: Vec<Status> = job.steps.iter().map(|step| step.status).collect();
    assert_eq!(statuses, [Status::Cancelled, Status::Cancelled]);
    assert_eq!(harness.left_in_namespace(), Vec::<String>::new());
    let writes = harness.fake.write_log();
    assert!(
        writes
            .iter()
            .any(|write| write.starts_with("garbage-collect Secret/")),
        "{writes:?}"
    );
}

#[tokio::test]
async fn a_job_past_its_timeout_is_deleted_and_fails_saying_so() {
    let harness = Harness::new().await;
    harness
        .fake
        .script_container("step-1", ContainerScript::holds("still going\n"));
    let pipeline = "name: ci\non: { push: {} }\njobs:\n  slow:\n    timeout: 1s\n    steps:\n      - run: sleep 600\n";
    let mut updates = harness.engine.updates.subscribe();
    let run = harness.plan(pipeline, &event(EventKind::Push), TrustLevel::Trusted);
    harness.wait(&mut updates, run, None).await;
    let (job, log) = harness.job(run);
    assert_eq!(job.status, Status::Failed, "{log}");
    assert_eq!(job.reason.as_deref(), Some("job timed out after 1s"));
    assert!(log.contains("still going"), "{log}");
    assert_eq!(harness.left_in_namespace(), Vec::<String>::new());
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_the_job_naming_the_container() {
    let harness = Harness::new().await;
    let mut updates = harness.engine.updates.subscribe();
    harness.fake.script_container(
        "step-1",
        ContainerScript::holds("").waiting("ErrImagePull", "pull access denied for python"),
    );
    let run = harness.plan(TWO_STEPS, &event(EventKind::Push), TrustLevel::Trusted);
    harness.wait(&mut updates, run, None).await;
    let (job, log) = harness.job(run);
    assert_eq!(job.status, Status::Failed, "{log}");
    let reason = job.reason.unwrap_or_default();
    assert!(
        reason.contains("`step-1` cannot start: ErrImagePull"),
        "{reason}"
    );
    assert_eq!(harness.left_in_namespace(), Vec::<String>::new());
}
