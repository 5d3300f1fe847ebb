//! The history page (`/history`): every gate decision, approval, request, deployment, retry and
//! rollback the promotion recorded, newest first, with who did it, filtered by environment,
//! action, person and release. Reads with the same query as `/api/history`.

use super::environments::{given, repository_or_page};
use super::layout::{Nav, page, status_badge, time};
use super::releases::release_href;
use super::{UiError, Viewer, blocking};
use crate::model::access::login_of;
use crate::server::AppState;
use crate::store::AuditEntry;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Rows shown at most; the filters narrow the rest.
const MOST_ROWS: usize = 500;

/// What the history records, in the order the filter offers them.
const ACTIONS: [&str; 9] = [
    "gate", "approve", "request", "promote", "manual", "rollback", "retry", "reject", "release",
];

#[derive(Clone, Debug, Default, Deserialize)]
pub struct HistoryQuery {
    pub repository: Option<String>,
    pub environment: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub release: Option<String>,
}

impl HistoryQuery {
    /// Whether an entry passes the filters the store query does not apply.
    fn keeps(&self, entry: &AuditEntry) -> bool {
        given(&self.action).is_none_or(|action| entry.action == action)
            && given(&self.actor).is_none_or(|actor| {
                entry.actor.as_deref().is_some_and(|recorded| {
                    recorded.eq_ignore_ascii_case(actor)
                        || login_of(recorded).eq_ignore_ascii_case(login_of(actor))
                })
            })
            && given(&self.release).is_none_or(|release| entry.release.as_deref() == Some(release))
    }
}

struct HistoryView {
    repository: String,
    /// Newest first, filtered.
    entries: Vec<AuditEntry>,
    /// Every environment and action the repository's history names, for the filter.
    environments: Vec<String>,
    actions: Vec<String>,
}

/// `GET /history`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, UiError> {
    let deploy = state.deploy_store.clone();
    let wanted = query.clone();
    let view = blocking(move || {
        let store = deploy.as_ref();
        let repository = match repository_or_page(store, given(&wanted.repository))? {
            Ok(repository) => repository,
            Err(explained) => return Ok(Err(explained)),
        };
        let everything = store.audit(&repository, None).map_err(UiError::internal)?;
        let environments: BTreeSet<String> = everything
            .iter()
            .filter_map(|entry| entry.environment.clone())
            .collect();
        let mut actions: Vec<String> = ACTIONS.iter().map(|action| action.to_string()).collect();
        for entry in &everything {
            if !actions.contains(&entry.action) {
                actions.push(entry.action.clone());
            }
        }
        let entries = match given(&wanted.environment) {
            None => everything,
            Some(environment) => store
                .audit(&repository, Some(environment))
                .map_err(UiError::internal)?,
        };
        Ok(Ok(HistoryView {
            repository,
            entries: entries
                .into_iter()
                .rev()
                .filter(|entry| wanted.keeps(entry))
                .collect(),
            environments: environments.into_iter().collect(),
            actions,
        }))
    })
    .await
    .map_err(|error| error.seen_by(&viewer))?;
    let body = match view {
        Err(explained) => html! { h1 { "History" } (explained) },
        Ok(view) => html! {
            h1 { "History" }
            (filters(&query, &view))
            (table(&query, &view))
        },
    };
    Ok(page(&viewer, "History", Nav::History, body).into_response())
}

fn filters(query: &HistoryQuery, view: &HistoryView) -> Markup {
    let chosen = |value: &Option<String>| given(value).unwrap_or_default().to_owned();
    let environment = chosen(&query.environment);
    let action = chosen(&query.action);
    html! {
        form.filters method="get" action="/history" role="search" aria-label="Filter the history" {
            @if let Some(repository) = given(&query.repository) {
                input type="hidden" name="repository" value=(repository);
            }
            label for="filter-environment" {
                "Environment"
                select #filter-environment name="environment" {
                    option value="" selected[environment.is_empty()] { "any" }
                    @for name in &view.environments {
                        option value=(name) selected[environment == *name] { (name) }
                    }
                }
            }
            label for="filter-action" {
                "Action"
                select #filter-action name="action" {
                    option value="" selected[action.is_empty()] { "any" }
                    @for name in &view.actions {
                        option value=(name) selected[action == *name] { (name) }
                    }
                }
            }
            label for="filter-actor" {
                "Person"
                input #filter-actor type="text" name="actor" value=(chosen(&query.actor)) placeholder="alice";
            }
            label for="filter-release" {
                "Release"
                input #filter-release type="text" name="release" value=(chosen(&query.release)) placeholder="r12-0123456789ab";
            }
            button type="submit" { "Filter" }
        }
    }
}

fn table(query: &HistoryQuery, view: &HistoryView) -> Markup {
    let chosen = given(&query.repository);
    let shown = view.entries.len().min(MOST_ROWS);
    html! {
        table #history {
            caption.muted {
                (view.repository) ": newest first"
                @if view.entries.len() > MOST_ROWS {
                    "; the newest " (MOST_ROWS) " of " (view.entries.len()) " are shown, narrow them with the filters"
                }
                "."
            }
            thead { tr {
                th scope="col" { "When" } th scope="col" { "Environment" } th scope="col" { "Release" }
                th scope="col" { "Action" } th scope="col" { "Outcome" } th scope="col" { "Person" }
                th scope="col" { "Why" }
            } }
            tbody {
                @if view.entries.is_empty() { tr { td colspan="7" { "Nothing recorded matches." } } }
                @for entry in &view.entries[..shown] {
                    tr data-action=(entry.action) {
                        td { (time(entry.at)) }
                        td { (entry.environment.as_deref().unwrap_or("")) }
                        td { @if let Some(release) = &entry.release {
                            a href=(release_href(release, chosen)) { (release) }
                        } }
                        td { (entry.action) }
                        td { (status_badge(&entry.outcome)) }
                        td.actor { @match &entry.actor {
                            Some(actor) => (actor),
                            None => span.muted { "sluice (automatic)" },
                        } }
                        td { (entry.reason) }
                    }
                }
            }
        }
    }
}
