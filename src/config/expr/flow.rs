//! Which parts of the context can reach an expression's result: `format('{0}', git.branch)`
//! carries `git.branch`, `github.head_ref == 'main'` carries only a boolean. Used to keep values
//! that outsiders choose out of shell scripts. Pure; knows the syntax tree and the functions'
//! meaning, nothing of which values are trusted.

use super::parse::{Function, Literal, Node};

/// One step of a path into the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A property, as written (lookups are case-insensitive).
    Key(String),
    /// Any property or element: `.*`, or an index computed when the expression runs.
    Any,
}

/// The context paths whose values (each with everything below it) may be part of the result.
pub(super) fn reads(node: &Node) -> Vec<Vec<Segment>> {
    let mut found = Vec::new();
    collect(node, &mut found);
    found
}

fn collect(node: &Node, found: &mut Vec<Vec<Segment>>) {
    match node {
        // Booleans: whatever they read, only `true` or `false` comes out.
        Node::Literal(_) | Node::Not(_) | Node::Compare(..) => {}
        Node::Name(_) | Node::Property { .. } | Node::Index { .. } | Node::Filter { .. } => {
            match access_path(node) {
                Some(path) => found.push(path),
                // `fromJSON(x).y`, `(a || b).c`: the part read from may be anything its base
                // carries.
                None => collect(base_of(node), found),
            }
        }
        // `a || b` and `a && b` return one of their operands.
        Node::And(left, right) | Node::Or(left, right) => {
            collect(left, found);
            collect(right, found);
        }
        Node::Call(function, arguments) => match function {
            Function::Format | Function::Join | Function::ToJson | Function::FromJson => {
                for argument in arguments {
                    collect(argument, found);
                }
            }
            Function::Contains
            | Function::StartsWith
            | Function::EndsWith
            | Function::Success
            | Function::Failure
            | Function::Always
            | Function::Cancelled => {}
        },
    }
}

/// `github['head_ref']` as `[github, head_ref]`; None when the chain does not start at a name.
fn access_path(node: &Node) -> Option<Vec<Segment>> {
    match node {
        Node::Name(name) => Some(vec![Segment::Key(name.clone())]),
        Node::Property { target, name, .. } => {
            let mut path = access_path(target)?;
            path.push(Segment::Key(name.clone()));
            Some(path)
        }
        Node::Index { target, index, .. } => {
            let mut path = access_path(target)?;
            path.push(match index.as_ref() {
                Node::Literal(Literal::String(key)) => Segment::Key(key.clone()),
                _ => Segment::Any,
            });
            Some(path)
        }
        Node::Filter { target } => {
            let mut path = access_path(target)?;
            path.push(Segment::Any);
            Some(path)
        }
        _ => None,
    }
}

/// The innermost node an access chain reads from.
fn base_of(node: &Node) -> &Node {
    match node {
        Node::Property { target, .. } | Node::Index { target, .. } | Node::Filter { target } => {
            base_of(target)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn shown(expression: &str) -> Vec<String> {
        reads(&parse(expression).expect("test expression parses"))
            .iter()
            .map(|path| {
                path.iter()
                    .map(|segment| match segment {
                        Segment::Key(key) => key.as_str(),
                        Segment::Any => "*",
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect()
    }

    #[test]
    fn values_that_reach_the_result_are_found_through_functions_and_indexes() {
        let cases: &[(&str, &[&str])] = &[
            ("git.branch", &["git.branch"]),
            (
                "format('{0}-{1}', git.sha, github.head_ref)",
                &["git.sha", "github.head_ref"],
            ),
            ("toJSON(github)", &["github"]),
            ("github['head_ref']", &["github.head_ref"]),
            ("github[env.FIELD]", &["github.*"]),
            (
                "github.event.labels.*.name",
                &["github.event.labels.*.name"],
            ),
            ("fromJSON(env.DATA).x", &["env.DATA"]),
            (
                "join(needs.*.outputs.image, ' ')",
                &["needs.*.outputs.image"],
            ),
            ("git.tag || git.branch", &["git.tag", "git.branch"]),
        ];
        for (expression, expect) in cases {
            assert_eq!(shown(expression), *expect, "expression `{expression}`");
        }
    }

    #[test]
    fn booleans_carry_nothing_they_read() {
        for expression in [
            "github.head_ref == 'main'",
            "!git.branch",
            "contains(github.event.pull_request.title, 'wip')",
            "startsWith(git.ref, 'refs/tags/')",
            "success()",
            "'literal'",
        ] {
            assert_eq!(shown(expression), Vec::<String>::new(), "`{expression}`");
        }
    }
}
