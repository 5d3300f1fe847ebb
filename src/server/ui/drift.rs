//! The board's drift section of an environment: each domain's last check (clean, drifted, or
//! could not check and why), the objects that differ with what the release says and what is
//! there, and the Terraform plan kept for review with who may apply it. The same view as
//! `GET /api/drift` (`deploy::drift::view`).

use super::environments::{ActionForm, given, path_segment};
use super::layout::{status_badge, time};
use super::releases::with_repository;
use super::session::Viewer;
use super::{UiError, done};
use crate::deploy::drift::EnvironmentView;
use crate::model::access::Role;
use crate::scheduler::promotion::{self, DriftAskError};
use crate::server::AppState;
use crate::store::CheckOutcome;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

/// The section, and for approvers a button that checks the environment now.
pub(super) fn drift_section(
    viewer: &Viewer,
    environment: &str,
    repository: Option<&str>,
    view: Option<&EnvironmentView>,
) -> Markup {
    html! {
        (drift_markup(view))
        @if viewer.may(Role::Approver) {
            form method="post" action=(format!("/environments/{}/drift", path_segment(environment))) {
                (viewer.csrf_field())
                @if let Some(repository) = repository { input type="hidden" name="repository" value=(repository); }
                button type="submit" id=(format!("drift-{environment}")) { "Check drift now" }
            }
        }
    }
}

/// `POST /environments/{environment}/drift`: an approver checks the environment now, healing
/// what its `drift.heal` allows, through the promotion service like `POST /api/drift/{env}`.
pub(super) async fn check_now(
    state: AppState,
    viewer: Viewer,
    environment: String,
    form: ActionForm,
) -> Result<Response, UiError> {
    let principal = viewer.act(form.csrf.as_deref(), Role::Approver, "checking drift")?;
    let asked = promotion::ask(
        state.drift_asks.as_ref(),
        given(&form.repository).map(str::to_owned),
        environment,
        None,
        principal.recorded_as(),
    )
    .await;
    let checked = match asked {
        Ok(checked) => checked,
        Err(DriftAskError::NotFound(message)) => {
            return Err(UiError::not_found(message).seen_by(&viewer));
        }
        Err(
            DriftAskError::Refused(message)
            | DriftAskError::Unavailable(message)
            | DriftAskError::Failed(message),
        ) => {
            return Err(UiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Drift not checked",
                message,
            )
            .seen_by(&viewer));
        }
    };
    let mut lines = Vec::new();
    for environment in &checked {
        for domain in &environment.domains {
            let healed = domain
                .healed
                .as_ref()
                .map(|healed| format!("healed {}; ", healed.drifts.len()))
                .unwrap_or_default();
            let outcome = match domain.outcome {
                CheckOutcome::Clean => "no drift".to_owned(),
                CheckOutcome::Drifted => format!("{} differ", domain.drifts.len()),
                CheckOutcome::CouldNotCheck => format!(
                    "could not check: {}",
                    domain.reason.as_deref().unwrap_or("unknown")
                ),
            };
            lines.push(format!("{}: {healed}{outcome}", domain.domain));
        }
        if let Some(skipped) = &environment.skipped {
            lines.push(format!("not checked: {skipped}"));
        }
    }
    let back = with_repository("/environments", given(&form.repository));
    Ok(done(&viewer, "Drift checked", &lines.join("; "), &back).into_response())
}

fn drift_markup(view: Option<&EnvironmentView>) -> Markup {
    let Some(view) = view else {
        return html! { p.muted { "Not checked yet: drift is checked once a release runs here." } };
    };
    html! {
        ul.drift {
            @for domain in &view.domains {
                li {
                    @match domain.outcome {
                        CheckOutcome::Clean => { (status_badge("clean")) " " (domain.domain) ": no drift" }
                        CheckOutcome::Drifted => { (status_badge("drifted")) " " (domain.domain) ": "
                            (domain.drift.len()) " differ from " (domain.release) }
                        CheckOutcome::CouldNotCheck => { (status_badge("could_not_check")) " " (domain.domain) ": could not check: "
                            (domain.reason.as_deref().unwrap_or("unknown")) }
                    }
                    " (checked " (time(domain.checked_at)) ")"
                    @if !domain.drift.is_empty() {
                        table.drift {
                            caption.muted { (domain.domain) " objects that differ from the release" }
                            thead { tr { th scope="col" { "Object" } th scope="col" { "Release says" } th scope="col" { "Found" } th scope="col" { "Since" } } }
                            tbody {
                                @for record in &domain.drift {
                                    tr {
                                        td { code { (record.object) } }
                                        td { code { (record.expected) } }
                                        td { code { (record.actual) } }
                                        td { (time(record.first_seen)) }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(review) = &domain.review {
                        p {
                            "Plan kept for review: " code { (review["plan"].as_str().unwrap_or("?")) }
                            " (" (review["counts"].as_str().unwrap_or("")) ")"
                        }
                        @if let Some(summary) = review["summary"].as_str() { pre { (summary) } }
                        @if let Some(who) = review["who_may_apply"].as_str() { p { "Who may apply it: " (who) } }
                    }
                }
            }
        }
    }
}
