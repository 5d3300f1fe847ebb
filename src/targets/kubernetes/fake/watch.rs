//! Streams of the fake API server: `?watch=true` on a collection (every change after the given
//! resourceVersion as newline-delimited watch events, as the API server sends them) and a pod's
//! container log (`pods/{name}/log`, with `follow` until the container terminates or the pod is
//! gone). Changes are recorded in order by the writes; a watch channel wakes the streams.

use super::FakeState;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type SharedState = Arc<Mutex<FakeState>>;

/// (group, plural, namespace or "", name), as `FakeState::objects` keys objects.
pub(crate) type ObjectKey = (String, String, String, String);

/// One stored change, for watches.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub resource_version: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub key: ObjectKey,
    pub object: Value,
}

impl FakeState {
    /// Records a change for watches and wakes them. A deletion gets a resourceVersion of its own.
    pub(crate) fn record_change(&mut self, kind: &'static str, key: ObjectKey, mut object: Value) {
        if kind == "DELETED" {
            self.resource_version += 1;
            object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        }
        self.changes.push(Change {
            resource_version: self.resource_version,
            kind,
            key,
            object,
        });
        if let Some(signal) = &self.change_signal {
            signal.send_replace(self.resource_version);
        }
    }

    fn subscribe(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.change_signal.as_ref().map(|signal| signal.subscribe())
    }
}

fn lock(state: &SharedState) -> std::sync::MutexGuard<'_, FakeState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn query_value(uri: &Uri, key: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.into_owned())
}

/// Whether the request is one this module streams: a watch or a pod's log.
pub(crate) fn is_stream(uri: &Uri) -> bool {
    matches!(query_value(uri, "watch").as_deref(), Some("true" | "1"))
        || uri.path().ends_with("/log")
}

fn segments(uri: &Uri) -> Vec<String> {
    uri.path()
        .trim_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(str::to_owned)
        .collect()
}

fn not_found(message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "NotFound", "code": 404});
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "BadRequest", "code": 400});
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) async fn serve(state: SharedState, uri: Uri) -> Response {
    let parts = segments(&uri);
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["api", "v1", "namespaces", namespace, "pods", pod, "log"] => {
            pod_log(state, namespace, pod, &uri).await
        }
        ["api", version, rest @ ..] => watch(state, "", version, rest, &uri),
        ["apis", group, version, rest @ ..] => watch(state, group, version, rest, &uri),
        _ => not_found(format!("no route for {}", uri.path())),
    }
}

fn watch(state: SharedState, group: &str, version: &str, rest: &[&str], uri: &Uri) -> Response {
    let (namespace, plural) = match rest {
        ["namespaces", namespace, plural] => (Some((*namespace).to_owned()), *plural),
        [plural] => (None, *plural),
        _ => return not_found(format!("cannot watch {}", uri.path())),
    };
    let served = lock(&state).resource_types.iter().any(|resource| {
        resource.group == group && resource.version == version && resource.plural == plural
    });
    if !served {
        return not_found(format!("the server could not find the resource {plural}"));
    }
    let selector = query_value(uri, "labelSelector");
    let after: u64 = query_value(uri, "resourceVersion")
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    let timeout = query_value(uri, "timeoutSeconds")
        .and_then(|text| text.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs);
    let (group, plural) = (group.to_owned(), plural.to_owned());
    let Some(receiver) = lock(&state).subscribe() else {
        return not_found("watches are not served".to_owned());
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let cursor = WatchCursor {
        state,
        receiver,
        after,
        group,
        plural,
        namespace,
        selector,
        deadline,
    };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            let batch = cursor.next_batch();
            if !batch.is_empty() {
                return Some((Ok::<Bytes, std::convert::Infallible>(batch.into()), cursor));
            }
            let woken = tokio::time::timeout_at(cursor.deadline, cursor.receiver.changed()).await;
            if !matches!(woken, Ok(Ok(()))) {
                return None;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("a watch response")
}

struct WatchCursor {
    state: SharedState,
    receiver: tokio::sync::watch::Receiver<u64>,
    after: u64,
    group: String,
    plural: String,
    namespace: Option<String>,
    selector: Option<String>,
    deadline: tokio::time::Instant,
}

impl WatchCursor {
    /// The matching changes after the cursor, one JSON line each; moves the cursor past them.
    fn next_batch(&mut self) -> String {
        let state = lock(&self.state);
        let mut lines = String::new();
        for change in state
            .changes
            .iter()
            .filter(|change| change.resource_version > self.after)
        {
            let (group, plural, namespace, _) = &change.key;
            let matches = *group == self.group
                && *plural == self.plural
                && self
                    .namespace
                    .as_ref()
                    .is_none_or(|wanted| wanted == namespace)
                && self.selector.as_deref().is_none_or(|selector| {
                    super::routes::matches_selector(&change.object["metadata"]["labels"], selector)
                });
            if matches {
                lines.push_str(&json!({"type": change.kind, "object": change.object}).to_string());
                lines.push('\n');
            }
        }
        self.after = state.resource_version.max(self.after);
        lines
    }
}

/// Where a container of a pod stands, from the pod's status.
fn container_state(pod: &Value, container: &str) -> Option<String> {
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|field| pod["status"][field].as_array())
        .flatten()
        .find(|status| status["name"] == container)
        .and_then(|status| status["state"].as_object())
        .and_then(|state| state.keys().next().cloned())
}

async fn pod_log(state: SharedState, namespace: &str, pod: &str, uri: &Uri) -> Response {
    let follow = matches!(query_value(uri, "follow").as_deref(), Some("true" | "1"));
    let key: ObjectKey = (
        String::new(),
        "pods".to_owned(),
        namespace.to_owned(),
        pod.to_owned(),
    );
    let (container, receiver) = {
        let guard = lock(&state);
        let Some(object) = guard.objects.get(&key) else {
            return not_found(format!("pods \"{pod}\" not found"));
        };
        let container = match query_value(uri, "container") {
            Some(container) => container,
            None => match object["spec"]["containers"][0]["name"].as_str() {
                Some(name) => name.to_owned(),
                None => return bad_request(format!("pod {pod} has no containers")),
            },
        };
        match container_state(object, &container).as_deref() {
            Some("running" | "terminated") => {}
            _ => {
                // As the kubelet answers: no log before the container has started.
                return bad_request(format!(
                    "container \"{container}\" in pod \"{pod}\" is waiting to start: PodInitializing"
                ));
            }
        }
        (container, guard.subscribe())
    };
    let log_key = (namespace.to_owned(), pod.to_owned(), container.clone());
    let cursor = LogCursor {
        state,
        receiver,
        key,
        log_key,
        container,
        offset: 0,
        follow,
        done: false,
    };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if cursor.done {
                return None;
            }
            let (text, finished) = cursor.next_text();
            cursor.done = finished || !cursor.follow;
            if !text.is_empty() {
                return Some((Ok::<Bytes, std::convert::Infallible>(text.into()), cursor));
            }
            if cursor.done {
                return None;
            }
            let receiver = cursor.receiver.as_mut()?;
            if receiver.changed().await.is_err() {
                return None;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body(Body::from_stream(stream))
        .expect("a log response")
}

struct LogCursor {
    state: SharedState,
    receiver: Option<tokio::sync::watch::Receiver<u64>>,
    key: ObjectKey,
    log_key: (String, String, String),
    container: String,
    offset: usize,
    follow: bool,
    done: bool,
}

impl LogCursor {
    /// The log written since the last call, and whether no more will come (the container
    /// terminated or the pod is gone).
    fn next_text(&mut self) -> (String, bool) {
        let state = lock(&self.state);
        let log = state
            .pod_logs
            .get(&self.log_key)
            .map(String::as_str)
            .unwrap_or("");
        let text = log.get(self.offset..).unwrap_or("").to_owned();
        self.offset = log.len();
        let finished = match state.objects.get(&self.key) {
            None => true,
            Some(pod) => container_state(pod, &self.container).as_deref() == Some("terminated"),
        };
        (text, finished)
    }
}
