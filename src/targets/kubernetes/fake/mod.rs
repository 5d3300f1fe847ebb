//! An in-process fake Kubernetes API server for tests, benchmarks and the demo: discovery,
//! GET/LIST with label selectors, server-side apply (create-if-absent, resourceVersion and
//! generation bumps, dry-run), merge and strategic merge PATCH, PUT, POST, DELETE, `/status`,
//! 404, 409 and 503 on demand, with a count of calls per verb and a log of writes in order.
//! Objects carry `metadata.managedFields` kept as the API server keeps them (`fields.rs`): who
//! owns which field, conflicts between managers, fields an apply stops setting removed. A fake
//! controller sets workload status after each write, by default to a finished rollout; a test
//! can make a rollout stall or fail by name. With `run_pods`, Jobs get pods that a scripted
//! kubelet plays instead (`kubelet.rs`); watches and pod logs stream (`watch.rs`). It knows
//! nothing of sluice's target or runner.

mod fields;
mod kubelet;
mod resources;
mod routes;
mod watch;

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use url::Url;

pub use kubelet::ContainerScript;
pub use resources::ResourceType;

/// What the fake controller does with a workload after it is applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rollout {
    /// All replicas updated and available; Jobs succeed.
    #[default]
    Succeed,
    /// The controller observed the change but no new replica becomes available.
    Stall,
    /// Deployments exceed their progress deadline; Jobs fail.
    Fail,
}

/// Calls per verb since start or the last `reset_calls`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub discovery: u64,
    pub get: u64,
    pub list: u64,
    /// Server-side apply patches that were stored (dry runs excluded).
    pub apply: u64,
    /// Dry runs of any write (server-side apply, patch, PUT, POST).
    pub dry_run: u64,
    /// Merge and strategic merge patches that were stored.
    pub patch: u64,
    /// PUTs that replaced an object.
    pub update: u64,
    pub create: u64,
    pub status: u64,
    pub delete: u64,
}

impl CallCounts {
    /// Calls that changed an object: applies, patches, PUTs, creates and deletes (status
    /// updates excluded).
    pub fn writes(&self) -> u64 {
        self.apply + self.patch + self.update + self.create + self.delete
    }
}

#[derive(Default)]
pub(crate) struct FakeState {
    pub resource_types: Vec<ResourceType>,
    /// (group, plural, namespace or "", name) → object.
    pub objects: BTreeMap<(String, String, String, String), Value>,
    pub resource_version: u64,
    pub calls: CallCounts,
    /// `apply Deployment/ml-dev/serving-api`, `delete ConfigMap/ml-dev/old`, in order.
    pub write_log: Vec<String>,
    /// Object name → rollout behaviour; absent names succeed.
    pub rollouts: BTreeMap<String, Rollout>,
    /// LIST calls per plural, for "at most one LIST per kind".
    pub lists_per_resource: BTreeMap<String, u64>,
    /// How many of the next server-side applies (dry runs excluded) answer 503.
    pub unavailable_applies: u32,
    /// Whether reads (discovery, GET, LIST) answer 503.
    pub unavailable_reads: bool,
    /// Every change in order, for watches.
    pub changes: Vec<watch::Change>,
    /// Carries the newest resourceVersion to open watches and log streams.
    pub change_signal: Option<tokio::sync::watch::Sender<u64>>,
    /// Whether Jobs get pods played by the scripted kubelet instead of a status at once.
    pub pods_run: bool,
    /// Container name → what the kubelet does with it.
    pub scripts: BTreeMap<String, ContainerScript>,
    /// (namespace, pod, container) → log text.
    pub pod_logs: BTreeMap<(String, String, String), String>,
}

/// A running fake; stops when dropped.
pub struct FakeApiServer {
    url: Url,
    state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the fake on 127.0.0.1 (a free port) in the current tokio runtime.
pub async fn spawn_fake_api_server() -> (Url, FakeApiServer) {
    let state = Arc::new(Mutex::new(FakeState {
        resource_types: resources::built_in(),
        change_signal: Some(tokio::sync::watch::channel(0).0),
        ..FakeState::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0 for the fake API server");
    let address = listener
        .local_addr()
        .expect("local address of the fake API server");
    let router = routes::router(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let url = Url::parse(&format!("http://{address}")).expect("fake API server URL");
    (url.clone(), FakeApiServer { url, state, task })
}

impl FakeApiServer {
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn calls(&self) -> CallCounts {
        self.state().calls
    }

    /// LIST calls per resource plural (`deployments`) since the last reset.
    pub fn lists_per_resource(&self) -> BTreeMap<String, u64> {
        self.state().lists_per_resource.clone()
    }

    /// Zeroes the call counts and the write log.
    pub fn reset_calls(&self) {
        let mut state = self.state();
        state.calls = CallCounts::default();
        state.write_log.clear();
        state.lists_per_resource.clear();
    }

    /// Writes since the last reset, in order: `apply Kind/namespace/name`, `delete ...`.
    pub fn write_log(&self) -> Vec<String> {
        self.state().write_log.clone()
    }

    /// How the fake controller treats workloads named `name` from their next apply on.
    pub fn set_rollout(&self, name: &str, rollout: Rollout) {
        self.state().rollouts.insert(name.to_owned(), rollout);
    }

    /// The stored object of `kind` (e.g. `Deployment`), if any.
    pub fn object(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let state = self.state();
        let resource = state
            .resource_types
            .iter()
            .find(|resource| resource.kind == kind)?;
        let key = (
            resource.group.clone(),
            resource.plural.clone(),
            if resource.namespaced {
                namespace.unwrap_or_default().to_owned()
            } else {
                String::new()
            },
            name.to_owned(),
        );
        state.objects.get(&key).cloned()
    }

    /// The next `count` server-side applies (dry runs excluded) answer 503 Service Unavailable,
    /// as an API server does while it restarts or its etcd is unreachable.
    pub fn fail_next_applies(&self, count: u32) {
        self.state().unavailable_applies = count;
    }

    /// While `unavailable`, every read (discovery, GET, LIST) answers 503 Service Unavailable.
    pub fn set_reads_unavailable(&self, unavailable: bool) {
        self.state().unavailable_reads = unavailable;
    }

    /// Every stored object.
    pub fn objects(&self) -> Vec<Value> {
        self.state().objects.values().cloned().collect()
    }

    /// Replaces an object's status, as a controller would.
    pub fn set_status(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> bool {
        let mut state = self.state();
        let Some(resource) = state
            .resource_types
            .iter()
            .find(|resource| resource.kind == kind)
            .cloned()
        else {
            return false;
        };
        let key = (
            resource.group.clone(),
            resource.plural.clone(),
            if resource.namespaced {
                namespace.unwrap_or_default().to_owned()
            } else {
                String::new()
            },
            name.to_owned(),
        );
        match state.objects.get_mut(&key) {
            Some(object) => {
                object["status"] = status;
                let object = object.clone();
                state.record_change("MODIFIED", key, object);
                true
            }
            None => false,
        }
    }

    /// From now on, an unsuspended Job gets a pod whose containers the fake kubelet plays by
    /// the scripts of `script_container` (unscripted containers exit 0 with no log), instead
    /// of the Job's status being set at once.
    pub fn run_pods(&self) {
        self.state().pods_run = true;
    }

    /// What the kubelet does with every container named `container`.
    pub fn script_container(&self, container: &str, script: ContainerScript) {
        let mut state = self.state();
        state.scripts.insert(container.to_owned(), script);
        kubelet::reconcile(&mut state);
    }

    /// A held container terminates with `exit_code`, leaving `message`.
    pub fn release_container(&self, container: &str, exit_code: i32, message: &str) {
        let mut state = self.state();
        let script = state.scripts.entry(container.to_owned()).or_default();
        script.hold = false;
        script.log.clear();
        script.exit_code = exit_code;
        script.message = message.to_owned();
        kubelet::reconcile(&mut state);
    }

    /// Every object of `kind` ever created, as it was when created (deleted ones too).
    pub fn created(&self, kind: &str) -> Vec<Value> {
        self.state()
            .changes
            .iter()
            .filter(|change| change.kind == "ADDED" && change.object["kind"] == kind)
            .map(|change| change.object.clone())
            .collect()
    }

    /// The log a pod's container wrote, if it ran.
    pub fn pod_log(&self, namespace: &str, pod: &str, container: &str) -> Option<String> {
        let key = (namespace.to_owned(), pod.to_owned(), container.to_owned());
        self.state().pod_logs.get(&key).cloned()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
