//! The runs page (`/`): newest first, filtered by repository, branch, event and status, each row
//! with its pipeline, commit, duration and job badges. Its rows come back alone with
//! `?fragment=rows`, which the script fetches when `/events` says a run changed. The filter is
//! the same `RunFilter` `/api/runs` reads with.

use super::layout::{Nav, duration, page, status_badge, time};
use super::{UiError, Viewer};
use crate::model::{EventKind, Run, Status, short_commit};
use crate::server::AppState;
use crate::store::{CommitSummary, RunFilter};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Rows on one page.
const PAGE_SIZE: usize = 50;

/// The filters of the runs page and of `/api/runs`; empty fields mean "any".
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunsQuery {
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub event: Option<String>,
    pub status: Option<String>,
    pub commit: Option<String>,
    /// Runs older than this id: the next page.
    pub before: Option<i64>,
    pub limit: Option<usize>,
    /// `rows`: only the table's rows, for live updates.
    pub fragment: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

impl RunsQuery {
    /// The store's filter, or what is wrong with a field.
    pub fn filter(&self, default_limit: usize) -> Result<RunFilter, String> {
        let event = given(&self.event)
            .map(|text| {
                EventKind::parse(text).ok_or_else(|| {
                    format!("event `{text}` is not one of push, pull_request, merge")
                })
            })
            .transpose()?;
        let status = given(&self.status)
            .map(|text| {
                Status::parse(text).ok_or_else(|| {
                    format!(
                        "status `{text}` is not one of queued, running, succeeded, failed, skipped, cancelled"
                    )
                })
            })
            .transpose()?;
        let git_ref = given(&self.branch).map(|branch| {
            if branch.starts_with("refs/") {
                branch.to_owned()
            } else {
                format!("refs/heads/{branch}")
            }
        });
        Ok(RunFilter {
            repository: given(&self.repository).map(str::to_owned),
            commit: given(&self.commit).map(str::to_owned),
            git_ref,
            event,
            status,
            before: self.before,
            limit: Some(self.limit.unwrap_or(default_limit).clamp(1, 1000)),
        })
    }
}

/// Runs and the summaries of their commits, as the page shows them.
pub struct RunsView {
    pub runs: Vec<Run>,
    pub commits: BTreeMap<(String, String), CommitSummary>,
}

/// Reads a page of runs with their commits.
pub fn read_runs(store: &dyn crate::store::Store, filter: &RunFilter) -> anyhow::Result<RunsView> {
    let runs = store.list_runs(filter)?;
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in &runs {
        let shas = wanted.entry(run.repository.clone()).or_default();
        if !shas.contains(&run.commit) {
            shas.push(run.commit.clone());
        }
    }
    let mut commits = BTreeMap::new();
    for (repository, shas) in wanted {
        for commit in store.commit_summaries(&repository, &shas)? {
            commits.insert((commit.repository.clone(), commit.sha.clone()), commit);
        }
    }
    Ok(RunsView { runs, commits })
}

/// `GET /`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<RunsQuery>,
) -> Result<Response, UiError> {
    let filter = query.filter(PAGE_SIZE).map_err(|message| {
        UiError::new(StatusCode::BAD_REQUEST, "Bad filter", message).seen_by(&viewer)
    })?;
    let store = state.store.clone();
    let view =
        super::blocking(move || read_runs(store.as_ref(), &filter).map_err(UiError::internal))
            .await?;
    if query.fragment.as_deref() == Some("rows") {
        return Ok(rows(&view).into_response());
    }
    let repositories: Vec<String> = state.repositories.keys().cloned().collect();
    let older = (view.runs.len() >= PAGE_SIZE)
        .then(|| view.runs.last().map(|run| run.id))
        .flatten();
    let refresh = refresh_url(&query);
    let body = html! {
        h1 { "Runs" }
        (filters(&query, &repositories))
        table #runs {
            caption.muted { "Newest first; updates as runs change." }
            thead { tr {
                th scope="col" { "Run" } th scope="col" { "Pipeline" } th scope="col" { "Commit" }
                th scope="col" { "Ref" } th scope="col" { "Event" } th scope="col" { "Status" }
                th scope="col" { "Duration" } th scope="col" { "Jobs" }
            } }
            tbody data-refresh=(refresh) { (rows(&view)) }
        }
        @if let Some(older) = older {
            p { a href=(next_page(&query, older)) { "Older runs" } }
        }
    };
    Ok(page(&viewer, "Runs", Nav::Runs, body).into_response())
}

fn query_string(query: &RunsQuery, extra: &[(&str, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("repository", &query.repository),
        ("branch", &query.branch),
        ("event", &query.event),
        ("status", &query.status),
    ] {
        if let Some(value) = given(value) {
            serializer.append_pair(key, value);
        }
    }
    for (key, value) in extra {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

fn refresh_url(query: &RunsQuery) -> String {
    let mut extra = vec![("fragment", "rows".to_owned())];
    if let Some(before) = query.before {
        extra.push(("before", before.to_string()));
    }
    format!("/?{}", query_string(query, &extra))
}

fn next_page(query: &RunsQuery, older: i64) -> String {
    format!(
        "/?{}",
        query_string(query, &[("before", older.to_string())])
    )
}

fn filters(query: &RunsQuery, repositories: &[String]) -> Markup {
    let chosen = |value: &Option<String>| given(value).unwrap_or_default().to_owned();
    let select = |name: &str, label: &str, options: &[&str], current: String| {
        html! {
            label for=(format!("filter-{name}")) {
                (label)
                select id=(format!("filter-{name}")) name=(name) {
                    option value="" selected[current.is_empty()] { "any" }
                    @for option in options {
                        option value=(option) selected[current == *option] { (option.replace('_', " ")) }
                    }
                }
            }
        }
    };
    let repository_names: Vec<&str> = repositories.iter().map(String::as_str).collect();
    html! {
        form.filters method="get" action="/" role="search" aria-label="Filter runs" {
            (select("repository", "Repository", &repository_names, chosen(&query.repository)))
            label for="filter-branch" {
                "Branch"
                input #filter-branch type="text" name="branch" value=(chosen(&query.branch)) placeholder="main";
            }
            (select("event", "Event", &["push", "pull_request", "merge"], chosen(&query.event)))
            (select("status", "Status", &["queued", "running", "succeeded", "failed", "skipped", "cancelled"], chosen(&query.status)))
            button type="submit" { "Filter" }
        }
    }
}

/// A run's length: finished minus created, or how long it has been going.
pub fn run_duration(run: &Run) -> String {
    let end = run.finished_at.unwrap_or_else(chrono::Utc::now);
    duration((end - run.created_at).num_seconds())
}

fn rows(view: &RunsView) -> Markup {
    html! {
        @if view.runs.is_empty() {
            tr { td colspan="8" { "No runs match." } }
        }
        @for run in &view.runs {
            @let commit = view.commits.get(&(run.repository.clone(), run.commit.clone()));
            tr data-run=(run.id) {
                td { a href=(format!("/runs/{}", run.id)) { "#" (run.id) } }
                td { (run.pipeline) br; span.muted { (run.repository) } }
                td {
                    code { (short_commit(&run.commit)) }
                    @if let Some(commit) = commit {
                        " " (commit.title) br; span.muted { (commit.author) }
                    }
                }
                td { (run.git_ref.strip_prefix("refs/heads/").unwrap_or(&run.git_ref)) }
                td { (run.event.as_str().replace('_', " ")) }
                td { (status_badge(run.status.as_str())) }
                td { (run_duration(run)) br; span.muted { (time(run.created_at.timestamp())) } }
                td { div.badges {
                    @for job in &run.jobs {
                        span title=(format!("{}: {}", job.name, job.status)) {
                            (job.name) " " (status_badge(job.status.as_str()))
                        }
                    }
                } }
            }
        }
    }
}
