//! Findings: what a `deny`, `violation` or `warn` rule said, read the way conftest reads it
//! (each element a string, or an object with a string `msg` and any other keys as metadata).
//! Pure over JSON values; knows nothing of the engine or of output formats.

use super::error::PolicyError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How much a finding matters: a deny fails the check, a warning does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Deny,
    Warn,
}

impl Severity {
    /// The severity a rule name carries: `deny`, `deny_*`, `violation`, `violation_*` deny;
    /// `warn`, `warn_*` warn; anything else is not a conftest rule.
    pub fn of_rule(name: &str) -> Option<Severity> {
        let (prefix, rest) = match name.find('_') {
            Some(index) => (&name[..index], &name[index + 1..]),
            None => (name, ""),
        };
        let suffix_ok = name.len() == prefix.len()
            || (!rest.is_empty()
                && rest.split('_').all(|part| {
                    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric())
                }));
        if !suffix_ok {
            return None;
        }
        match prefix {
            "deny" | "violation" => Some(Severity::Deny),
            "warn" => Some(Severity::Warn),
            _ => None,
        }
    }
}

/// One message from one rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// `package.rule`, e.g. `terraform.tags.deny`.
    pub rule: String,
    pub message: String,
    /// The other keys of an object result (`{"msg": ..., "resource": ...}`).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// The outcome of checking one input against a policy set.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// Sorted by severity, rule and message, so output is stable.
    pub findings: Vec<Finding>,
    /// How many rules were evaluated.
    pub rules_evaluated: usize,
    /// Every error met; any error fails the check.
    pub errors: Vec<PolicyError>,
}

impl Evaluation {
    pub fn denials(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|finding| finding.severity == Severity::Deny)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|finding| finding.severity == Severity::Warn)
    }

    /// True when no rule denied and nothing went wrong.
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.denials().next().is_none()
    }
}

/// Reads the value of one rule. `Ok` holds its findings (none when it is undefined, empty or
/// `false`); `Err` describes the element that is not a message.
pub(super) fn findings_of(
    severity: Severity,
    rule: &str,
    value: &Value,
) -> Result<Vec<Finding>, String> {
    let elements: Vec<&Value> = match value {
        Value::Null | Value::Bool(false) => return Ok(Vec::new()),
        // A complete rule `deny if { ... }`: true means the rule fired, with no message of its own.
        Value::Bool(true) => {
            return Ok(vec![Finding {
                severity,
                rule: rule.to_owned(),
                message: format!("{rule} is true"),
                metadata: Map::new(),
            }]);
        }
        Value::String(_) | Value::Object(_) => vec![value],
        Value::Array(items) => items.iter().collect(),
        Value::Number(_) => {
            return Err(format!(
                "{rule} is the number {value}; yield strings or objects with a string `msg`"
            ));
        }
    };
    let mut findings = Vec::new();
    for element in elements {
        let (message, metadata) = match element {
            Value::String(message) => (message.clone(), Map::new()),
            Value::Object(object) => match object.get("msg") {
                Some(Value::String(message)) => {
                    let mut metadata = object.clone();
                    metadata.remove("msg");
                    (message.clone(), metadata)
                }
                _ => {
                    return Err(format!(
                        "{rule} yielded {element}, an object without a string `msg`; add `\"msg\": <text>`"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "{rule} yielded {other}; yield strings or objects with a string `msg`"
                ));
            }
        };
        findings.push(Finding {
            severity,
            rule: rule.to_owned(),
            message,
            metadata,
        });
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rule_names_follow_conftest() {
        let check = |name: &str, expect: Option<Severity>| {
            assert_eq!(Severity::of_rule(name), expect, "{name}");
        };
        check("deny", Some(Severity::Deny));
        check("violation", Some(Severity::Deny));
        check("warn", Some(Severity::Warn));
        check("deny_public_bucket", Some(Severity::Deny));
        check("warn_2", Some(Severity::Warn));
        check("denied", None);
        check("deny_", None);
        check("deny__x", None);
        check("allow", None);
        check("test_deny", None);
    }

    #[test]
    fn strings_and_objects_with_msg_are_findings() {
        let findings = findings_of(
            Severity::Deny,
            "p.deny",
            &json!(["plain", {"msg": "rich", "resource": "a.b"}]),
        )
        .unwrap();
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].message, "plain");
        assert_eq!(findings[1].message, "rich");
        assert_eq!(findings[1].metadata["resource"], json!("a.b"));
        assert!(
            findings_of(Severity::Warn, "p.warn", &json!(false))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            findings_of(Severity::Deny, "p.deny", &json!(true))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn anything_else_is_an_error_naming_the_rule() {
        let error = findings_of(Severity::Deny, "p.deny", &json!([{"message": "x"}])).unwrap_err();
        assert!(
            error.contains("p.deny yielded {\"message\":\"x\"}"),
            "{error}"
        );
        assert!(findings_of(Severity::Deny, "p.deny", &json!([3])).is_err());
        assert!(findings_of(Severity::Deny, "p.deny", &json!(3)).is_err());
    }
}
