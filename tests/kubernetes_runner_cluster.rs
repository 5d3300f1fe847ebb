//! The Kubernetes runner on a real cluster (kind, k3d, minikube), opt-in: set
//! `SLUICE_TEST_KUBECONFIG` to a kubeconfig file (and `SLUICE_TEST_KUBE_CONTEXT` to pick a
//! context). Without it each test prints why it is skipped and passes. The pods check out
//! `SLUICE_TEST_GIT_URL` at `SLUICE_TEST_GIT_COMMIT` (by default GitHub's public
//! `octocat/Hello-World` at a commit whose `README` says "Hello World!"), so the cluster needs to
//! reach it and to pull `alpine/git` and `busybox`. Everything runs in a fresh namespace
//! `sluice-runner-test-<pid>`, deleted at the end.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use sluice::cli::Engine;
use sluice::config::SourceFile;
use sluice::model::{Event, EventKind, RunId, Status, TrustLevel};
use sluice::scheduler::RunUpdate;
use sluice::steps::kubernetes::{KubernetesRunner, RunnerSettings};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET_VALUE: &str = "cluster-suite-secret-value";

async fn cluster_client() -> Option<kube::Client> {
    let Ok(path) = std::env::var("SLUICE_TEST_KUBECONFIG") else {
        eprintln!(
            "skipped: set SLUICE_TEST_KUBECONFIG to a kubeconfig to run the Kubernetes runner on a real cluster"
        );
        return None;
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .unwrap_or_else(|error| panic!("cannot read SLUICE_TEST_KUBECONFIG {path}: {error}"));
    let options = kube::config::KubeConfigOptions {
        context: std::env::var("SLUICE_TEST_KUBE_CONTEXT").ok(),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("a usable kubeconfig");
    Some(kube::Client::try_from(config).expect("a client for the cluster"))
}

struct Cluster {
    client: kube::Client,
    namespace: String,
    engine: Engine,
    commit: String,
    _data: tempfile::TempDir,
}

impl Cluster {
    async fn start(client: kube::Client, suffix: &str) -> Cluster {
        let namespace = format!("sluice-runner-test-{}-{suffix}", std::process::id());
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let object: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap();
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .expect("create the test namespace");
        let url = std::env::var("SLUICE_TEST_GIT_URL")
            .unwrap_or_else(|_| "https://github.com/octocat/Hello-World.git".to_owned());
        let commit = std::env::var("SLUICE_TEST_GIT_COMMIT")
            .unwrap_or_else(|_| "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d".to_owned());
        let data = tempfile::tempdir().unwrap();
        let repositories = BTreeMap::from([("octocat/hello".to_owned(), url)]);
        let mut engine = Engine::open(data.path(), repositories, 2).unwrap();
        engine
            .settings
            .secrets
            .insert("TOKEN".to_owned(), SECRET_VALUE.to_owned());
        engine.settings.redacted.push(SECRET_VALUE.to_owned());
        let settings = RunnerSettings {
            namespace: namespace.clone(),
            service_account: None,
            image: Some("busybox:1.36".to_owned()),
            checkout_image: sluice::config::runner::DEFAULT_CHECKOUT_IMAGE.to_owned(),
            cpu: Some("250m".to_owned()),
            memory: Some("128Mi".to_owned()),
            user: (65534, 65534),
        };
        engine.start_dispatcher(Arc::new(KubernetesRunner::new(client.clone(), settings)));
        Cluster {
            client,
            namespace,
            engine,
            commit,
            _data: data,
        }
    }

    /// Plans the pipeline for a trusted push, runs it, and returns its job and log.
    async fn run(&self, pipeline: &str) -> (RunId, sluice::model::JobRecord, String) {
        let event = Event {
            kind: EventKind::Push,
            repository: "octocat/hello".to_owned(),
            git_ref: "refs/heads/master".to_owned(),
            commit: self.commit.clone(),
            before: None,
            base_branch: None,
            action: None,
            pull_request: None,
            actor: None,
            changed_paths: None,
        };
        let files = [SourceFile {
            path: "workflows/ci.yaml".to_owned(),
            contents: pipeline.as_bytes().to_vec(),
        }];
        let runs = sluice::scheduler::plan_runs_for(&files, &event, TrustLevel::Trusted, None);
        let mut updates = self.engine.updates.subscribe();
        let run = self.engine.store.insert_runs(&runs).unwrap()[0];
        self.engine.dispatcher_wakeup.notify_one();
        let finished = async {
            loop {
                match updates.recv().await {
                    Ok(RunUpdate::RunStatus {
                        run: id, status, ..
                    }) if id == run && status.is_terminal() => {
                        return;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(error) => panic!("updates ended: {error}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(600), finished)
            .await
            .expect("the run finishes within ten minutes (are the images pullable?)");
        let record = self.engine.store.get_run(run).unwrap().unwrap();
        let job = record.jobs[0].clone();
        let log = self
            .engine
            .store
            .job_log(run, &job.name)
            .unwrap()
            .unwrap_or_default();
        (run, job, log)
    }

    /// Jobs of this namespace left after a run; waits up to a minute for deletions to finish.
    async fn jobs_left(&self) -> Vec<String> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let names: Vec<String> = jobs
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|job| job.metadata.name)
                .collect();
            if names.is_empty() || Instant::now() > deadline {
                return names;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn stop(self) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces
            .delete(&self.namespace, &DeleteParams::default())
            .await;
    }
}

#[tokio::test]
async fn a_pipeline_s_job_runs_as_a_real_pod_that_checks_out_the_commit() {
    let Some(client) = cluster_client().await else {
        return;
    };
    let cluster = Cluster::start(client, "steps").await;
    let pipeline = "name: ci\non: { push: {} }\njobs:\n  test:\n    env: { TOKEN: '${{ secrets.TOKEN }}' }\n    steps:\n      - name: read the commit\n        run: cat README && echo \"token=$TOKEN\"\n      - name: allowed to fail\n        run: exit 4\n        continue-on-error: true\n      - name: too slow\n        run: sleep 60\n        timeout: 3s\n      - name: skipped after a failure\n        run: echo should-not-run\n      - name: cleanup\n        if: always()\n        run: echo cleaning-up\n";
    let (_, job, log) = cluster.run(pipeline).await;
    let statuses: Vec<(Status, Option<i32>)> = job
        .steps
        .iter()
        .map(|step| (step.status, step.exit_code))
        .collect();
    let jobs_left = cluster.jobs_left().await;
    cluster.stop().await;
    assert_eq!(job.status, Status::Failed, "{log}");
    assert_eq!(
        statuses,
        [
            (Status::Succeeded, Some(0)),
            (Status::Failed, Some(4)),
            (Status::Failed, None),
            (Status::Skipped, None),
            (Status::Succeeded, Some(0)),
        ],
        "{log}"
    );
    assert!(log.contains("Hello World!"), "{log}");
    assert!(!log.contains(SECRET_VALUE), "{log}");
    assert!(log.contains("timed out after 3s"), "{log}");
    assert!(log.contains("cleaning-up"), "{log}");
    assert!(!log.contains("should-not-run"), "{log}");
    assert_eq!(jobs_left, Vec::<String>::new());
}

#[tokio::test]
async fn a_job_past_its_timeout_is_deleted_from_the_cluster() {
    let Some(client) = cluster_client().await else {
        return;
    };
    let cluster = Cluster::start(client, "timeout").await;
    let pipeline = "name: ci\non: { push: {} }\njobs:\n  slow:\n    timeout: 20s\n    steps:\n      - run: echo started && sleep 600\n";
    let (_, job, log) = cluster.run(pipeline).await;
    let jobs_left = cluster.jobs_left().await;
    cluster.stop().await;
    assert_eq!(job.status, Status::Failed, "{log}");
    assert_eq!(job.reason.as_deref(), Some("job timed out after 20s"));
    assert_eq!(jobs_left, Vec::<String>::new());
}
