//! Follows one job's Job and pod with `kube::runtime::watcher` until every step reported: waits
//! for each container in order to start, streams its log (`follow`) into the job's log, reads
//! how it ended from its status, and stops early, naming the reason, when a container cannot
//! start (an image that cannot be pulled, a missing Secret) or Kubernetes fails the Job.

use super::pod::{self, Reported};
use super::{PodJob, PodJobEnd, StepEnd, StepEvent};
use crate::sandbox::LogSink;
use crate::steps::StepOutcome;
use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use kube::api::{Api, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};

/// Waiting reasons after which a container will not start without someone changing something.
const STUCK_REASONS: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// The Job and its pod as last seen.
#[derive(Clone, Debug, Default)]
struct Observed {
    job: Option<Job>,
    pod: Option<Pod>,
}

impl Observed {
    fn status(&self, container: &str) -> Option<&ContainerStatus> {
        let status = self.pod.as_ref()?.status.as_ref()?;
        status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .find(|status| status.name == container)
    }

    fn started(&self, container: &str) -> bool {
        self.status(container)
            .and_then(|status| status.state.as_ref())
            .is_some_and(|state| state.running.is_some() || state.terminated.is_some())
    }

    fn terminated(&self, container: &str) -> Option<ContainerStateTerminated> {
        self.status(container)?.state.as_ref()?.terminated.clone()
    }

    /// Why the container will not start, if it will not.
    fn stuck(&self, container: &str) -> Option<String> {
        let waiting = self.status(container)?.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        STUCK_REASONS.contains(&reason).then(|| {
            format!(
                "container `{container}` cannot start: {reason}{}",
                waiting
                    .message
                    .as_deref()
                    .map(|message| format!(" ({message})"))
                    .unwrap_or_default()
            )
        })
    }

    /// Why Kubernetes failed the Job, if it did.
    fn job_failed(&self) -> Option<String> {
        let conditions = self.job.as_ref()?.status.as_ref()?.conditions.as_ref()?;
        conditions
            .iter()
            .find(|condition| condition.type_ == "Failed" && condition.status == "True")
            .map(|condition| {
                format!(
                    "Kubernetes failed the Job: {}{}",
                    condition.reason.as_deref().unwrap_or("no reason given"),
                    condition
                        .message
                        .as_deref()
                        .map(|message| format!(" ({message})"))
                        .unwrap_or_default()
                )
            })
    }

    fn pod_name(&self) -> Option<String> {
        self.pod.as_ref()?.metadata.name.clone()
    }
}

pub(super) struct Follower<'a> {
    pub client: kube::Client,
    pub namespace: String,
    pub job: &'a PodJob,
    pub log: LogSink,
    pub events: mpsc::UnboundedSender<StepEvent>,
}

impl Follower<'_> {
    pub async fn follow(self) -> PodJobEnd {
        let (sender, mut observed) = watch::channel(Observed::default());
        let watching = tokio::spawn(watch_job(
            self.client.clone(),
            self.namespace.clone(),
            self.job.name.clone(),
            sender,
        ));
        let end = self.follow_containers(&mut observed).await;
        watching.abort();
        end
    }

    async fn follow_containers(&self, observed: &mut watch::Receiver<Observed>) -> PodJobEnd {
        let containers = std::iter::once(pod::CHECKOUT_CONTAINER.to_owned())
            .chain((0..self.job.steps.len()).map(pod::step_container));
        for (position, container) in containers.enumerate() {
            let step = position.checked_sub(1);
            let seen = observed
                .wait_for(|seen| {
                    seen.started(&container)
                        || seen.stuck(&container).is_some()
                        || seen.job_failed().is_some()
                })
                .await
                .map(|seen| seen.clone());
            let Ok(seen) = seen else {
                return PodJobEnd::Problem("stopped watching the Job".to_owned());
            };
            if let Some(problem) = seen.stuck(&container) {
                return PodJobEnd::Problem(problem);
            }
            if !seen.started(&container) {
                let problem = seen.job_failed().unwrap_or_default();
                return PodJobEnd::Problem(problem);
            }
            if let Some(index) = step {
                let _ = self.events.send(StepEvent::Started(index));
                let name = &self.job.steps[index].name;
                let _ = self
                    .log
                    .send(format!("sluice: step {}: {name}\n", index + 1));
            }
            if let Some(pod_name) = seen.pod_name() {
                self.stream_log(&pod_name, &container).await;
            }
            let seen = observed
                .wait_for(|seen| {
                    seen.terminated(&container).is_some()
                        || seen.job_failed().is_some()
                        || seen.pod.is_none()
                })
                .await
                .map(|seen| seen.clone());
            let Some(terminated) = seen
                .as_ref()
                .ok()
                .and_then(|seen| seen.terminated(&container))
            else {
                let problem = seen
                    .ok()
                    .and_then(|seen| seen.job_failed())
                    .unwrap_or_else(|| format!("the pod went away while `{container}` ran"));
                return PodJobEnd::Problem(problem);
            };
            match step {
                None if terminated.exit_code != 0 => {
                    return PodJobEnd::Problem(format!(
                        "cannot check out {}: git exited with code {}; the log above says why",
                        self.job.commit, terminated.exit_code
                    ));
                }
                None => {}
                Some(index) => {
                    let end = self.step_end(index, &terminated);
                    if let StepEnd::Ran(outcome) = &end {
                        let _ = self.log.send(format!(
                            "sluice: step {}: {}\n",
                            index + 1,
                            outcome.describe()
                        ));
                    }
                    let _ = self.events.send(StepEvent::Ended(index, end));
                    if terminated.exit_code != 0 {
                        return PodJobEnd::Problem(format!(
                            "step `{}`'s container ended with code {} before the step could report; later steps did not run",
                            self.job.steps[index].name, terminated.exit_code
                        ));
                    }
                }
            }
        }
        PodJobEnd::Finished
    }

    fn step_end(&self, index: usize, terminated: &ContainerStateTerminated) -> StepEnd {
        let step = &self.job.steps[index];
        let message = terminated.message.as_deref().unwrap_or("");
        match pod::parse_report(message) {
            Some(Reported::Skipped) => StepEnd::Skipped,
            Some(Reported::Exited(code)) => StepEnd::Ran(StepOutcome::Exited(code)),
            Some(Reported::TimedOut) => {
                StepEnd::Ran(StepOutcome::TimedOut(step.timeout.unwrap_or_default()))
            }
            Some(Reported::NotStarted) => StepEnd::Ran(StepOutcome::NotStarted(
                step.script.clone().err().unwrap_or_default(),
            )),
            None => StepEnd::Ran(StepOutcome::NotStarted(format!(
                "the step's container ended with code {} ({}) without reporting how the step ended; its image needs `sh`",
                terminated.exit_code,
                terminated.reason.as_deref().unwrap_or("no reason given")
            ))),
        }
    }

    /// Copies the container's log into the job's log until the container ends.
    async fn stream_log(&self, pod_name: &str, container: &str) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let parameters = LogParams {
            container: Some(container.to_owned()),
            follow: true,
            ..LogParams::default()
        };
        let stream = match pods.log_stream(pod_name, &parameters).await {
            Ok(stream) => stream,
            Err(error) => {
                let _ = self.log.send(format!(
                    "sluice: cannot read the log of `{container}`: {error}\n"
                ));
                return;
            }
        };
        let mut lines = stream.lines();
        while let Some(line) = lines.next().await {
            match line {
                Ok(line) => {
                    let _ = self.log.send(format!("{line}\n"));
                }
                Err(_) => break,
            }
        }
    }
}

/// Keeps `sender` up to date with the Job and its pod, through the runtime's watcher (which
/// lists, then watches, and starts again after errors with a backoff).
async fn watch_job(
    client: kube::Client,
    namespace: String,
    name: String,
    sender: watch::Sender<Observed>,
) {
    let selector = format!("{}={name}", pod::JOB_LABEL);
    let config = watcher::Config::default().labels(&selector);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let job_events = watcher(jobs, config.clone())
        .default_backoff()
        .map_ok(|event| convert(event, |job| Either::Job(Box::new(job))));
    let pod_events = watcher(pods, config)
        .default_backoff()
        .map_ok(|event| convert(event, |pod| Either::Pod(Box::new(pod))));
    let mut events = futures_util::stream::select(job_events.boxed(), pod_events.boxed());
    while let Some(event) = events.next().await {
        let Ok(event) = event else { continue };
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                sender.send_modify(|observed| object.store(observed));
            }
            watcher::Event::Delete(object) => {
                sender.send_modify(|observed| object.forget(observed));
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

fn convert<K>(event: watcher::Event<K>, wrap: fn(K) -> Either) -> watcher::Event<Either> {
    match event {
        watcher::Event::Apply(object) => watcher::Event::Apply(wrap(object)),
        watcher::Event::InitApply(object) => watcher::Event::InitApply(wrap(object)),
        watcher::Event::Delete(object) => watcher::Event::Delete(wrap(object)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

enum Either {
    Job(Box<Job>),
    Pod(Box<Pod>),
}

impl Either {
    fn store(self, observed: &mut Observed) {
        match self {
            Either::Job(job) => observed.job = Some(*job),
            Either::Pod(pod) => observed.pod = Some(*pod),
        }
    }

    fn forget(self, observed: &mut Observed) {
        match self {
            Either::Job(_) => observed.job = None,
            Either::Pod(_) => observed.pod = None,
        }
    }
}
