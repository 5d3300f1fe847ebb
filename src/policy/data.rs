//! Data files: parsing one `.json`/`.yaml` document and merging documents into `data` the way
//! conftest does (every file at the root, objects merged key by key, a clash of two different
//! values is an error naming both places). Pure: no IO, no Rego.

use super::error::{PolicyError, PolicyErrorKind};
use serde_json::Value;

/// Parses one data file by its extension. The document must be an object: its keys become
/// top-level names under `data`.
pub(super) fn parse_data_file(file: &str, text: &str) -> Result<Value, PolicyError> {
    let parsed: Result<Value, PolicyError> = if file.ends_with(".json") {
        serde_json::from_str(text).map_err(|error| {
            let mut policy_error = PolicyError::new(
                PolicyErrorKind::Data,
                file,
                format!("not valid JSON: {error}"),
            );
            policy_error.line = u32::try_from(error.line()).ok();
            policy_error.column = u32::try_from(error.column()).ok();
            policy_error
        })
    } else {
        serde_saphyr::from_str::<Value>(text).map_err(|error| {
            PolicyError::new(
                PolicyErrorKind::Data,
                file,
                format!("not valid YAML: {error}"),
            )
        })
    };
    match parsed? {
        Value::Object(map) => Ok(Value::Object(map)),
        Value::Null => Ok(Value::Object(Default::default())),
        other => Err(PolicyError::new(
            PolicyErrorKind::Data,
            file,
            format!(
                "the document is `{}`, not an object; data files hold an object whose keys become names under `data`",
                short(&other)
            ),
        )),
    }
}

/// Merges `incoming` (from `file`) into `target`, object by object. Returns the paths where two
/// files give different values, as errors; the first value stays.
pub fn merge_data(target: &mut Value, incoming: Value, file: &str) -> Vec<PolicyError> {
    let mut errors = Vec::new();
    merge_at(target, incoming, file, "data", &mut errors);
    errors
}

fn merge_at(
    target: &mut Value,
    incoming: Value,
    file: &str,
    path: &str,
    errors: &mut Vec<PolicyError>,
) {
    match (target, incoming) {
        (Value::Object(target_map), Value::Object(incoming_map)) => {
            for (key, value) in incoming_map {
                let child_path = format!("{path}.{key}");
                match target_map.get_mut(&key) {
                    Some(existing) => merge_at(existing, value, file, &child_path, errors),
                    None => {
                        target_map.insert(key, value);
                    }
                }
            }
        }
        (existing, incoming) if *existing == incoming => {}
        (existing, incoming) => errors.push(PolicyError::new(
            PolicyErrorKind::Data,
            file,
            format!(
                "`{path}` is `{}` here but `{}` in an earlier data file; keep one value or rename one key",
                short(&incoming),
                short(existing)
            ),
        )),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_merge_key_by_key_and_clashes_are_named() {
        let mut data = json!({});
        assert!(merge_data(&mut data, json!({"a": {"x": 1}}), "one.json").is_empty());
        assert!(merge_data(&mut data, json!({"a": {"y": 2}, "b": true}), "two.yaml").is_empty());
        assert_eq!(data, json!({"a": {"x": 1, "y": 2}, "b": true}));
        let errors = merge_data(&mut data, json!({"a": {"x": 3}}), "three.json");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "three.json");
        assert!(errors[0].message.contains("`data.a.x` is `3` here but `1`"));
    }

    #[test]
    fn data_files_parse_by_extension() {
        assert_eq!(
            parse_data_file("b.yaml", "budgets:\n  dev: small\n").unwrap(),
            json!({"budgets": {"dev": "small"}})
        );
        assert_eq!(
            parse_data_file("a.json", "{\"k\": [1]}").unwrap(),
            json!({"k": [1]})
        );
        let error = parse_data_file("a.json", "{\n\"k\": ").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.to_string().starts_with("a.json:2:"));
        assert!(parse_data_file("c.yaml", "- 1\n- 2\n").is_err());
        assert!(parse_data_file("d.yaml", "a: [\n").is_err());
    }
}
