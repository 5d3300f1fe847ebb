//! Where a finding points: a file and line it carries itself (`file` or `path`, with an optional
//! `line`, as manifest and DAG policies report), or the Terraform resource address it names, in
//! a `resource`/`address` field or in its message text (`aws_s3_bucket.models`,
//! `module.storage.aws_s3_bucket.models["a"]`). Pure over a finding's metadata and message;
//! turning an address into a file and line needs the source files (`terraform::locate`).

use super::finding::Severity;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A finding placed at a line of a file in the repository (the `finding_locations` job output).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingLocation {
    /// Relative to the repository root, `/`-separated.
    pub path: String,
    /// From 1.
    pub line: u32,
    pub rule: String,
    pub message: String,
    pub severity: Severity,
}

/// The file and line a finding names itself: `file` or `path` (a string), and `line` (a
/// positive number or a string of digits; line 1 when absent). A leading `./` is dropped.
pub fn file_position(metadata: &Map<String, Value>) -> Option<(String, u32)> {
    let path = ["file", "path", "filename"]
        .iter()
        .find_map(|key| metadata.get(*key).and_then(Value::as_str))?
        .trim();
    let path = path.strip_prefix("./").unwrap_or(path);
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|part| part == "..") {
        return None;
    }
    let line = match metadata.get("line") {
        Some(Value::Number(number)) => number.as_u64().and_then(|line| u32::try_from(line).ok()),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    }
    .filter(|line| *line > 0)
    .unwrap_or(1);
    Some((path.to_owned(), line))
}

/// A Terraform resource address, split into what finding its block needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceAddress {
    /// Module call names from the root, outermost first (`module.a.module.b.` → `["a", "b"]`).
    pub modules: Vec<String>,
    /// `resource` or `data`.
    pub mode: &'static str,
    pub kind: String,
    pub name: String,
}

/// The resource address a finding is about: from `resource`, `address` or `resource_address`
/// (a string, or an object with an `address`, such as a plan's resource change), else the first
/// address in the message text.
pub fn resource_address(metadata: &Map<String, Value>, message: &str) -> Option<ResourceAddress> {
    for key in ["resource", "address", "resource_address"] {
        let text = match metadata.get(key) {
            Some(Value::String(text)) => Some(text.as_str()),
            Some(Value::Object(object)) => object.get("address").and_then(Value::as_str),
            _ => None,
        };
        if let Some(address) = text.and_then(|text| parse_address(text.trim())) {
            return Some(address);
        }
    }
    address_in_text(message)
}

/// The first Terraform resource address in free text.
pub fn address_in_text(text: &str) -> Option<ResourceAddress> {
    let is_address_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']' | '"' | '*');
    // Candidates are runs of address characters; quotes around a whole address (`"a.b"`) and
    // sentence punctuation at its end are not part of it.
    let mut start = None;
    let mut candidates = Vec::new();
    for (index, c) in text.char_indices() {
        match (is_address_char(c), start) {
            (true, None) => start = Some(index),
            (false, Some(begin)) => {
                candidates.push(&text[begin..index]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(begin) = start {
        candidates.push(&text[begin..]);
    }
    candidates.into_iter().find_map(|candidate| {
        let candidate = candidate.trim_matches(|c| c == '"' || c == '.');
        parse_address(candidate)
    })
}

/// Parses `[module.NAME[INDEX].]…[data.]TYPE.NAME[INDEX]`. The type must look like a provider's
/// (`aws_s3_bucket`, `random_id`: a prefix, an underscore, more), which keeps words such as
/// `e.g` or file names like `main.tf` from being taken for addresses.
pub fn parse_address(text: &str) -> Option<ResourceAddress> {
    let parts = split_address(text)?;
    let mut modules = Vec::new();
    let mut index = 0;
    while index + 1 < parts.len() && parts[index] == "module" {
        modules.push(parts[index + 1].to_owned());
        index += 2;
    }
    let mut mode = "resource";
    if parts.len() - index == 3 && parts[index] == "data" {
        mode = "data";
        index += 1;
    }
    if parts.len() - index != 2 {
        return None;
    }
    let (kind, name) = (parts[index], parts[index + 1]);
    let identifier = |word: &str| {
        word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let provider_type = kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && kind.trim_end_matches('_').contains('_');
    if !provider_type || !identifier(name) || modules.iter().any(|module| !identifier(module)) {
        return None;
    }
    Some(ResourceAddress {
        modules,
        mode,
        kind: kind.to_owned(),
        name: name.to_owned(),
    })
}

/// Splits on dots outside brackets and drops each part's instance key (`name["a.b"]` → `name`).
fn split_address(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut part_start = 0;
    let mut key_start: Option<usize> = None;
    for (index, c) in text.char_indices() {
        match c {
            '[' => {
                if depth == 0 {
                    key_start = Some(index);
                }
                depth += 1;
            }
            ']' => depth = depth.checked_sub(1)?,
            '.' if depth == 0 => {
                parts.push(&text[part_start..key_start.take().unwrap_or(index)]);
                part_start = index + 1;
            }
            _ if depth == 0 && key_start.is_some() => return None,
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    parts.push(&text[part_start..key_start.unwrap_or(text.len())]);
    if parts.iter().any(|part| part.is_empty()) {
        return None;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(text: &str, expect: Option<(&[&str], &'static str, &str, &str)>) {
        let found = address_in_text(text);
        let expect = expect.map(|(modules, mode, kind, name)| ResourceAddress {
            modules: modules.iter().map(|module| module.to_string()).collect(),
            mode,
            kind: kind.to_owned(),
            name: name.to_owned(),
        });
        assert_eq!(found, expect, "{text:?}");
    }

    #[test]
    fn addresses_are_found_in_messages() {
        check(
            "aws_s3_bucket.models must not be public",
            Some((&[], "resource", "aws_s3_bucket", "models")),
        );
        check(
            "bucket `aws_s3_bucket.models` has no tags.",
            Some((&[], "resource", "aws_s3_bucket", "models")),
        );
        check(
            "module.storage.aws_s3_bucket.models[\"eu\"] is public",
            Some((&["storage"], "resource", "aws_s3_bucket", "models")),
        );
        check(
            "module.a[0].module.b.data.aws_iam_policy_document.read: too wide",
            Some((&["a", "b"], "data", "aws_iam_policy_document", "read")),
        );
        check(
            "deleting google_storage_bucket.raw-data is not allowed",
            Some((&[], "resource", "google_storage_bucket", "raw-data")),
        );
        check(
            "resource \"aws_s3_bucket.logs\".",
            Some((&[], "resource", "aws_s3_bucket", "logs")),
        );
        check("see main.tf, e.g. the bucket", None);
        check("version 1.2.3 is too old", None);
        check("no address here", None);
        check("Image.tag latest is not pinned", None);
    }

    #[test]
    fn a_structured_address_wins_over_the_message() {
        let metadata = json!({"resource": "aws_s3_bucket.models"});
        let found = resource_address(
            metadata.as_object().unwrap(),
            "aws_s3_bucket.other is public",
        )
        .unwrap();
        assert_eq!(found.name, "models");
        let metadata =
            json!({"resource": {"address": "module.m.random_id.suffix", "type": "random_id"}});
        let found = resource_address(metadata.as_object().unwrap(), "").unwrap();
        assert_eq!(
            (found.modules, found.kind.as_str(), found.name.as_str()),
            (vec!["m".to_owned()], "random_id", "suffix")
        );
        let metadata = json!({"address": "not an address"});
        assert_eq!(
            resource_address(metadata.as_object().unwrap(), "aws_instance.web")
                .unwrap()
                .kind,
            "aws_instance"
        );
    }

    #[test]
    fn file_positions_come_from_file_or_path_and_line() {
        let position = |value: serde_json::Value| file_position(value.as_object().unwrap());
        assert_eq!(
            position(json!({"file": "k8s/serving.yaml", "line": 12})),
            Some(("k8s/serving.yaml".to_owned(), 12))
        );
        assert_eq!(
            position(json!({"path": "./dags/train.py", "line": "7"})),
            Some(("dags/train.py".to_owned(), 7))
        );
        assert_eq!(
            position(json!({"file": "dags/train.py"})),
            Some(("dags/train.py".to_owned(), 1))
        );
        assert_eq!(
            position(json!({"file": "dags/train.py", "line": 0})),
            Some(("dags/train.py".to_owned(), 1))
        );
        assert_eq!(position(json!({"file": "/etc/passwd", "line": 1})), None);
        assert_eq!(position(json!({"file": "../outside.tf"})), None);
        assert_eq!(position(json!({"line": 3})), None);
    }
}
