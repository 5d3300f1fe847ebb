//! The `preview` step kind: `preview: { environment: production }` says, on a pull request, what
//! the release its merge would become changes in that environment, target by target (the
//! Kubernetes objects against the live ones by server-side apply dry-run, the DAG files added,
//! changed and removed, the model version each alias would move to with its metrics next to the
//! current holder's, the reviewed Terraform plan), and judges it as one policy input with the
//! default branch's policies. Records `preview` (the changes per target, JSON) and `findings` as
//! job outputs for the pull-request comment; any deny, or a policy that does not load, fails the
//! step. Runs in the server: code under review is read, never run (the DAG folder is not imported
//! for a pull request; its files are judged as text), and the environment, its targets and the
//! policies come from the default branch.

use super::{StepContext, StepOutcome};
use crate::config::workflow::PreviewStep;
use crate::deploy::preview::{self, Preview};
use crate::deploy::{DeployContext, Release};
use crate::model::TrustLevel;
use crate::policy::{PolicyContext, PolicySet, Severity, SystemClock, load_sources};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub async fn execute(step: &PreviewStep, context: &StepContext) -> StepOutcome {
    if context.trust < TrustLevel::Member {
        return StepOutcome::NotStarted(format!(
            "preview does not run for {} events (a pull request from a fork); a maintainer can push the branch to this repository",
            context.trust
        ));
    }
    let Some(targets) = &context.targets else {
        return StepOutcome::NotStarted(
            "preview needs the server's deploy targets; it runs under `sluice serve`".to_owned(),
        );
    };
    let configuration_root = context
        .authority_tree
        .as_deref()
        .unwrap_or(&context.workspace);
    let mut environment =
        match super::terraform::load_environment(configuration_root, &step.environment) {
            Ok(environment) => environment,
            Err(message) => return StepOutcome::NotStarted(format!("preview step: {message}")),
        };
    if context.trust < TrustLevel::Trusted
        && let Some(airflow) = environment.targets.airflow.as_mut()
    {
        // Importing DAGs runs their code; code under review never runs on the server.
        airflow.validate = false;
    }
    let targets = match targets.targets(&context.event.repository, &environment) {
        Ok(targets) => targets,
        Err(error) => {
            return StepOutcome::NotStarted(format!(
                "preview step: the targets of {} cannot be built: {error}",
                step.environment
            ));
        }
    };
    let mut release = Release::unrecorded(
        &context.event.repository,
        &context.event.commit,
        environment.deploy_branch(),
        context.event.actor.as_deref(),
    );
    release.images = built_images(&context.template_values);
    let deploy = DeployContext {
        environment: environment.clone(),
        release,
        tree: context.workspace.clone(),
        previous: None,
        applied: Default::default(),
    };
    let preview = preview::preview(&targets, &deploy).await;
    let mut text = describe(&preview);
    let policies_dir = configuration_root.join("policies");
    let (findings, errors) = if policies_dir.is_dir() {
        match load_sources(&policies_dir).and_then(|sources| PolicySet::compile(&sources)) {
            Ok(policies) => {
                let mut policy_context = PolicyContext::at(&SystemClock);
                policy_context.environment = Some(environment.name.clone());
                policy_context.event = Some(context.event.kind.as_str().to_owned());
                policy_context.author = context.event.actor.clone();
                policy_context.commit = Some(context.event.commit.clone());
                let evaluation = preview::evaluate(&policies, &preview, &policy_context);
                let errors: Vec<String> =
                    evaluation.errors.iter().map(ToString::to_string).collect();
                (evaluation.findings, errors)
            }
            Err(errors) => (
                Vec::new(),
                errors.0.iter().map(ToString::to_string).collect(),
            ),
        }
    } else {
        (Vec::new(), Vec::new())
    };
    for finding in &findings {
        let label = match finding.severity {
            Severity::Deny => "DENY",
            Severity::Warn => "WARN",
        };
        let _ = writeln!(text, "{label}  {}: {}", finding.rule, finding.message);
    }
    for error in &errors {
        let _ = writeln!(text, "ERROR {error}");
    }
    let denials = findings
        .iter()
        .filter(|finding| finding.severity == Severity::Deny)
        .count();
    let _ = writeln!(
        text,
        "policies: {denials} denied, {} warning(s), {} error(s)",
        findings.len() - denials,
        errors.len()
    );
    let _ = context.log.send(text);
    let outputs = outputs(&preview, &findings, &errors);
    super::terraform::record_outputs(context, outputs).await;
    if denials > 0 || !errors.is_empty() {
        StepOutcome::Failed(format!(
            "the preview of {} is denied by {denials} policy finding(s) and {} policy error(s)",
            environment.name,
            errors.len()
        ))
    } else {
        StepOutcome::Exited(0)
    }
}

/// The job outputs of a preview: `environment`, `preview` (what the comment shows of each
/// target) and `findings` (each finding and policy error as `{severity, rule, message}`).
pub fn outputs(
    preview: &Preview,
    findings: &[crate::policy::Finding],
    errors: &[String],
) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    outputs.insert("environment".to_owned(), preview.environment.clone());
    outputs.insert("preview".to_owned(), shown(preview).to_string());
    let listed: Vec<serde_json::Value> = findings
        .iter()
        .map(|finding| {
            serde_json::json!({
                "severity": finding.severity,
                "rule": finding.rule,
                "message": finding.message,
            })
        })
        .chain(errors.iter().map(|error| {
            serde_json::json!({"severity": "deny", "rule": "policy error", "message": error})
        }))
        .collect();
    outputs.insert(
        "findings".to_owned(),
        serde_json::Value::Array(listed).to_string(),
    );
    outputs
}

/// Image short name → `registry/name@sha256:…` from the outputs of the jobs this one needs
/// (`build` steps record `image`), as a release pins what its merge built.
fn built_images(values: &serde_json::Value) -> BTreeMap<String, String> {
    let mut images = BTreeMap::new();
    let Some(needs) = values.get("needs").and_then(|needs| needs.as_object()) else {
        return images;
    };
    for job in needs.values() {
        if let Some(image) = job["outputs"]["image"].as_str()
            && let Some(key) = Release::image_key(image)
        {
            images.insert(key.to_owned(), image.to_owned());
        }
    }
    images
}

/// What the comment shows of each target: its changes, its problem, and the few facts a person
/// reads (model metrics, DAG validation), never whole sources or objects.
fn shown(preview: &Preview) -> serde_json::Value {
    let domains: Vec<serde_json::Value> = preview
        .domains
        .iter()
        .map(|domain| {
            let mut shown = serde_json::json!({
                "target": domain.target,
                "changes": domain.changes,
                "problem": domain.problem,
            });
            match domain.target.as_str() {
                "mlflow" => shown["models"] = domain.facts["models"].clone(),
                "airflow" => {
                    shown["validated"] = domain.facts["validated"].clone();
                    shown["import_errors"] = domain.facts["import_errors"].clone();
                    shown["dags"] = serde_json::Value::Array(
                        domain.facts["dags"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|dag| serde_json::json!({"dag_id": dag["dag_id"], "file": dag["file"]}))
                            .collect(),
                    );
                }
                _ => {}
            }
            shown
        })
        .collect();
    serde_json::json!({"environment": preview.environment, "domains": domains})
}

/// The log's account of the preview, one line per change.
fn describe(preview: &Preview) -> String {
    let mut text = format!("preview of {}:\n", preview.environment);
    for domain in &preview.domains {
        match &domain.problem {
            Some(problem) => {
                let _ = writeln!(text, "  {}: could not preview: {problem}", domain.target);
            }
            None if domain.changes.is_empty() => {
                let _ = writeln!(text, "  {}: no change", domain.target);
            }
            None => {
                let _ = writeln!(
                    text,
                    "  {}: {} change(s)",
                    domain.target,
                    domain.changes.len()
                );
                for change in &domain.changes {
                    let _ = writeln!(
                        text,
                        "    {:?} {}{}",
                        change.action,
                        change.address,
                        change
                            .detail
                            .as_deref()
                            .map(|detail| format!(" ({detail})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    text
}
