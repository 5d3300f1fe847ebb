//! Evaluation of a parsed expression against a JSON context, with GitHub's rules: loose
//! equality that coerces to numbers, case-insensitive string comparison, `&&`/`||` that return
//! an operand, filtered arrays (`labels.*.name`) and the built-in functions. Knows nothing of
//! events, jobs or where the context comes from.

use super::format::{FormatPiece, split_format};
use super::parse::{Function, Literal, Node};
use super::value::{Value, compare, is_truthy, loosely_equal, lowercase, to_text};
use serde_json::Value as Json;

/// What `success()`, `failure()` and `cancelled()` answer; `always()` is always true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StatusFunctions {
    pub success: bool,
    pub failure: bool,
    pub cancelled: bool,
}

/// How a read of a property that does not exist is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Missing {
    /// As null, as GitHub does in conditions.
    Null,
    /// As an error naming the property, for templates where a typo must not become empty text.
    Error,
}

/// Reads a property case-insensitively, preferring an exact match.
fn lookup<'j>(object: &'j serde_json::Map<String, Json>, key: &str) -> Option<&'j Json> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

fn unknown_property(text: &str, object: &serde_json::Map<String, Json>) -> String {
    let mut known: Vec<&str> = object.keys().map(String::as_str).take(12).collect();
    known.sort_unstable();
    if known.is_empty() {
        format!("unknown property `{text}`; nothing is defined there")
    } else {
        format!(
            "unknown property `{text}`; defined here: {}",
            known.join(", ")
        )
    }
}

pub(super) struct Evaluator<'a> {
    pub root: &'a Json,
    pub status: StatusFunctions,
    pub missing: Missing,
}

impl<'a> Evaluator<'a> {
    pub(super) fn evaluate(&self, node: &Node) -> Result<Value<'a>, String> {
        match node {
            Node::Literal(literal) => Ok(match literal {
                Literal::Null => Value::Owned(Json::Null),
                Literal::Boolean(boolean) => Value::Owned(Json::Bool(*boolean)),
                Literal::Number(number) => Value::from_number(*number),
                Literal::String(text) => Value::Owned(Json::String(text.clone())),
            }),
            Node::Name(name) => match self.root {
                Json::Object(object) => match lookup(object, name) {
                    Some(found) => Ok(Value::Borrowed(found)),
                    None if self.missing == Missing::Error => Err(unknown_property(name, object)),
                    None => Ok(Value::Owned(Json::Null)),
                },
                _ => Ok(Value::Owned(Json::Null)),
            },
            Node::Property { target, name, text } => {
                let target = self.evaluate(target)?;
                self.read_property(target, name, text)
            }
            Node::Filter { target } => Ok(filter(self.evaluate(target)?)),
            Node::Index {
                target,
                index,
                text,
            } => {
                let target = self.evaluate(target)?;
                let index = self.evaluate(index)?;
                self.read_index(target, &index, text)
            }
            Node::Not(operand) => Ok(Value::Owned(Json::Bool(!is_truthy(
                &self.evaluate(operand)?,
            )))),
            Node::Compare(comparison, left, right) => {
                let left = self.evaluate(left)?;
                let right = self.evaluate(right)?;
                Ok(Value::Owned(Json::Bool(compare(
                    *comparison,
                    &left,
                    &right,
                ))))
            }
            Node::And(left, right) => {
                let left = self.evaluate(left)?;
                if is_truthy(&left) {
                    self.evaluate(right)
                } else {
                    Ok(left)
                }
            }
            Node::Or(left, right) => {
                let left = self.evaluate(left)?;
                if is_truthy(&left) {
                    Ok(left)
                } else {
                    self.evaluate(right)
                }
            }
            Node::Call(function, arguments) => self.call(*function, arguments),
        }
    }

    fn read_property(
        &self,
        target: Value<'a>,
        name: &str,
        text: &str,
    ) -> Result<Value<'a>, String> {
        match target {
            Value::Filtered(items) => Ok(Value::Filtered(
                items
                    .into_iter()
                    .filter_map(|item| match item {
                        Value::Borrowed(Json::Object(object)) => {
                            lookup(object, name).map(Value::Borrowed)
                        }
                        Value::Owned(Json::Object(object)) => {
                            lookup(&object, name).cloned().map(Value::Owned)
                        }
                        _ => None,
                    })
                    .collect(),
            )),
            Value::Borrowed(Json::Object(object)) => match lookup(object, name) {
                Some(found) => Ok(Value::Borrowed(found)),
                None => self.missing_property(text, object),
            },
            Value::Owned(Json::Object(object)) => match lookup(&object, name) {
                Some(found) => Ok(Value::Owned(found.clone())),
                None => self.missing_property(text, &object),
            },
            _ => Ok(Value::Owned(Json::Null)),
        }
    }

    fn missing_property(
        &self,
        text: &str,
        object: &serde_json::Map<String, Json>,
    ) -> Result<Value<'a>, String> {
        match self.missing {
            Missing::Null => Ok(Value::Owned(Json::Null)),
            Missing::Error => Err(unknown_property(text, object)),
        }
    }

    fn read_index(
        &self,
        target: Value<'a>,
        index: &Value,
        text: &str,
    ) -> Result<Value<'a>, String> {
        if let Value::Filtered(items) = target {
            let mut selected = Vec::new();
            for item in items {
                let one = self.read_index(item, index, text)?;
                if !matches!(one.json(), Some(Json::Null)) {
                    selected.push(one);
                }
            }
            return Ok(Value::Filtered(selected));
        }
        let position = index.as_index();
        let key = match index.json() {
            Some(Json::String(key)) => Some(key.as_str()),
            _ => None,
        };
        Ok(match (target, position, key) {
            (Value::Borrowed(Json::Array(items)), Some(position), _) => items
                .get(position)
                .map_or(Value::Owned(Json::Null), Value::Borrowed),
            (Value::Owned(Json::Array(mut items)), Some(position), _) if position < items.len() => {
                Value::Owned(items.swap_remove(position))
            }
            (
                target @ (Value::Borrowed(Json::Object(_)) | Value::Owned(Json::Object(_))),
                _,
                Some(key),
            ) => {
                return self.read_property(target, key, text);
            }
            _ => Value::Owned(Json::Null),
        })
    }

    fn call(&self, function: Function, arguments: &[Node]) -> Result<Value<'a>, String> {
        let boolean = |value: bool| Ok(Value::Owned(Json::Bool(value)));
        match function {
            Function::Success => return boolean(self.status.success),
            Function::Failure => return boolean(self.status.failure),
            Function::Cancelled => return boolean(self.status.cancelled),
            Function::Always => return boolean(true),
            _ => {}
        }
        let values = arguments
            .iter()
            .map(|argument| self.evaluate(argument))
            .collect::<Result<Vec<_>, _>>()?;
        match function {
            Function::Contains => match values[0].elements() {
                Some(elements) => boolean(
                    elements
                        .iter()
                        .any(|element| loosely_equal(element, &values[1])),
                ),
                None => boolean(
                    lowercase(&to_text(&values[0])).contains(&lowercase(&to_text(&values[1]))),
                ),
            },
            Function::StartsWith => boolean(
                lowercase(&to_text(&values[0])).starts_with(&lowercase(&to_text(&values[1]))),
            ),
            Function::EndsWith => {
                boolean(lowercase(&to_text(&values[0])).ends_with(&lowercase(&to_text(&values[1]))))
            }
            Function::Format => {
                let template = to_text(&values[0]);
                let mut output = String::new();
                for piece in split_format(&template)? {
                    match piece {
                        FormatPiece::Text(literal) => output.push_str(&literal),
                        FormatPiece::Argument(number) => match values.get(number + 1) {
                            Some(argument) => output.push_str(&to_text(argument)),
                            None => {
                                return Err(format!(
                                    "placeholder `{{{number}}}` in format string '{template}' has no argument ({} given)",
                                    values.len() - 1
                                ));
                            }
                        },
                    }
                }
                string_value(output)
            }
            Function::Join => {
                let separator = values.get(1).map_or_else(|| ",".to_string(), to_text);
                match values[0].elements() {
                    Some(elements) => string_value(
                        elements
                            .iter()
                            .map(to_text)
                            .collect::<Vec<_>>()
                            .join(&separator),
                    ),
                    None => string_value(to_text(&values[0])),
                }
            }
            Function::ToJson => {
                let json = values[0].clone().into_json();
                string_value(serde_json::to_string_pretty(&json).unwrap_or_default())
            }
            Function::FromJson => {
                let source = to_text(&values[0]);
                serde_json::from_str::<Json>(&source)
                    .map(Value::Owned)
                    .map_err(|error| {
                        format!(
                            "fromJSON: '{source}' is not valid JSON ({error}); pass a JSON document"
                        )
                    })
            }
            Function::Success | Function::Failure | Function::Cancelled | Function::Always => {
                unreachable!("status functions answered above")
            }
        }
    }
}

fn string_value<'b>(text: String) -> Result<Value<'b>, String> {
    Ok(Value::Owned(Json::String(text)))
}

/// `target.*`: the elements of an array or the values of an object, as a filtered array.
fn filter(target: Value<'_>) -> Value<'_> {
    fn children(value: Value<'_>) -> Vec<Value<'_>> {
        match value {
            Value::Borrowed(Json::Array(items)) => items.iter().map(Value::Borrowed).collect(),
            Value::Borrowed(Json::Object(object)) => object.values().map(Value::Borrowed).collect(),
            Value::Owned(Json::Array(items)) => items.into_iter().map(Value::Owned).collect(),
            Value::Owned(Json::Object(object)) => object
                .into_iter()
                .map(|(_, value)| Value::Owned(value))
                .collect(),
            _ => Vec::new(),
        }
    }
    match target {
        Value::Filtered(items) => Value::Filtered(items.into_iter().flat_map(children).collect()),
        other => Value::Filtered(children(other)),
    }
}
