//! Plan summaries: what a Terraform plan (the JSON of `terraform show -json PLANFILE`) would do,
//! per resource address, with counts per action and the changed attributes, masked the way
//! Terraform masks them (`(sensitive value)`, `(known after apply)`).
//!
//! Pure functions over `serde_json::Value`: no IO, no terraform CLI, no knowledge of pull
//! requests or where the summary is shown. `render` turns a summary into Markdown-safe text.

mod diff;
mod render;

pub use render::{longest_backtick_run, render_markdown, render_text, shown};

use serde_json::Value;

/// What Terraform will do to one resource instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Create,
    Update,
    Delete,
    Replace(ReplaceOrder),
    Read,
    NoOp,
    /// Terraform 1.7+: removed from state without being destroyed (`removed` blocks).
    Forget,
}

/// The order of the two halves of a replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplaceOrder {
    /// `["delete", "create"]`, Terraform's default (`-/+`).
    DeleteThenCreate,
    /// `["create", "delete"]`, with `create_before_destroy` (`+/-`).
    CreateThenDelete,
}

impl Action {
    /// Reads `change.actions` as Terraform writes it; `None` for a list Terraform never writes.
    pub fn from_actions(actions: &[&str]) -> Option<Action> {
        let action = match actions {
            ["create"] => Action::Create,
            ["update"] => Action::Update,
            ["delete"] => Action::Delete,
            ["delete", "create"] => Action::Replace(ReplaceOrder::DeleteThenCreate),
            ["create", "delete"] => Action::Replace(ReplaceOrder::CreateThenDelete),
            ["read"] => Action::Read,
            ["no-op"] => Action::NoOp,
            ["forget"] => Action::Forget,
            _ => return None,
        };
        Some(action)
    }

    /// The symbol Terraform prints before the address.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Replace(ReplaceOrder::DeleteThenCreate) => "-/+",
            Action::Replace(ReplaceOrder::CreateThenDelete) => "+/-",
            Action::Read => "<=",
            Action::NoOp => " ",
            Action::Forget => ".",
        }
    }

    /// Words for a person, as in Terraform's plan output.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Create => "will be created",
            Action::Update => "will be updated in-place",
            Action::Delete => "will be destroyed",
            Action::Replace(ReplaceOrder::DeleteThenCreate) => {
                "must be replaced (destroyed, then created)"
            }
            Action::Replace(ReplaceOrder::CreateThenDelete) => {
                "must be replaced (created, then destroyed)"
            }
            Action::Read => "will be read during apply",
            Action::NoOp => "is unchanged",
            Action::Forget => "will be removed from state without being destroyed",
        }
    }
}

/// How many resource instances each action touches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub replace: usize,
    pub read: usize,
    pub no_op: usize,
    pub forget: usize,
}

impl Counts {
    fn add(&mut self, action: Action) {
        match action {
            Action::Create => self.create += 1,
            Action::Update => self.update += 1,
            Action::Delete => self.delete += 1,
            Action::Replace(_) => self.replace += 1,
            Action::Read => self.read += 1,
            Action::NoOp => self.no_op += 1,
            Action::Forget => self.forget += 1,
        }
    }

    /// True when applying the plan would change no infrastructure.
    pub fn is_empty(&self) -> bool {
        self.create + self.update + self.delete + self.replace + self.forget == 0
    }

    /// `+2 ~1 -0 ±1`, the line a pull-request comment shows per environment.
    pub fn symbols(&self) -> String {
        format!(
            "+{} ~{} -{} ±{}",
            self.create, self.update, self.delete, self.replace
        )
    }
}

/// A value as the summary shows it: the value itself, or the reason it is hidden.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    Value(Value),
    Sensitive,
    KnownAfterApply,
}

/// One changed attribute, by its path inside the resource (`tags.owner`, `ingress[0].cidr_blocks`).
/// `None` on a side means the attribute is absent or null there.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeChange {
    pub path: String,
    pub before: Option<Shown>,
    pub after: Option<Shown>,
    /// Terraform lists this path in `replace_paths`: changing it forces the replacement.
    pub forces_replacement: bool,
}

/// What happens to one resource instance.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceSummary {
    pub address: String,
    pub action: Action,
    /// `action_reason` when Terraform gives one (`replace_because_tainted`, ...).
    pub reason: Option<String>,
    pub attributes: Vec<AttributeChange>,
}

/// A whole plan, resources in the plan's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanSummary {
    pub resources: Vec<ResourceSummary>,
    pub counts: Counts,
}

/// Why a document cannot be summarised; every problem found, not only the first.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the plan cannot be summarised: {}; pass the output of `terraform show -json PLANFILE`", problems.join("; "))]
pub struct SummaryError {
    pub problems: Vec<String>,
}

/// Summarises a plan. A document without `resource_changes` (nothing to do, or a state) is an
/// empty summary; malformed entries are all reported at once.
pub fn summarize(plan: &Value) -> Result<PlanSummary, SummaryError> {
    let mut problems = Vec::new();
    let Some(plan_object) = plan.as_object() else {
        return Err(SummaryError {
            problems: vec![format!("the document is {}, not an object", kind_of(plan))],
        });
    };
    let resource_changes = match plan_object.get("resource_changes") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(entries)) => entries.as_slice(),
        Some(other) => {
            return Err(SummaryError {
                problems: vec![format!(
                    "`resource_changes` is {}, not a list",
                    kind_of(other)
                )],
            });
        }
    };
    let mut summary = PlanSummary::default();
    for (index, entry) in resource_changes.iter().enumerate() {
        match summarize_resource(entry) {
            Ok(resource) => {
                summary.counts.add(resource.action);
                summary.resources.push(resource);
            }
            Err(problem) => problems.push(format!("resource_changes[{index}]: {problem}")),
        }
    }
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(SummaryError { problems })
    }
}

fn summarize_resource(entry: &Value) -> Result<ResourceSummary, String> {
    let address = entry
        .get("address")
        .and_then(Value::as_str)
        .ok_or("has no `address` string")?;
    let change = entry
        .get("change")
        .filter(|change| change.is_object())
        .ok_or_else(|| format!("{address} has no `change` object"))?;
    let action_words: Option<Vec<&str>> = change
        .get("actions")
        .and_then(Value::as_array)
        .map(|actions| actions.iter().filter_map(Value::as_str).collect());
    let action = action_words
        .as_deref()
        .and_then(Action::from_actions)
        .ok_or_else(|| {
            format!(
                "{address} has actions {}, which Terraform never writes",
                change.get("actions").unwrap_or(&Value::Null)
            )
        })?;
    let reason = entry
        .get("action_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let attributes = match action {
        Action::NoOp | Action::Read | Action::Forget => Vec::new(),
        _ => diff::attribute_changes(change),
    };
    Ok(ResourceSummary {
        address: address.to_owned(),
        action,
        reason,
        attributes,
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(actions: Value, expect: Option<Action>) {
        let plan = json!({"resource_changes": [{"address": "a.b", "change": {"actions": actions, "before": null, "after": null}}]});
        let summary = summarize(&plan);
        match expect {
            Some(action) => assert_eq!(summary.unwrap().resources[0].action, action),
            None => assert!(summary.is_err(), "{summary:?}"),
        }
    }

    #[test]
    fn actions_are_read_as_terraform_writes_them() {
        check(json!(["create"]), Some(Action::Create));
        check(json!(["update"]), Some(Action::Update));
        check(json!(["delete"]), Some(Action::Delete));
        check(
            json!(["delete", "create"]),
            Some(Action::Replace(ReplaceOrder::DeleteThenCreate)),
        );
        check(
            json!(["create", "delete"]),
            Some(Action::Replace(ReplaceOrder::CreateThenDelete)),
        );
        check(json!(["read"]), Some(Action::Read));
        check(json!(["no-op"]), Some(Action::NoOp));
        check(json!(["create", "create"]), None);
        check(json!([]), None);
        check(json!("create"), None);
    }

    #[test]
    fn every_malformed_entry_is_reported() {
        let plan = json!({"resource_changes": [
            {"change": {"actions": ["create"]}},
            {"address": "x.y", "change": {"actions": ["explode"]}},
            {"address": "x.z"},
        ]});
        let error = summarize(&plan).unwrap_err();
        assert_eq!(error.problems.len(), 3, "{error}");
        assert!(error.problems[1].contains("x.y has actions [\"explode\"]"));
        assert!(error.to_string().contains("terraform show -json"));
    }

    #[test]
    fn a_document_without_changes_is_an_empty_summary() {
        let summary = summarize(&json!({"format_version": "1.0"})).unwrap();
        assert!(summary.resources.is_empty());
        assert!(summary.counts.is_empty());
        assert!(summarize(&json!([1])).is_err());
    }

    #[test]
    fn counts_read_as_symbols() {
        let counts = Counts {
            create: 2,
            update: 1,
            replace: 3,
            ..Counts::default()
        };
        assert_eq!(counts.symbols(), "+2 ~1 -0 ±3");
        assert!(!counts.is_empty());
    }
}
