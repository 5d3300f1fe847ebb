//! The releases pages: `/releases` lists them newest first; `/releases/{id}` shows what one
//! carries (image digests, each environment's reviewed Terraform plan with its summary, the DAG
//! tree, model pins), where it has been and when, and how it differs from the release each
//! environment runs now, side by side. Reads through the same store queries as `/api/releases`.

use super::environments::{given, in_promotion_order, path_segment, repository_or_page};
use super::layout::{Nav, page, status_badge, time};
use super::{UiError, Viewer, blocking};
use crate::deploy::Release;
use crate::deploy::actions::{self, ActionError};
use crate::model::short_commit;
use crate::server::AppState;
use crate::store::{AuditEntry, DeployStore, Deployment, StepState, Store, TerraformPlanRecord};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use std::collections::{BTreeMap, BTreeSet};

pub use super::environments::BoardQuery as RepositoryQuery;

/// `path` with `?repository=` when one was chosen.
pub(super) fn with_repository(path: &str, repository: Option<&str>) -> String {
    match repository {
        Some(repository) => {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("repository", repository)
                .finish();
            format!("{path}?{query}")
        }
        None => path.to_owned(),
    }
}

/// The release page's address.
pub(super) fn release_href(id: &str, repository: Option<&str>) -> String {
    with_repository(&format!("/releases/{}", path_segment(id)), repository)
}

/// `GET /releases`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<RepositoryQuery>,
) -> Result<Response, UiError> {
    let deploy = state.deploy_store.clone();
    let wanted = given(&query.repository).map(str::to_owned);
    let read = blocking(move || {
        let store = deploy.as_ref();
        let repository = match repository_or_page(store, wanted.as_deref())? {
            Ok(repository) => repository,
            Err(explained) => return Ok(Err(explained)),
        };
        let read = || -> Result<_, ActionError> {
            let releases = store.releases(&repository)?;
            let states = store.environment_states(&repository)?;
            let rejected: BTreeMap<String, String> =
                store.rejected_releases(&repository)?.into_iter().collect();
            Ok((repository.clone(), releases, states, rejected))
        };
        read().map(Ok).map_err(UiError::from)
    })
    .await
    .map_err(|error| error.seen_by(&viewer))?;
    let chosen = given(&query.repository);
    let body = match read {
        Err(explained) => html! { h1 { "Releases" } (explained) },
        Ok((repository, releases, states, rejected)) => html! {
            h1 { "Releases" }
            p.muted { (repository) ": newest first." }
            table #releases {
                thead { tr {
                    th scope="col" { "Release" } th scope="col" { "Commit" } th scope="col" { "Branch" }
                    th scope="col" { "Author" } th scope="col" { "Cut" } th scope="col" { "Runs in" }
                } }
                tbody {
                    @if releases.is_empty() { tr { td colspan="6" { "No releases yet." } } }
                    @for release in &releases {
                        tr {
                            td {
                                a href=(release_href(&release.id, chosen)) { (release.id) }
                                @if let Some(why) = rejected.get(&release.id) {
                                    " " (status_badge("rejected")) br; span.muted { (why) }
                                }
                            }
                            td { code { (short_commit(&release.commit)) } }
                            td { (release.branch) }
                            td { (release.author.as_deref().unwrap_or("unknown")) }
                            td { (time(release.created_at)) }
                            td { (states.iter().filter(|state| state.release == release.id)
                                .map(|state| state.environment.as_str()).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                }
            }
        },
    };
    Ok(page(&viewer, "Releases", Nav::Environments, body).into_response())
}

/// Everything the release page shows.
struct ReleaseView {
    repository: String,
    release: Release,
    rejected: Option<String>,
    /// Plans by sha256, for this release and those it is compared with.
    plans: BTreeMap<String, TerraformPlanRecord>,
    /// This release's history, newest first.
    history: Vec<AuditEntry>,
    deployments: Vec<(Deployment, Vec<StepState>)>,
    /// Each environment in promotion order and the release it runs.
    environments: Vec<(String, Option<Release>)>,
}

fn read_release(
    store: &dyn Store,
    deploy: &dyn DeployStore,
    repository: String,
    wanted: &str,
) -> Result<Option<ReleaseView>, ActionError> {
    let release = match actions::find_release(deploy, &repository, wanted) {
        Ok(release) => release,
        Err(ActionError::Refused(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    let releases = deploy.releases(&repository)?;
    let history = deploy.audit(&repository, None)?;
    let deployments = deploy.deployments(&repository, None)?;
    let environments: Vec<(String, Option<Release>)> =
        in_promotion_order(deploy, &repository, &history, &deployments)?
            .into_iter()
            .map(|status| {
                let running = status
                    .release
                    .as_deref()
                    .and_then(|id| releases.iter().find(|release| release.id == id).cloned());
                (status.environment, running)
            })
            .collect();
    let mut plans = BTreeMap::new();
    let shas: BTreeSet<&String> = std::iter::once(&release)
        .chain(
            environments
                .iter()
                .filter_map(|(_, running)| running.as_ref()),
        )
        .flat_map(|release| release.plans.values())
        .collect();
    for sha in shas {
        if let Some(plan) = store.terraform_plan_by_sha256(sha)? {
            plans.insert(sha.clone(), plan);
        }
    }
    let mut own = Vec::new();
    for deployment in deployments.into_iter().filter(|d| d.release == release.id) {
        let steps = deploy.steps(deployment.id)?;
        own.push((deployment, steps));
    }
    own.reverse();
    let rejected = deploy
        .rejected_releases(&repository)?
        .into_iter()
        .find(|(id, _)| *id == release.id)
        .map(|(_, why)| why);
    Ok(Some(ReleaseView {
        history: history
            .into_iter()
            .rev()
            .filter(|entry| entry.release.as_deref() == Some(release.id.as_str()))
            .collect(),
        repository,
        release,
        rejected,
        plans,
        deployments: own,
        environments,
    }))
}

/// `GET /releases/{id}`.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<RepositoryQuery>,
) -> Result<Response, UiError> {
    let (store, deploy) = (state.store.clone(), state.deploy_store.clone());
    let wanted = given(&query.repository).map(str::to_owned);
    let looked_for = id.clone();
    let view = blocking(move || {
        let repository = match actions::repository(deploy.as_ref(), wanted.as_deref()) {
            Ok(repository) => repository,
            Err(ActionError::Refused(message)) => {
                return Err(UiError::not_found(format!(
                    "{message}; /releases lists the releases there are"
                )));
            }
            Err(error) => return Err(error.into()),
        };
        match read_release(store.as_ref(), deploy.as_ref(), repository.clone(), &looked_for)? {
            Some(view) => Ok(view),
            None => Err(UiError::not_found(format!(
                "no release `{looked_for}` in {repository}; /releases lists them (on the command line: `sluice releases`)"
            ))),
        }
    })
    .await
    .map_err(|error| error.seen_by(&viewer))?;
    let chosen = given(&query.repository);
    let title = format!("Release {}", view.release.id);
    let body = html! {
        h1 { "Release " (view.release.id) }
        (facts(&view))
        h2 { "What it carries" }
        (carries(&view))
        h2 { "Where it has been" }
        (been(&view))
        h2 { "Compared with what runs now" }
        @for (environment, running) in &view.environments {
            (compared(&view, environment, running.as_ref(), chosen))
        }
        @if view.environments.is_empty() { p { "No environment runs a release yet." } }
    };
    Ok(page(&viewer, &title, Nav::Environments, body).into_response())
}

fn facts(view: &ReleaseView) -> Markup {
    let release = &view.release;
    html! {
        dl.facts {
            dt { "Repository" } dd { (view.repository) }
            dt { "Commit" } dd { code { (release.commit) } " on " (release.branch) }
            dt { "Author" } dd { (release.author.as_deref().unwrap_or("unknown")) }
            @if !release.contributors.is_empty() {
                dt { "Contributors" }
                dd { (release.contributors.iter().map(String::as_str).collect::<Vec<_>>().join(", ")) " (none of them may approve it)" }
            }
            dt { "Cut" } dd { (time(release.created_at)) }
            @if let Some(config) = &release.config_commit {
                dt { "Gates and targets from" } dd { code { (short_commit(config)) } " on the default branch" }
            }
            @if let Some(why) = &view.rejected {
                dt { "Rejected" } dd { (status_badge("rejected")) " " (why) }
            }
        }
    }
}

fn digest(reference: &str) -> (&str, &str) {
    reference.split_once('@').unwrap_or((reference, ""))
}

fn plan_cell(view: &ReleaseView, sha: Option<&String>) -> Markup {
    html! {
        @match sha {
            None => span.muted { "no plan" },
            Some(sha) => {
                code title=(sha) { (short_commit(sha)) }
                @if let Some(plan) = view.plans.get(sha) { " " (plan.counts) }
            }
        }
    }
}

fn carries(view: &ReleaseView) -> Markup {
    let release = &view.release;
    html! {
        h3 { "Images" }
        @if release.images.is_empty() { p.muted { "No images." } } @else {
            table #images {
                thead { tr { th scope="col" { "Image" } th scope="col" { "Reference" } th scope="col" { "Digest" } } }
                tbody { @for (name, reference) in &release.images {
                    tr { td { (name) } td { code { (digest(reference).0) } } td { code { (digest(reference).1) } } }
                } }
            }
        }
        h3 { "Reviewed Terraform plans" }
        @if release.plans.is_empty() { p.muted { "No Terraform plans." } }
        @for (environment, sha) in &release.plans {
            div.plan {
                p { strong { (environment) } ": plan " code { (sha) } }
                @match view.plans.get(sha) {
                    Some(plan) => {
                        p {
                            code { (plan.target.dir) } " (workspace " (plan.workspace) "), " (plan.counts)
                            ", made " (time(plan.created_at.timestamp())) " for " code { (short_commit(&plan.commit)) }
                            @if let Some(number) = plan.pull_request { " in pull request #" (number) }
                            @if let Some(status) = &plan.apply_status { " " (status_badge(status)) }
                        }
                        pre.summary { (plan.summary) }
                    }
                    None => p.muted { "This plan is not in the store (made by another server, or pruned)." },
                }
            }
        }
        h3 { "DAG tree" }
        p { @match &release.dag_tree { Some(tree) => code { (tree) }, None => span.muted { "No DAG folder." } } }
        h3 { "Model pins" }
        @if release.models.is_empty() { p.muted { "No model pins." } }
        @for (environment, pins) in &release.models {
            p { strong { (environment) } }
            pre.pins { (pins) }
        }
    }
}

fn been(view: &ReleaseView) -> Markup {
    html! {
        h3 { "Deployments" }
        @if view.deployments.is_empty() { p.muted { "Not deployed anywhere yet." } } @else {
            table #deployments {
                thead { tr {
                    th scope="col" { "Environment" } th scope="col" { "Kind" } th scope="col" { "Status" }
                    th scope="col" { "Started" } th scope="col" { "Finished" } th scope="col" { "Targets" }
                } }
                tbody { @for (deployment, steps) in &view.deployments {
                    tr {
                        td { (deployment.environment) }
                        td { (deployment.action.as_str())
                            @if let Some(actor) = &deployment.actor { " by " (actor) } }
                        td { (status_badge(deployment.status.as_str())) }
                        td { (time(deployment.started_at)) }
                        td { @match deployment.finished_at { Some(at) => (time(at)), None => "not yet" } }
                        td { div.badges { @for step in steps {
                            span title=(step.summary) { (step.target) " " (status_badge(step.phase.as_str())) }
                        } } }
                    }
                } }
            }
        }
        h3 { "History" }
        @if view.history.is_empty() { p.muted { "Nothing recorded for this release yet." } } @else {
            ul.history { @for entry in &view.history {
                li {
                    (time(entry.at)) " "
                    @if let Some(environment) = &entry.environment { strong { (environment) } " " }
                    (entry.action) " " (status_badge(&entry.outcome))
                    @if let Some(actor) = &entry.actor { " by " (actor) }
                    @if !entry.reason.is_empty() { ": " (entry.reason) }
                }
            } }
        }
    }
}

/// One difference: what it is, this release's side, the other side.
type Row = (String, Markup, Markup);

fn differences(view: &ReleaseView, other: &Release) -> Vec<Row> {
    let release = &view.release;
    let mut rows: Vec<Row> = Vec::new();
    let text = |value: Option<&String>| -> Markup {
        html! { @match value { Some(value) => code { (value) }, None => span.muted { "none" } } }
    };
    let names: BTreeSet<&String> = release.images.keys().chain(other.images.keys()).collect();
    for name in names {
        let (mine, theirs) = (release.images.get(name), other.images.get(name));
        if mine != theirs {
            rows.push((format!("image {name}"), text(mine), text(theirs)));
        }
    }
    let environments: BTreeSet<&String> = release.plans.keys().chain(other.plans.keys()).collect();
    for environment in environments {
        let (mine, theirs) = (release.plans.get(environment), other.plans.get(environment));
        if mine != theirs {
            rows.push((
                format!("plan for {environment}"),
                plan_cell(view, mine),
                plan_cell(view, theirs),
            ));
        }
    }
    if release.dag_tree != other.dag_tree {
        rows.push((
            "DAG tree".to_owned(),
            text(release.dag_tree.as_ref()),
            text(other.dag_tree.as_ref()),
        ));
    }
    let pins: BTreeSet<&String> = release.models.keys().chain(other.models.keys()).collect();
    let pre = |value: Option<&String>| -> Markup {
        html! { @match value { Some(value) => pre.pins { (value) }, None => span.muted { "none" } } }
    };
    for environment in pins {
        let (mine, theirs) = (
            release.models.get(environment),
            other.models.get(environment),
        );
        if mine != theirs {
            rows.push((
                format!("model pins for {environment}"),
                pre(mine),
                pre(theirs),
            ));
        }
    }
    rows
}

fn compared(
    view: &ReleaseView,
    environment: &str,
    running: Option<&Release>,
    chosen: Option<&str>,
) -> Markup {
    let release = &view.release;
    html! {
        h3 { (environment) }
        @match running {
            None => p { (environment) " runs no release yet: everything this release carries would be new there." },
            Some(other) if other.id == release.id => p { (environment) " runs this release." },
            Some(other) => {
                @let rows = differences(view, other);
                p {
                    (environment) " runs " a href=(release_href(&other.id, chosen)) { (other.id) } ", "
                    @if other.sequence < release.sequence { "an older release." } @else { "a newer release." }
                }
                @if rows.is_empty() {
                    p { "Same images, plans, DAG tree and model pins." }
                } @else {
                    table.diff id=(format!("diff-{environment}")) {
                        thead { tr {
                            th scope="col" { "What differs" }
                            th scope="col" { "This release (" (release.id) ")" }
                            th scope="col" { (environment) " runs (" (other.id) ")" }
                        } }
                        tbody { @for (what, mine, theirs) in rows {
                            tr { th scope="row" { (what) } td { (mine) } td { (theirs) } }
                        } }
                    }
                }
            }
        }
    }
}
