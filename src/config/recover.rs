//! Typed decoding that does not stop at the first problem. serde reports one error and gives up;
//! this module records it with its place, sets the offending node aside (or stands in a value
//! for a missing required key) and decodes again, until the value decodes or nothing more can
//! be learned. Knows no schema: it works for any `DeserializeOwned` type.

use crate::config::de::{DecodeError, describe_node};
use crate::config::located::{PathPart, Spot, find, node_at, node_at_mut, parts_of};
use crate::config::yaml::{Entry, Node, NodeValue, Position};
use serde::de::DeserializeOwned;

/// One problem found while decoding, before it is worded for a particular kind of file.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The node the problem is about; for keys (unknown, missing, repeated), the mapping
    /// that holds them.
    pub parts: Vec<PathPart>,
    pub position: Position,
    pub kind: ProblemKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProblemKind {
    UnknownKey {
        key: String,
        valid_keys: &'static [&'static str],
    },
    MissingKey {
        key: &'static str,
    },
    RepeatedKey {
        key: String,
        first: Position,
    },
    WrongType {
        expected: String,
        found: String,
    },
    WrongValue {
        expected: String,
        found: String,
    },
    /// A value matched none of the shapes of an `untagged` enum; `node` is the value, so that
    /// the wording layer can look closer.
    NoShapeMatched {
        type_name: String,
        found: String,
        node: Box<Node>,
    },
    Other(String),
}

/// Values tried, in order, for a missing required key so that decoding can continue.
fn placeholder_value(attempt: usize) -> Option<NodeValue> {
    match attempt {
        0 => Some(NodeValue::String(String::new())),
        1 => Some(NodeValue::Mapping(Vec::new())),
        2 => Some(NodeValue::Sequence(Vec::new())),
        _ => None,
    }
}

/// More rounds than any real file needs; each round removes or changes a node, so the limit
/// only guards against a mistake in this module.
const ROUND_LIMIT: usize = 10_000;

/// Decodes `tree` as a `T`, collecting every problem. The value is `None` when the file could
/// not be decoded at all (for example, a list where a mapping belongs at the top); otherwise
/// it is what remains once the problems are set aside, so that later checks still run.
pub fn decode<T: DeserializeOwned>(tree: &mut Node) -> (Option<T>, Vec<Problem>) {
    let mut problems = set_aside_repeated_keys(tree, &mut Vec::new());
    // Paths of values already reported and set aside: a later "missing key" there is no news.
    let mut reported_paths: Vec<Vec<PathPart>> = Vec::new();
    for _ in 0..ROUND_LIMIT {
        let error = match serde_path_to_error::deserialize::<_, T>(&*tree) {
            Ok(value) => return (Some(value), problems),
            Err(error) => error,
        };
        let spot = find(tree, &serde_parts(error.path()));
        let error = error.into_inner();
        if let Some(depth) = placeholder_depth(tree, &spot.index_path) {
            if !try_next_placeholder(tree, &spot.index_path[..=depth], &mut reported_paths) {
                return (None, problems);
            }
            continue;
        }
        match error {
            DecodeError::UnknownKey { key, valid_keys }
                if spot.parts.last() == Some(&PathPart::Key(key.clone())) =>
            {
                problems.push(Problem {
                    parts: spot.parts[..spot.parts.len() - 1].to_vec(),
                    position: spot.key_or_value_position(),
                    kind: ProblemKind::UnknownKey { key, valid_keys },
                });
                node_at_mut(tree, &spot.index_path).dropped = true;
            }
            DecodeError::MissingKey { key } => {
                let mut missing_path = spot.parts.clone();
                missing_path.push(PathPart::Key(key.to_string()));
                if !reported_paths.contains(&missing_path) {
                    problems.push(Problem {
                        parts: spot.parts.clone(),
                        position: spot.key_or_value_position(),
                        kind: ProblemKind::MissingKey { key },
                    });
                }
                if !insert_placeholder(tree, &spot, key) {
                    return (None, problems);
                }
            }
            other => {
                let node = node_at(tree, &spot.index_path);
                problems.push(Problem {
                    parts: spot.parts.clone(),
                    position: spot.position(),
                    kind: problem_kind(other, node),
                });
                if spot.index_path.is_empty() {
                    return (None, problems);
                }
                node_at_mut(tree, &spot.index_path).dropped = true;
                reported_paths.push(spot.parts.clone());
            }
        }
    }
    (None, problems)
}

fn problem_kind(error: DecodeError, node: &Node) -> ProblemKind {
    match error {
        DecodeError::WrongType { expected, found } => ProblemKind::WrongType { expected, found },
        DecodeError::WrongValue { expected, found } => ProblemKind::WrongValue { expected, found },
        DecodeError::UnknownKey { key, .. } => ProblemKind::Other(format!("unknown key `{key}`")),
        DecodeError::MissingKey { key } => {
            ProblemKind::Other(format!("missing required key `{key}`"))
        }
        DecodeError::Other(message) => {
            match message.strip_prefix("data did not match any variant of untagged enum ") {
                Some(type_name) => ProblemKind::NoShapeMatched {
                    type_name: type_name.trim().to_string(),
                    found: describe_node(node),
                    node: Box::new(node.clone()),
                },
                None => ProblemKind::Other(message),
            }
        }
    }
}

/// serde_path_to_error's path in our terms; enum variant names are not part of the file.
fn serde_parts(path: &serde_path_to_error::Path) -> Vec<PathPart> {
    let mut parts = Vec::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Map { key } => parts.push(PathPart::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => parts.push(PathPart::Index(*index)),
            serde_path_to_error::Segment::Enum { .. } => {}
            serde_path_to_error::Segment::Unknown => break,
        }
    }
    parts
}

/// How deep along `index_path` the first stand-in value sits, if any.
fn placeholder_depth(tree: &Node, index_path: &[usize]) -> Option<usize> {
    (0..index_path.len()).find(|depth| node_at(tree, &index_path[..=*depth]).placeholder.is_some())
}

fn insert_placeholder(tree: &mut Node, spot: &Spot, key: &'static str) -> bool {
    let parent = node_at_mut(tree, &spot.index_path);
    let parent_position = parent.position;
    let NodeValue::Mapping(entries) = &mut parent.value else {
        return false;
    };
    let Some(value) = placeholder_value(0) else {
        return false;
    };
    let mut stand_in = Node::new(parent_position, value);
    stand_in.placeholder = Some(0);
    entries.push(Entry {
        key: key.to_string(),
        key_position: parent_position,
        value: stand_in,
    });
    true
}

/// Swaps the stand-in at `index_path` for the next candidate; when none is left, sets aside the
/// mapping that lacked the key (its problem is already reported). False when that mapping is the
/// whole file and nothing more can be decoded.
fn try_next_placeholder(
    tree: &mut Node,
    index_path: &[usize],
    reported_paths: &mut Vec<Vec<PathPart>>,
) -> bool {
    let stand_in = node_at_mut(tree, index_path);
    let attempt = stand_in.placeholder.unwrap_or(0) + 1;
    if let Some(value) = placeholder_value(attempt) {
        stand_in.value = value;
        stand_in.placeholder = Some(attempt);
        return true;
    }
    let parent_path = &index_path[..index_path.len() - 1];
    if parent_path.is_empty() {
        return false;
    }
    reported_paths.push(parts_of(tree, parent_path));
    node_at_mut(tree, parent_path).dropped = true;
    true
}

/// YAML forbids repeating a key in one mapping; we report each repeat and keep the first.
fn set_aside_repeated_keys(node: &mut Node, parts: &mut Vec<PathPart>) -> Vec<Problem> {
    let mut problems = Vec::new();
    match &mut node.value {
        NodeValue::Mapping(entries) => {
            for index in 0..entries.len() {
                let first = entries[..index]
                    .iter()
                    .find(|earlier| !earlier.value.dropped && earlier.key == entries[index].key)
                    .map(|earlier| earlier.key_position);
                if let Some(first) = first {
                    problems.push(Problem {
                        parts: parts.clone(),
                        position: entries[index].key_position,
                        kind: ProblemKind::RepeatedKey {
                            key: entries[index].key.clone(),
                            first,
                        },
                    });
                    entries[index].value.dropped = true;
                    continue;
                }
                parts.push(PathPart::Key(entries[index].key.clone()));
                problems.extend(set_aside_repeated_keys(&mut entries[index].value, parts));
                parts.pop();
            }
        }
        NodeValue::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                parts.push(PathPart::Index(index));
                problems.extend(set_aside_repeated_keys(item, parts));
                parts.pop();
            }
        }
        _ => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::located::DottedPath;
    use crate::config::yaml::parse;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        inner: Vec<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        id: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn check(text: &str, expect_decoded: bool, expect: &[&str]) {
        let mut tree = parse(text).expect("test YAML parses");
        let (value, mut problems) = decode::<Outer>(&mut tree);
        problems.sort_by_key(|problem| problem.position);
        let shown: Vec<String> = problems
            .iter()
            .map(|problem| {
                let kind = match &problem.kind {
                    ProblemKind::UnknownKey { key, .. } => format!("unknown {key}"),
                    ProblemKind::MissingKey { key } => format!("missing {key}"),
                    ProblemKind::RepeatedKey { key, first } => {
                        format!("repeated {key} first {}", first.line)
                    }
                    ProblemKind::WrongType { expected, found } => {
                        format!("type: expected {expected}, found {found}")
                    }
                    other => format!("{other:?}"),
                };
                format!(
                    "{}:{} [{}] {kind}",
                    problem.position.line,
                    problem.position.column,
                    DottedPath(&problem.parts)
                )
            })
            .collect();
        assert_eq!(shown, expect, "for input:\n{text}");
        assert_eq!(
            value.is_some(),
            expect_decoded,
            "decoded? for input:\n{text}"
        );
    }

    #[test]
    fn clean_input_has_no_problems() {
        check("name: a\ninner:\n  - id: x\n", true, &[]);
    }

    #[test]
    fn every_unknown_key_is_reported_at_the_key() {
        check(
            "name: a\nnmae: b\ninner:\n  - id: x\n    tgas: [y]\n  - id: z\n    idd: 1\n",
            true,
            &[
                "2:1 [] unknown nmae",
                "5:5 [inner[0]] unknown tgas",
                "7:5 [inner[1]] unknown idd",
            ],
        );
    }

    #[test]
    fn wrong_types_are_set_aside_and_decoding_goes_on() {
        check(
            "name: a\ncount: many\ninner:\n  - id: x\n    tags: {a: 1}\n  - id: y\n    bad: 1\n",
            true,
            &[
                "2:8 [count] type: expected a whole number, 0 or more, found the string `many`",
                "5:11 [inner[0].tags] type: expected a list, found a mapping",
                "7:5 [inner[1]] unknown bad",
            ],
        );
    }

    #[test]
    fn missing_required_keys_are_reported_once_at_their_parent() {
        check(
            "count: 1\ninner:\n  - tags: [a]\n  - id: b\n",
            true,
            &["1:1 [] missing name", "3:5 [inner[0]] missing id"],
        );
    }

    #[test]
    fn a_required_value_of_the_wrong_type_is_not_also_missing() {
        check(
            "name: [a]\ninner:\n  - id: {x: 1}\n",
            true,
            &[
                "1:7 [name] type: expected a string, found a list",
                "3:9 [inner[0].id] type: expected a string, found a mapping",
            ],
        );
    }

    #[test]
    fn repeated_keys_are_reported_and_the_first_kept() {
        check(
            "name: a\nname: b\n",
            true,
            &["2:1 [] repeated name first 1"],
        );
    }

    #[test]
    fn a_list_at_the_top_cannot_be_decoded() {
        check(
            "- a\n",
            false,
            &["1:1 [] type: expected a mapping, found a list"],
        );
    }

    #[test]
    fn numbers_and_booleans_are_accepted_as_strings() {
        check("name: 8080\ninner:\n  - id: true\n", true, &[]);
    }
}
