//! A `preview` step's outputs as sections of the pull-request comment: per environment, what the
//! merge would change in Kubernetes (objects and the fields a server-side apply dry-run says
//! would change), in Airflow (DAG files added, changed and removed, and how they were checked) and
//! in MLflow (the version each alias would move to, its metrics next to the current holder's),
//! plus the policy findings over the one input. Terraform's section comes from its plan step.

use crate::forge::comment::{PolicyOutcome, PolicyResult, Section, SectionKind, escape};
use serde_json::Value;
use std::fmt::Write as _;

/// Sections and policy results from one job's `preview` and `findings` outputs.
pub fn preview_contributions(
    outputs: &std::collections::BTreeMap<String, String>,
) -> Option<(Vec<Section>, Vec<PolicyResult>)> {
    let preview: Value = serde_json::from_str(outputs.get("preview")?).ok()?;
    let environment = preview["environment"].as_str().unwrap_or("").to_owned();
    let mut sections = Vec::new();
    for domain in preview["domains"].as_array().into_iter().flatten() {
        let target = domain["target"].as_str().unwrap_or("");
        let kind = match target {
            "kubernetes" => SectionKind::Manifests,
            "airflow" => SectionKind::Dags,
            "mlflow" => SectionKind::Models,
            // The plan job shows Terraform with its summary.
            _ => continue,
        };
        let changes = domain["changes"].as_array().cloned().unwrap_or_default();
        let changing: Vec<&Value> = changes
            .iter()
            .filter(|change| change["action"] != "no_op")
            .collect();
        let mut body = String::new();
        if let Some(problem) = domain["problem"].as_str() {
            let _ = writeln!(body, "could not preview: {}", escape::inline(problem));
        } else if target == "mlflow" {
            body.push_str(&models_table(domain));
        } else if changing.is_empty() {
            body.push_str("no change\n");
        } else {
            let lines: Vec<String> = changing
                .iter()
                .map(|change| {
                    format!(
                        "{} {}{}",
                        symbol(change["action"].as_str().unwrap_or("")),
                        change["address"].as_str().unwrap_or(""),
                        change["detail"]
                            .as_str()
                            .map(|detail| format!("  ({detail})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            body.push_str(&escape::code_block(&lines.join("\n"), "diff"));
        }
        if target == "airflow" && domain["problem"].is_null() {
            body.push_str(&dag_checks(domain));
        }
        sections.push(Section {
            environment: environment.clone(),
            kind,
            title: title(target, changing.len(), domain),
            body_markdown: body,
        });
    }
    let findings: Vec<Value> = outputs
        .get("findings")
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let mut policies = Vec::new();
    if findings.is_empty() {
        policies.push(PolicyResult {
            outcome: PolicyOutcome::Passed,
            rule: format!("all domains ({environment})"),
            message: String::new(),
        });
    }
    for finding in findings {
        policies.push(PolicyResult {
            outcome: if finding["severity"] == "warn" {
                PolicyOutcome::Warn
            } else {
                PolicyOutcome::Deny
            },
            rule: finding["rule"].as_str().unwrap_or("").to_owned(),
            message: {
                // Most messages name their environment already.
                let message = finding["message"].as_str().unwrap_or("");
                if message.starts_with(&format!("{environment}: ")) {
                    message.to_owned()
                } else {
                    format!("{environment}: {message}")
                }
            },
        });
    }
    Some((sections, policies))
}

fn symbol(action: &str) -> &'static str {
    match action {
        "create" => "+",
        "delete" => "-",
        "replace" => "±",
        _ => "~",
    }
}

fn title(target: &str, changing: usize, domain: &Value) -> String {
    if domain["problem"].is_string() {
        return "could not preview".to_owned();
    }
    match target {
        "kubernetes" => format!("{changing} object(s) would change (server-side apply dry-run)"),
        "airflow" => format!("{changing} DAG file(s) added, changed or removed"),
        _ => {
            let moving = domain["models"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|model| model["moves"] == true)
                .count();
            format!("{moving} model alias(es) would move")
        }
    }
}

/// | model | alias | now | would serve | metrics |
fn models_table(domain: &Value) -> String {
    let models = domain["models"].as_array().cloned().unwrap_or_default();
    if models.is_empty() {
        return "no models are pinned here\n".to_owned();
    }
    let mut text = String::from(
        "| model | alias | now | would serve | metrics of the new version | metrics now |\n|---|---|---|---|---|---|\n",
    );
    for model in &models {
        let metrics = |value: &Value| -> String {
            let text: Vec<String> = value
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, value)| format!("{name} {value}"))
                .collect();
            if text.is_empty() {
                "—".to_owned()
            } else {
                escape::inline(&text.join(", "))
            }
        };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {}{} | {} | {} |",
            escape::inline(model["model"].as_str().unwrap_or("")),
            escape::inline(model["alias"].as_str().unwrap_or("")),
            model["from"]
                .as_str()
                .map(|from| format!("v{}", escape::inline(from)))
                .unwrap_or_else(|| "none".to_owned()),
            format_args!("v{}", escape::inline(model["to"].as_str().unwrap_or("?"))),
            if model["moves"] == true {
                ""
            } else {
                " (unchanged)"
            },
            metrics(&model["metrics"]),
            metrics(&model["current_metrics"]),
        );
    }
    text
}

/// How the DAG folder was checked, and what Airflow's import said when it was imported.
fn dag_checks(domain: &Value) -> String {
    if domain["validated"] != true {
        return "\nDAG files are judged as text here: code under review is not imported on the server. The DAG lint job imports them in a container; the deploy imports them before anything is written.\n".to_owned();
    }
    let errors = domain["import_errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let dags = domain["dags"].as_array().map(Vec::len).unwrap_or(0);
    if errors.is_empty() {
        format!("\nvalidated: {dags} DAG(s) import without errors\n")
    } else {
        let lines: Vec<String> = errors
            .iter()
            .map(|error| {
                format!(
                    "{}: {}",
                    error["file"].as_str().unwrap_or(""),
                    error["message"].as_str().unwrap_or("")
                )
            })
            .collect();
        format!(
            "\nimport errors:\n{}",
            escape::code_block(&lines.join("\n"), "")
        )
    }
}
