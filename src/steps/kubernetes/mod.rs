//! The Kubernetes runner (`runner.kind: kubernetes`): one sluice job is one Kubernetes Job in
//! the runner's namespace. Its pod checks the commit out with `git` in an init container, runs
//! the job's `run:` steps in order as further init containers (`pod.rs` builds the objects; a
//! small wrapper in each decides `if:`, enforces the step's timeout and reports the outcome in
//! the termination message), and sluice follows the Job and its pod with `kube`'s runtime
//! watcher, streaming each container's log through the pod log API into the job's log, where
//! it is redacted like any other. The job's secrets (only those its trust level may have) go in
//! one Secret owned by the Job; cancellation, the job's timeout and the job's end delete the Job
//! with background propagation, which deletes its pod and its Secret. This module knows the
//! API server and the prepared steps, nothing of runs, the store or the expression language.

mod follow;
pub mod pod;

use crate::sandbox::LogSink;
use crate::steps::{CommandSpec, LocalRunner, StepFuture, StepOutcome, StepRunner};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where and how the runner creates Jobs: the server configuration's `runner:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct RunnerSettings {
    pub namespace: String,
    /// The service account of the pods (`None`: the namespace's `default`).
    pub service_account: Option<String>,
    /// The image of steps that name none.
    pub image: Option<String>,
    /// The image of the checkout container; it needs `git` and `sh`.
    pub checkout_image: String,
    /// CPU and memory of each container, as Kubernetes quantities (`500m`, `1Gi`).
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// uid and gid of every container.
    pub user: (u32, u32),
}

/// One job, prepared by the scheduler for a pod.
#[derive(Clone, Debug)]
pub struct PodJob {
    /// The Job's name: unique, a DNS label of at most 52 characters.
    pub name: String,
    /// Labels on the Job, its pod and its Secret (run, job).
    pub labels: BTreeMap<String, String>,
    pub repository_url: String,
    pub commit: String,
    /// An HTTP `Authorization` header value for the checkout, if the repository needs one.
    pub checkout_credential: Option<String>,
    pub steps: Vec<PodStep>,
    /// The values of the secrets the job may have: any step variable holding one is passed
    /// from the Job's Secret instead of the pod's spec.
    pub secrets: Vec<String>,
    /// How long the Job may run before Kubernetes stops it, should sluice not be there to.
    pub deadline: Option<Duration>,
}

/// One `run:` step, templated.
#[derive(Clone, Debug)]
pub struct PodStep {
    pub name: String,
    /// The rendered script, or why it could not be rendered (the step then fails unstarted).
    pub script: Result<String, String>,
    pub shell: Option<String>,
    pub image: Option<String>,
    pub working_directory: Option<String>,
    pub env: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    pub continue_on_error: bool,
    /// Whether the step runs when every step before it succeeded, and when one failed: its
    /// `if:` evaluated both ways.
    pub run_if_ok: bool,
    pub run_if_failed: bool,
}

/// How a step of a pod ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepEnd {
    Skipped,
    Ran(StepOutcome),
}

/// What the runner reports while a job runs, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepEvent {
    Started(usize),
    Ended(usize, StepEnd),
}

/// How a pod job ended as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodJobEnd {
    /// Every step reported; the steps' outcomes decide.
    Finished,
    Cancelled,
    /// The pod did not get through its steps; the message says why and what to do.
    Problem(String),
}

/// Runs jobs as Kubernetes Jobs; as a `StepRunner` for jobs with other step kinds, it runs
/// their `run:` steps as the Docker runner does.
pub struct KubernetesRunner {
    client: kube::Client,
    settings: RunnerSettings,
    local: LocalRunner,
    /// The token the server fetches https repositories with (`SLUICE_GIT_TOKEN`), if any.
    git_token: Option<String>,
}

impl KubernetesRunner {
    pub fn new(client: kube::Client, settings: RunnerSettings) -> KubernetesRunner {
        KubernetesRunner {
            client,
            settings,
            local: LocalRunner::default(),
            git_token: std::env::var("SLUICE_GIT_TOKEN")
                .ok()
                .filter(|token| !token.trim().is_empty()),
        }
    }

    /// The `Authorization` header the checkout container sends for an https repository: the
    /// server's git token as GitHub takes it, held only in the Job's Secret and seen only by
    /// the checkout container. `None` for other URLs or without a token.
    pub fn checkout_credential(&self, repository_url: &str) -> Option<String> {
        authorization_header(repository_url, self.git_token.as_deref()?)
    }

    /// A runner reaching the API server at `api_server` (e.g. `kubectl proxy`'s URL) or, without
    /// one, as kube finds it: in-cluster, else the kubeconfig.
    pub async fn connect(
        api_server: Option<url::Url>,
        settings: RunnerSettings,
    ) -> anyhow::Result<KubernetesRunner> {
        let client = match api_server {
            Some(url) => {
                let uri = url.as_str().trim_end_matches('/').parse().map_err(|error| {
                    anyhow::anyhow!("runner.api-server `{url}` is not a URI: {error}")
                })?;
                kube::Client::try_from(kube::Config::new(uri))?
            }
            None => kube::Client::try_default().await.map_err(|error| {
                anyhow::anyhow!(
                    "the Kubernetes runner cannot find a cluster ({error}); run sluice in a pod with a service account, set KUBECONFIG, or set `runner.api-server`"
                )
            })?,
        };
        Ok(KubernetesRunner::new(client, settings))
    }

    pub fn settings(&self) -> &RunnerSettings {
        &self.settings
    }

    /// Runs the job's pod to its end, writing its log to `log` and each step's start and end
    /// to `events`. Whatever happens, the Job is deleted (with its pod and Secret) before this
    /// returns.
    pub async fn run_job(
        &self,
        job: &PodJob,
        log: LogSink,
        events: mpsc::UnboundedSender<StepEvent>,
        cancel: CancellationToken,
    ) -> PodJobEnd {
        let object = match pod::job_object(job, &self.settings) {
            Ok(object) => object,
            Err(problem) => return PodJobEnd::Problem(problem),
        };
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.settings.namespace);
        let created = match jobs.create(&PostParams::default(), &object).await {
            Ok(created) => created,
            Err(error) => {
                return PodJobEnd::Problem(format!(
                    "cannot create Job {} in namespace {}: {error}; check the runner's namespace and its RBAC (deploy/ has the Role it needs)",
                    job.name, self.settings.namespace
                ));
            }
        };
        let end = match self.start(job, &jobs, &created).await {
            Err(problem) => PodJobEnd::Problem(problem),
            Ok(()) => {
                let follower = follow::Follower {
                    client: self.client.clone(),
                    namespace: self.settings.namespace.clone(),
                    job,
                    log: log.clone(),
                    events,
                };
                tokio::select! {
                    end = follower.follow() => end,
                    _ = cancel.cancelled() => PodJobEnd::Cancelled,
                }
            }
        };
        if let Err(problem) = self.delete(&job.name).await {
            let _ = log.send(format!("sluice: {problem}\n"));
        }
        end
    }

    /// Creates the Job's Secret (owned by the Job) if it has one, then lets the Job start.
    async fn start(&self, job: &PodJob, jobs: &Api<Job>, created: &Job) -> Result<(), String> {
        let uid = created.metadata.uid.clone().unwrap_or_default();
        let data = pod::secret_data(job);
        if !data.is_empty() {
            let secrets: Api<Secret> =
                Api::namespaced(self.client.clone(), &self.settings.namespace);
            let secret = pod::secret_object(job, &self.settings, &uid, data);
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .map_err(|error| {
                    format!(
                        "cannot create the job's Secret in namespace {}: {error}; the runner's Role needs `create` on secrets",
                        self.settings.namespace
                    )
                })?;
        }
        let resume = serde_json::json!({"spec": {"suspend": false}});
        jobs.patch(&job.name, &PatchParams::default(), &Patch::Merge(&resume))
            .await
            .map_err(|error| format!("cannot start Job {}: {error}", job.name))?;
        Ok(())
    }

    /// Deletes the Job with background propagation: its pod and Secret go with it.
    async fn delete(&self, name: &str) -> Result<(), String> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.settings.namespace);
        let parameters = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match jobs.delete(name, &parameters).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => Err(format!(
                "cannot delete Job {name} in namespace {}: {error}; delete it by hand with `kubectl delete job {name} --cascade=background`",
                self.settings.namespace
            )),
        }
    }
}

/// The header git sends to an https repository with `token`, as GitHub takes it.
fn authorization_header(repository_url: &str, token: &str) -> Option<String> {
    use base64::Engine;
    if !repository_url.starts_with("https://") {
        return None;
    }
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    Some(format!("Authorization: Basic {encoded}"))
}

impl StepRunner for KubernetesRunner {
    fn run<'a>(
        &'a self,
        spec: &'a CommandSpec,
        log: LogSink,
        cancel: CancellationToken,
    ) -> StepFuture<'a> {
        self.local.run(spec, log, cancel)
    }

    fn kubernetes(&self) -> Option<&KubernetesRunner> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_git_token_goes_only_to_https_repositories() {
        assert_eq!(
            authorization_header("https://github.com/acme/ml.git", "t0ken").as_deref(),
            Some("Authorization: Basic eC1hY2Nlc3MtdG9rZW46dDBrZW4=")
        );
        assert_eq!(
            authorization_header("http://git.internal/acme/ml.git", "t0ken"),
            None
        );
        assert_eq!(
            authorization_header("ssh://git@github.com/acme/ml.git", "t0ken"),
            None
        );
        assert_eq!(authorization_header("/srv/git/ml", "t0ken"), None);
    }
}
