//! The fake API server's HTTP handling: parses the Kubernetes URL layout, serves discovery and
//! the verbs, and plays a workload controller after each apply.

use super::fields;
use super::resources::{self, ResourceType};
use super::{FakeState, Rollout};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

type SharedState = Arc<Mutex<FakeState>>;

pub fn router(state: SharedState) -> axum::Router {
    axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                if method == Method::GET && super::watch::is_stream(&uri) {
                    return super::watch::serve(state, uri).await;
                }
                let mut guard = state
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let response = handle(&mut guard, &method, &uri, &headers, &body);
                super::kubelet::reconcile(&mut guard);
                response
            }
        },
    )
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn failure(status: StatusCode, reason: &str, message: String) -> Response {
    reply(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": status.as_u16()}),
    )
}

/// Where a request points.
struct Target {
    resource: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn handle(
    state: &mut FakeState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if method == Method::GET && state.unavailable_reads {
        return unavailable();
    }
    let segments: Vec<&str> = uri
        .path()
        .trim_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let query_value = |key: &str| {
        query
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
    };
    let (group, version, rest) = match segments.as_slice() {
        ["api"] => {
            state.calls.discovery += 1;
            return reply(StatusCode::OK, resources::core_versions());
        }
        ["apis"] => {
            state.calls.discovery += 1;
            return reply(StatusCode::OK, resources::group_list(&state.resource_types));
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => {
            return failure(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("no route for {}", uri.path()),
            );
        }
    };
    if rest.is_empty() {
        state.calls.discovery += 1;
        return match resources::resource_list(&state.resource_types, group, version) {
            Some(list) => reply(StatusCode::OK, list),
            None => failure(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("group version {group}/{version} is not served"),
            ),
        };
    }
    let (namespace, plural, name, status) = match rest {
        ["namespaces", namespace, plural] => (Some(*namespace), *plural, None, false),
        ["namespaces", namespace, plural, name] => (Some(*namespace), *plural, Some(*name), false),
        ["namespaces", namespace, plural, name, "status"] => {
            (Some(*namespace), *plural, Some(*name), true)
        }
        [plural] => (None, *plural, None, false),
        [plural, name] => (None, *plural, Some(*name), false),
        [plural, name, "status"] => (None, *plural, Some(*name), true),
        _ => {
            return failure(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("no route for {}", uri.path()),
            );
        }
    };
    let Some(resource) = state
        .resource_types
        .iter()
        .find(|resource| {
            resource.group == group && resource.version == version && resource.plural == plural
        })
        .cloned()
    else {
        return failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the server could not find the requested resource {plural}"),
        );
    };
    let target = Target {
        namespace: if resource.namespaced {
            namespace.map(str::to_owned)
        } else {
            None
        },
        resource,
        name: name.map(str::to_owned),
        status,
    };
    let dry_run = query_value("dryRun").is_some();
    let manager = query_value("fieldManager").unwrap_or_else(|| {
        // As the API server does: the user agent up to its first `/`.
        headers
            .get("user-agent")
            .and_then(|value| value.to_str().ok())
            .and_then(|agent| agent.split('/').next())
            .filter(|agent| !agent.is_empty())
            .unwrap_or("unknown")
            .to_owned()
    });
    match (method.as_str(), target.name.as_deref()) {
        ("GET", None) => list(state, &target, query_value("labelSelector").as_deref()),
        ("GET", Some(name)) => {
            state.calls.get += 1;
            match state.objects.get(&key(&target, name)) {
                Some(object) => reply(StatusCode::OK, object.clone()),
                None => not_found(&target, name),
            }
        }
        ("PATCH", Some(name)) if target.status => patch_status(state, &target, name, body),
        ("PUT", Some(name)) if target.status => patch_status(state, &target, name, body),
        ("PATCH", Some(name)) => {
            let content_type = headers
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            let kind = if content_type.starts_with("application/apply-patch+yaml") {
                Write::Apply
            } else if content_type.starts_with("application/merge-patch+json") {
                Write::MergePatch
            } else if content_type.starts_with("application/strategic-merge-patch+json") {
                Write::StrategicMergePatch
            } else {
                return failure(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    format!(
                        "the fake serves server-side apply, merge and strategic merge patches, not {content_type}"
                    ),
                );
            };
            if kind == Write::Apply && !dry_run && state.unavailable_applies > 0 {
                state.unavailable_applies -= 1;
                return unavailable();
            }
            if kind == Write::Apply && query_value("fieldManager").is_none() {
                return failure(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "PatchOptions.meta.k8s.io is invalid: fieldManager: Required value: is required for apply patch".to_owned(),
                );
            }
            let request = WriteRequest {
                kind,
                dry_run,
                force: query_value("force").as_deref() == Some("true"),
                manager: &manager,
            };
            write(state, &target, name, body, &request)
        }
        ("PUT", Some(name)) => {
            let request = WriteRequest {
                kind: Write::Replace,
                dry_run,
                force: false,
                manager: &manager,
            };
            write(state, &target, name, body, &request)
        }
        ("POST", None) => create(state, &target, body, dry_run, &manager),
        ("DELETE", Some(name)) => {
            state.calls.delete += 1;
            match state.objects.remove(&key(&target, name)) {
                Some(object) => {
                    let address = address(&target.resource.kind, target.namespace.as_deref(), name);
                    state.write_log.push(format!("delete {address}"));
                    state.record_change("DELETED", key(&target, name), object.clone());
                    super::kubelet::collect_garbage(state, &object, body);
                    reply(StatusCode::OK, object)
                }
                None => not_found(&target, name),
            }
        }
        _ => failure(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not served on {}", uri.path()),
        ),
    }
}

fn unavailable() -> Response {
    failure(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "the API server is temporarily unavailable".to_owned(),
    )
}

fn key(target: &Target, name: &str) -> (String, String, String, String) {
    (
        target.resource.group.clone(),
        target.resource.plural.clone(),
        target.namespace.clone().unwrap_or_default(),
        name.to_owned(),
    )
}

fn address(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{kind}/{namespace}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

fn not_found(target: &Target, name: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} \"{name}\" not found", target.resource.plural),
    )
}

/// `a=b,c!=d,e,!f`.
pub(super) fn matches_selector(labels: &Value, selector: &str) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|term| !term.is_empty())
        .all(|term| {
            let label = |name: &str| labels.get(name).and_then(Value::as_str);
            if let Some((name, value)) = term.split_once("!=") {
                label(name.trim()) != Some(value.trim())
            } else if let Some((name, value)) = term.split_once('=') {
                label(name.trim().trim_end_matches('=')) == Some(value.trim())
            } else if let Some(name) = term.strip_prefix('!') {
                label(name).is_none()
            } else {
                label(term).is_some()
            }
        })
}

fn list(state: &mut FakeState, target: &Target, selector: Option<&str>) -> Response {
    state.calls.list += 1;
    *state
        .lists_per_resource
        .entry(target.resource.plural.clone())
        .or_default() += 1;
    let items: Vec<Value> = state
        .objects
        .iter()
        .filter(|((group, plural, namespace, _), _)| {
            *group == target.resource.group
                && *plural == target.resource.plural
                && target
                    .namespace
                    .as_ref()
                    .is_none_or(|wanted| wanted == namespace)
        })
        .map(|(_, object)| object)
        .filter(|object| {
            selector
                .is_none_or(|selector| matches_selector(&object["metadata"]["labels"], selector))
        })
        .cloned()
        .collect();
    reply(
        StatusCode::OK,
        json!({
            "apiVersion": target.resource.group_version(), "kind": format!("{}List", target.resource.kind),
            "metadata": {"resourceVersion": state.resource_version.to_string()}, "items": items,
        }),
    )
}

fn parse_body(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .or_else(|_| serde_saphyr::from_slice::<Value>(body))
        .map_err(|error| {
            failure(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("cannot parse the body: {error}"),
            )
        })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    Apply,
    MergePatch,
    StrategicMergePatch,
    Replace,
}

struct WriteRequest<'a> {
    kind: Write,
    dry_run: bool,
    force: bool,
    manager: &'a str,
}

/// A server-side apply, a merge or strategic merge patch, or a PUT of an object: field
/// ownership updated as the API server does, stored unless it is a dry run.
fn write(
    state: &mut FakeState,
    target: &Target,
    name: &str,
    body: &[u8],
    request: &WriteRequest<'_>,
) -> Response {
    let counter = match (request.dry_run, request.kind) {
        (true, _) => &mut state.calls.dry_run,
        (false, Write::Apply) => &mut state.calls.apply,
        (false, Write::Replace) => &mut state.calls.update,
        (false, _) => &mut state.calls.patch,
    };
    *counter += 1;
    let mut body = match parse_body(body) {
        Ok(value) => value,
        Err(response) => return response,
    };
    if let Some(map) = body.as_object_mut() {
        map.remove("status");
    }
    let named = body["metadata"]["name"].as_str();
    if named.is_some_and(|named| named != name)
        || (named.is_none() && matches!(request.kind, Write::Apply | Write::Replace))
    {
        return failure(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "the body names {} but the URL names {name}",
                body["metadata"]["name"]
            ),
        );
    }
    let object_key = key(target, name);
    let existing = state.objects.get(&object_key).cloned();
    if let Some(existing) = &existing
        && let Some(wanted) = body["metadata"]["resourceVersion"].as_str()
        && Some(wanted) != existing["metadata"]["resourceVersion"].as_str()
    {
        return failure(
            StatusCode::CONFLICT,
            "Conflict",
            format!("the object has been modified; resourceVersion {wanted} is stale"),
        );
    }
    let group_version = target.resource.group_version();
    let written = match (request.kind, &existing) {
        (Write::Apply, _) => match fields::apply(
            existing.as_ref(),
            &body,
            request.manager,
            request.force,
            &group_version,
        ) {
            Ok(object) => object,
            Err(conflicts) => return failure(StatusCode::CONFLICT, "Conflict", conflicts),
        },
        (_, None) => return not_found(target, name),
        (Write::Replace, Some(existing)) => {
            let mut replaced = body;
            if let Some(status) = existing.get("status") {
                replaced["status"] = status.clone();
            }
            fields::update(Some(existing), replaced, request.manager, &group_version)
        }
        (patch, Some(existing)) => {
            let mut patched = existing.clone();
            if patch == Write::MergePatch {
                fields::merge_patch(&mut patched, &body);
            } else {
                fields::merge(&mut patched, &body, None);
            }
            fields::update(Some(existing), patched, request.manager, &group_version)
        }
    };
    let verb = match request.kind {
        Write::Apply => "apply",
        Write::Replace => "update",
        _ => "patch",
    };
    store(
        state,
        target,
        name,
        existing,
        written,
        request.dry_run,
        verb,
    )
}

/// Fills what the server sets (namespace, resourceVersion, generation, uid, creation time),
/// then, unless a dry run, stores the object, plays the controller and logs the write.
fn store(
    state: &mut FakeState,
    target: &Target,
    name: &str,
    existing: Option<Value>,
    mut object: Value,
    dry_run: bool,
    verb: &str,
) -> Response {
    let resource_version = state.resource_version + 1;
    object["apiVersion"] = json!(target.resource.group_version());
    object["kind"] = json!(target.resource.kind);
    let generation = match &existing {
        None => 1,
        Some(existing) => {
            let previous = existing["metadata"]["generation"].as_i64().unwrap_or(1);
            if existing.get("spec") != object.get("spec") {
                previous + 1
            } else {
                previous
            }
        }
    };
    let Some(metadata) = object["metadata"].as_object_mut() else {
        return failure(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the object has no metadata".to_owned(),
        );
    };
    metadata.insert("name".into(), json!(name));
    if let Some(namespace) = &target.namespace {
        metadata.insert("namespace".into(), json!(namespace));
    }
    metadata.insert(
        "resourceVersion".into(),
        json!(resource_version.to_string()),
    );
    metadata.insert("generation".into(), json!(generation));
    match &existing {
        Some(existing) => {
            for field in ["uid", "creationTimestamp"] {
                metadata.insert(field.into(), existing["metadata"][field].clone());
            }
        }
        None => {
            metadata.insert("uid".into(), json!(format!("uid-{resource_version}")));
            metadata.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
        }
    }
    if let Some(existing) = &existing {
        let mut unchanged = object.clone();
        unchanged["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"].clone();
        if &unchanged == existing {
            // A write that changes nothing is not stored: no new resourceVersion, no event.
            if !dry_run {
                state.write_log.push(format!(
                    "{verb} {}",
                    address(&target.resource.kind, target.namespace.as_deref(), name)
                ));
            }
            return reply(StatusCode::OK, unchanged);
        }
    }
    if dry_run {
        // Nothing was written, so the answer carries no new resourceVersion.
        match &existing {
            Some(existing) => {
                object["metadata"]["resourceVersion"] =
                    existing["metadata"]["resourceVersion"].clone();
            }
            None => {
                if let Some(metadata) = object["metadata"].as_object_mut() {
                    metadata.remove("resourceVersion");
                }
            }
        }
        return reply(StatusCode::OK, object);
    }
    state.resource_version = resource_version;
    let rollout = state.rollouts.get(name).copied().unwrap_or_default();
    if !(state.pods_run && target.resource.kind == "Job") {
        play_controller(&target.resource.kind, &mut object, rollout);
    }
    if target.resource.kind == "CustomResourceDefinition" {
        for resource in resources::from_crd(&object) {
            if !state.resource_types.contains(&resource) {
                state.resource_types.push(resource);
            }
        }
    }
    state.write_log.push(format!(
        "{verb} {}",
        address(&target.resource.kind, target.namespace.as_deref(), name)
    ));
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    state.objects.insert(key(target, name), object.clone());
    let change = if existing.is_some() {
        "MODIFIED"
    } else {
        "ADDED"
    };
    state.record_change(change, key(target, name), object.clone());
    reply(status, object)
}

fn create(
    state: &mut FakeState,
    target: &Target,
    body: &[u8],
    dry_run: bool,
    manager: &str,
) -> Response {
    if dry_run {
        state.calls.dry_run += 1;
    } else {
        state.calls.create += 1;
    }
    let mut object = match parse_body(body) {
        Ok(value) => value,
        Err(response) => return response,
    };
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    let Some(name) = object["metadata"]["name"].as_str().map(str::to_owned) else {
        return failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name is required".to_owned(),
        );
    };
    if state.objects.contains_key(&key(target, &name)) {
        return failure(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", target.resource.plural),
        );
    }
    let object = fields::update(None, object, manager, &target.resource.group_version());
    store(state, target, &name, None, object, dry_run, "create")
}

/// PUT replaces the status; PATCH merges the body's `status` into it.
fn patch_status(state: &mut FakeState, target: &Target, name: &str, body: &[u8]) -> Response {
    state.calls.status += 1;
    let update = match parse_body(body) {
        Ok(value) => value,
        Err(response) => return response,
    };
    let object_key = key(target, name);
    let Some(object) = state.objects.get_mut(&object_key) else {
        return not_found(target, name);
    };
    if let Some(wanted) = update["metadata"]["resourceVersion"].as_str()
        && Some(wanted) != object["metadata"]["resourceVersion"].as_str()
    {
        return failure(
            StatusCode::CONFLICT,
            "Conflict",
            format!("the object has been modified; resourceVersion {wanted} is stale"),
        );
    }
    let new_status = update.get("status").cloned().unwrap_or(Value::Null);
    match (object.get_mut("status"), new_status) {
        (Some(Value::Object(current)), Value::Object(changes)) => current.extend(changes),
        (_, new_status) => object["status"] = new_status,
    }
    state.resource_version += 1;
    object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
    let object = object.clone();
    state.record_change("MODIFIED", object_key, object.clone());
    reply(StatusCode::OK, object)
}

/// Sets the status a controller would after the workload's rollout.
fn play_controller(kind: &str, object: &mut Value, rollout: Rollout) {
    let generation = object["metadata"]["generation"].clone();
    let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let done = rollout == Rollout::Succeed;
    let ready = if done { replicas } else { 0 };
    object["status"] = match kind {
        "Deployment" => {
            let mut conditions =
                vec![json!({"type": "Available", "status": if done { "True" } else { "False" }})];
            if rollout == Rollout::Fail {
                conditions.push(json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": "ReplicaSet has timed out progressing."}));
            }
            json!({"observedGeneration": generation, "replicas": replicas, "updatedReplicas": ready,
                   "readyReplicas": ready, "availableReplicas": ready, "conditions": conditions})
        }
        "StatefulSet" => {
            json!({"observedGeneration": generation, "replicas": replicas, "readyReplicas": ready,
            "availableReplicas": ready, "updatedReplicas": ready, "currentRevision": if done { "r2" } else { "r1" }, "updateRevision": "r2"})
        }
        "DaemonSet" => json!({"observedGeneration": generation, "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1, "updatedNumberScheduled": if done { 1 } else { 0 },
            "numberAvailable": if done { 1 } else { 0 }, "numberUnavailable": if done { 0 } else { 1 }}),
        "Job" => match rollout {
            Rollout::Succeed => {
                json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
            }
            Rollout::Stall => json!({"active": 1}),
            Rollout::Fail => {
                json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
            }
        },
        _ => return,
    };
}
