//! The delivery metrics page (`/metrics/delivery`) and its JSON (`/api/metrics/delivery`): the
//! four DORA measures of one repository per environment, in promotion order, over the last weeks
//! (`?weeks=`, 12 unless asked). Both read the same records and make the same computation
//! (`deploy::delivery_metrics`, which says which records count); the page draws its charts on the
//! server (`svg.rs`) and puts a table or list beside each, so it reads without images.

use super::layout::{Nav, duration, page, status_badge, time, trusted};
use super::svg::{self, Bar, Chart, Point, Unit};
use super::{UiError, Viewer};
use crate::deploy::delivery_metrics::{
    self, DEFAULT_WEEKS, DeliveryMetrics, DeliveryRecords, EnvironmentMetrics, MAX_WEEKS, Window,
};
use crate::server::{ApiError, AppState};
use crate::store::{DeployStore, DeploymentStatus, Store, StoreError};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct DeliveryQuery {
    pub repository: Option<String>,
    pub weeks: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// The window's length asked for, or what is wrong with it.
fn weeks(query: &DeliveryQuery) -> Result<u32, String> {
    match given(&query.weeks) {
        None => Ok(DEFAULT_WEEKS),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|weeks| (1..=MAX_WEEKS).contains(weeks))
            .ok_or_else(|| {
                format!("weeks `{text}` is not a whole number of weeks from 1 to {MAX_WEEKS}")
            }),
    }
}

/// The measures of one repository, as the page and the JSON give them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryReport {
    /// `None` while no repository has releases.
    pub repository: Option<String>,
    /// Deployments recorded for the repository, ever (0: nothing to measure yet).
    pub deployments_recorded: usize,
    #[serde(flatten)]
    pub metrics: DeliveryMetrics,
}

/// What reading found: a report, or several repositories to choose from.
enum Reading {
    Report(DeliveryReport),
    Choose(Vec<String>),
}

/// Reads the records the measures need and measures them; see `deploy::delivery_metrics`.
fn read(
    deploy: &dyn DeployStore,
    store: &dyn Store,
    given: Option<&str>,
    window: Window,
) -> Result<Reading, StoreError> {
    let repository = match given {
        Some(given) => given.to_owned(),
        None => {
            let mut repositories = deploy.release_repositories()?;
            match repositories.len() {
                0 => {
                    return Ok(Reading::Report(DeliveryReport {
                        repository: None,
                        deployments_recorded: 0,
                        metrics: DeliveryMetrics {
                            window,
                            environments: Vec::new(),
                        },
                    }));
                }
                1 => repositories.remove(0),
                _ => return Ok(Reading::Choose(repositories)),
            }
        }
    };
    let deployments = deploy.deployments(&repository, None)?;
    let releases = deploy.releases(&repository)?;
    let rejections = deploy.audit_of_action(&repository, "reject", window.start)?;
    let environments: Vec<String> = deploy
        .environment_states(&repository)?
        .into_iter()
        .map(|state| state.environment)
        .collect();
    let delivered: BTreeSet<&str> = deployments
        .iter()
        .filter(|deployment| deployment.status == DeploymentStatus::Succeeded)
        .filter(|deployment| {
            deployment
                .finished_at
                .is_some_and(|at| window.start <= at && at < window.end)
        })
        .map(|deployment| deployment.release.as_str())
        .collect();
    let shas: Vec<String> = releases
        .iter()
        .filter(|release| delivered.contains(release.id.as_str()))
        .map(|release| release.commit.clone())
        .collect();
    let commit_times: BTreeMap<String, i64> = store
        .commit_summaries(&repository, &shas)?
        .into_iter()
        .map(|commit| (commit.sha, commit.committed_at))
        .collect();
    let mut metrics = delivery_metrics::measure(
        DeliveryRecords {
            deployments: &deployments,
            releases: &releases,
            commit_times: &commit_times,
            rejections: &rejections,
            environments: &environments,
        },
        window,
    );
    // Promotion's own order, where it recorded one, over the order the records suggest.
    let order = deploy.environment_order(&repository)?;
    if !order.is_empty() {
        metrics.environments.sort_by_key(|measured| {
            order
                .iter()
                .position(|name| *name == measured.environment)
                .unwrap_or(usize::MAX)
        });
    }
    Ok(Reading::Report(DeliveryReport {
        repository: Some(repository),
        deployments_recorded: deployments.len(),
        metrics,
    }))
}

async fn reading(state: &AppState, query: &DeliveryQuery, weeks: u32) -> Result<Reading, String> {
    let deploy: Arc<dyn DeployStore> = state.deploy_store.clone();
    let store: Arc<dyn Store> = state.store.clone();
    let repository = given(&query.repository).map(str::to_owned);
    let window = Window::ending(chrono::Utc::now().timestamp(), weeks);
    tokio::task::spawn_blocking(move || {
        read(
            deploy.as_ref(),
            store.as_ref(),
            repository.as_deref(),
            window,
        )
    })
    .await
    .map_err(|error| error.to_string())?
    .map_err(|error| error.to_string())
}

fn choose_message(repositories: &[String]) -> String {
    format!(
        "several repositories have releases ({}); choose one with ?repository=OWNER/NAME",
        repositories.join(", ")
    )
}

/// `GET /api/metrics/delivery`.
pub async fn api(
    State(state): State<AppState>,
    Query(query): Query<DeliveryQuery>,
) -> Result<Json<DeliveryReport>, ApiError> {
    let weeks = weeks(&query).map_err(ApiError::bad_request)?;
    match reading(&state, &query, weeks)
        .await
        .map_err(ApiError::internal)?
    {
        Reading::Report(report) => Ok(Json(report)),
        Reading::Choose(repositories) => Err(ApiError::Client(
            StatusCode::CONFLICT,
            choose_message(&repositories),
        )),
    }
}

/// `GET /metrics/delivery`.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<DeliveryQuery>,
) -> Result<Response, UiError> {
    let weeks = weeks(&query).map_err(|message| {
        UiError::new(StatusCode::BAD_REQUEST, "Bad window", message).seen_by(&viewer)
    })?;
    let read = reading(&state, &query, weeks)
        .await
        .map_err(|error| UiError::internal(error).seen_by(&viewer))?;
    let mut repositories: BTreeSet<String> = state.repositories.keys().cloned().collect();
    let (report, choose) = match read {
        Reading::Report(report) => (Some(report), None),
        Reading::Choose(names) => {
            repositories.extend(names.iter().cloned());
            (None, Some(names))
        }
    };
    let chosen = report.as_ref().and_then(|report| report.repository.clone());
    repositories.extend(chosen.clone());
    let body = html! {
        h1 { "Delivery metrics" }
        (chooser(&repositories, chosen.as_deref(), weeks))
        @if let Some(names) = &choose {
            p.notice role="status" { "Several repositories have releases (" (names.join(", ")) "): choose one above." }
        }
        @if let Some(report) = &report {
            (measures(report))
        }
    };
    Ok(page(&viewer, "Delivery metrics", Nav::Delivery, body).into_response())
}

fn chooser(repositories: &BTreeSet<String>, chosen: Option<&str>, weeks: u32) -> Markup {
    html! {
        form.filters method="get" action="/metrics/delivery" aria-label="Choose the repository and the window" {
            label for="delivery-repository" {
                "Repository"
                select #delivery-repository name="repository" {
                    @for name in repositories {
                        option value=(name) selected[chosen == Some(name.as_str())] { (name) }
                    }
                }
            }
            label for="delivery-weeks" {
                "Weeks"
                input #delivery-weeks type="number" name="weeks" min="1" max=(MAX_WEEKS) value=(weeks);
            }
            button type="submit" { "Show" }
        }
    }
}

fn measures(report: &DeliveryReport) -> Markup {
    let window = report.metrics.window;
    html! {
        @if let Some(repository) = &report.repository {
            p.muted {
                "How " strong { (repository) } " delivers, from sluice's own promotion records: "
                (last_weeks(window.weeks)) ", from " (time(window.start)) " to " (time(window.end)) "."
            }
        }
        @if report.deployments_recorded == 0 || report.metrics.environments.is_empty() {
            p #delivery-empty role="status" {
                "No deployments yet: the measures start with the first deployment sluice records. "
                "A release is cut when a merge's runs succeed, then promoted through the environments ("
                code { "sluice status" } " shows where each release is)."
            }
        } @else {
            @for environment in &report.metrics.environments {
                (section(environment, window))
            }
        }
    }
}

/// `1 week`, `12 weeks`.
fn count_weeks(weeks: u32) -> String {
    if weeks == 1 {
        "1 week".to_owned()
    } else {
        format!("{weeks} weeks")
    }
}

/// `the last week`, `the last 12 weeks`.
fn last_weeks(weeks: u32) -> String {
    if weeks == 1 {
        "the last week".to_owned()
    } else {
        format!("the last {weeks} weeks")
    }
}

/// `delivery-{environment}`, with anything unusual in an id replaced.
pub fn anchor(environment: &str) -> String {
    let safe: String = environment
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '-' || character == '_' {
                character
            } else {
                '-'
            }
        })
        .collect();
    format!("delivery-{safe}")
}

/// `4.5 per week`, `1 per week`, `0.3 per week`: tenths, halves rounded up.
pub fn per_week(rate: f64) -> String {
    let tenths = (rate * 10.0).round() as i64;
    if tenths % 10 == 0 {
        format!("{} per week", tenths / 10)
    } else {
        format!("{}.{} per week", tenths / 10, tenths % 10)
    }
}

fn section(metrics: &EnvironmentMetrics, window: Window) -> Markup {
    let id = anchor(&metrics.environment);
    let name = &metrics.environment;
    html! {
        section.delivery id=(id) aria-labelledby=(format!("{id}-heading")) {
            h2 id=(format!("{id}-heading")) { (name) }
            @if metrics.is_empty() {
                p.muted.empty {
                    "No deployments to " (name) " in " (last_weeks(window.weeks)) "."
                }
            } @else {
                (frequency(metrics, window, &id))
                (lead_time(metrics, window, &id))
                (change_failure(metrics, &id))
                (restore(metrics, &id))
            }
        }
    }
}

fn date(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|when| when.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn frequency(metrics: &EnvironmentMetrics, window: Window, id: &str) -> Markup {
    let frequency = &metrics.frequency;
    let bars: Vec<Bar> = frequency
        .weeks
        .iter()
        .map(|week| Bar {
            label: chrono::DateTime::from_timestamp(week.start, 0)
                .map(|when| when.format("%m-%d").to_string())
                .unwrap_or_default(),
            value: week.deployments as f64,
        })
        .collect();
    let busiest = frequency.weeks.iter().map(|week| week.deployments).max();
    let description = format!(
        "Bar chart of successful deployments to {} in each week of {}: {} in all, at most {} in one week",
        metrics.environment,
        last_weeks(window.weeks),
        frequency.total,
        busiest.unwrap_or(0)
    );
    let chart = svg::bar_chart(
        &Chart {
            title: &format!("Deployments to {} per week", metrics.environment),
            description: &description,
            x_label: "Week starting (month-day)",
            y_label: "Deployments",
            unit: Unit::Count,
        },
        &bars,
    );
    html! {
        div.measure id=(format!("{id}-frequency")) {
            h3 { "Deployment frequency" }
            p.headline {
                strong { (per_week(frequency.per_week)) }
                " · " (frequency.total) " successful deployments in " (count_weeks(window.weeks))
            }
            div.pair {
                figure.chart { (trusted(chart)) }
                table {
                    caption.muted { "Successful deployments per week" }
                    thead { tr { th scope="col" { "Week starting" } th scope="col" { "Deployments" } } }
                    tbody {
                        @for week in &frequency.weeks {
                            tr { td { (date(week.start)) } td { (week.deployments) } }
                        }
                    }
                }
            }
        }
    }
}

fn lead_time(metrics: &EnvironmentMetrics, window: Window, id: &str) -> Markup {
    let lead = &metrics.lead_time;
    let points: Vec<Point> = lead
        .points
        .iter()
        .map(|point| Point {
            x: point.finished_at as f64,
            y: point.seconds as f64,
            label: point.release.clone(),
        })
        .collect();
    let fastest = lead.points.iter().map(|point| point.seconds).min();
    let slowest = lead.points.iter().map(|point| point.seconds).max();
    let description = format!(
        "Point chart of the lead time of each of the {} successful deployments to {}, by when it finished; median {}",
        lead.points.len(),
        metrics.environment,
        lead.median_seconds.map_or("none".to_owned(), duration)
    );
    let chart = svg::point_chart(
        &Chart {
            title: &format!("Lead time for changes in {}", metrics.environment),
            description: &description,
            x_label: "Deployment finished",
            y_label: "Lead time",
            unit: Unit::Seconds,
        },
        &points,
        (window.start as f64, window.end as f64),
        &|at| date(at as i64),
    );
    html! {
        div.measure id=(format!("{id}-lead-time")) {
            h3 { "Lead time for changes" }
            @match lead.median_seconds {
                Some(median) => p.headline {
                    strong { "median " (duration(median)) }
                    @if let Some(p90) = lead.p90_seconds { " · p90 " (duration(p90)) }
                    " · from commit to deployed"
                },
                None => p.headline { strong { "no successful deployments" } " in these weeks" },
            }
            @if !lead.points.is_empty() {
                div.pair {
                    figure.chart { (trusted(chart)) }
                    div {
                        ul {
                            li { (lead.points.len()) " deployments measured" }
                            @if let Some(fastest) = fastest { li { "fastest " (duration(fastest)) } }
                            @if let Some(slowest) = slowest { li { "slowest " (duration(slowest)) } }
                        }
                        details {
                            summary { "Each deployment's lead time" }
                            table {
                                thead { tr {
                                    th scope="col" { "Release" } th scope="col" { "Changed" }
                                    th scope="col" { "Deployed" } th scope="col" { "Lead time" }
                                } }
                                tbody {
                                    @for point in &lead.points {
                                        tr {
                                            td { code { (point.release) } }
                                            td {
                                                (time(point.changed_at))
                                                @if !point.from_commit { br; span.muted { "release cut (commit time unknown)" } }
                                            }
                                            td { (time(point.finished_at)) }
                                            td { (duration(point.seconds)) }
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

fn change_failure(metrics: &EnvironmentMetrics, id: &str) -> Markup {
    let failure = &metrics.change_failure;
    html! {
        div.measure id=(format!("{id}-failure-rate")) {
            h3 { "Change failure rate" }
            @match failure.percent {
                Some(percent) => p.headline {
                    strong { (percent) "% (" (failure.failed) " of " (failure.attempted) ")" }
                    " of deployments failed, were rolled back, or had their release rejected here afterwards"
                },
                None => p.headline { strong { "no deployments attempted" } },
            }
            @if !failure.failures.is_empty() {
                table {
                    caption.muted { "Failed changes" }
                    thead { tr { th scope="col" { "Release" } th scope="col" { "What happened" } th scope="col" { "When" } } }
                    tbody {
                        @for failed in &failure.failures {
                            tr {
                                td { code { (failed.release) } }
                                td { (status_badge(failed.kind.as_str())) }
                                td { (time(failed.at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn restore(metrics: &EnvironmentMetrics, id: &str) -> Markup {
    let restore = &metrics.restore;
    html! {
        div.measure id=(format!("{id}-restore")) {
            h3 { "Time to restore" }
            @match restore.median_seconds {
                Some(median) => p.headline {
                    strong { "median " (duration(median)) }
                    " · from a failure to the next successful deployment here"
                },
                None if restore.incidents.is_empty() => p.headline { strong { "no incidents" } },
                None => p.headline { strong { "not restored yet" } },
            }
            @if !restore.incidents.is_empty() {
                table {
                    caption.muted { "Incidents" }
                    thead { tr {
                        th scope="col" { "Release that failed" } th scope="col" { "Failed" }
                        th scope="col" { "Restored" } th scope="col" { "Time to restore" }
                    } }
                    tbody {
                        @for incident in &restore.incidents {
                            tr {
                                td { code { (incident.release) } }
                                td { (time(incident.opened_at)) }
                                td { @match incident.restored_at { Some(at) => (time(at)), None => "still open" } }
                                td { @match incident.seconds { Some(seconds) => (duration(seconds)), None => "—" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_per_week_read_in_tenths() {
        assert_eq!(per_week(4.5), "4.5 per week");
        assert_eq!(per_week(1.0), "1 per week");
        assert_eq!(per_week(0.25), "0.3 per week");
        assert_eq!(per_week(4.0 / 12.0), "0.3 per week");
        assert_eq!(per_week(0.0), "0 per week");
        assert_eq!(per_week(12.96), "13 per week");
    }

    #[test]
    fn sections_are_named_after_their_environment() {
        assert_eq!(anchor("prod"), "delivery-prod");
        assert_eq!(anchor("eu west/1"), "delivery-eu-west-1");
    }

    #[test]
    fn the_window_is_twelve_weeks_unless_asked() {
        let query = |weeks: &str| DeliveryQuery {
            repository: None,
            weeks: Some(weeks.to_owned()),
        };
        assert_eq!(weeks(&DeliveryQuery::default()), Ok(12));
        assert_eq!(weeks(&query(" ")), Ok(12));
        assert_eq!(weeks(&query("4")), Ok(4));
        assert!(weeks(&query("0")).unwrap_err().contains("from 1 to 104"));
        assert!(weeks(&query("many")).is_err());
    }
}
