//! The located YAML tree: parses one file with serde-saphyr into [`Node`]s that remember where
//! every key and value starts, so that later checks can point at `line:column`. Knows nothing of
//! pipelines or environments; `de.rs` turns a tree into typed values.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Spanned};
use std::fmt;

/// A 1-based position in a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// One YAML node and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub position: Position,
    pub value: NodeValue,
    /// Set when a problem with this node was reported: typed decoding skips it from then on.
    pub dropped: bool,
    /// Set on values that stand in for a missing required key while decoding goes on; the
    /// number says which stand-in is being tried.
    pub placeholder: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<Entry>),
}

/// One `key: value` pair of a mapping; the key is kept as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_position: Position,
    pub value: Node,
}

/// A YAML syntax error, located when the parser knows where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub position: Position,
    pub message: String,
}

/// Parses one YAML document into a located tree. An empty document is a `Null` node.
/// Repeated keys are kept (the caller reports them), so that one slip does not hide the rest.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.trim().is_empty() || text.lines().all(is_blank_or_comment) {
        return Ok(Node::new(Position { line: 1, column: 1 }, NodeValue::Null));
    }
    let options = serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        strict_booleans: true,
    };
    match serde_saphyr::from_str_with_options::<Spanned<RawNode>>(text, options) {
        Ok(spanned) => Ok(into_node(spanned)),
        Err(error) => Err(syntax_error(&error)),
    }
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---"
}

fn syntax_error(error: &serde_saphyr::Error) -> SyntaxError {
    let plain = error.without_snippet();
    let position = plain
        .location()
        .map(|location| Position {
            line: location.line() as u32,
            column: location.column() as u32,
        })
        .unwrap_or_default();
    let message = match plain {
        serde_saphyr::Error::MultipleDocuments { .. } => {
            "a configuration file holds one YAML document; remove the `---` separator or split the file".to_string()
        }
        _ => strip_location_suffix(&plain.to_string()),
    };
    SyntaxError { position, message }
}

/// serde-saphyr appends ` at line L, column C` (and sometimes more) to its messages; the
/// diagnostic carries the position separately, so the message keeps only the first line
/// without that suffix.
fn strip_location_suffix(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or("").trim();
    let without_suffix = match first_line.rfind(" at line ") {
        Some(index) => &first_line[..index],
        None => first_line,
    };
    let without_prefix = without_suffix
        .strip_prefix("error: ")
        .unwrap_or(without_suffix);
    let mut message = without_prefix.trim().trim_end_matches(':').to_string();
    if let Some(first) = message.get(..1) {
        let lowered = first.to_lowercase();
        message.replace_range(..1, &lowered);
    }
    message
}

fn position_of(location: &serde_saphyr::Location) -> Position {
    Position {
        line: location.line() as u32,
        column: location.column() as u32,
    }
}

fn into_node(spanned: Spanned<RawNode>) -> Node {
    let position = position_of(&spanned.referenced);
    let value = match spanned.value {
        RawNode::Null => NodeValue::Null,
        RawNode::Bool(value) => NodeValue::Bool(value),
        RawNode::Unsigned(value) => NodeValue::Unsigned(value),
        RawNode::Signed(value) => NodeValue::Signed(value),
        RawNode::Float(value) => NodeValue::Float(value),
        RawNode::String(value) => NodeValue::String(value),
        RawNode::Sequence(items) => NodeValue::Sequence(items.into_iter().map(into_node).collect()),
        RawNode::Mapping(entries) => NodeValue::Mapping(
            entries
                .into_iter()
                .map(|(key, value)| Entry {
                    key_position: position_of(&key.referenced),
                    key: key.value.0,
                    value: into_node(value),
                })
                .collect(),
        ),
    };
    Node::new(position, value)
}

/// What serde-saphyr hands us; `Spanned` around every child carries the positions.
enum RawNode {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    String(String),
    Sequence(Vec<Spanned<RawNode>>),
    Mapping(Vec<(Spanned<RawKey>, Spanned<RawNode>)>),
}

/// A mapping key as written: asking for a string keeps `on`, `1` or `true` as text.
struct RawKey(String);

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = RawKey;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<RawKey, E> {
                Ok(RawKey(value.to_string()))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<RawKey, E> {
                Ok(RawKey(value.to_string()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawKey, E> {
                Ok(RawKey(value.to_string()))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawKey, E> {
                Ok(RawKey(value.to_string()))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<RawKey, E> {
                Ok(RawKey(value.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawKey, E> {
                Ok(RawKey(String::new()))
            }
        }
        deserializer.deserialize_string(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawNodeVisitor)
    }
}

struct RawNodeVisitor;

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(deserializer)
    }
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(value))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawNode, E> {
        Ok(RawNode::Unsigned(value))
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawNode, E> {
        Ok(RawNode::Signed(value))
    }
    fn visit_u128<E: de::Error>(self, value: u128) -> Result<RawNode, E> {
        Ok(RawNode::String(value.to_string()))
    }
    fn visit_i128<E: de::Error>(self, value: i128) -> Result<RawNode, E> {
        Ok(RawNode::String(value.to_string()))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(value))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<RawNode, E> {
        Ok(RawNode::String(value.to_string()))
    }
    fn visit_string<E: de::Error>(self, value: String) -> Result<RawNode, E> {
        Ok(RawNode::String(value))
    }
    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<RawNode, E> {
        Ok(RawNode::String(String::from_utf8_lossy(value).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = sequence.next_element::<Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawNode::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut mapping: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = mapping.next_key::<Spanned<RawKey>>()? {
            let value = mapping.next_value::<Spanned<RawNode>>()?;
            entries.push((key, value));
        }
        Ok(RawNode::Mapping(entries))
    }
}

impl Node {
    pub fn new(position: Position, value: NodeValue) -> Node {
        Node {
            position,
            value,
            dropped: false,
            placeholder: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(node: &Node) -> String {
        let Position { line, column } = node.position;
        let inner = match &node.value {
            NodeValue::Null => "~".to_string(),
            NodeValue::Bool(value) => value.to_string(),
            NodeValue::Unsigned(value) => value.to_string(),
            NodeValue::Signed(value) => value.to_string(),
            NodeValue::Float(value) => format!("{value:?}"),
            NodeValue::String(value) => format!("{value:?}"),
            NodeValue::Sequence(items) => {
                let parts: Vec<String> = items.iter().map(shape).collect();
                format!("[{}]", parts.join(", "))
            }
            NodeValue::Mapping(entries) => {
                let parts: Vec<String> = entries
                    .iter()
                    .map(|entry| {
                        format!(
                            "{}@{}:{}={}",
                            entry.key,
                            entry.key_position.line,
                            entry.key_position.column,
                            shape(&entry.value)
                        )
                    })
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
        };
        format!("{inner}@{line}:{column}")
    }

    fn check(text: &str, expect: &str) {
        let shown = match parse(text) {
            Ok(node) => shape(&node),
            Err(error) => format!(
                "error {}:{}: {}",
                error.position.line, error.position.column, error.message
            ),
        };
        assert_eq!(shown, expect, "for input:\n{text}");
    }

    #[test]
    fn keys_and_values_remember_their_positions() {
        check(
            "name: ci\non:\n  push: {branches: [main]}\n",
            "{name@1:1=\"ci\"@1:7, on@2:1={push@3:3={branches@3:10=[\"main\"@3:21]@3:20}@3:9}@3:3}@1:1",
        );
    }

    #[test]
    fn plain_scalars_keep_their_types_but_keys_stay_text() {
        check(
            "on: yes\n1: 2\nt: true\nf: 1.5\nn: ~\nneg: -3\n",
            "{on@1:1=\"yes\"@1:5, 1@2:1=2@2:4, t@3:1=true@3:4, f@4:1=1.5@4:4, n@5:1=~@5:4, neg@6:1=-3@6:6}@1:1",
        );
    }

    #[test]
    fn repeated_keys_are_kept_for_the_caller_to_report() {
        check("a: 1\na: 2\n", "{a@1:1=1@1:4, a@2:1=2@2:4}@1:1");
    }

    #[test]
    fn empty_file_is_null() {
        check("", "~@1:1");
        check("# only a comment\n", "~@1:1");
    }

    #[test]
    fn syntax_error_is_located() {
        check(
            "jobs:\n  test: [unclosed\n",
            "error 2:9: unclosed bracket '['",
        );
        check(
            "a: b\n  c: d\n",
            "error 2:4: mapping values are not allowed in this context",
        );
        check(
            "a:\n\t- b\n",
            "error 2:2: tabs disallowed within this context (block indentation)",
        );
        check(
            "a: *nowhere\n",
            "error 1:4: alias references unknown anchor",
        );
        check(
            "a: 1\n---\nb: 2\n",
            "error 3:1: a configuration file holds one YAML document; remove the `---` separator or split the file",
        );
    }

    #[test]
    fn merge_keys_bring_their_entries_along() {
        check(
            "base: &base {x: 1}\nuse:\n  <<: *base\n  y: 2\n",
            "{base@1:1={x@1:14=1@1:17}@1:13, use@2:1={y@4:3=2@4:6, x@3:7=1@3:7}@3:3}@1:1",
        );
    }
}
