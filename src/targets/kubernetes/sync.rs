//! The target's verbs on the cluster: diff (server-side dry-run), apply (waves, content-hash
//! skip, prune), health, current and rollback. Reads the inventory of what sluice manages in
//! the environment with at most one LIST per kind, by label.

use super::cluster::{Cluster, ResolvedKind};
use super::health::{WorkloadHealth, is_workload_kind, summarize, workload_health};
use super::render::{
    CONTENT_HASH_ANNOTATION, RELEASE_ANNOTATION, RenderedObject, is_bootstrap_kind, object_address,
};
use super::{KubernetesTarget, config};
use crate::deploy::{
    Applied, Change, ChangeAction, DeployContext, Health, TargetDiff, TargetError,
};
use kube::discovery::Discovery;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// (group, kind, namespace or "", name).
pub(super) type Key = (String, String, String, String);

/// Kinds listed for pruning besides the rendered ones: what manifests commonly hold.
const PRUNABLE_KINDS: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("", "PersistentVolumeClaim"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("policy", "PodDisruptionBudget"),
    ("networking.k8s.io", "Ingress"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
];

pub(super) struct Planned {
    pub(super) object: RenderedObject,
    pub(super) kind: ResolvedKind,
}

impl Planned {
    pub(super) fn key(&self) -> Key {
        (
            self.kind.resource.group.clone(),
            self.kind.resource.kind.clone(),
            self.object.namespace.clone().unwrap_or_default(),
            self.object.name.clone(),
        )
    }
}

fn live_key(kind: &ResolvedKind, object: &Value) -> Key {
    (
        kind.resource.group.clone(),
        kind.resource.kind.clone(),
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Resolves each object's kind and fills the default namespace; returns those the cluster does
/// not serve (yet) apart.
pub(super) fn resolve(
    discovery: &Discovery,
    objects: Vec<RenderedObject>,
    namespace: &str,
) -> (Vec<Planned>, Vec<RenderedObject>) {
    let mut planned = Vec::new();
    let mut unresolved = Vec::new();
    for mut object in objects {
        match Cluster::resolve(discovery, &object.api_version, &object.kind) {
            Some(kind) => {
                if kind.namespaced {
                    object.namespace.get_or_insert_with(|| namespace.to_owned());
                } else {
                    object.namespace = None;
                }
                planned.push(Planned { object, kind });
            }
            None => unresolved.push(object),
        }
    }
    planned.sort_by_key(|planned| planned.object.apply_order());
    (planned, unresolved)
}

pub(super) fn unknown_kinds_error(unresolved: &[RenderedObject]) -> TargetError {
    let names: Vec<String> = unresolved
        .iter()
        .map(|object| {
            format!(
                "{} ({}, apiVersion {})",
                object.address(),
                object.source,
                object.api_version
            )
        })
        .collect();
    TargetError::Rejected(format!(
        "the cluster does not serve the kind of {}; install the CRD (or render it with the manifests) or fix apiVersion/kind",
        names.join(", ")
    ))
}

/// What sluice manages in the environment: one LIST per kind, rendered kinds and the usual ones.
pub(super) async fn inventory(
    target: &KubernetesTarget,
    cluster: &Cluster,
    discovery: &Discovery,
    planned: &[Planned],
) -> Result<
    (
        BTreeMap<Key, (ResolvedKind, Value)>,
        BTreeSet<(String, String)>,
    ),
    TargetError,
> {
    let mut kinds: BTreeMap<(String, String), ResolvedKind> = BTreeMap::new();
    for item in planned {
        kinds
            .entry((
                item.kind.resource.group.clone(),
                item.kind.resource.kind.clone(),
            ))
            .or_insert_with(|| item.kind.clone());
    }
    for (group, kind) in PRUNABLE_KINDS {
        if let Some(resolved) = Cluster::resolve_kind(discovery, group, kind) {
            kinds
                .entry(((*group).to_owned(), (*kind).to_owned()))
                .or_insert(resolved);
        }
    }
    let mut live = BTreeMap::new();
    list_kinds(target, cluster, kinds.values(), &mut live).await?;
    Ok((live, kinds.into_keys().collect()))
}

async fn list_kinds<'a>(
    target: &KubernetesTarget,
    cluster: &Cluster,
    kinds: impl Iterator<Item = &'a ResolvedKind>,
    live: &mut BTreeMap<Key, (ResolvedKind, Value)>,
) -> Result<(), TargetError> {
    let selector = target.label_selector();
    for kind in kinds {
        for object in cluster.list(kind, &selector).await? {
            live.insert(live_key(kind, &object), (kind.clone(), object));
        }
    }
    Ok(())
}

fn recorded_hash(object: &Value) -> Option<&str> {
    object["metadata"]["annotations"][CONTENT_HASH_ANNOTATION].as_str()
}

pub(super) fn may_prune(target: &KubernetesTarget, kind: &str) -> bool {
    match kind {
        "Namespace" => target.config.prune_namespaces,
        "PersistentVolumeClaim" => target.config.prune_persistent_volume_claims,
        _ => true,
    }
}

/// A live object as it can be applied again: no status, no server-owned metadata.
fn restorable(kind: &ResolvedKind, object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        map.insert("apiVersion".into(), json!(kind.resource.api_version));
        map.insert("kind".into(), json!(kind.resource.kind));
    }
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for field in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
        ] {
            metadata.remove(field);
        }
    }
    object
}

fn reference(kind: &ResolvedKind, namespace: Option<&str>, name: &str) -> Value {
    json!({"apiVersion": kind.resource.api_version, "kind": kind.resource.kind, "namespace": namespace, "name": name})
}

#[derive(Default)]
struct Progress {
    written: Vec<String>,
    unchanged: usize,
    pruned: Vec<String>,
    /// Objects as they were before this apply changed or pruned them.
    restore: Vec<Value>,
    /// Objects this apply created.
    created: Vec<Value>,
}

async fn write_if_changed(
    target: &KubernetesTarget,
    cluster: &Cluster,
    item: &Planned,
    live: &BTreeMap<Key, (ResolvedKind, Value)>,
    progress: &mut Progress,
) -> Result<(), TargetError> {
    let previous = live.get(&item.key()).map(|(_, object)| object);
    if previous.and_then(recorded_hash) == Some(item.object.content_hash.as_str()) {
        progress.unchanged += 1;
        return Ok(());
    }
    let namespace = item.object.namespace.as_deref();
    cluster
        .apply(
            &item.kind,
            namespace,
            &item.object.name,
            &item.object.manifest,
            target.config.force,
            false,
        )
        .await?;
    match previous {
        Some(previous) => progress.restore.push(restorable(&item.kind, previous)),
        None => progress
            .created
            .push(reference(&item.kind, namespace, &item.object.name)),
    }
    progress.written.push(item.object.address());
    Ok(())
}

pub async fn apply(
    target: &KubernetesTarget,
    context: &DeployContext,
) -> Result<Applied, TargetError> {
    let objects = target.render(context)?;
    target.check_policies(context, &objects)?;
    let cluster = target.cluster().await?;
    let discovery = cluster.discovery(false).await?;
    let (planned, unresolved) = resolve(&discovery, objects, &target.config.namespace);
    let renders_crds = planned
        .iter()
        .any(|item| item.object.kind == "CustomResourceDefinition");
    if !unresolved.is_empty() && !renders_crds {
        return Err(unknown_kinds_error(&unresolved));
    }
    let (mut live, mut listed_kinds) = inventory(target, cluster, &discovery, &planned).await?;
    let (bootstrap, mut rest): (Vec<Planned>, Vec<Planned>) = planned
        .into_iter()
        .partition(|item| is_bootstrap_kind(&item.object.kind));
    let mut progress = Progress::default();
    for item in &bootstrap {
        write_if_changed(target, cluster, item, &live, &mut progress).await?;
    }
    if !unresolved.is_empty() {
        let discovery = cluster.discovery(true).await?;
        let (more, still_unknown) = resolve(&discovery, unresolved, &target.config.namespace);
        if !still_unknown.is_empty() {
            return Err(unknown_kinds_error(&still_unknown));
        }
        let new_kinds: BTreeMap<(String, String), ResolvedKind> = more
            .iter()
            .map(|item| {
                (
                    (
                        item.kind.resource.group.clone(),
                        item.kind.resource.kind.clone(),
                    ),
                    item.kind.clone(),
                )
            })
            .filter(|(key, _)| !listed_kinds.contains(key))
            .collect();
        list_kinds(target, cluster, new_kinds.values(), &mut live).await?;
        listed_kinds.extend(new_kinds.into_keys());
        rest.extend(more);
        rest.sort_by_key(|item| item.object.apply_order());
    }
    for item in &rest {
        write_if_changed(target, cluster, item, &live, &mut progress).await?;
    }
    let rendered: BTreeSet<Key> = bootstrap
        .iter()
        .chain(rest.iter())
        .map(Planned::key)
        .collect();
    if target.config.prune {
        for (key, (kind, object)) in live.iter().rev() {
            if rendered.contains(key) || !may_prune(target, &kind.resource.kind) {
                continue;
            }
            let namespace = (!key.2.is_empty()).then_some(key.2.as_str());
            cluster.delete(kind, namespace, &key.3).await?;
            progress.restore.push(restorable(kind, object));
            progress
                .pruned
                .push(object_address(&kind.resource.kind, namespace, &key.3));
        }
    }
    target
        .applied_at
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(context.release.id.clone(), Instant::now());
    Ok(Applied {
        summary: format!(
            "{} objects written, {} unchanged, {} pruned",
            progress.written.len(),
            progress.unchanged,
            progress.pruned.len()
        ),
        rollback: json!({
            "environment": target.environment,
            "release": context.release.id,
            "restore": progress.restore,
            "delete": progress.created,
        }),
        outputs: json!({"written": progress.written, "pruned": progress.pruned, "unchanged": progress.unchanged}),
    })
}

pub async fn rollback(
    target: &KubernetesTarget,
    _context: &DeployContext,
    data: &Value,
) -> Result<Applied, TargetError> {
    let malformed = |what: &str| {
        TargetError::Rejected(format!(
            "kubernetes rollback data for {} has no valid `{what}`; it was not written by this target's apply",
            target.environment
        ))
    };
    let restore = data["restore"]
        .as_array()
        .ok_or_else(|| malformed("restore"))?;
    let delete = data["delete"]
        .as_array()
        .ok_or_else(|| malformed("delete"))?;
    let cluster = target.cluster().await?;
    let mut discovery = cluster.discovery(false).await?;
    let mut restored = 0;
    let mut ordered: Vec<&Value> = restore.iter().collect();
    ordered.sort_by_key(|object| !is_bootstrap_kind(object["kind"].as_str().unwrap_or_default()));
    for object in ordered {
        let api_version = object["apiVersion"]
            .as_str()
            .ok_or_else(|| malformed("restore[].apiVersion"))?;
        let kind_name = object["kind"]
            .as_str()
            .ok_or_else(|| malformed("restore[].kind"))?;
        let name = object["metadata"]["name"]
            .as_str()
            .ok_or_else(|| malformed("restore[].metadata.name"))?;
        let kind = match Cluster::resolve(&discovery, api_version, kind_name) {
            Some(kind) => kind,
            None => {
                discovery = cluster.discovery(true).await?;
                Cluster::resolve(&discovery, api_version, kind_name).ok_or_else(|| {
                    TargetError::Rejected(format!("cannot restore {kind_name} {name}: the cluster no longer serves {api_version}"))
                })?
            }
        };
        let namespace = object["metadata"]["namespace"].as_str();
        cluster
            .apply(&kind, namespace, name, object, true, false)
            .await?;
        restored += 1;
    }
    let mut deleted = 0;
    for reference in delete.iter().rev() {
        let (Some(api_version), Some(kind_name), Some(name)) = (
            reference["apiVersion"].as_str(),
            reference["kind"].as_str(),
            reference["name"].as_str(),
        ) else {
            return Err(malformed("delete[]"));
        };
        if let Some(kind) = Cluster::resolve(&discovery, api_version, kind_name) {
            cluster
                .delete(&kind, reference["namespace"].as_str(), name)
                .await?;
            deleted += 1;
        }
    }
    Ok(Applied {
        summary: format!("{restored} objects restored, {deleted} created objects deleted"),
        rollback: Value::Null,
        outputs: json!({"restored": restored, "deleted": deleted}),
    })
}

pub async fn health(
    target: &KubernetesTarget,
    context: &DeployContext,
) -> Result<Health, TargetError> {
    let timeout = target
        .config
        .health_timeout()
        .map_err(TargetError::Configuration)?;
    let objects = target.render(context)?;
    for rollout in &target.config.health.rollouts {
        let listed = config::parse_workload_reference(rollout);
        let rendered = objects.iter().any(|object| {
            listed.as_ref().is_some_and(|(kind, name)| {
                object.kind.eq_ignore_ascii_case(kind) && &object.name == name
            })
        });
        if !rendered {
            return Err(TargetError::Configuration(format!(
                "environments/{}.yaml: `kubernetes.health.rollouts` names {rollout}, which the manifests do not render; fix the entry",
                target.environment
            )));
        }
    }
    let cluster = target.cluster().await?;
    let discovery = cluster.discovery(false).await?;
    let (planned, _) = resolve(&discovery, objects, &target.config.namespace);
    let mut workloads = Vec::new();
    for item in planned
        .iter()
        .filter(|item| is_workload_kind(&item.object.kind))
    {
        let state = match cluster
            .get(
                &item.kind,
                item.object.namespace.as_deref(),
                &item.object.name,
            )
            .await?
        {
            Some(object) if recorded_hash(&object) == Some(item.object.content_hash.as_str()) => {
                workload_health(&item.object.kind, &object)
            }
            Some(_) => {
                WorkloadHealth::Progressing("the release's version is not applied yet".to_owned())
            }
            None => {
                WorkloadHealth::Progressing("not found; the release is not applied yet".to_owned())
            }
        };
        workloads.push((item.object.address(), state));
    }
    let started = *target
        .applied_at
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(context.release.id.clone())
        .or_insert_with(Instant::now);
    Ok(summarize(&workloads, started.elapsed(), timeout))
}

pub async fn current(target: &KubernetesTarget) -> Result<Value, TargetError> {
    let cluster = target.cluster().await?;
    let discovery = cluster.discovery(false).await?;
    let (live, _) = inventory(target, cluster, &discovery, &[]).await?;
    let objects: Vec<Value> = live
        .iter()
        .map(|((_, kind, namespace, name), (resolved, object))| {
            json!({
                "address": object_address(kind, (!namespace.is_empty()).then_some(namespace.as_str()), name),
                "apiVersion": resolved.resource.api_version,
                "release": object["metadata"]["annotations"][RELEASE_ANNOTATION],
                "content_hash": object["metadata"]["annotations"][CONTENT_HASH_ANNOTATION],
            })
        })
        .collect();
    Ok(json!({"environment": target.environment, "objects": objects}))
}

pub async fn diff(
    target: &KubernetesTarget,
    context: &DeployContext,
) -> Result<TargetDiff, TargetError> {
    let objects = target.render(context)?;
    let facts =
        super::policy::policy_facts(&target.environment, &target.config.namespace, &objects);
    target.check_policies(context, &objects)?;
    let cluster = target.cluster().await?;
    let discovery = cluster.discovery(false).await?;
    let (planned, unresolved) = resolve(&discovery, objects, &target.config.namespace);
    let (live, _) = inventory(target, cluster, &discovery, &planned).await?;
    let mut changes = Vec::new();
    for item in &planned {
        let address = item.object.address();
        let Some((_, previous)) = live.get(&item.key()) else {
            changes.push(Change {
                address,
                action: ChangeAction::Create,
                detail: None,
            });
            continue;
        };
        if recorded_hash(previous) == Some(item.object.content_hash.as_str()) {
            continue;
        }
        let namespace = item.object.namespace.as_deref();
        let after = cluster
            .apply(
                &item.kind,
                namespace,
                &item.object.name,
                &item.object.manifest,
                target.config.force,
                true,
            )
            .await?;
        let detail = if item.object.kind == "Secret" {
            "data changed (values hidden)".to_owned()
        } else {
            field_diff(
                &restorable(&item.kind, previous),
                &restorable(&item.kind, &after),
            )
        };
        changes.push(Change {
            address,
            action: ChangeAction::Update,
            detail: Some(detail),
        });
    }
    for object in &unresolved {
        changes.push(Change {
            address: object.address(),
            action: ChangeAction::Create,
            detail: Some("kind served once its CRD is applied".to_owned()),
        });
    }
    let rendered: BTreeSet<Key> = planned.iter().map(Planned::key).collect();
    for (key, (kind, _)) in &live {
        if rendered.contains(key) {
            continue;
        }
        let namespace = (!key.2.is_empty()).then_some(key.2.as_str());
        let address = object_address(&kind.resource.kind, namespace, &key.3);
        let (action, detail) = if !target.config.prune {
            (
                ChangeAction::NoOp,
                "no longer rendered; kept because `kubernetes.prune` is false",
            )
        } else if !may_prune(target, &kind.resource.kind) {
            (
                ChangeAction::NoOp,
                "no longer rendered; kept: set `kubernetes.prune_namespaces`/`prune_persistent_volume_claims` to prune it",
            )
        } else {
            (ChangeAction::Delete, "pruned: no longer rendered")
        };
        changes.push(Change {
            address,
            action,
            detail: Some(detail.to_owned()),
        });
    }
    Ok(TargetDiff { changes, facts })
}

/// `spec.replicas: 2 → 3; data.MODEL_ALIAS: "a" → "b"`, at most twelve paths, sluice's own
/// annotations left out.
pub fn field_diff(before: &Value, after: &Value) -> String {
    let mut lines = Vec::new();
    collect_differences(before, after, String::new(), &mut lines);
    lines.retain(|line| {
        !line.contains(CONTENT_HASH_ANNOTATION) && !line.contains(RELEASE_ANNOTATION)
    });
    let total = lines.len();
    lines.truncate(12);
    if total > lines.len() {
        lines.push(format!("… {} more", total - lines.len()));
    }
    if lines.is_empty() {
        "no field changes".to_owned()
    } else {
        lines.join("; ")
    }
}

fn collect_differences(before: &Value, after: &Value, path: String, lines: &mut Vec<String>) {
    if before == after {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
            for key in keys {
                let missing = Value::Null;
                collect_differences(
                    left.get(key).unwrap_or(&missing),
                    right.get(key).unwrap_or(&missing),
                    join(key),
                    lines,
                );
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (index, (left, right)) in left.iter().zip(right).enumerate() {
                collect_differences(left, right, format!("{path}[{index}]"), lines);
            }
        }
        _ => {
            let show = |value: &Value| match value {
                Value::Null => "(none)".to_owned(),
                Value::Object(_) | Value::Array(_) => "{…}".to_owned(),
                other => other.to_string(),
            };
            lines.push(format!("{path}: {} → {}", show(before), show(after)));
        }
    }
}
