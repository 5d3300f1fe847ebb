//! From a `build` step as written to a `BuildRequest`: every template rendered (image, tags,
//! build arguments, labels, credentials), names checked, credentials taken from the step or the
//! Docker `config.json`. The configured tags are a trusted run's; a member run gets its one tag
//! of its own instead (`trust.rs`). Collects every problem instead of stopping at the first. No
//! IO but reading the Docker `config.json`.

use super::reference::{ImageName, render_tags};
use super::registry::{self, Credentials};
use super::trust::member_tag;
use super::{BuildInputs, BuildRequest, CONTEXT_DIGEST_LABEL};
use crate::config::build::BuildStep;
use crate::config::expr;
use crate::model::TrustLevel;
use crate::steps::StepContext;
use std::collections::BTreeMap;

/// Renders the step's templates and checks its names; every problem at once.
pub(super) fn request_from_step(
    step: &BuildStep,
    step_context: &StepContext,
) -> Result<BuildRequest, Vec<String>> {
    let template_context = expr::Context {
        values: step_context.template_values.clone(),
        job_status: expr::JobStatusView {
            any_failed: false,
            any_cancelled: false,
        },
    };
    let mut problems = Vec::new();
    let mut render = |what: &str, text: &str| -> String {
        expr::render(text, &template_context).unwrap_or_else(|problem| {
            problems.push(format!("{what}: {problem}"));
            String::new()
        })
    };
    let image_text = render("`image`", &step.image);
    let registry_text = step
        .registry
        .as_deref()
        .map(|registry| render("`registry`", registry));
    let context = render("`context`", &step.context);
    let dockerfile = render("`dockerfile`", &step.dockerfile_path());
    let args: BTreeMap<String, String> = step
        .args
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                render(&format!("build argument `{name}`"), value),
            )
        })
        .collect();
    let labels: BTreeMap<String, String> = step
        .labels
        .iter()
        .map(|(name, value)| (name.clone(), render(&format!("label `{name}`"), value)))
        .collect();
    let target = step
        .target
        .as_deref()
        .map(|target| render("`target`", target));
    let explicit_credentials = step.credentials.as_ref().map(|credentials| Credentials {
        username: render("`credentials.username`", &credentials.username),
        password: render("`credentials.password`", &credentials.password),
    });
    let image = match ImageName::parse(&image_text, registry_text.as_deref()) {
        Ok(image) => Some(image),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    let tags = if step_context.trust == TrustLevel::Trusted {
        match render_tags(&step.tags, &step_context.template_values) {
            Ok(tags) => tags,
            Err(tag_problems) => {
                problems.extend(tag_problems);
                Vec::new()
            }
        }
    } else {
        vec![member_tag(&step_context.event)]
    };
    if labels.contains_key(CONTEXT_DIGEST_LABEL) {
        problems.push(format!(
            "label `{CONTEXT_DIGEST_LABEL}` is set by sluice; remove it from `labels:`"
        ));
    }
    let (Some(image), true) = (image, problems.is_empty()) else {
        return Err(problems);
    };
    let credentials = explicit_credentials
        .filter(|credentials| !credentials.username.is_empty() || !credentials.password.is_empty())
        .or_else(|| registry::docker_config_credentials(&image.registry));
    let repository = &step_context.event.repository;
    let source = if repository.contains("://") || repository.starts_with('/') {
        repository.clone()
    } else {
        format!("https://github.com/{repository}")
    };
    Ok(BuildRequest {
        workspace: step_context.workspace.clone(),
        context,
        dockerfile,
        image,
        tags,
        inputs: BuildInputs {
            args,
            target: target.filter(|target| !target.is_empty()),
            labels,
        },
        push: step.push,
        credentials,
        revision: step_context.event.commit.clone(),
        source,
    })
}
