//! Paths into the located YAML tree and finding where they point. A path names mapping keys and
//! list positions as a typed value sees them (dropped nodes skipped); what comes back names list
//! positions as the file has them, so messages count steps the way the author does.

use crate::config::yaml::{Node, NodeValue, Position};
use std::fmt;

/// One step of a path: a mapping key or a 0-based list position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPart {
    Key(String),
    Index(usize),
}

impl From<&str> for PathPart {
    fn from(key: &str) -> PathPart {
        PathPart::Key(key.to_string())
    }
}

impl From<&String> for PathPart {
    fn from(key: &String) -> PathPart {
        PathPart::Key(key.clone())
    }
}

impl From<usize> for PathPart {
    fn from(index: usize) -> PathPart {
        PathPart::Index(index)
    }
}

/// `on.push.branches[2]`, the way a GitHub Actions user writes a location.
pub struct DottedPath<'a>(pub &'a [PathPart]);

impl fmt::Display for DottedPath<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, part) in self.0.iter().enumerate() {
            match part {
                PathPart::Key(key) if position == 0 => write!(formatter, "{key}")?,
                PathPart::Key(key) => write!(formatter, ".{key}")?,
                PathPart::Index(index) => write!(formatter, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Where a path points in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spot {
    /// The path with list positions as written in the file.
    pub parts: Vec<PathPart>,
    /// Positions of the vec entries walked, from the root: how to reach the node again.
    pub index_path: Vec<usize>,
    /// Where the value starts.
    pub value_position: Position,
    /// Where the key that holds the value starts, when the last step was a mapping key.
    pub key_position: Option<Position>,
    /// Whether the value starts on the key's own line (`needs: [a]`, not a block below it).
    pub value_on_key_line: bool,
}

impl Spot {
    /// The best place to point at for a problem with the value as a whole: the value itself
    /// when it sits beside its key, the key when the value is a block below it.
    pub fn position(&self) -> Position {
        match self.key_position {
            Some(key_position) if !self.value_on_key_line => key_position,
            _ => self.value_position,
        }
    }

    /// The key when there is one, else the value.
    pub fn key_or_value_position(&self) -> Position {
        self.key_position.unwrap_or(self.value_position)
    }
}

/// Follows `path` as far as the tree allows; a path that goes further than the tree (a single
/// `needs: build` asked for `needs[0]`) stops at the deepest node that exists.
pub fn find(tree: &Node, path: &[PathPart]) -> Spot {
    let mut node = tree;
    let mut spot = Spot {
        parts: Vec::new(),
        index_path: Vec::new(),
        value_position: tree.position,
        key_position: None,
        value_on_key_line: false,
    };
    for part in path {
        let next = match (part, &node.value) {
            (PathPart::Key(key), NodeValue::Mapping(entries)) => entries
                .iter()
                .enumerate()
                .find(|(_, entry)| !entry.value.dropped && &entry.key == key)
                .map(|(index, entry)| {
                    (
                        index,
                        PathPart::Key(key.clone()),
                        Some(entry.key_position),
                        &entry.value,
                    )
                }),
            (PathPart::Index(wanted), NodeValue::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter(|(_, item)| !item.dropped)
                .nth(*wanted)
                .map(|(index, item)| (index, PathPart::Index(index), None, item)),
            _ => None,
        };
        let Some((index, written_part, key_position, child)) = next else {
            break;
        };
        spot.parts.push(written_part);
        spot.index_path.push(index);
        spot.value_position = child.position;
        spot.key_position = key_position;
        spot.value_on_key_line =
            key_position.is_some_and(|key_position| key_position.line == child.position.line);
        node = child;
    }
    spot
}

/// The node reached by the vec positions of [`Spot::index_path`].
pub fn node_at<'a>(tree: &'a Node, index_path: &[usize]) -> &'a Node {
    let mut node = tree;
    for index in index_path {
        node = match &node.value {
            NodeValue::Mapping(entries) => &entries[*index].value,
            NodeValue::Sequence(items) => &items[*index],
            _ => return node,
        };
    }
    node
}

pub fn node_at_mut<'a>(tree: &'a mut Node, index_path: &[usize]) -> &'a mut Node {
    let mut node = tree;
    for index in index_path {
        let is_collection = matches!(node.value, NodeValue::Mapping(_) | NodeValue::Sequence(_));
        if !is_collection {
            break;
        }
        node = match &mut node.value {
            NodeValue::Mapping(entries) => &mut entries[*index].value,
            NodeValue::Sequence(items) => &mut items[*index],
            _ => unreachable!("checked to be a collection above"),
        };
    }
    node
}

/// The path, with list positions as written, of the node at `index_path`.
pub fn parts_of(tree: &Node, index_path: &[usize]) -> Vec<PathPart> {
    let mut node = tree;
    let mut parts = Vec::new();
    for index in index_path {
        node = match &node.value {
            NodeValue::Mapping(entries) => {
                parts.push(PathPart::Key(entries[*index].key.clone()));
                &entries[*index].value
            }
            NodeValue::Sequence(items) => {
                parts.push(PathPart::Index(*index));
                &items[*index]
            }
            _ => break,
        };
    }
    parts
}

/// The keys of the mapping at `path`, dropped or not, in file order: what the author meant to
/// define even where a value was rejected.
pub fn keys_at(tree: &Node, path: &[PathPart]) -> Vec<String> {
    let spot = find(tree, path);
    if spot.parts.len() != path.len() {
        return Vec::new();
    }
    match &node_at(tree, &spot.index_path).value {
        NodeValue::Mapping(entries) => entries.iter().map(|entry| entry.key.clone()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn check(text: &str, path: &[PathPart], expect: &str) {
        let tree = parse(text).expect("test YAML parses");
        let spot = find(&tree, path);
        let shown = format!(
            "{} value {}:{} at {}:{}",
            DottedPath(&spot.parts),
            spot.value_position.line,
            spot.value_position.column,
            spot.position().line,
            spot.position().column
        );
        assert_eq!(shown, expect);
    }

    #[test]
    fn finds_keys_and_list_entries() {
        let text = "jobs:\n  test:\n    needs: [a, b]\n    steps:\n      - run: x\n";
        check(
            text,
            &["jobs".into(), "test".into(), "needs".into(), 1.into()],
            "jobs.test.needs[1] value 3:16 at 3:16",
        );
        check(
            text,
            &["jobs".into(), "test".into(), "steps".into()],
            "jobs.test.steps value 5:7 at 4:5",
        );
    }

    #[test]
    fn stops_at_the_deepest_node_that_exists() {
        check(
            "jobs:\n  test:\n    needs: build\n",
            &["jobs".into(), "test".into(), "needs".into(), 0.into()],
            "jobs.test.needs value 3:12 at 3:12",
        );
    }

    #[test]
    fn list_positions_skip_dropped_items_but_report_the_written_one() {
        let mut tree = parse("- a\n- b\n- c\n").expect("test YAML parses");
        if let NodeValue::Sequence(items) = &mut tree.value {
            items[0].dropped = true;
        }
        let spot = find(&tree, &[1.into()]);
        assert_eq!(spot.parts, vec![PathPart::Index(2)]);
        assert_eq!(spot.value_position.line, 3);
    }
}
