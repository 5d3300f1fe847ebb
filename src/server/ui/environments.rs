//! The environments board (`/environments`): one column per environment in promotion order, each
//! with the release it runs, its targets' health from the last deployment, what waits there and
//! why (the newest gate decision in plain words), the Terraform locks held on it, and the buttons
//! to approve, promote and roll back. The buttons post to `/environments/{environment}/…`, which
//! act through the same `deploy::actions` functions as the JSON API and the command line.

use super::layout::{Nav, duration, page, status_badge, time};
use super::releases::{release_href, with_repository};
use super::waiting::{self, Held};
use super::{UiError, Viewer, blocking, done};
use crate::deploy::Release;
use crate::deploy::actions::{self, ActionError, EnvironmentAction, EnvironmentStatus};
use crate::model::access::Role;
use crate::model::short_commit;
use crate::server::AppState;
use crate::store::{
    AuditEntry, DeployRequest, DeployStore, Deployment, DeploymentAction, DeploymentStatus,
    LockListing, RequestAction, StepState, Store,
};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct BoardQuery {
    pub repository: Option<String>,
    /// `board`: the columns alone, fetched again by the page's script when promotion moves.
    pub fragment: Option<String>,
}

/// Where the board's columns are fetched again from.
fn refresh_url(repository: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("fragment", "board");
    if let Some(repository) = repository {
        query.append_pair("repository", repository);
    }
    format!("/environments?{}", query.finish())
}

/// Every environment's column, in promotion order.
fn columns(viewer: &Viewer, board: &Board, chosen: Option<&str>) -> maud::Markup {
    html! {
        @for column in &board.columns { (render_column(viewer, board, column, chosen)) }
    }
}

/// A form field as given: trimmed, empty meaning absent.
pub(super) fn given(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// One environment's column.
struct Column {
    status: EnvironmentStatus,
    running: Option<Release>,
    last_deployment: Option<(Deployment, Vec<StepState>)>,
    /// The release waiting at the gate, the newest gate decision holding it, its approvals.
    waiting: Option<(Option<Release>, AuditEntry, Vec<String>)>,
    /// What a person would promote or approve next: the waiting release, else the newest release
    /// when the environment does not run it.
    candidate: Option<Release>,
    /// Earlier releases than the one running, newest first: where a rollback may go.
    earlier: Vec<Release>,
    requests: Vec<DeployRequest>,
    locks: Vec<LockListing>,
    drift: Option<crate::deploy::drift::EnvironmentView>,
}

struct Board {
    repository: String,
    columns: Vec<Column>,
}

/// The repository to show, or a page saying why there is none to show yet.
pub(super) fn repository_or_page(
    store: &dyn DeployStore,
    given: Option<&str>,
) -> Result<Result<String, Markup>, UiError> {
    match actions::repository(store, given) {
        Ok(repository) => Ok(Ok(repository)),
        Err(ActionError::Refused(message)) => {
            let several = store.release_repositories().map_err(UiError::internal)?;
            Ok(Err(html! {
                p.notice role="status" { (message) }
                @if several.len() > 1 {
                    ul { @for repository in &several {
                        li { a href=(with_repository("", Some(repository))) { (repository) } }
                    } }
                }
            }))
        }
        Err(error) => Err(error.into()),
    }
}

/// The environments' statuses in promotion order: as promotion recorded it from the default
/// branch's `after:` chain, else (before its first pass, or for a store that never had one) by
/// what the history shows.
pub(super) fn in_promotion_order(
    deploy: &dyn DeployStore,
    repository: &str,
    history: &[AuditEntry],
    deployments: &[Deployment],
) -> Result<Vec<EnvironmentStatus>, ActionError> {
    let statuses = actions::status_from(deploy, repository, &[], history)?;
    if !deploy.environment_order(repository)?.is_empty() {
        return Ok(statuses);
    }
    Ok(promotion_order(statuses, history, deployments))
}

/// Environments reordered by what the history shows: an environment that releases reached
/// earlier than another comes first. Ties keep the status order.
pub(super) fn promotion_order(
    statuses: Vec<EnvironmentStatus>,
    history: &[AuditEntry],
    deployments: &[Deployment],
) -> Vec<EnvironmentStatus> {
    let mut arrival: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let arrivals = history
        .iter()
        .filter(|entry| matches!(entry.action.as_str(), "gate" | "promote" | "manual"))
        .filter_map(|entry| {
            Some((
                entry.environment.as_deref()?,
                entry.release.as_deref()?,
                entry.at,
            ))
        })
        .chain(
            deployments
                .iter()
                .filter(|deployment| deployment.action != DeploymentAction::Rollback)
                .map(|deployment| {
                    (
                        deployment.environment.as_str(),
                        deployment.release.as_str(),
                        deployment.started_at,
                    )
                }),
        );
    for (environment, release, at) in arrivals {
        let first = arrival.entry((environment, release)).or_insert(at);
        *first = (*first).min(at);
    }
    // How often the environment came before another with the same release, as a share of the
    // comparisons; an environment with nothing to compare goes last.
    let score = |name: &str| -> Option<f64> {
        let (mut sum, mut count) = (0i64, 0i64);
        for ((environment, release), at) in &arrival {
            if *environment != name {
                continue;
            }
            for ((other, other_release), other_at) in &arrival {
                if other_release == release && other != environment {
                    sum += (other_at - at).signum();
                    count += 1;
                }
            }
        }
        (count > 0).then(|| sum as f64 / count as f64)
    };
    let mut scored: Vec<(Option<f64>, EnvironmentStatus)> = statuses
        .into_iter()
        .map(|status| (score(&status.environment), status))
        .collect();
    scored.sort_by(|(left, _), (right, _)| match (left, right) {
        (Some(left), Some(right)) => right.total_cmp(left),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    scored.into_iter().map(|(_, status)| status).collect()
}

fn read_board(
    store: &dyn Store,
    deploy: &dyn DeployStore,
    repository: String,
) -> Result<Board, ActionError> {
    let history = deploy.audit(&repository, None)?;
    let deployments = deploy.deployments(&repository, None)?;
    let releases = deploy.releases(&repository)?;
    let requests = deploy.pending_requests(&repository)?;
    let locks = store.terraform_locks()?;
    let drift = crate::deploy::drift::view(deploy, Some(&repository), None)?;
    let find = |id: &str| releases.iter().find(|release| release.id == id).cloned();
    let mut columns = Vec::new();
    for status in in_promotion_order(deploy, &repository, &history, &deployments)? {
        let name = status.environment.clone();
        let running = status.release.as_deref().and_then(find);
        let last_deployment = match deployments.iter().rev().find(|d| d.environment == name) {
            Some(deployment) => Some((deployment.clone(), deploy.steps(deployment.id)?)),
            None => None,
        };
        let waiting = match &status.waiting {
            Some((release, _)) => {
                let gate = history.iter().rev().find(|entry| {
                    entry.environment.as_deref() == Some(name.as_str())
                        && entry.action == "gate"
                        && entry.outcome == "blocked"
                        && entry.release.as_deref() == Some(release.as_str())
                });
                let approvals = deploy.approvals(&repository, &name, release)?;
                gate.map(|gate| (find(release), gate.clone(), approvals))
            }
            None => None,
        };
        let running_sequence = running
            .as_ref()
            .map_or(i64::MIN, |release| release.sequence);
        let candidate = waiting
            .as_ref()
            .and_then(|(release, _, _)| release.clone())
            .or_else(|| {
                releases
                    .first()
                    .filter(|newest| newest.sequence > running_sequence)
                    .cloned()
            });
        let earlier = releases
            .iter()
            .filter(|release| running.is_some() && release.sequence < running_sequence)
            .cloned()
            .collect();
        columns.push(Column {
            running,
            last_deployment,
            waiting,
            candidate,
            earlier,
            requests: requests
                .iter()
                .filter(|request| request.environment == name)
                .cloned()
                .collect(),
            locks: locks
                .iter()
                .filter(|listing| {
                    listing.lock.target.repository == repository
                        && listing.lock.target.environment == name
                })
                .cloned()
                .collect(),
            drift: drift.iter().find(|view| view.environment == name).cloned(),
            status,
        });
    }
    Ok(Board {
        repository,
        columns,
    })
}

/// `GET /environments`.
pub async fn board(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<BoardQuery>,
) -> Result<Response, UiError> {
    let (store, deploy) = (state.store.clone(), state.deploy_store.clone());
    let wanted = given(&query.repository).map(str::to_owned);
    let board = blocking(
        move || match repository_or_page(deploy.as_ref(), wanted.as_deref())? {
            Ok(repository) => read_board(store.as_ref(), deploy.as_ref(), repository)
                .map(Ok)
                .map_err(UiError::from),
            Err(explained) => Ok(Err(explained)),
        },
    )
    .await
    .map_err(|error| error.seen_by(&viewer))?;
    let chosen = given(&query.repository);
    if let (Ok(board), Some("board")) = (&board, query.fragment.as_deref()) {
        return Ok(columns(&viewer, board, chosen).into_response());
    }
    let body = match board {
        Err(explained) => html! { h1 { "Environments" } (explained) },
        Ok(board) => html! {
            h1 { "Environments" }
            p.muted { (board.repository) ": in promotion order; each column says what runs, how its targets are, and what waits." }
            @if board.columns.is_empty() {
                p { "No environment has a release or a gate decision yet." }
            }
            div.board data-refresh=(refresh_url(chosen)) {
                (columns(&viewer, &board, chosen))
            }
        },
    };
    Ok(page(&viewer, "Environments", Nav::Environments, body).into_response())
}

fn render_column(viewer: &Viewer, board: &Board, column: &Column, chosen: Option<&str>) -> Markup {
    let name = &column.status.environment;
    let now = chrono::Utc::now().timestamp();
    html! {
        section.environment id=(format!("env-{name}")) aria-labelledby=(format!("env-{name}-title")) {
            h2 id=(format!("env-{name}-title")) { (name) }
            @match (&column.status.release, column.status.healthy_since) {
                (Some(release), Some(since)) => p.running {
                    "Runs " a href=(release_href(release, chosen)) { (release) }
                    @if let Some(running) = &column.running { " (" code { (short_commit(&running.commit)) } ")" }
                    ", healthy since " (time(since)) " (" (duration(now - since)) ")."
                },
                _ => p.running { "Runs no release yet." },
            }
            @if let Some(deploying) = &column.status.deploying {
                p { (status_badge("deploying")) " " a href=(release_href(&deploying.release, chosen)) { (deploying.release) }
                    " (" (deploying.action.as_str()) ") since " (time(deploying.started_at)) "; the environment is locked until it ends." }
            }
            h3 { "Health" }
            (health(column))
            h3 { "Waiting" }
            (waiting_markup(column, chosen, now))
            h3 { "Drift" }
            (super::drift::drift_section(viewer, name, chosen, column.drift.as_ref()))
            h3 { "Terraform locks" }
            (locks(column, now))
            h3 { "Actions" }
            (actions_markup(viewer, board, column))
        }
    }
}

fn health(column: &Column) -> Markup {
    html! {
        @match &column.last_deployment {
            None => p.muted { "No deployment recorded yet." },
            Some((deployment, steps)) => {
                p {
                    "Last deployment: " (deployment.action.as_str()) " of " (deployment.release) " "
                    (status_badge(deployment.status.as_str())) " started " (time(deployment.started_at))
                    @if let Some(actor) = &deployment.actor { " by " (actor) }
                    "."
                }
                @if steps.is_empty() {
                    p.muted { "No target has reported yet." }
                } @else {
                    ul.targets {
                        @for step in steps {
                            li { strong { (step.target) } " " (status_badge(step.phase.as_str()))
                                @if !step.summary.is_empty() { " " (step.summary) }
                                " " span.muted { (time(step.at)) } }
                        }
                    }
                }
                @if let Some(reason) = deployment.reason.as_deref().filter(|_| deployment.status != DeploymentStatus::Succeeded) {
                    p.muted { (reason) }
                }
            }
        }
    }
}

fn waiting_markup(column: &Column, chosen: Option<&str>, now: i64) -> Markup {
    html! {
        @match &column.waiting {
            None => p { "Nothing waits at the gate." },
            Some((release, gate, approvals)) => {
                @let id = gate.release.as_deref().unwrap_or_default();
                p {
                    a href=(release_href(id, chosen)) { (id) } " waits, since " (time(gate.at))
                    @if let Some(actor) = &gate.actor { " (asked by " (actor) ")" }
                    ":"
                }
                ul.held {
                    @for held in waiting::explain(&gate.reason, gate.at, now, release.as_ref(), approvals) {
                        li { (held_markup(&held, now)) }
                    }
                }
            }
        }
        @for request in &column.requests {
            p {
                (status_badge("pending")) " "
                (request.actor.as_deref().unwrap_or("someone")) " asked at " (time(request.at)) " to "
                @match request.action {
                    RequestAction::Promote => "promote ",
                    RequestAction::Rollback => "roll back to ",
                }
                (request.release.as_deref().unwrap_or("the previous release"))
                @if let Some(reason) = &request.force_reason { " (forced: " (reason) ")" }
                "; carried out on the next pass."
            }
        }
    }
}

fn held_markup(held: &Held, now: i64) -> Markup {
    html! {
        @match held {
            Held::Soak { left_seconds: Some(left), recorded } => {
                strong { "Soak" } ": " (duration(*left)) " left"
                @if *left == 0 { " (due at the next pass)" }
                span.muted { " (" (recorded) ")" }
            }
            Held::Soak { left_seconds: None, recorded } => { strong { "Soak" } ": " (recorded) }
            Held::Approval { required, given, not_counted, who_may } => {
                strong { "waiting for approval" } ": "
                @if given.is_empty() { "no approvals yet" } @else { "approved by " (given.join(", ")) }
                @if let Some(required) = required {
                    "; " (required.saturating_sub(given.len())) " of " (required) " still missing"
                }
                @if let Some(who) = who_may { "; who may approve: " (who) }
                @if !not_counted.is_empty() { "; not counted: " (not_counted.join(", ")) }
                "."
            }
            Held::Freeze { window, reason, ends_at } => {
                strong { "Freeze window" } ": " (window)
                @if let Some(reason) = reason { " (" (reason) ")" }
                @if let Some(end) = ends_at { "; it ends " (time(*end)) ", in " (duration(end - now)) }
                "."
            }
            Held::Policy { denied: true, text } => { strong { "Policy denies" } ": " (text) }
            Held::Policy { denied: false, text } => { strong { "Policy not checked" } ": " (text) }
            Held::Other { gate, text } => {
                @if gate.is_empty() { (text) } @else { strong { (gate) } ": " (text) }
            }
        }
    }
}

fn locks(column: &Column, now: i64) -> Markup {
    html! {
        @if column.locks.is_empty() {
            p.muted { "No Terraform lock is held here." }
        } @else {
            ul.locks {
                @for listing in &column.locks {
                    @let lock = &listing.lock;
                    li {
                        code { (lock.target.dir) } " held by " strong { (lock.holder.label) }
                        " since " (time(lock.acquired_at.timestamp()))
                        @if lock.lease_expires_at.timestamp() <= now { "; its lease has expired" }
                        @else { "; lease ends " (time(lock.lease_expires_at.timestamp())) }
                        @if !listing.queue.is_empty() {
                            "; waiting: "
                            (listing.queue.iter().map(|queued| queued.holder.label.as_str()).collect::<Vec<_>>().join(", "))
                        }
                    }
                }
            }
        }
    }
}

fn action_path(environment: &str, verb: &str) -> String {
    format!("/environments/{}/{verb}", path_segment(environment))
}

/// A path segment with everything but unreserved characters percent-encoded.
pub(super) fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn actions_markup(viewer: &Viewer, board: &Board, column: &Column) -> Markup {
    let name = &column.status.environment;
    if !viewer.may(Role::Approver) {
        return html! {
            @if viewer.principal.is_some() {
                p.muted { "Approving, promoting and rolling back need the approver role." }
            } @else {
                p { a href="/signin?next=%2Fenvironments" { "Sign in to approve" } ", promote or roll back." }
            }
        };
    }
    let hidden = |release: &str| {
        html! {
            (viewer.csrf_field())
            input type="hidden" name="release" value=(release);
            input type="hidden" name="repository" value=(board.repository);
        }
    };
    html! {
        @if let Some(candidate) = &column.candidate {
            form.inline method="post" action=(action_path(name, "approve")) {
                (hidden(&candidate.id))
                button.primary type="submit" id=(format!("approve-{name}")) { "Approve " (candidate.id) " for " (name) }
            }
            " "
            form.inline method="post" action=(action_path(name, "promote")) {
                (hidden(&candidate.id))
                button type="submit" id=(format!("promote-{name}")) { "Promote " (candidate.id) " to " (name) }
            }
        } @else {
            p.muted { "No newer release to approve or promote." }
        }
        @if !column.earlier.is_empty() {
            form.rollback method="post" action=(action_path(name, "rollback")) {
                (viewer.csrf_field())
                input type="hidden" name="repository" value=(board.repository);
                label for=(format!("rollback-{name}-release")) { "Roll back " (name) " to" }
                " "
                select id=(format!("rollback-{name}-release")) name="release" {
                    @for release in &column.earlier {
                        option value=(release.id) { (release.id) " (" (short_commit(&release.commit)) ")" }
                    }
                }
                " "
                button.danger type="submit" id=(format!("rollback-{name}")) { "Roll back" }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    pub csrf: Option<String>,
    pub release: Option<String>,
    pub repository: Option<String>,
}

/// The words the pages use for an action: what it is (for a refusal) and what was recorded.
fn what(action: EnvironmentAction) -> &'static str {
    match action {
        EnvironmentAction::Approve => "approving a release",
        EnvironmentAction::Promote => "promoting a release",
        EnvironmentAction::Rollback => "rolling an environment back",
    }
}

fn title(action: EnvironmentAction) -> &'static str {
    match action {
        EnvironmentAction::Approve => "Approval recorded",
        EnvironmentAction::Promote => "Promotion requested",
        EnvironmentAction::Rollback => "Rollback requested",
    }
}

/// `POST /environments/{environment}/{approve|promote|rollback}`: the same action as the API's
/// `POST /api/environments/...`, as the signed-in person, with the form's CSRF token.
pub async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((environment, verb)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, UiError> {
    if verb == "drift" {
        return super::drift::check_now(state, viewer, environment, form).await;
    }
    let action = EnvironmentAction::parse(&verb).map_err(|_| {
        UiError::not_found(format!(
            "there is no action `{verb}`; the board's buttons approve, promote and roll back"
        ))
        .seen_by(&viewer)
    })?;
    let principal = viewer.act(form.csrf.as_deref(), Role::Approver, what(action))?;
    let store = state.deploy_store.clone();
    let repository = given(&form.repository).map(str::to_owned);
    let release = given(&form.release).map(str::to_owned);
    let now = chrono::Utc::now().timestamp();
    let message = blocking(move || {
        let store = store.as_ref();
        let repository = actions::repository(store, repository.as_deref())?;
        Ok(actions::perform(
            store,
            &repository,
            &environment,
            action,
            release.as_deref(),
            &principal,
            actions::Force::default(),
            now,
        )?)
    })
    .await
    .map_err(|error: UiError| error.seen_by(&viewer))?;
    state.promotion_wakeup.notify_one();
    let back = with_repository("/environments", given(&form.repository));
    Ok(done(&viewer, title(action), &message, &back).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str) -> EnvironmentStatus {
        EnvironmentStatus {
            environment: name.to_owned(),
            release: None,
            healthy_since: None,
            deploying: None,
            waiting: None,
        }
    }

    fn gate(environment: &str, release: &str, at: i64) -> AuditEntry {
        AuditEntry {
            id: at,
            repository: "acme/platform".to_owned(),
            environment: Some(environment.to_owned()),
            release: Some(release.to_owned()),
            action: "gate".to_owned(),
            actor: None,
            outcome: "passed".to_owned(),
            reason: String::new(),
            at,
        }
    }

    #[test]
    fn the_history_puts_environments_in_the_order_releases_reached_them() {
        let statuses = ["dev", "production", "staging", "qa"].map(status).to_vec();
        let history = [
            gate("dev", "r1", 10),
            gate("staging", "r1", 20),
            gate("production", "r1", 30),
            gate("dev", "r2", 40),
            gate("staging", "r2", 50),
        ];
        let order: Vec<String> = promotion_order(statuses, &history, &[])
            .into_iter()
            .map(|status| status.environment)
            .collect();
        assert_eq!(order, ["dev", "staging", "production", "qa"]);
    }

    #[test]
    fn a_path_segment_keeps_names_and_encodes_the_rest() {
        assert_eq!(path_segment("prod-eu_1"), "prod-eu_1");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }
}
