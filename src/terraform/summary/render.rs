//! Text for people: a plan summary as Terraform-like lines (`render_text`) and as a Markdown
//! fragment for a pull-request comment (`render_markdown`). Every value is printed as one line
//! of JSON, shortened when long, so nothing a plan contains can break out of the code block or
//! inject Markdown. Knows nothing of where the text goes.

use super::{Action, AttributeChange, PlanSummary, Shown};

/// Values longer than this are shortened with `…`: a comment should stay readable.
const LONGEST_VALUE: usize = 160;

/// Terraform-like lines: one per resource that changes, then one per changed attribute.
/// Unchanged resources are left out, as `terraform plan` leaves them out.
pub fn render_text(summary: &PlanSummary) -> String {
    let mut text = String::new();
    for resource in &summary.resources {
        if resource.action == Action::NoOp {
            continue;
        }
        text.push_str(&format!(
            "{} {}  # {}",
            resource.action.symbol(),
            resource.address,
            resource.action.describe()
        ));
        if let Some(reason) = &resource.reason {
            text.push_str(&format!(" ({})", reason.replace('_', " ")));
        }
        text.push('\n');
        for attribute in &resource.attributes {
            text.push_str("    ");
            text.push_str(&attribute_line(attribute));
            text.push('\n');
        }
    }
    text.push_str(&plan_line(summary));
    text.push('\n');
    text
}

/// A Markdown fragment: the counts on one line, then the lines of `render_text` in a `diff`
/// code block whose fence is longer than any run of backticks inside it.
pub fn render_markdown(summary: &PlanSummary) -> String {
    if summary.counts.is_empty() && summary.counts.read == 0 {
        return format!(
            "**Terraform plan:** `{}` no changes\n",
            summary.counts.symbols()
        );
    }
    let body = render_text(summary);
    let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
    format!(
        "**Terraform plan:** `{}`\n\n{fence}diff\n{body}{fence}\n",
        summary.counts.symbols()
    )
}

/// `Plan: 2 to add, 1 to change, 1 to destroy.` with replacements counted on both sides, as
/// Terraform counts them.
fn plan_line(summary: &PlanSummary) -> String {
    let counts = summary.counts;
    if counts.is_empty() {
        return "No changes. The infrastructure matches the configuration.".to_owned();
    }
    let mut line = format!(
        "Plan: {} to add, {} to change, {} to destroy.",
        counts.create + counts.replace,
        counts.update,
        counts.delete + counts.replace
    );
    if counts.replace > 0 {
        line.push_str(&format!(" ({} replaced)", counts.replace));
    }
    line
}

fn attribute_line(attribute: &AttributeChange) -> String {
    let forces = if attribute.forces_replacement {
        "  # forces replacement"
    } else {
        ""
    };
    let path = &attribute.path;
    match (&attribute.before, &attribute.after) {
        (None, Some(after)) => format!("+ {path} = {}{forces}", shown(after)),
        (Some(before), None) => format!("- {path} = {} -> null{forces}", shown(before)),
        (Some(Shown::Sensitive), Some(Shown::Sensitive)) => {
            format!("~ {path} = (sensitive value){forces}")
        }
        (Some(before), Some(after)) => {
            format!("~ {path} = {} -> {}{forces}", shown(before), shown(after))
        }
        (None, None) => format!("~ {path}{forces}"),
    }
}

/// A value as a summary line shows it: JSON, shortened, or why it is hidden.
pub fn shown(value: &Shown) -> String {
    match value {
        Shown::Sensitive => "(sensitive value)".to_owned(),
        Shown::KnownAfterApply => "(known after apply)".to_owned(),
        Shown::Value(value) => {
            let json = value.to_string();
            if json.chars().count() <= LONGEST_VALUE {
                json
            } else {
                let shortened: String = json.chars().take(LONGEST_VALUE).collect();
                format!("{shortened}…")
            }
        }
    }
}

/// The longest run of backticks in `text`: a code fence must be longer to hold it.
pub fn longest_backtick_run(text: &str) -> usize {
    let mut longest = 0;
    let mut current = 0;
    for character in text.chars() {
        if character == '`' {
            current += 1;
            longest = longest.max(current);
        } else {
            current = 0;
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::super::summarize;
    use super::*;
    use serde_json::json;

    fn check(plan: serde_json::Value, expect: &str) {
        let summary = summarize(&plan).unwrap();
        assert_eq!(render_text(&summary), expect);
    }

    #[test]
    fn lines_read_like_terraform() {
        check(
            json!({"resource_changes": [
                {"address": "aws_instance.web", "change": {"actions": ["update"],
                    "before": {"size": 1, "old": "x", "password": "a"},
                    "after": {"size": 2, "new": "y", "password": "b"},
                    "before_sensitive": {"password": true}, "after_sensitive": {"password": true}}},
                {"address": "aws_db_instance.db", "action_reason": "replace_because_tainted",
                    "change": {"actions": ["delete", "create"],
                    "before": {"id": "1"}, "after": {}, "after_unknown": {"id": true},
                    "replace_paths": [["id"]]}},
                {"address": "aws_vpc.main", "change": {"actions": ["no-op"], "before": {}, "after": {}}},
            ]}),
            "~ aws_instance.web  # will be updated in-place\n\
             \x20   + new = \"y\"\n\
             \x20   - old = \"x\" -> null\n\
             \x20   ~ password = (sensitive value)\n\
             \x20   ~ size = 1 -> 2\n\
             -/+ aws_db_instance.db  # must be replaced (destroyed, then created) (replace because tainted)\n\
             \x20   ~ id = \"1\" -> (known after apply)  # forces replacement\n\
             Plan: 1 to add, 1 to change, 1 to destroy. (1 replaced)\n",
        );
        check(
            json!({}),
            "No changes. The infrastructure matches the configuration.\n",
        );
    }

    #[test]
    fn markdown_cannot_be_broken_by_values() {
        let plan = json!({"resource_changes": [{"address": "x.y", "change": {"actions": ["create"],
            "before": null, "after": {"script": "```\n# heading\n<script>", "long": "z".repeat(500)}}}]});
        let markdown = render_markdown(&summarize(&plan).unwrap());
        assert!(markdown.starts_with("**Terraform plan:** `+1 ~0 -0 ±0`\n\n````diff\n"));
        assert!(markdown.ends_with("````\n"));
        assert!(markdown.contains("+ script = \"```\\n# heading\\n<script>\""));
        assert!(markdown.contains("…"));
        assert_eq!(
            markdown
                .lines()
                .filter(|line| line.starts_with("```"))
                .count(),
            2
        );
    }
}
