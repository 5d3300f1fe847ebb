//! The board's drift section of an environment: each domain's last check (clean, drifted, or
//! could not check and why), the objects that differ with what the release says and what is
//! there, and the Terraform plan kept for review with who may apply it. The same view as
//! `GET /api/drift` (`deploy::drift::view`).

use super::layout::{status_badge, time};
use crate::deploy::drift::EnvironmentView;
use crate::store::CheckOutcome;
use maud::{Markup, html};

pub(super) fn drift_markup(view: Option<&EnvironmentView>) -> Markup {
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
