//! The run page (`/runs/{id}`): the job graph laid out by `needs`, each job's steps with their
//! durations, the selected job's log (rendered whole, then followed live by the script), the
//! Terraform plan summary and policy findings a job recorded, and cancel and re-run for those
//! allowed. `?fragment=jobs` answers the graph alone, for live updates.

use super::layout::{Nav, duration, page, status_badge, time};
use super::runs::run_duration;
use super::{UiError, Viewer, ansi, done};
use crate::model::access::Role;
use crate::model::{JobRecord, Run, RunId, Status, short_commit};
use crate::scheduler::rerun;
use crate::server::AppState;
use crate::store::{CommitSummary, Inserted, LogChunk};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
pub struct RunQuery {
    pub job: Option<String>,
    /// `jobs`: only the job graph.
    pub fragment: Option<String>,
}

fn parse_run_id(text: &str, viewer: &Viewer) -> Result<RunId, UiError> {
    text.parse().map_err(|_| {
        UiError::not_found(format!(
            "run id `{text}` is not a number; the runs are listed at /"
        ))
        .seen_by(viewer)
    })
}

struct RunView {
    run: Run,
    commit: Option<CommitSummary>,
    log: Vec<LogChunk>,
}

/// `GET /runs/{id}`.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Result<Response, UiError> {
    let run_id = parse_run_id(&id, &viewer)?;
    let store = state.store.clone();
    let wanted = query.job.clone();
    let seen = viewer.clone();
    let view = super::blocking(move || {
        let Some(run) = store.get_run(run_id).map_err(UiError::internal)? else {
            return Err(UiError::not_found(format!(
                "there is no run {run_id}; the runs are listed at /"
            ))
            .seen_by(&seen));
        };
        let selected = match &wanted {
            Some(name) if !run.jobs.iter().any(|job| &job.name == name) => {
                return Err(UiError::not_found(format!(
                    "run {run_id} has no job `{name}`; its jobs are listed at /runs/{run_id}"
                ))
                .seen_by(&seen));
            }
            Some(name) => Some(name.clone()),
            None => default_job(&run).map(|job| job.name.clone()),
        };
        let log = match &selected {
            Some(job) => store
                .job_log_since(run_id, job, 0)
                .map_err(UiError::internal)?
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let commit = store
            .commit_summaries(&run.repository, std::slice::from_ref(&run.commit))
            .map_err(UiError::internal)?
            .pop();
        Ok((RunView { run, commit, log }, selected))
    })
    .await?;
    let (view, selected) = view;
    if query.fragment.as_deref() == Some("jobs") {
        return Ok(graph(&view.run, selected.as_deref()).into_response());
    }
    let run = &view.run;
    let title = format!("Run {} · {}", run.id, run.pipeline);
    let body = html! {
        h1 { "Run #" (run.id) ": " (run.pipeline) " " (status_badge(run.status.as_str())) }
        (summary(&view))
        (actions(&viewer, run))
        h2 { "Jobs" }
        div #jobs data-refresh=(format!("/runs/{}?fragment=jobs{}", run.id, selected.as_deref().map(|job| format!("&job={}", encode(job))).unwrap_or_default())) {
            (graph(run, selected.as_deref()))
        }
        @if let Some(job) = selected.as_deref().and_then(|name| run.jobs.iter().find(|job| job.name == name)) {
            (job_details(run, job, &view.log))
        }
    };
    Ok(page(&viewer, &title, Nav::Runs, body).into_response())
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The job shown when none is asked for: the first running, else the first failed, else the
/// first job.
fn default_job(run: &Run) -> Option<&JobRecord> {
    run.jobs
        .iter()
        .find(|job| job.status == Status::Running)
        .or_else(|| run.jobs.iter().find(|job| job.status == Status::Failed))
        .or_else(|| run.jobs.first())
}

fn summary(view: &RunView) -> Markup {
    let run = &view.run;
    html! {
        dl.facts {
            dt { "Repository" } dd { (run.repository) }
            dt { "Commit" } dd {
                code { (short_commit(&run.commit)) }
                @if let Some(commit) = &view.commit { " " (commit.title) " · " (commit.author) }
            }
            dt { "Ref" } dd { (run.git_ref) }
            dt { "Event" } dd { (run.event.as_str().replace('_', " ")) }
            dt { "Started" } dd { (time(run.created_at.timestamp())) }
            dt { "Duration" } dd { (run_duration(run)) }
            @if let Some(reason) = &run.reason { dt { "Why" } dd { (reason) } }
        }
    }
}

fn actions(viewer: &Viewer, run: &Run) -> Markup {
    if !viewer.may(Role::Approver) {
        return html! {
            @if viewer.principal.is_none() {
                p.muted { a href=(format!("/signin?next=/runs/{}", run.id)) { "Sign in" } " to cancel or re-run." }
            }
        };
    }
    html! {
        div.actions {
            @if !run.status.is_terminal() {
                form.inline method="post" action=(format!("/runs/{}/cancel", run.id)) {
                    (viewer.csrf_field())
                    button.danger #cancel type="submit" { "Cancel run" }
                }
            }
            @if run.status.is_terminal() && run.delivery.is_some() {
                form.inline method="post" action=(format!("/runs/{}/rerun", run.id)) {
                    (viewer.csrf_field())
                    button #rerun type="submit" { "Re-run" }
                }
            }
        }
    }
}

/// Each job's depth: 0 for a job with no needs, else one more than its deepest need.
fn depths(run: &Run) -> BTreeMap<&str, usize> {
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    // `needs` form a DAG (the loader refuses cycles); a pass per job settles every depth.
    for _ in 0..run.jobs.len() {
        for job in &run.jobs {
            let level = job
                .needs
                .iter()
                .filter_map(|need| depth.get(need.as_str()).map(|level| level + 1))
                .max()
                .unwrap_or(0);
            depth.insert(&job.name, level);
        }
    }
    depth
}

fn job_seconds(job: &JobRecord) -> Option<i64> {
    let start = job.started_at?;
    let end = job.finished_at.unwrap_or_else(chrono::Utc::now);
    Some((end - start).num_seconds())
}

fn graph(run: &Run, selected: Option<&str>) -> Markup {
    let depth = depths(run);
    let columns = depth
        .values()
        .copied()
        .max()
        .map_or(0, |deepest| deepest + 1);
    html! {
        div.graph role="list" aria-label="Jobs by their needs" {
            @for column in 0..columns {
                div.column {
                    @for job in run.jobs.iter().filter(|job| depth.get(job.name.as_str()) == Some(&column)) {
                        div class={ "job" @if selected == Some(job.name.as_str()) { " selected" } }
                            role="listitem" id=(format!("job-{}", job.name)) data-status=(job.status.as_str()) {
                            a.name href=(format!("/runs/{}?job={}#log", run.id, encode(&job.name))) { (job.name) }
                            (status_badge(job.status.as_str()))
                            @if let Some(seconds) = job_seconds(job) { " " span.muted { (duration(seconds)) } }
                            @if !job.needs.is_empty() { span.needs { "needs " (job.needs.join(", ")) } }
                            @if let Some(reason) = &job.reason { div.muted { (reason) } }
                            @if !job.steps.is_empty() {
                                ol.steps {
                                    @for step in &job.steps {
                                        li {
                                            (step.name) " " (status_badge(step.status.as_str()))
                                            @if let Some(start) = step.started_at {
                                                " " span.muted { (duration((step.finished_at.unwrap_or_else(chrono::Utc::now) - start).num_seconds())) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn job_details(run: &Run, job: &JobRecord, log: &[LogChunk]) -> Markup {
    let text: String = log.iter().map(|chunk| chunk.text.as_str()).collect();
    let last = log.last().map_or(0, |chunk| chunk.id);
    let streaming = !job.status.is_terminal();
    html! {
        @if let Some(plan) = job.outputs.get("summary").filter(|_| job.outputs.contains_key("plan_sha256")) {
            h2 { "Terraform plan" @if let Some(environment) = job.outputs.get("environment") { " for " (environment) } }
            p {
                (job.outputs.get("counts").map(String::as_str).unwrap_or_default())
                " · plan sha256 " code { (job.outputs.get("plan_sha256").map(String::as_str).unwrap_or_default()) }
            }
            pre.plan { (plan) }
        }
        @let findings = findings(job);
        @if job.outputs.contains_key("findings") {
            h2 { "Policy findings" }
            @if findings.is_empty() {
                p #findings { "Every policy passed." }
            } @else {
                table #findings {
                    thead { tr { th scope="col" { "Severity" } th scope="col" { "Rule" } th scope="col" { "Message" } } }
                    tbody {
                        @for finding in &findings {
                            tr {
                                td { (status_badge(if finding.0 == "warn" { "pending" } else { "denied" })) " " (finding.0) }
                                td { code { (finding.1) } }
                                td { (finding.2) }
                            }
                        }
                    }
                }
            }
        }
        h2 #log-heading { "Log of " (job.name) @if streaming { " " span.muted { "(live)" } } }
        pre.log #log tabindex="0" aria-labelledby="log-heading"
            data-log-stream=[streaming.then(|| format!("/runs/{}/jobs/{}/log/stream", run.id, encode(&job.name)))]
            data-after=(last) {
            (PreEscaped(ansi::to_html(&text)))
        }
    }
}

/// (severity, rule, message) of each finding a job recorded.
fn findings(job: &JobRecord) -> Vec<(String, String, String)> {
    let parsed: Vec<serde_json::Value> = job
        .outputs
        .get("findings")
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    parsed
        .iter()
        .map(|finding| {
            let text = |key: &str| finding[key].as_str().unwrap_or_default().to_owned();
            (
                text("severity").to_ascii_lowercase(),
                text("rule"),
                text("message"),
            )
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

/// `POST /runs/{id}/cancel`: an approver stops a run; the dispatcher cancels its running jobs
/// and never starts the rest.
pub async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    let principal = viewer.act(form.csrf.as_deref(), Role::Approver, "cancelling a run")?;
    let run_id = parse_run_id(&id, &viewer)?;
    let store = state.store.clone();
    let who = principal.recorded_as();
    let seen = viewer.clone();
    let message = super::blocking(move || {
        let Some(run) = store.get_run(run_id).map_err(UiError::internal)? else {
            return Err(UiError::not_found(format!("there is no run {run_id}")).seen_by(&seen));
        };
        if run.status.is_terminal() {
            return Err(UiError::new(
                StatusCode::CONFLICT,
                "Already finished",
                format!(
                    "run {run_id} already finished ({}); there is nothing to cancel",
                    run.status
                ),
            )
            .seen_by(&seen));
        }
        let now = chrono::Utc::now().timestamp();
        let new = store
            .request_run_cancel(run_id, &who, now)
            .map_err(UiError::internal)?;
        Ok(if new {
            format!("{who} asked to cancel run {run_id}; its running jobs are being stopped")
        } else {
            format!("run {run_id} is already being cancelled")
        })
    })
    .await?;
    state.dispatcher_wakeup.notify_one();
    Ok(done(&viewer, "Cancelling", &message, &format!("/runs/{run_id}")).into_response())
}

/// `POST /runs/{id}/rerun`: an approver runs the run's pipeline again for the same event; the
/// new run keeps the trust level the event had (a fork's code waits for approval again).
pub async fn rerun(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    let principal = viewer.act(form.csrf.as_deref(), Role::Approver, "re-running a run")?;
    let run_id = parse_run_id(&id, &viewer)?;
    let store = state.store.clone();
    let who = principal.recorded_as();
    let seen = viewer.clone();
    let inserted = super::blocking(move || {
        let Some(run) = store.get_run(run_id).map_err(UiError::internal)? else {
            return Err(UiError::not_found(format!("there is no run {run_id}")).seen_by(&seen));
        };
        if !run.status.is_terminal() {
            return Err(UiError::new(
                StatusCode::CONFLICT,
                "Still running",
                format!("run {run_id} is still {}; cancel it or wait for it to finish before running it again", run.status),
            )
            .seen_by(&seen));
        }
        let original = run
            .delivery
            .as_deref()
            .map(|id| store.delivery(id))
            .transpose()
            .map_err(UiError::internal)?
            .flatten()
            .ok_or_else(|| {
                UiError::new(
                    StatusCode::CONFLICT,
                    "Cannot re-run",
                    format!("run {run_id} came from no stored delivery (a local `sluice run`); run it again the same way"),
                )
                .seen_by(&seen)
            })?;
        let delivery = rerun::rerun_delivery(&original, run_id, &run.pipeline, &who);
        store.insert_delivery(&delivery).map_err(UiError::internal)
    })
    .await?;
    if inserted == Inserted::New {
        state.intake_wakeup.notify_one();
    }
    let message = match inserted {
        Inserted::New => format!(
            "{} asked to run run {run_id}'s pipeline again; the new run appears on the runs page",
            principal.recorded_as()
        ),
        Inserted::Duplicate => format!("run {run_id} was already asked to run again"),
    };
    Ok(done(&viewer, "Re-running", &message, "/").into_response())
}
