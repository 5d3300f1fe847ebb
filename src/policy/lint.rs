//! The input lint: a module that reads `input.X` (or `input["X"]`) where `X` is not one of
//! sluice's domains (`terraform`, `kubernetes`, `airflow`, `mlflow`) reads a document sluice
//! never gives, so its rules could never fire; each such reference is an error naming the file,
//! line and column and the reference to write instead. Comments and string literals are
//! skipped, and `with input as {...}` in a test is not a reference. Works on the text (no Rego
//! parse), so it also reads modules regorus rejects. Pure.

use super::error::{PolicyError, PolicyErrorKind};
use super::input::DOMAINS;
use super::load::SourceFile;

/// Every `X` in `input.X` of `file` that is not a domain, once, at its first reference; later
/// lines that read the same `X` are listed in the message.
pub fn input_references(file: &SourceFile) -> Vec<PolicyError> {
    let mut stray: Vec<(Reference, Vec<u32>)> = Vec::new();
    for reference in references(&file.text) {
        if DOMAINS.contains(&reference.key.as_str()) {
            continue;
        }
        match stray
            .iter_mut()
            .find(|(first, _)| first.key == reference.key)
        {
            Some((_, later)) => later.push(reference.line),
            None => stray.push((reference, Vec::new())),
        }
    }
    stray
        .into_iter()
        .map(|(reference, mut later)| {
            later.dedup();
            later.retain(|line| *line != reference.line);
            let also = match later.as_slice() {
                [] => String::new(),
                [line] => format!(" (also line {line})"),
                lines => format!(
                    " (also lines {})",
                    lines
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let mut error = PolicyError::new(
                PolicyErrorKind::Input,
                &file.path,
                format!(
                    "`{}` is not part of sluice's policy input{also}; {}",
                    reference.text,
                    advice(&reference.key)
                ),
            );
            error.line = Some(reference.line);
            error.column = Some(reference.column);
            error
        })
        .collect()
}

/// What to write instead of `input.<key>`.
fn advice(key: &str) -> String {
    const PLAN_KEYS: [&str; 14] = [
        "format_version",
        "terraform_version",
        "resource_changes",
        "resource_drift",
        "planned_values",
        "prior_state",
        "configuration",
        "output_changes",
        "relevant_attributes",
        "checks",
        "applyable",
        "complete",
        "errored",
        "timestamp",
    ];
    const OBJECT_KEYS: [&str; 10] = [
        "kind",
        "apiVersion",
        "metadata",
        "spec",
        "data",
        "stringData",
        "status",
        "items",
        "rules",
        "subjects",
    ];
    match key {
        _ if PLAN_KEYS.contains(&key) => format!(
            "the Terraform plan is `input.terraform` (write `input.terraform.{key}`)"
        ),
        "dags" | "import_errors" | "files" | "validated" => format!(
            "the DAG folder's facts are `input.airflow` (write `input.airflow.{key}`)"
        ),
        "models" | "tracking_uri" => format!(
            "the model decisions are `input.mlflow` (write `input.mlflow.{key}`); a pins file is no longer an input"
        ),
        "objects" | "namespace" => format!(
            "the rendered objects are `input.kubernetes` (write `input.kubernetes.{key}`)"
        ),
        _ if OBJECT_KEYS.contains(&key) => format!(
            "one Kubernetes object is no longer the whole input; the rendered objects are `input.kubernetes.objects` (write `some manifest in input.kubernetes.objects` and read `manifest.{key}`)"
        ),
        "variables" => "a plan's variables are `input.terraform.variables`, Airflow's are `input.airflow.variables`".to_owned(),
        "environment" => "the environment is `data.sluice.context.environment` (or the domain's own, e.g. `input.kubernetes.environment`)".to_owned(),
        _ => format!(
            "the input holds only `input.terraform`, `input.kubernetes`, `input.airflow` and `input.mlflow`; read `{key}` under the domain it belongs to"
        ),
    }
}

/// One `input.<key>` or `input["<key>"]` in the text.
#[derive(Debug, PartialEq, Eq)]
struct Reference {
    /// The reference as written, e.g. `input.resource_changes`.
    text: String,
    key: String,
    line: u32,
    column: u32,
}

/// Every reference to a key of `input`, skipping comments and string literals. `input` must
/// start a reference (not follow a dot, as in `data.input`) and be followed directly by `.key`
/// or `["key"]`; `input` alone, `input[x]` and `with input as` are not references to a key.
fn references(text: &str) -> Vec<Reference> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let (mut index, mut line, mut line_start) = (0, 1u32, 0);
    let is_identifier = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while index < chars.len() {
        let c = chars[index];
        match c {
            '\n' => {
                line += 1;
                line_start = index + 1;
                index += 1;
            }
            '#' => {
                while index < chars.len() && chars[index] != '\n' {
                    index += 1;
                }
            }
            '"' => index = skip_quoted(&chars, index),
            '`' => {
                index += 1;
                while index < chars.len() && chars[index] != '`' {
                    if chars[index] == '\n' {
                        line += 1;
                        line_start = index + 1;
                    }
                    index += 1;
                }
                index += 1;
            }
            _ if c.is_ascii_alphabetic() || c == '_' => {
                let start = index;
                while index < chars.len() && is_identifier(chars[index]) {
                    index += 1;
                }
                let word: String = chars[start..index].iter().collect();
                let after_dot = start > 0 && chars[start - 1] == '.';
                if word != "input" || after_dot {
                    continue;
                }
                let key = match chars.get(index) {
                    Some('.') => {
                        let key_start = index + 1;
                        let mut key_end = key_start;
                        while key_end < chars.len() && is_identifier(chars[key_end]) {
                            key_end += 1;
                        }
                        Some((
                            chars[key_start..key_end].iter().collect::<String>(),
                            key_end,
                        ))
                    }
                    Some('[') => {
                        let mut quote = index + 1;
                        while chars.get(quote).is_some_and(|c| *c == ' ') {
                            quote += 1;
                        }
                        if chars.get(quote) == Some(&'"') {
                            let end = skip_quoted(&chars, quote);
                            let key: String =
                                chars[quote + 1..end.saturating_sub(1)].iter().collect();
                            let close = chars[end..]
                                .iter()
                                .position(|c| *c == ']')
                                .map_or(end, |offset| end + offset + 1);
                            Some((key, close))
                        } else {
                            None
                        }
                    }
                    _ => None,
                };
                if let Some((key, end)) = key.filter(|(key, _)| !key.is_empty()) {
                    found.push(Reference {
                        text: chars[start..end].iter().collect(),
                        key,
                        line,
                        column: u32::try_from(start - line_start + 1).unwrap_or(u32::MAX),
                    });
                    index = end;
                }
            }
            _ => index += 1,
        }
    }
    found
}

/// The index just past the string literal that starts at `start` (a `"`); escapes are skipped
/// and a string never spans lines.
fn skip_quoted(chars: &[char], start: usize) -> usize {
    let mut index = start + 1;
    while index < chars.len() {
        match chars[index] {
            '\\' => index += 2,
            '"' => return index + 1,
            '\n' => return index,
            _ => index += 1,
        }
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(path: &str, text: &str) -> Vec<String> {
        input_references(&SourceFile {
            path: path.to_owned(),
            text: text.to_owned(),
        })
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn a_conftest_terraform_policy_is_told_where_the_plan_went() {
        let text = "package old\n\nimport rego.v1\n\n# Reads input.resource_changes.\ndeny contains msg if {\n\tsome change in input.resource_changes\n\tmsg := \"input.kind in a string\"\n}\n";
        assert_eq!(
            lint("policies/old.rego", text),
            [
                "policies/old.rego:7:17: unknown input: `input.resource_changes` is not part of sluice's policy input; the Terraform plan is `input.terraform` (write `input.terraform.resource_changes`)"
            ]
        );
    }

    #[test]
    fn every_stray_reference_is_named_with_its_fix() {
        let text = "package k\nx := input.kind\ny := input[\"metadata\"].name\nz := input.dags\nw := input.models\nv := input.environment\nu := input.anything\n";
        let errors = lint("k.rego", text);
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(errors[0].starts_with("k.rego:2:6: unknown input: `input.kind` is not part of sluice's policy input; one Kubernetes object is no longer the whole input"), "{}", errors[0]);
        assert!(
            errors[0]
                .contains("`some manifest in input.kubernetes.objects` and read `manifest.kind`")
        );
        assert!(
            errors[1].starts_with("k.rego:3:6: unknown input: `input[\"metadata\"]`"),
            "{}",
            errors[1]
        );
        assert!(
            errors[2].contains("write `input.airflow.dags`"),
            "{}",
            errors[2]
        );
        assert!(
            errors[3].contains("write `input.mlflow.models`"),
            "{}",
            errors[3]
        );
        assert!(
            errors[4].contains("`data.sluice.context.environment`"),
            "{}",
            errors[4]
        );
        assert!(
            errors[5].contains("read `anything` under the domain it belongs to"),
            "{}",
            errors[5]
        );
    }

    #[test]
    fn domains_tests_comments_strings_and_other_names_pass() {
        let text = concat!(
            "package ok_test\n",
            "x := input.terraform.resource_changes\n",
            "y := input[\"kubernetes\"].objects\n",
            "z := [d | some d in input.airflow.dags]\n",
            "m := input.mlflow\n",
            "# input.resource_changes in a comment\n",
            "s := \"input.resource_changes \\\" input.kind\"\n",
            "r := `input.dags\n input.models`\n",
            "a := my_input.kind\n",
            "b := data.input.kind\n",
            "c := input\n",
            "d := input[key]\n",
            "test_x if { count(deny) == 0 with input as {\"resource_changes\": []} }\n",
            "test_y if { count(deny) == 0 with input.terraform as {\"resource_changes\": []} }\n",
        );
        assert_eq!(lint("ok_test.rego", text), Vec::<String>::new());
    }

    #[test]
    fn a_partial_replacement_of_an_old_key_in_a_test_is_named() {
        let text = "package t_test\n\ntest_a if {\n  count(deny) == 0 with input.resource_changes as []\n}\n";
        let errors = lint("t_test.rego", text);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("t_test.rego:4:25: unknown input: `input.resource_changes`"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_key_read_on_several_lines_is_one_error_listing_them() {
        let text = "package p\nx := input.dags\ny := [d | some d in input.dags; d.owner == input.dags[0].owner]\nz := input.models\nw := input.dags\n";
        let errors = lint("p.rego", text);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("p.rego:2:6: unknown input: `input.dags` is not part of sluice's policy input (also lines 3, 5); the DAG folder's facts are `input.airflow`"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].starts_with(
                "p.rego:4:6: unknown input: `input.models` is not part of sluice's policy input; "
            ),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn lines_count_past_raw_strings_that_span_lines() {
        let text = "package p\nx := `one\ntwo`\ny := input.spec\n";
        let errors = lint("p.rego", text);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("p.rego:4:6:"), "{}", errors[0]);
    }
}
