//! Drift and heal for the Kubernetes target. The check renders the release exactly as `apply`
//! does, reads what sluice manages in the environment with one LIST per kind (a GET only for a
//! rendered object the labelled LIST lacks, to tell an object that lost sluice's labels from a
//! missing one), compares the leaves each manifest sets with the live object, and asks the API
//! server for a server-side apply dry run (field manager `sluice`) only for objects that differ
//! there, so that the server's defaulting and normalising decide. It reports missing objects,
//! fields another manager changed (naming it from `metadata.managedFields`) and labelled objects
//! pruning would delete. Heal re-applies the drifted objects with force and deletes those
//! pruning would.

use super::KubernetesTarget;
use super::cluster::{Cluster, FIELD_MANAGER};
use super::compare::{self, Step};
use super::render::{RenderedObject, object_address};
use super::sync::{self, Key, Planned};
use crate::deploy::{Applied, DeployContext, Drift, DriftReport, TargetError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// `apps/v1 Deployment ml/serving-api`, or `v1 Namespace ml` for a cluster-scoped object.
pub fn object_name(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) if !namespace.is_empty() => {
            format!("{api_version} {kind} {namespace}/{name}")
        }
        _ => format!("{api_version} {kind} {name}"),
    }
}

fn rendered_name(object: &RenderedObject) -> String {
    object_name(
        &object.api_version,
        &object.kind,
        object.namespace.as_deref(),
        &object.name,
    )
}

fn absent(object: &RenderedObject) -> Drift {
    Drift {
        object: rendered_name(object),
        expected: "present".to_owned(),
        actual: "absent".to_owned(),
    }
}

fn is_secret_value(kind: &str, path: &[Step]) -> bool {
    kind == "Secret"
        && matches!(path.first(), Some(Step::Field(field)) if field == "data" || field == "stringData")
}

fn shown(kind: &str, path: &[Step], value: Option<&Value>) -> String {
    match value {
        None => "absent".to_owned(),
        Some(_) if is_secret_value(kind, path) => "(hidden)".to_owned(),
        Some(value) => value.to_string(),
    }
}

/// The fields of `item` whose live value differs from the manifest's, decided by a dry run.
async fn field_drifts(
    cluster: &Cluster,
    item: &Planned,
    live: &Value,
    calls: &mut BTreeMap<String, u64>,
) -> Result<Vec<Drift>, TargetError> {
    let kind = item.object.kind.as_str();
    let leaves = compare::leaves(&item.object.manifest);
    let differs = |object: &Value, leaf: &compare::Leaf| {
        !compare::same(
            compare::server_value(kind, object, &leaf.path).as_ref(),
            compare::server_value(kind, live, &leaf.path).as_ref(),
        )
    };
    let flagged = leaves
        .iter()
        .any(|leaf| differs(&item.object.manifest, leaf));
    if !flagged {
        return Ok(Vec::new());
    }
    *calls.entry("dry-run".to_owned()).or_default() += 1;
    let after = cluster
        .apply(
            &item.kind,
            item.object.namespace.as_deref(),
            &item.object.name,
            &item.object.manifest,
            true,
            true,
        )
        .await?;
    let object = rendered_name(&item.object);
    Ok(leaves
        .iter()
        .filter(|leaf| differs(&after, leaf))
        .map(|leaf| {
            let actual = compare::server_value(kind, live, &leaf.path);
            let mut actual = shown(kind, &leaf.path, actual.as_ref());
            if let Some(manager) = compare::owner(live, &leaf.path, FIELD_MANAGER) {
                actual.push_str(&format!(", set by {manager}"));
            }
            Drift {
                object: format!("{object}: {}", compare::display(&leaf.path)),
                expected: shown(kind, &leaf.path, Some(&leaf.expected)),
                actual,
            }
        })
        .collect())
}

/// Labelled objects the release does not render that pruning would delete.
fn unrendered<'a>(
    target: &KubernetesTarget,
    live: &'a BTreeMap<Key, (super::cluster::ResolvedKind, Value)>,
    rendered: &BTreeSet<Key>,
) -> Vec<(&'a Key, &'a super::cluster::ResolvedKind, String)> {
    if !target.config.prune {
        return Vec::new();
    }
    live.iter()
        .filter(|(key, (kind, _))| {
            !rendered.contains(*key) && sync::may_prune(target, &kind.resource.kind)
        })
        .map(|(key, (kind, _))| {
            let name = object_name(
                &kind.resource.api_version,
                &kind.resource.kind,
                Some(key.2.as_str()),
                &key.3,
            );
            (key, kind, name)
        })
        .collect()
}

pub async fn drift(
    target: &KubernetesTarget,
    context: &DeployContext,
) -> Result<DriftReport, TargetError> {
    let objects = target.render(context)?;
    let cluster = target.cluster().await?;
    let discovery = cluster.discovery(false).await?;
    let (planned, unresolved) = sync::resolve(&discovery, objects, &target.config.namespace);
    let (live, listed) = sync::inventory(target, cluster, &discovery, &planned).await?;
    let mut calls = BTreeMap::from([("list".to_owned(), listed.len() as u64)]);
    let mut drifts: Vec<Drift> = unresolved.iter().map(absent).collect();
    for item in &planned {
        let found = match live.get(&item.key()) {
            Some((_, object)) => Some(object.clone()),
            None => {
                *calls.entry("get".to_owned()).or_default() += 1;
                cluster
                    .get(
                        &item.kind,
                        item.object.namespace.as_deref(),
                        &item.object.name,
                    )
                    .await?
            }
        };
        match found {
            Some(object) => drifts.extend(field_drifts(cluster, item, &object, &mut calls).await?),
            None => drifts.push(absent(&item.object)),
        }
    }
    let rendered: BTreeSet<Key> = planned.iter().map(Planned::key).collect();
    for (_, _, name) in unrendered(target, &live, &rendered) {
        drifts.push(Drift {
            object: name,
            expected: "absent".to_owned(),
            actual: "present".to_owned(),
        });
    }
    Ok(DriftReport {
        drifts,
        review: None,
        calls,
    })
}

pub async fn heal(
    target: &KubernetesTarget,
    context: &DeployContext,
    found: &DriftReport,
) -> Result<Applied, TargetError> {
    let named = |name: &str| {
        found.drifts.iter().any(|drift| {
            drift.object == name
                || drift
                    .object
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(": "))
        })
    };
    let objects = target.render(context)?;
    let cluster = target.cluster().await?;
    let discovery = cluster.discovery(false).await?;
    let (mut planned, unresolved) = sync::resolve(&discovery, objects, &target.config.namespace);
    // A kind not served was reported under the manifest's own namespace, if any.
    let unserved: BTreeSet<(String, String, String)> = unresolved
        .iter()
        .filter(|object| named(&rendered_name(object)))
        .map(|object| {
            (
                object.api_version.clone(),
                object.kind.clone(),
                object.name.clone(),
            )
        })
        .collect();
    let mut reapplied = Vec::new();
    let mut pending = Vec::new();
    if !unserved.is_empty() {
        // Kinds served once the release's CRDs are back: apply those first, then look again.
        for item in planned
            .iter()
            .filter(|item| item.object.kind == "CustomResourceDefinition")
        {
            reapply(cluster, item, &mut reapplied).await?;
        }
        let discovery = cluster.discovery(true).await?;
        let (more, still_unknown) = sync::resolve(&discovery, unresolved, &target.config.namespace);
        if still_unknown
            .iter()
            .any(|object| named(&rendered_name(object)))
        {
            return Err(sync::unknown_kinds_error(&still_unknown));
        }
        pending.extend(more);
    }
    planned.extend(pending);
    planned.sort_by_key(|item| item.object.apply_order());
    for item in &planned {
        let address = item.object.address();
        let identity = (
            item.object.api_version.clone(),
            item.object.kind.clone(),
            item.object.name.clone(),
        );
        let drifted = named(&rendered_name(&item.object)) || unserved.contains(&identity);
        if drifted && !reapplied.contains(&address) {
            reapply(cluster, item, &mut reapplied).await?;
        }
    }
    let mut deleted = Vec::new();
    if found.drifts.iter().any(|drift| drift.expected == "absent") {
        let (live, _) = sync::inventory(target, cluster, &discovery, &planned).await?;
        let rendered: BTreeSet<Key> = planned.iter().map(Planned::key).collect();
        for (key, kind, name) in unrendered(target, &live, &rendered).into_iter().rev() {
            if !named(&name) {
                continue;
            }
            let namespace = (!key.2.is_empty()).then_some(key.2.as_str());
            cluster.delete(kind, namespace, &key.3).await?;
            deleted.push(object_address(&kind.resource.kind, namespace, &key.3));
        }
    }
    Ok(Applied {
        summary: format!(
            "{} re-applied, {} deleted",
            counted(reapplied.len()),
            deleted.len()
        ),
        rollback: Value::Null,
        outputs: json!({"reapplied": reapplied, "deleted": deleted}),
    })
}

/// Server-side apply with force: the live object drifted, so its content hash says nothing.
async fn reapply(
    cluster: &Cluster,
    item: &Planned,
    reapplied: &mut Vec<String>,
) -> Result<(), TargetError> {
    cluster
        .apply(
            &item.kind,
            item.object.namespace.as_deref(),
            &item.object.name,
            &item.object.manifest,
            true,
            false,
        )
        .await?;
    reapplied.push(item.object.address());
    Ok(())
}

/// `1 object`, `3 objects`.
fn counted(count: usize) -> String {
    if count == 1 {
        "1 object".to_owned()
    } else {
        format!("{count} objects")
    }
}
