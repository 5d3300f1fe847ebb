//! The policy input for rendered objects (`input.kubernetes`), and checking it against the
//! Rego policies under a directory with the `policy` engine. Knows nothing of the API server.

use super::render::RenderedObject;
use crate::deploy::{Release, TargetError};
use crate::policy::{PolicyContext, PolicySet, SystemClock, load_sources};
use serde_json::{Value, json};
use std::path::Path;

/// `input.kubernetes`: the environment, its default namespace and every rendered object as it
/// would be applied (images pinned, labels set). `metadata.namespace` is the manifest's own:
/// whether a kind is namespaced is known only from the API server, which the policies run before,
/// so an object without one goes to `namespace` if its kind is namespaced.
pub fn policy_facts(environment: &str, namespace: &str, objects: &[RenderedObject]) -> Value {
    let manifests: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut manifest = object.manifest.clone();
            if let Some(namespace) = &object.namespace {
                manifest["metadata"]["namespace"] = json!(namespace);
            }
            manifest
        })
        .collect();
    json!({"environment": environment, "namespace": namespace, "objects": manifests})
}

/// The whole policy input for a Kubernetes-only check: `{"kubernetes": facts}`.
pub fn policy_input(environment: &str, namespace: &str, objects: &[RenderedObject]) -> Value {
    json!({"kubernetes": policy_facts(environment, namespace, objects)})
}

/// Evaluates the policies under `directory` (e.g. `policies/`) on the rendered objects;
/// denials and policy errors reject the release, warnings are returned.
pub fn check_policies(
    directory: &Path,
    environment: &str,
    namespace: &str,
    objects: &[RenderedObject],
    release: &Release,
) -> Result<Vec<String>, TargetError> {
    let sources = load_sources(directory).map_err(|errors| {
        TargetError::Configuration(format!("kubernetes policies cannot be read: {errors}"))
    })?;
    let policies = PolicySet::compile(&sources).map_err(|errors| {
        TargetError::Configuration(format!("kubernetes policies do not compile: {errors}"))
    })?;
    let mut context = PolicyContext::at(&SystemClock);
    context.environment = Some(environment.to_owned());
    context.event = Some("deploy".to_owned());
    context.author = release.author.clone();
    context.commit = Some(release.commit.clone());
    context.release = Some(release.id.clone());
    let evaluation = policies.evaluate(&policy_input(environment, namespace, objects), &context);
    let mut problems: Vec<String> = evaluation
        .denials()
        .map(|finding| format!("{}: {}", finding.rule, finding.message))
        .collect();
    problems.extend(evaluation.errors.iter().map(|error| error.to_string()));
    if !problems.is_empty() {
        return Err(TargetError::Rejected(format!(
            "release {} refused by policy in {environment}: {}",
            release.id,
            problems.join("; ")
        )));
    }
    Ok(evaluation
        .findings
        .iter()
        .filter(|finding| finding.severity != crate::policy::Severity::Deny)
        .map(|finding| format!("{}: {}", finding.rule, finding.message))
        .collect())
}
