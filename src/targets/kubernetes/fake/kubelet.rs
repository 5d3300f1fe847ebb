//! The fake's Job controller, kubelet and garbage collector, for runners that create Jobs. With
//! pods run (`FakeApiServer::run_pods`), an unsuspended Job gets one pod owned by it; the kubelet
//! plays the pod's containers in order (init containers one after another, then the others) by
//! a test's script: each writes its log and terminates with an exit code and a termination
//! message, or holds (keeps running) until released. A failed init container fails the pod, as
//! with `restartPolicy: Never`; the Job's status follows its pod. Deleting an object deletes
//! what it owns (ownerReferences) unless `propagationPolicy` is `Orphan`, which is what the API
//! server assumes for a batch/v1 Job deleted without one.

use super::FakeState;
use super::watch::ObjectKey;
use serde_json::{Value, json};

/// What the kubelet does with a container of a given name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerScript {
    /// Written to the container's log when it runs.
    pub log: String,
    pub exit_code: i32,
    /// What the container leaves in its termination message file.
    pub message: String,
    /// Keep running instead of terminating (until `FakeApiServer::release_container`).
    pub hold: bool,
    /// Stay waiting to start with this reason and message (`ErrImagePull`, ...).
    pub waiting: Option<(String, String)>,
}

impl ContainerScript {
    /// Never starts: stays waiting with `reason` and `message`, as after a failed image pull.
    pub fn waiting(mut self, reason: &str, message: &str) -> ContainerScript {
        self.waiting = Some((reason.to_owned(), message.to_owned()));
        self
    }

    /// Writes `log` and exits with `exit_code`.
    pub fn exits(exit_code: i32, log: &str) -> ContainerScript {
        ContainerScript {
            log: log.to_owned(),
            exit_code,
            ..ContainerScript::default()
        }
    }

    /// Leaves `message` as its termination message.
    pub fn with_message(mut self, message: &str) -> ContainerScript {
        self.message = message.to_owned();
        self
    }

    /// Writes `log` and keeps running.
    pub fn holds(log: &str) -> ContainerScript {
        ContainerScript {
            log: log.to_owned(),
            hold: true,
            ..ContainerScript::default()
        }
    }
}

fn pod_key(namespace: &str, name: &str) -> ObjectKey {
    (
        String::new(),
        "pods".to_owned(),
        namespace.to_owned(),
        name.to_owned(),
    )
}

/// One pass of the Job controller and the kubelet; called after every request and every change
/// a test makes to the scripts.
pub(crate) fn reconcile(state: &mut FakeState) {
    if !state.pods_run {
        return;
    }
    create_pods(state);
    let pods: Vec<ObjectKey> = state
        .objects
        .keys()
        .filter(|(group, plural, _, _)| group.is_empty() && plural == "pods")
        .cloned()
        .collect();
    for key in pods {
        play_pod(state, &key);
    }
}

fn owned_by(object: &Value, uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|owners| owners.iter().any(|owner| owner["uid"] == uid))
}

/// A pod for every unsuspended Job that has none.
fn create_pods(state: &mut FakeState) {
    let jobs: Vec<Value> = state
        .objects
        .iter()
        .filter(|((group, plural, _, _), _)| group == "batch" && plural == "jobs")
        .map(|(_, job)| job.clone())
        .filter(|job| job["spec"]["suspend"] != true && job["status"]["conditions"].is_null())
        .collect();
    for job in jobs {
        let uid = job["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if state
            .objects
            .values()
            .any(|object| object["kind"] == "Pod" && owned_by(object, &uid))
        {
            continue;
        }
        let namespace = job["metadata"]["namespace"].as_str().unwrap_or_default();
        let job_name = job["metadata"]["name"].as_str().unwrap_or_default();
        let pod_name = format!("{job_name}-{}", uid.trim_start_matches("uid-"));
        let mut labels = job["spec"]["template"]["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels["job-name"] = json!(job_name);
        labels["batch.kubernetes.io/job-name"] = json!(job_name);
        state.resource_version += 1;
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": namespace, "labels": labels,
                "uid": format!("uid-{}", state.resource_version),
                "resourceVersion": state.resource_version.to_string(),
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                    "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
            "spec": job["spec"]["template"]["spec"].clone(),
            "status": {"phase": "Pending"},
        });
        let key = pod_key(namespace, &pod_name);
        state.objects.insert(key.clone(), pod.clone());
        state.record_change("ADDED", key, pod);
        state
            .write_log
            .push(format!("create Pod/{namespace}/{pod_name}"));
    }
}

fn container_names(pod: &Value, field: &str) -> Vec<String> {
    pod["spec"][field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|container| container["name"].as_str().map(str::to_owned))
        .collect()
}

/// Plays a pod's containers from where they stand; stores and announces the pod if it changed.
fn play_pod(state: &mut FakeState, key: &ObjectKey) {
    let Some(mut pod) = state.objects.get(key).cloned() else {
        return;
    };
    let phase = pod["status"]["phase"]
        .as_str()
        .unwrap_or("Pending")
        .to_owned();
    if phase == "Succeeded" || phase == "Failed" {
        return;
    }
    let before = pod.clone();
    let (namespace, pod_name) = (key.2.clone(), key.3.clone());
    let mut failed = false;
    let mut holding = false;
    for field in ["initContainers", "containers"] {
        let status_field = if field == "initContainers" {
            "initContainerStatuses"
        } else {
            "containerStatuses"
        };
        let mut statuses = pod["status"][status_field]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (index, name) in container_names(&pod, field).into_iter().enumerate() {
            if statuses.len() <= index {
                statuses.push(
                    json!({"name": name, "state": {"waiting": {"reason": "PodInitializing"}}}),
                );
            }
            if failed || holding {
                continue;
            }
            let current = &statuses[index]["state"];
            if current.get("terminated").is_some() {
                failed |= field == "initContainers" && current["terminated"]["exitCode"] != 0;
                continue;
            }
            let script = state.scripts.get(&name).cloned().unwrap_or_default();
            if let Some((reason, message)) = &script.waiting {
                statuses[index]["state"] =
                    json!({"waiting": {"reason": reason, "message": message}});
                holding = true;
                continue;
            }
            let log_key = (namespace.clone(), pod_name.clone(), name.clone());
            if current.get("running").is_none() {
                state
                    .pod_logs
                    .entry(log_key.clone())
                    .or_default()
                    .push_str(&script.log);
            }
            if script.hold {
                statuses[index]["state"] =
                    json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}});
                holding = true;
                continue;
            }
            let reason = if script.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            statuses[index]["state"] = json!({"terminated": {"exitCode": script.exit_code,
                "reason": reason, "message": script.message}});
            failed |= script.exit_code != 0;
        }
        pod["status"][status_field] = Value::Array(statuses);
        if field == "initContainers" && (failed || holding) {
            // Later containers wait for the init containers.
            break;
        }
    }
    pod["status"]["phase"] = json!(if failed {
        "Failed"
    } else if holding {
        "Running"
    } else {
        "Succeeded"
    });
    if pod == before {
        return;
    }
    state.resource_version += 1;
    pod["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
    state.objects.insert(key.clone(), pod.clone());
    state.record_change("MODIFIED", key.clone(), pod.clone());
    let finished = if failed {
        Some(
            json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}),
        )
    } else if !holding {
        Some(json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}))
    } else {
        None
    };
    let status = finished.unwrap_or(json!({"active": 1}));
    set_owner_job_status(state, &pod, status);
}

fn set_owner_job_status(state: &mut FakeState, pod: &Value, status: Value) {
    let Some(owner) = pod["metadata"]["ownerReferences"][0]["name"].as_str() else {
        return;
    };
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let key = (
        "batch".to_owned(),
        "jobs".to_owned(),
        namespace.to_owned(),
        owner.to_owned(),
    );
    let Some(job) = state.objects.get_mut(&key) else {
        return;
    };
    if job["status"] == status {
        return;
    }
    job["status"] = status;
    state.resource_version += 1;
    job["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
    let job = job.clone();
    state.record_change("MODIFIED", key, job);
}

/// After `deleted` was removed: removes what it owns, transitively, unless the request's
/// `propagationPolicy` (or, without one, the API server's default for the kind) orphans them.
pub(crate) fn collect_garbage(state: &mut FakeState, deleted: &Value, body: &[u8]) {
    let requested = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|options| options["propagationPolicy"].as_str().map(str::to_owned));
    let orphan = match requested.as_deref() {
        Some(policy) => policy == "Orphan",
        // The API server keeps the pods of a batch/v1 Job deleted without a policy.
        None => deleted["kind"] == "Job",
    };
    if orphan {
        return;
    }
    let mut owners = vec![
        deleted["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ];
    while let Some(uid) = owners.pop() {
        let dependents: Vec<ObjectKey> = state
            .objects
            .iter()
            .filter(|(_, object)| owned_by(object, &uid))
            .map(|(key, _)| key.clone())
            .collect();
        for key in dependents {
            if let Some(object) = state.objects.remove(&key) {
                owners.push(
                    object["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
                let kind = object["kind"].as_str().unwrap_or_default().to_owned();
                state
                    .write_log
                    .push(format!("garbage-collect {kind}/{}/{}", key.2, key.3));
                state.record_change("DELETED", key, object);
            }
        }
    }
}
