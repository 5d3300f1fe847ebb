//! Values during evaluation and GitHub's rules for them: truthiness, conversion to text and to
//! numbers, loose equality with coercion, case-insensitive ordering of strings, and identity
//! of objects. Knows nothing of syntax or of where values come from.

use super::parse::Comparison;
use serde_json::Value as Json;

/// A value during evaluation: borrowed from the context where possible, so that objects keep
/// their identity (GitHub compares objects by instance) and nothing large is copied.
#[derive(Clone, Debug)]
pub(super) enum Value<'a> {
    Borrowed(&'a Json),
    Owned(Json),
    /// The result of `.*`: further property reads apply to every element.
    Filtered(Vec<Value<'a>>),
}

const NULL: Json = Json::Null;

impl<'a> Value<'a> {
    pub(super) fn json(&self) -> Option<&Json> {
        match self {
            Value::Borrowed(json) => Some(json),
            Value::Owned(json) => Some(json),
            Value::Filtered(_) => None,
        }
    }

    pub(super) fn into_json(self) -> Json {
        match self {
            Value::Borrowed(json) => json.clone(),
            Value::Owned(json) => json,
            Value::Filtered(items) => {
                Json::Array(items.into_iter().map(Value::into_json).collect())
            }
        }
    }

    pub(super) fn from_number(number: f64) -> Value<'a> {
        Value::Owned(number_to_json(number))
    }

    /// The elements of an array or filtered array; `None` for anything else.
    /// The value as an array position: a whole, non-negative number.
    pub(super) fn as_index(&self) -> Option<usize> {
        match canonical(self) {
            Canonical::Number(number) if number >= 0.0 && number.fract() == 0.0 => {
                Some(number as usize)
            }
            _ => None,
        }
    }

    pub(super) fn elements(&self) -> Option<Vec<Value<'_>>> {
        match self {
            Value::Filtered(items) => Some(items.clone()),
            other => match other.json() {
                Some(Json::Array(items)) => Some(items.iter().map(Value::Borrowed).collect()),
                _ => None,
            },
        }
    }
}

/// A value reduced to what comparisons look at. Arrays and objects carry their address when
/// borrowed from the context, so that only the same instance is equal to itself.
#[derive(Clone, Debug)]
enum Canonical<'v> {
    Null,
    Boolean(bool),
    Number(f64),
    String(&'v str),
    Array(Option<*const Json>),
    Object(Option<*const Json>),
}

fn canonical<'v>(value: &'v Value<'_>) -> Canonical<'v> {
    let identity = match value {
        Value::Borrowed(json) => Some(*json as *const Json),
        _ => None,
    };
    match value {
        Value::Filtered(_) => Canonical::Array(None),
        _ => match value.json().unwrap_or(&NULL) {
            Json::Null => Canonical::Null,
            Json::Bool(boolean) => Canonical::Boolean(*boolean),
            Json::Number(number) => Canonical::Number(number.as_f64().unwrap_or(f64::NAN)),
            Json::String(text) => Canonical::String(text),
            Json::Array(_) => Canonical::Array(identity),
            Json::Object(_) => Canonical::Object(identity),
        },
    }
}

fn canonical_to_number(value: &Canonical) -> f64 {
    match value {
        Canonical::Null => 0.0,
        Canonical::Boolean(boolean) => f64::from(u8::from(*boolean)),
        Canonical::Number(number) => *number,
        Canonical::String(text) => string_to_number(text),
        Canonical::Array(_) | Canonical::Object(_) => f64::NAN,
    }
}

/// GitHub's conversion of text to a number: surrounding space ignored, empty is 0, anything that
/// is not a number is NaN.
pub(super) fn string_to_number(text: &str) -> f64 {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return 0.0;
    }
    super::lex::parse_number_literal(trimmed).unwrap_or(f64::NAN)
}

/// Brings two values to the same kind where GitHub's rules say so: number against string makes
/// both numbers; a boolean or null becomes a number and the rule is applied again.
fn coerce<'v>(left: Canonical<'v>, right: Canonical<'v>) -> (Canonical<'v>, Canonical<'v>) {
    use Canonical as C;
    match (&left, &right) {
        (C::Null, C::Null)
        | (C::Boolean(_), C::Boolean(_))
        | (C::Number(_), C::Number(_))
        | (C::String(_), C::String(_))
        | (C::Array(_), C::Array(_))
        | (C::Object(_), C::Object(_)) => (left, right),
        (C::Number(_), C::String(_)) => {
            let number = canonical_to_number(&right);
            (left, C::Number(number))
        }
        (C::String(_), C::Number(_)) => (C::Number(canonical_to_number(&left)), right),
        (C::Boolean(_) | C::Null, _) => coerce(C::Number(canonical_to_number(&left)), right),
        (_, C::Boolean(_) | C::Null) => {
            let number = canonical_to_number(&right);
            coerce(left, C::Number(number))
        }
        _ => (left, right),
    }
}

pub(super) fn lowercase(text: &str) -> String {
    text.to_lowercase()
}

pub(super) fn loosely_equal(left: &Value, right: &Value) -> bool {
    use Canonical as C;
    match coerce(canonical(left), canonical(right)) {
        (C::Null, C::Null) => true,
        (C::Boolean(left), C::Boolean(right)) => left == right,
        (C::Number(left), C::Number(right)) => left == right,
        (C::String(left), C::String(right)) => lowercase(left) == lowercase(right),
        (C::Array(Some(left)), C::Array(Some(right)))
        | (C::Object(Some(left)), C::Object(Some(right))) => std::ptr::eq(left, right),
        _ => false,
    }
}

/// `Some(ordering)` when the two values are ordered by GitHub's rules; `None` when they are not
/// comparable (different kinds after coercion, NaN, arrays, objects, null).
fn loosely_ordered(left: &Value, right: &Value) -> Option<std::cmp::Ordering> {
    use Canonical as C;
    match coerce(canonical(left), canonical(right)) {
        (C::Number(left), C::Number(right)) => left.partial_cmp(&right),
        (C::String(left), C::String(right)) => Some(lowercase(left).cmp(&lowercase(right))),
        (C::Boolean(left), C::Boolean(right)) => Some(left.cmp(&right)),
        _ => None,
    }
}

pub(super) fn compare(comparison: Comparison, left: &Value, right: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering = || loosely_ordered(left, right);
    match comparison {
        Comparison::Equal => loosely_equal(left, right),
        Comparison::NotEqual => !loosely_equal(left, right),
        Comparison::Less => ordering() == Some(Ordering::Less),
        Comparison::Greater => ordering() == Some(Ordering::Greater),
        Comparison::LessOrEqual => loosely_equal(left, right) || ordering() == Some(Ordering::Less),
        Comparison::GreaterOrEqual => {
            loosely_equal(left, right) || ordering() == Some(Ordering::Greater)
        }
    }
}

/// GitHub's truthiness: null, false, 0, NaN and the empty string are false.
pub(super) fn is_truthy(value: &Value) -> bool {
    match value.json() {
        None => true,
        Some(Json::Null) => false,
        Some(Json::Bool(boolean)) => *boolean,
        Some(Json::Number(number)) => number.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Some(Json::String(text)) => !text.is_empty(),
        Some(Json::Array(_) | Json::Object(_)) => true,
    }
}

/// The text a value becomes in templates and string functions: null is empty, numbers have no
/// trailing `.0`, arrays and objects are compact JSON.
pub(super) fn to_text(value: &Value) -> String {
    match value.json() {
        None => serde_json::to_string(&value.clone().into_json()).unwrap_or_default(),
        Some(Json::Null) => String::new(),
        Some(Json::Bool(boolean)) => boolean.to_string(),
        Some(Json::Number(number)) => format_number(number.as_f64().unwrap_or(f64::NAN)),
        Some(Json::String(text)) => text.clone(),
        Some(other @ (Json::Array(_) | Json::Object(_))) => {
            serde_json::to_string(other).unwrap_or_default()
        }
    }
}

fn format_number(number: f64) -> String {
    if number.is_nan() {
        "NaN".into()
    } else if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        format!("{number}")
    }
}

/// Whole numbers become JSON integers so that `1` stays `1`, not `1.0`.
fn number_to_json(number: f64) -> Json {
    if number.fract() == 0.0 && number.abs() < 9.007_199_254_740_992e15 {
        Json::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map_or(Json::Null, Json::Number)
    }
}
