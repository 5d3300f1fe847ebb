//! A serde `Deserializer` over the located YAML tree, with an error type that keeps serde's
//! complaints structured (unknown key and the valid ones, missing key, wrong type) instead of
//! flattening them into text. Skips nodes marked as dropped. Knows nothing of the schemas.

use crate::config::yaml::{Entry, Node, NodeValue};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use std::fmt;

/// What serde found wrong with one value.
#[derive(Clone, Debug, PartialEq)]
pub enum DecodeError {
    UnknownKey {
        key: String,
        valid_keys: &'static [&'static str],
    },
    MissingKey {
        key: &'static str,
    },
    WrongType {
        expected: String,
        found: String,
    },
    WrongValue {
        expected: String,
        found: String,
    },
    /// serde's catch-all: `untagged` enums report "data did not match any variant of untagged
    /// enum NAME" this way.
    Other(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownKey { key, .. } => write!(formatter, "unknown key `{key}`"),
            DecodeError::MissingKey { key } => write!(formatter, "missing required key `{key}`"),
            DecodeError::WrongType { expected, found } => {
                write!(formatter, "expected {expected}, found {found}")
            }
            DecodeError::WrongValue { expected, found } => {
                write!(formatter, "expected {expected}, found {found}")
            }
            DecodeError::Other(message) => formatter.write_str(message),
        }
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        DecodeError::Other(message.to_string())
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        DecodeError::WrongType {
            expected: describe_expected(&expected.to_string()),
            found: describe_unexpected(&unexpected),
        }
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        DecodeError::WrongValue {
            expected: describe_expected(&expected.to_string()),
            found: describe_unexpected(&unexpected),
        }
    }

    fn invalid_length(length: usize, expected: &dyn de::Expected) -> Self {
        DecodeError::WrongValue {
            expected: describe_expected(&expected.to_string()),
            found: format!("{length} entries"),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DecodeError::UnknownKey {
            key: field.to_string(),
            valid_keys: expected,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DecodeError::MissingKey { key: field }
    }
}

/// serde's "expected" phrases in the words a YAML author uses.
fn describe_expected(expected: &str) -> String {
    if expected.starts_with("struct ") || expected == "a map" {
        return "a mapping".to_string();
    }
    match expected {
        "a sequence" => "a list".to_string(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "path string" => "a path".to_string(),
        other => other.to_string(),
    }
}

fn describe_unexpected(unexpected: &Unexpected<'_>) -> String {
    match unexpected {
        Unexpected::Bool(value) => format!("the boolean `{value}`"),
        Unexpected::Unsigned(value) => format!("the number `{value}`"),
        Unexpected::Signed(value) => format!("the number `{value}`"),
        Unexpected::Float(value) => format!("the number `{value}`"),
        Unexpected::Char(value) => format!("the character `{value}`"),
        Unexpected::Str(value) => format!("the string `{}`", shorten(value)),
        Unexpected::Unit | Unexpected::Option => "nothing (null)".to_string(),
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Map => "a mapping".to_string(),
        other => other.to_string(),
    }
}

/// Keeps values in messages to one short line.
pub fn shorten(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or("");
    let mut short: String = first_line.chars().take(40).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// The text of a scalar, for targets that want a string: GitHub Actions accepts `8080` or
/// `true` where a string is expected, and so do we.
fn scalar_text(value: &NodeValue) -> Option<String> {
    match value {
        NodeValue::Bool(value) => Some(value.to_string()),
        NodeValue::Unsigned(value) => Some(value.to_string()),
        NodeValue::Signed(value) => Some(value.to_string()),
        NodeValue::Float(value) => Some(value.to_string()),
        _ => None,
    }
}

impl<'de> Deserializer<'de> for &Node {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match &self.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Bool(value) => visitor.visit_bool(*value),
            NodeValue::Unsigned(value) => visitor.visit_u64(*value),
            NodeValue::Signed(value) => visitor.visit_i64(*value),
            NodeValue::Float(value) => visitor.visit_f64(*value),
            NodeValue::String(value) => visitor.visit_str(value),
            NodeValue::Sequence(items) => visitor.visit_seq(Items {
                remaining: items.iter(),
            }),
            NodeValue::Mapping(entries) => visitor.visit_map(Entries {
                remaining: entries.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            NodeValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match scalar_text(&self.value) {
            Some(text) => visitor.visit_string(text),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    /// A list where a mapping belongs is a mistake, not serde's positional struct form.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.value {
            NodeValue::Sequence(_) => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match &self.value {
            NodeValue::String(variant) => visitor.visit_enum(UnitVariant(variant)),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Items<'a> {
    remaining: std::slice::Iter<'a, Node>,
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        match self.remaining.by_ref().find(|item| !item.dropped) {
            Some(item) => seed.deserialize(item).map(Some),
            None => Ok(None),
        }
    }
}

struct Entries<'a> {
    remaining: std::slice::Iter<'a, Entry>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        match self.remaining.by_ref().find(|entry| !entry.value.dropped) {
            Some(entry) => {
                self.value = Some(&entry.value);
                seed.deserialize(entry.key.as_str().into_deserializer())
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| DecodeError::Other("a mapping value was read twice".to_string()))?;
        seed.deserialize(value)
    }
}

/// A plain string naming an enum variant without data.
struct UnitVariant<'a>(&'a str);

impl<'de> EnumAccess<'de> for UnitVariant<'_> {
    type Error = DecodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), DecodeError> {
        let variant = seed.deserialize(self.0.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant<'_> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        _seed: T,
    ) -> Result<T::Value, DecodeError> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"a variant with a value",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _length: usize,
        _visitor: V,
    ) -> Result<V::Value, DecodeError> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"a tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DecodeError> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"a struct variant",
        ))
    }
}

/// How a node reads in a message: its kind, and its value when it is a short scalar.
pub fn describe_node(node: &Node) -> String {
    match &node.value {
        NodeValue::Null => "nothing (null)".to_string(),
        NodeValue::Bool(value) => format!("the boolean `{value}`"),
        NodeValue::Unsigned(value) => format!("the number `{value}`"),
        NodeValue::Signed(value) => format!("the number `{value}`"),
        NodeValue::Float(value) => format!("the number `{value}`"),
        NodeValue::String(value) => format!("the string `{}`", shorten(value)),
        NodeValue::Sequence(_) => "a list".to_string(),
        NodeValue::Mapping(_) => "a mapping".to_string(),
    }
}
