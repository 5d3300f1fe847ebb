//! Field ownership as an API server keeps it for server-side apply: the FieldsV1 sets in
//! `metadata.managedFields`, one entry per manager and operation (`Apply` or `Update`), and the
//! merge rules that use them. An apply owns exactly the fields its configuration sets, conflicts
//! with another manager's differing field unless forced (forcing takes the field over), and
//! removes the fields it set last time and no longer sets when nobody else owns them. An update
//! (merge patch, PUT, create) owns the fields it changed, taking them from whoever held them.
//! Lists of objects are associative by `name` (by `containerPort`/`port` and `protocol` for
//! ports, `mountPath` for volume mounts); other lists are atomic.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// A path to an owned leaf in FieldsV1 keys: `f:spec`, `k:{"name":"api"}`, `.` for an item.
pub type FieldPath = Vec<String>;
pub type FieldSet = BTreeSet<FieldPath>;

const TIME: &str = "2026-01-01T00:00:00Z";

/// Top-level and metadata fields the server owns or that name the object.
fn unowned(path: &[String], field: &str) -> bool {
    match path {
        [] => matches!(field, "apiVersion" | "kind" | "status"),
        [metadata] if metadata == "f:metadata" => matches!(
            field,
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "managedFields"
                | "selfLink"
                | "deletionTimestamp"
        ),
        _ => false,
    }
}

/// The key fields of a list's items when the list is associative, else `None` (atomic).
fn list_keys(field: Option<&str>, items: &[Value]) -> Option<Vec<&'static str>> {
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return None;
    }
    let first = match field {
        Some("ports") if items[0].get("containerPort").is_some() => "containerPort",
        Some("ports") => "port",
        Some("volumeMounts") => "mountPath",
        _ => "name",
    };
    items
        .iter()
        .all(|item| item.get(first).is_some())
        .then(|| match first {
            "containerPort" | "port" => vec![first, "protocol"],
            _ => vec![first],
        })
}

/// `k:{"containerPort":8080,"protocol":"TCP"}`: the key fields the item has, sorted.
fn item_key(item: &Value, keys: &[&str]) -> String {
    let mut fields: Vec<(&str, &Value)> = keys
        .iter()
        .filter_map(|key| item.get(*key).map(|value| (*key, value)))
        .collect();
    fields.sort_by_key(|(key, _)| *key);
    let body: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{value}", Value::String((*key).to_owned())))
        .collect();
    format!("k:{{{}}}", body.join(","))
}

/// The leaves `object` sets, as an applied configuration owns them.
pub fn field_set(object: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    walk(object, None, &mut Vec::new(), &mut set);
    set
}

fn walk(value: &Value, field: Option<&str>, path: &mut FieldPath, set: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                if unowned(path, key) {
                    continue;
                }
                path.push(format!("f:{key}"));
                walk(child, Some(key), path, set);
                path.pop();
            }
        }
        Value::Array(items) => match list_keys(field, items) {
            Some(keys) => {
                for item in items {
                    path.push(item_key(item, &keys));
                    path.push(".".to_owned());
                    set.insert(path.clone());
                    path.pop();
                    walk(item, None, path, set);
                    path.pop();
                }
            }
            None => {
                set.insert(path.clone());
            }
        },
        _ if !path.is_empty() => {
            set.insert(path.clone());
        }
        _ => {}
    }
}

/// The nested FieldsV1 document of a set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for key in path {
            node = node
                .entry(key.clone())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("FieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

pub fn from_fields_v1(value: &Value) -> FieldSet {
    fn collect(node: &Value, path: &mut FieldPath, set: &mut FieldSet) {
        match node.as_object() {
            Some(children) if !children.is_empty() => {
                for (key, child) in children {
                    path.push(key.clone());
                    collect(child, path, set);
                    path.pop();
                }
            }
            _ if !path.is_empty() => {
                set.insert(path.clone());
            }
            _ => {}
        }
    }
    let mut set = FieldSet::new();
    collect(value, &mut Vec::new(), &mut set);
    set
}

/// Whether `item` is the one a `k:{...}` key names.
fn item_matches(item: &Value, key: &str) -> bool {
    let Some(Value::Object(fields)) = key
        .strip_prefix("k:")
        .and_then(|json| serde_json::from_str::<Value>(json).ok())
    else {
        return false;
    };
    fields
        .iter()
        .all(|(name, value)| item.get(name) == Some(value))
}

/// The value at a FieldsV1 path (`.` answers the item itself).
pub fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = object;
    for key in path {
        node = if let Some(field) = key.strip_prefix("f:") {
            node.get(field)?
        } else if key.starts_with("k:") {
            node.as_array()?
                .iter()
                .find(|item| item_matches(item, key))?
        } else if key == "." {
            node
        } else {
            return None;
        };
    }
    Some(node)
}

fn remove_at(object: &mut Value, path: &[String]) {
    let (target, parent) = match path {
        [parent @ .., item, dot] if dot == "." => (item, parent),
        [parent @ .., field] => (field, parent),
        [] => return,
    };
    let mut node = object;
    for key in parent {
        let next = if let Some(field) = key.strip_prefix("f:") {
            node.get_mut(field)
        } else {
            node.as_array_mut()
                .and_then(|items| items.iter_mut().find(|item| item_matches(item, key)))
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(field) = target.strip_prefix("f:") {
        if let Some(map) = node.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(items) = node.as_array_mut() {
        items.retain(|item| !item_matches(item, target));
    }
}

/// Merges an applied configuration (or a strategic merge patch) into `live`: maps by key,
/// associative lists by item key, anything else replaced; `null` removes the field.
pub fn merge(live: &mut Value, config: &Value, field: Option<&str>) {
    match (live, config) {
        (Value::Object(live), Value::Object(config)) => {
            for (key, value) in config {
                if value.is_null() {
                    live.remove(key);
                } else if let Some(existing) = live.get_mut(key) {
                    merge(existing, value, Some(key));
                } else {
                    live.insert(key.clone(), value.clone());
                }
            }
        }
        (Value::Array(live), Value::Array(items)) => match list_keys(field, items) {
            Some(keys) => {
                for item in items {
                    let key = item_key(item, &keys);
                    match live
                        .iter_mut()
                        .find(|existing| item_matches(existing, &key))
                    {
                        Some(existing) => merge(existing, item, None),
                        None => live.push(item.clone()),
                    }
                }
            }
            None => *live = items.clone(),
        },
        (live, config) => *live = config.clone(),
    }
}

/// RFC 7386 JSON merge patch: maps merge, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else if let Some(existing) = target.get_mut(key).filter(|_| value.is_object()) {
                    merge_patch(existing, value);
                } else {
                    let mut fresh = if value.is_object() {
                        json!({})
                    } else {
                        Value::Null
                    };
                    merge_patch(&mut fresh, value);
                    target.insert(key.clone(), fresh);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    fields: FieldSet,
}

fn entries(object: &Value) -> Vec<Entry> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| Entry {
            manager: entry["manager"].as_str().unwrap_or_default().to_owned(),
            operation: entry["operation"].as_str().unwrap_or_default().to_owned(),
            api_version: entry["apiVersion"].as_str().unwrap_or_default().to_owned(),
            fields: from_fields_v1(&entry["fieldsV1"]),
        })
        .collect()
}

fn store(object: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|entry| !entry.fields.is_empty())
        .map(|entry| {
            json!({"manager": entry.manager, "operation": entry.operation,
                "apiVersion": entry.api_version, "time": TIME, "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&entry.fields)})
        })
        .collect();
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.insert("managedFields".into(), Value::Array(list));
    }
}

fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("managedFields");
    }
    object
}

/// Whether `owned` covers `path`: the leaf itself or an atomic field above it.
fn owns(owned: &FieldSet, path: &FieldPath) -> bool {
    (1..=path.len()).any(|length| owned.contains(&path[..length].to_vec()))
}

fn entry_mut<'a>(
    entries: &'a mut Vec<Entry>,
    manager: &str,
    operation: &str,
    api_version: &str,
) -> &'a mut Entry {
    let index = match entries
        .iter()
        .position(|entry| entry.manager == manager && entry.operation == operation)
    {
        Some(index) => index,
        None => {
            entries.push(Entry {
                manager: manager.to_owned(),
                operation: operation.to_owned(),
                api_version: api_version.to_owned(),
                fields: FieldSet::new(),
            });
            entries.len() - 1
        }
    };
    &mut entries[index]
}

/// A server-side apply of `config` by `manager` onto `live` (absent: a create). Returns the
/// object with its managedFields, or the conflicts as the API server words them.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
) -> Result<Value, String> {
    let mut config = without_managed_fields(config);
    if let Some(map) = config.as_object_mut() {
        map.remove("status");
    }
    let set = field_set(&config);
    let (mut object, mut entries) = match live {
        Some(live) => (without_managed_fields(live), entries(live)),
        None => (json!({}), Vec::new()),
    };
    let mut conflicts = Vec::new();
    for entry in entries
        .iter_mut()
        .filter(|entry| !(entry.manager == manager && entry.operation == "Apply"))
    {
        let taken: Vec<FieldPath> = set
            .iter()
            .filter(|path| path.last().is_some_and(|key| key != "."))
            .filter(|path| owns(&entry.fields, path))
            .filter(|path| value_at(&object, path) != value_at(&config, path))
            .cloned()
            .collect();
        for path in taken {
            conflicts.push(format!(
                "conflict with \"{}\"{}: .{}",
                entry.manager,
                if entry.operation == "Update" {
                    format!(" using {}", entry.api_version)
                } else {
                    String::new()
                },
                display(&path)
            ));
            entry
                .fields
                .retain(|owned| !owned.starts_with(&path) && !path.starts_with(owned));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(format!(
            "Apply failed with {} conflict{}: {}",
            conflicts.len(),
            if conflicts.len() == 1 { "" } else { "s" },
            conflicts.join(", ")
        ));
    }
    let previous = entries
        .iter()
        .find(|entry| entry.manager == manager && entry.operation == "Apply")
        .map(|entry| entry.fields.clone())
        .unwrap_or_default();
    for path in previous.difference(&set) {
        let kept = entries
            .iter()
            .filter(|entry| !(entry.manager == manager && entry.operation == "Apply"))
            .any(|entry| owns(&entry.fields, path));
        if !kept {
            remove_at(&mut object, path);
        }
    }
    merge(&mut object, &config, None);
    entry_mut(&mut entries, manager, "Apply", api_version).fields = set;
    store(&mut object, entries);
    Ok(object)
}

/// An update by `manager` that turned `old` (absent: a create) into `new`: the manager owns
/// what it changed.
pub fn update(old: Option<&Value>, new: Value, manager: &str, api_version: &str) -> Value {
    let mut new = without_managed_fields(&new);
    let (old, mut entries) = match old {
        Some(old) => (without_managed_fields(old), entries(old)),
        None => (json!({}), Vec::new()),
    };
    let old_set = field_set(&old);
    let new_set = field_set(&new);
    let changed: FieldSet = new_set
        .iter()
        .filter(|path| {
            !old_set.contains(*path)
                || (path.last().is_some_and(|key| key != ".")
                    && value_at(&old, path) != value_at(&new, path))
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    for entry in &mut entries {
        entry
            .fields
            .retain(|path| !changed.contains(path) && !removed.contains(path));
    }
    if !changed.is_empty() {
        entry_mut(&mut entries, manager, "Update", api_version)
            .fields
            .extend(changed);
    }
    store(&mut new, entries);
    new
}

/// `spec.template.spec.containers[name="api"].image`, as the API server names a field in a conflict.
pub fn display(path: &[String]) -> String {
    let mut text = String::new();
    for key in path {
        if let Some(field) = key.strip_prefix("f:") {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(field);
        } else if let Some(item) = key.strip_prefix("k:") {
            let fields: Map<String, Value> = serde_json::from_str(item).unwrap_or_default();
            let shown: Vec<String> = fields
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            text.push_str(&format!("[{}]", shown.join(",")));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "ml", "labels": {"app": "api"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "api", "image": image, "ports": [{"containerPort": 8080}]}]}}}})
    }

    #[test]
    fn an_apply_owns_what_it_sets_in_fields_v1() {
        let applied = apply(None, &deployment(2, "a"), "sluice", false, "apps/v1").unwrap();
        let entry = &applied["metadata"]["managedFields"][0];
        assert_eq!(entry["manager"], "sluice");
        assert_eq!(entry["operation"], "Apply");
        assert_eq!(entry["fieldsType"], "FieldsV1");
        let fields = &entry["fieldsV1"];
        assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
        assert!(fields["f:metadata"].get("f:name").is_none());
        let container =
            &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"api\"}"];
        assert_eq!(container["."], json!({}));
        assert_eq!(container["f:image"], json!({}));
        assert_eq!(
            container["f:ports"]["k:{\"containerPort\":8080}"]["f:containerPort"],
            json!({})
        );
        assert_eq!(from_fields_v1(fields), field_set(&deployment(2, "a")));
    }

    #[test]
    fn an_update_takes_the_field_and_an_apply_conflicts_unless_forced() {
        let applied = apply(None, &deployment(2, "a"), "sluice", false, "apps/v1").unwrap();
        let mut edited = applied.clone();
        merge_patch(&mut edited, &json!({"spec": {"replicas": 5}}));
        let edited = update(Some(&applied), edited, "kubectl-edit", "apps/v1");
        let managers: Vec<&Value> = edited["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| &entry["manager"])
            .collect();
        assert_eq!(managers, [&json!("sluice"), &json!("kubectl-edit")]);
        assert_eq!(
            edited["metadata"]["managedFields"][1]["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );
        let conflict = apply(
            Some(&edited),
            &deployment(2, "a"),
            "sluice",
            false,
            "apps/v1",
        )
        .unwrap_err();
        assert_eq!(
            conflict,
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas"
        );
        // The same value is shared, not a conflict.
        assert!(
            apply(
                Some(&edited),
                &deployment(5, "a"),
                "sluice",
                false,
                "apps/v1"
            )
            .is_ok()
        );
        let forced = apply(
            Some(&edited),
            &deployment(2, "a"),
            "sluice",
            true,
            "apps/v1",
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 2);
        assert_eq!(
            forced["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn an_apply_removes_what_it_no_longer_sets_unless_another_manager_owns_it() {
        let mut first = deployment(2, "a");
        first["metadata"]["labels"]["tier"] = json!("web");
        let applied = apply(None, &first, "sluice", false, "apps/v1").unwrap();
        let mut added = applied.clone();
        merge_patch(&mut added, &json!({"metadata": {"labels": {"team": "ml"}}}));
        let added = update(Some(&applied), added, "kubectl-label", "v1");
        let again = apply(
            Some(&added),
            &deployment(2, "a"),
            "sluice",
            false,
            "apps/v1",
        )
        .unwrap();
        assert_eq!(
            again["metadata"]["labels"],
            json!({"app": "api", "team": "ml"})
        );
        assert_eq!(
            value_at(&again, &["f:spec".into(), "f:replicas".into()]),
            Some(&json!(2))
        );
    }
}
