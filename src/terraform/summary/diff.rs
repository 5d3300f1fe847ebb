//! The attribute diff of one resource change: walks `before` and `after` side by side with the
//! markers Terraform writes beside them (`after_unknown`, `before_sensitive`, `after_sensitive`,
//! nested structures mirroring the values, `true` where a value is unknown or sensitive) and
//! lists every leaf that differs. Knows nothing of addresses, actions or rendering.

use super::{AttributeChange, Shown};
use serde_json::Value;
use std::collections::BTreeSet;

/// The markers in force at one point of the walk: the matching sub-structure of each marker
/// document, or `Null` where the document says nothing there.
#[derive(Clone, Copy)]
struct Markers<'plan> {
    after_unknown: &'plan Value,
    before_sensitive: &'plan Value,
    after_sensitive: &'plan Value,
}

impl<'plan> Markers<'plan> {
    fn child(&self, step: &Step) -> Markers<'plan> {
        Markers {
            after_unknown: step.of(self.after_unknown),
            before_sensitive: step.of(self.before_sensitive),
            after_sensitive: step.of(self.after_sensitive),
        }
    }
}

enum Step {
    Key(String),
    Index(usize),
}

impl Step {
    fn of<'plan>(&self, value: &'plan Value) -> &'plan Value {
        let child = match (self, value) {
            (Step::Key(key), Value::Object(map)) => map.get(key),
            (Step::Index(index), Value::Array(items)) => items.get(*index),
            _ => None,
        };
        child.unwrap_or(&Value::Null)
    }
}

/// Every changed leaf attribute of a `change` object, in a stable order (keys sorted, list
/// items by index).
pub(super) fn attribute_changes(change: &Value) -> Vec<AttributeChange> {
    let field = |name: &str| change.get(name).unwrap_or(&Value::Null);
    let markers = Markers {
        after_unknown: field("after_unknown"),
        before_sensitive: field("before_sensitive"),
        after_sensitive: field("after_sensitive"),
    };
    let replace_paths: BTreeSet<String> = field("replace_paths")
        .as_array()
        .map(|paths| paths.iter().map(path_of_replace_path).collect())
        .unwrap_or_default();
    let mut changes = Vec::new();
    walk(
        String::new(),
        field("before"),
        field("after"),
        markers,
        &mut changes,
    );
    for attribute in &mut changes {
        attribute.forces_replacement = replace_paths.iter().any(|replace_path| {
            attribute.path == *replace_path
                || attribute.path.starts_with(&format!("{replace_path}."))
                || attribute.path.starts_with(&format!("{replace_path}["))
        });
    }
    changes
}

fn walk(
    path: String,
    before: &Value,
    after: &Value,
    markers: Markers<'_>,
    changes: &mut Vec<AttributeChange>,
) {
    let after_unknown = markers.after_unknown == &Value::Bool(true);
    let before_sensitive = markers.before_sensitive == &Value::Bool(true);
    let after_sensitive = markers.after_sensitive == &Value::Bool(true);
    let shown_before = || {
        (!before.is_null()).then(|| {
            if before_sensitive {
                Shown::Sensitive
            } else {
                Shown::Value(before.clone())
            }
        })
    };
    if before_sensitive || after_sensitive {
        // Terraform masks a sensitive value even while it is unknown.
        if after_unknown || before != after {
            let shown_after = if after_sensitive && (after_unknown || !after.is_null()) {
                Some(Shown::Sensitive)
            } else if after_unknown {
                Some(Shown::KnownAfterApply)
            } else {
                (!after.is_null()).then(|| Shown::Value(after.clone()))
            };
            changes.push(leaf(path, shown_before(), shown_after));
        }
        return;
    }
    if after_unknown {
        changes.push(leaf(path, shown_before(), Some(Shown::KnownAfterApply)));
        return;
    }
    match (before, after) {
        (Value::Object(_) | Value::Null, Value::Object(_) | Value::Null)
            if before.is_object() || after.is_object() || markers.after_unknown.is_object() =>
        {
            let mut keys = BTreeSet::new();
            for document in [before, after, markers.after_unknown] {
                if let Value::Object(map) = document {
                    keys.extend(map.keys().cloned());
                }
            }
            for key in keys {
                let child_path = join_key(&path, &key);
                let step = Step::Key(key);
                walk(
                    child_path,
                    step.of(before),
                    step.of(after),
                    markers.child(&step),
                    changes,
                );
            }
        }
        (Value::Array(_) | Value::Null, Value::Array(_) | Value::Null)
            if before.is_array() || after.is_array() || markers.after_unknown.is_array() =>
        {
            let length_of = |value: &Value| value.as_array().map_or(0, Vec::len);
            let length = length_of(before)
                .max(length_of(after))
                .max(length_of(markers.after_unknown));
            for index in 0..length {
                let step = Step::Index(index);
                walk(
                    format!("{path}[{index}]"),
                    step.of(before),
                    step.of(after),
                    markers.child(&step),
                    changes,
                );
            }
        }
        _ => {
            if before != after && !is_empty_container_pair(before, after) {
                let shown_after = (!after.is_null()).then(|| Shown::Value(after.clone()));
                changes.push(leaf(path, shown_before(), shown_after));
            }
        }
    }
}

/// `null` and `[]` or `{}` mean the same to a reader: nothing set.
fn is_empty_container_pair(before: &Value, after: &Value) -> bool {
    let empty = |value: &Value| match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    };
    empty(before) && empty(after)
}

fn leaf(path: String, before: Option<Shown>, after: Option<Shown>) -> AttributeChange {
    let path = if path.is_empty() {
        "(all attributes)".to_owned()
    } else {
        path
    };
    AttributeChange {
        path,
        before,
        after,
        forces_replacement: false,
    }
}

fn join_key(path: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && key
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "_-".contains(character));
    match (plain, path.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{path}.{key}"),
        (false, _) => format!("{path}[{}]", Value::String(key.to_owned())),
    }
}

/// `["ingress", 0, "cidr_blocks"]` → `ingress[0].cidr_blocks`.
fn path_of_replace_path(steps: &Value) -> String {
    let mut path = String::new();
    for step in steps.as_array().map(Vec::as_slice).unwrap_or_default() {
        match step {
            Value::Number(index) => path.push_str(&format!("[{index}]")),
            Value::String(key) => path = join_key(&path, key),
            _ => {}
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(change: Value, expect: &[(&str, Option<Shown>, Option<Shown>)]) {
        let changes = attribute_changes(&change);
        let actual: Vec<(&str, Option<Shown>, Option<Shown>)> = changes
            .iter()
            .map(|change| {
                (
                    change.path.as_str(),
                    change.before.clone(),
                    change.after.clone(),
                )
            })
            .collect();
        assert_eq!(actual, expect, "{change}");
    }

    fn value(value: Value) -> Option<Shown> {
        Some(Shown::Value(value))
    }

    #[test]
    fn changed_leaves_are_listed_by_path() {
        check(
            json!({"before": {"name": "a", "size": 1, "tags": {"owner": "x"}},
                   "after": {"name": "a", "size": 2, "tags": {"owner": "y", "team": "ml"}}}),
            &[
                ("size", value(json!(1)), value(json!(2))),
                ("tags.owner", value(json!("x")), value(json!("y"))),
                ("tags.team", None, value(json!("ml"))),
            ],
        );
    }

    #[test]
    fn created_attributes_skip_nulls_and_empty_lists() {
        check(
            json!({"before": null, "after": {"a": null, "b": [], "c": ["x"], "d": {"k": 1}}}),
            &[
                ("c[0]", None, value(json!("x"))),
                ("d.k", None, value(json!(1))),
            ],
        );
    }

    #[test]
    fn unknown_values_are_known_after_apply() {
        check(
            json!({"before": null, "after": {"name": "a"},
                   "after_unknown": {"id": true, "name": false, "ports": [false, true]}}),
            &[
                ("id", None, Some(Shown::KnownAfterApply)),
                ("name", None, value(json!("a"))),
                ("ports[1]", None, Some(Shown::KnownAfterApply)),
            ],
        );
        check(
            json!({"before": {"arn": "old"}, "after": {}, "after_unknown": {"arn": true}}),
            &[("arn", value(json!("old")), Some(Shown::KnownAfterApply))],
        );
    }

    #[test]
    fn sensitive_values_are_masked_on_each_side_and_unchanged_ones_hidden() {
        check(
            json!({"before": {"password": "hunter2", "token": "same", "user": "a"},
                   "after": {"password": "swordfish", "token": "same", "user": "a"},
                   "before_sensitive": {"password": true, "token": true},
                   "after_sensitive": {"password": true, "token": true}}),
            &[("password", Some(Shown::Sensitive), Some(Shown::Sensitive))],
        );
        check(
            json!({"before": null, "after": {"config": {"secret": "s", "plain": "p"}},
                   "after_sensitive": {"config": {"secret": true}}}),
            &[
                ("config.plain", None, value(json!("p"))),
                ("config.secret", None, Some(Shown::Sensitive)),
            ],
        );
        check(
            json!({"before": {"key": "k"}, "after": {"key": "k2"},
                   "before_sensitive": false, "after_sensitive": true}),
            &[(
                "(all attributes)",
                value(json!({"key": "k"})),
                Some(Shown::Sensitive),
            )],
        );
    }

    #[test]
    fn odd_keys_are_quoted_and_replace_paths_marked() {
        let changes = attribute_changes(&json!({
            "before": {"ami": "a", "tags": {"kubernetes.io/role": "x"}},
            "after": {"ami": "b", "tags": {"kubernetes.io/role": "y"}},
            "replace_paths": [["ami"]],
        }));
        assert_eq!(changes[0].path, "ami");
        assert!(changes[0].forces_replacement);
        assert_eq!(changes[1].path, "tags[\"kubernetes.io/role\"]");
        assert!(!changes[1].forces_replacement);
    }
}
