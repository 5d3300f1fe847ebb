//! The pure half of the drift check: the leaves a rendered manifest sets (list items by `name`
//! where they have one, else by index; lists of scalars whole), how they are named in a report
//! (`spec.template.spec.containers[name=api].image`), how a live object's value at one is read
//! (a Secret's `stringData` is read back from `data`), and which field manager owns it according
//! to the live object's `metadata.managedFields` (FieldsV1). Knows nothing of the API server.

use super::render::RELEASE_ANNOTATION;
use base64::Engine as _;
use serde_json::Value;

/// One step from an object to a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Field(String),
    /// The item of a list whose `name` is this.
    Named(String),
    Index(usize),
}

/// A field the manifest sets, and its value there.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub path: Vec<Step>,
    pub expected: Value,
}

/// Fields that name the object or change with every release without rewriting it.
fn skipped(path: &[Step], key: &str) -> bool {
    let field = |step: &Step, name: &str| matches!(step, Step::Field(field) if field == name);
    match path {
        [] => matches!(key, "apiVersion" | "kind" | "status"),
        [metadata] if field(metadata, "metadata") => matches!(
            key,
            "name" | "namespace" | "managedFields" | "resourceVersion" | "uid" | "generation"
        ),
        [metadata, annotations]
            if field(metadata, "metadata") && field(annotations, "annotations") =>
        {
            key == RELEASE_ANNOTATION
        }
        _ => false,
    }
}

/// Every leaf `manifest` sets.
pub fn leaves(manifest: &Value) -> Vec<Leaf> {
    let mut found = Vec::new();
    walk(manifest, &mut Vec::new(), &mut found);
    found
}

fn walk(value: &Value, path: &mut Vec<Step>, found: &mut Vec<Leaf>) {
    match value {
        Value::Null => {}
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                if skipped(path, key) {
                    continue;
                }
                path.push(Step::Field(key.clone()));
                walk(child, path, found);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let named = items.iter().all(|item| item["name"].is_string());
            for (index, item) in items.iter().enumerate() {
                path.push(if named {
                    Step::Named(item["name"].as_str().unwrap_or_default().to_owned())
                } else {
                    Step::Index(index)
                });
                walk(item, path, found);
                path.pop();
            }
        }
        _ => found.push(Leaf {
            path: path.clone(),
            expected: value.clone(),
        }),
    }
}

/// The value at `path` in `object`.
pub fn lookup<'a>(object: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut node = object;
    for step in path {
        node = match step {
            Step::Field(field) => node.get(field)?,
            Step::Named(name) => node
                .as_array()?
                .iter()
                .find(|item| item["name"].as_str() == Some(name))?,
            Step::Index(index) => node.as_array()?.get(*index)?,
        };
    }
    Some(node)
}

/// The value an object as the API server returns it has at `path`: a Secret's `stringData`,
/// which the server folds into `data`, is read back from `data`.
pub fn server_value(kind: &str, object: &Value, path: &[Step]) -> Option<Value> {
    if let Some(value) = lookup(object, path) {
        return Some(value.clone());
    }
    match (kind, path) {
        ("Secret", [Step::Field(field), Step::Field(key)]) if field == "stringData" => {
            let encoded = object["data"][key].as_str()?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            Some(Value::String(String::from_utf8(decoded).ok()?))
        }
        _ => None,
    }
}

/// Equal as the API server sees values: numbers by value (`1` and `1.0`).
pub fn same(left: Option<&Value>, right: Option<&Value>) -> bool {
    match (left, right) {
        (Some(Value::Number(left)), Some(Value::Number(right))) => left.as_f64() == right.as_f64(),
        _ => left == right,
    }
}

/// `spec.template.spec.containers[name=api].image`; keys that are not plain words are quoted:
/// `metadata.annotations["sluice.dev/content-hash"]`.
pub fn display(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Field(field)
                if !field.is_empty()
                    && field
                        .chars()
                        .all(|character| character.is_ascii_alphanumeric() || character == '_') =>
            {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(field);
            }
            Step::Field(field) => text.push_str(&format!("[{}]", Value::String(field.clone()))),
            Step::Named(name) => text.push_str(&format!("[name={name}]")),
            Step::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// Whether a FieldsV1 `k:{...}` key names `item`.
fn key_names(key: &str, item: &Value) -> bool {
    let Some(Value::Object(fields)) = key
        .strip_prefix("k:")
        .and_then(|json| serde_json::from_str::<Value>(json).ok())
    else {
        return false;
    };
    !fields.is_empty()
        && fields
            .iter()
            .all(|(name, value)| same(item.get(name), Some(value)))
}

/// Whether a FieldsV1 set covers `path` of `live`: the field itself, or a field above it that
/// is owned whole (an atomic list or map).
fn covers(fields: &Value, live: &Value, path: &[Step]) -> bool {
    let mut node = fields;
    let mut value = live;
    for (depth, step) in path.iter().enumerate() {
        let children = node.as_object();
        if depth > 0 && children.is_none_or(|children| children.is_empty()) {
            return true;
        }
        let Some(children) = children else {
            return false;
        };
        let next = match step {
            Step::Field(field) => {
                value = value.get(field).unwrap_or(&Value::Null);
                children.get(&format!("f:{field}"))
            }
            Step::Named(_) | Step::Index(_) => {
                let Some(item) = lookup(value, std::slice::from_ref(step)) else {
                    return false;
                };
                value = item;
                children
                    .iter()
                    .find(|(key, _)| key_names(key, item))
                    .map(|(_, child)| child)
            }
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

/// The field manager that owns `path` in `live`, other than `ours` when another one does; the
/// most recent entry wins.
pub fn owner(live: &Value, path: &[Step], ours: &str) -> Option<String> {
    let entries = live["metadata"]["managedFields"].as_array()?;
    let mut owners: Vec<(&str, &str)> = entries
        .iter()
        .filter(|entry| covers(&entry["fieldsV1"], live, path))
        .filter_map(|entry| {
            Some((
                entry["manager"].as_str()?,
                entry["time"].as_str().unwrap_or_default(),
            ))
        })
        .filter(|(manager, _)| *manager != ours)
        .collect();
    owners.sort_by_key(|(_, time)| *time);
    owners.last().map(|(manager, _)| (*manager).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "ml",
                "annotations": {"sluice.dev/release": "r1", "sluice.dev/content-hash": "abc"}},
            "spec": {"replicas": replicas, "template": {"spec": {
                "containers": [{"name": "api", "image": "a", "args": ["--port", "80"],
                    "ports": [{"containerPort": 8080}]}]}}}})
    }

    #[test]
    fn leaves_name_list_items_by_name_or_index_and_skip_identity_and_release() {
        let shown: Vec<String> = leaves(&deployment(2))
            .iter()
            .map(|leaf| format!("{}={}", display(&leaf.path), leaf.expected))
            .collect();
        assert_eq!(
            shown,
            [
                r#"metadata.annotations["sluice.dev/content-hash"]="abc""#,
                "spec.replicas=2",
                r#"spec.template.spec.containers[name=api].args=["--port","80"]"#,
                r#"spec.template.spec.containers[name=api].image="a""#,
                r#"spec.template.spec.containers[name=api].name="api""#,
                "spec.template.spec.containers[name=api].ports[0].containerPort=8080",
            ]
        );
    }

    #[test]
    fn values_are_looked_up_by_name_and_secrets_read_back_from_data() {
        let path = [
            Step::Field("spec".into()),
            Step::Field("template".into()),
            Step::Field("spec".into()),
            Step::Field("containers".into()),
            Step::Named("api".into()),
            Step::Field("image".into()),
        ];
        assert_eq!(lookup(&deployment(2), &path), Some(&json!("a")));
        let secret = json!({"data": {"token": "c2VjcmV0"}});
        let token = [
            Step::Field("stringData".into()),
            Step::Field("token".into()),
        ];
        assert_eq!(
            server_value("Secret", &secret, &token),
            Some(json!("secret"))
        );
        assert_eq!(server_value("ConfigMap", &secret, &token), None);
        assert!(same(Some(&json!(1)), Some(&json!(1.0))));
    }

    #[test]
    fn the_owner_is_read_from_fields_v1_by_field_list_key_or_atomic_parent() {
        let mut live = deployment(5);
        live["metadata"]["managedFields"] = json!([
            {"manager": "sluice", "operation": "Apply", "time": "2026-01-01T00:00:00Z",
             "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                 "k:{\"name\":\"api\"}": {".": {}, "f:image": {}, "f:args": {}}}}}}}},
            {"manager": "kubectl-edit", "operation": "Update", "time": "2026-01-02T00:00:00Z",
             "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                 "k:{\"name\":\"api\"}": {"f:ports": {}}}}}}}},
        ]);
        let replicas = [Step::Field("spec".into()), Step::Field("replicas".into())];
        assert_eq!(
            owner(&live, &replicas, "sluice").as_deref(),
            Some("kubectl-edit")
        );
        let container = |rest: &[Step]| {
            let mut path = vec![
                Step::Field("spec".into()),
                Step::Field("template".into()),
                Step::Field("spec".into()),
                Step::Field("containers".into()),
                Step::Named("api".into()),
            ];
            path.extend_from_slice(rest);
            path
        };
        let port = container(&[
            Step::Field("ports".into()),
            Step::Index(0),
            Step::Field("containerPort".into()),
        ]);
        assert_eq!(
            owner(&live, &port, "sluice").as_deref(),
            Some("kubectl-edit")
        );
        assert_eq!(
            owner(&live, &container(&[Step::Field("image".into())]), "sluice"),
            None
        );
    }
}
