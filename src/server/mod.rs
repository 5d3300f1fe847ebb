//! The HTTP surface: GitHub webhook intake, the runs API, health and Prometheus metrics.
//! The only module that knows HTTP. It stores deliveries and reads runs through the store; it never
//! plans or runs anything itself; it wakes the intake worker instead.

mod api;
pub mod auth;
pub mod body;
mod deploy_api;
mod drift_api;
mod error;
pub mod json_depth;
pub mod listen;
mod locks_api;
pub mod metrics;
mod run_approval;
pub mod ui;
pub mod webhook;

use crate::store::Store;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Notify;

pub use body::BodyLimits;
pub use error::ApiError;
pub use listen::{ConnectionSettings, serve};
pub use metrics::Metrics;

/// GitHub refuses to send payloads over 25 MiB; neither do we accept them.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub deploy_store: Arc<dyn crate::store::DeployStore>,
    /// Signalled after a person asks promotion for something.
    pub promotion_wakeup: Arc<Notify>,
    /// `SLUICE_API_TOKEN`: the bootstrap admin token with no person behind it; `None` = only
    /// personal tokens (`sluice token create`) open the API's writes.
    pub api_token: Option<Arc<String>>,
    /// The shared webhook secret (`SLUICE_WEBHOOK_SECRET`).
    pub webhook_secret: Arc<Vec<u8>>,
    /// Accepted repositories: `OWNER/NAME` -> fetch URL.
    pub repositories: Arc<BTreeMap<String, String>>,
    pub metrics: Arc<Metrics>,
    /// Signalled after a delivery is stored, so the intake worker plans it at once.
    pub intake_wakeup: Arc<Notify>,
    /// How many request bodies are read at once, and how long one may take.
    pub body_limits: Arc<BodyLimits>,
    /// Runs', jobs' and logs' progress, for the web UI's live pages.
    pub run_updates: tokio::sync::broadcast::Sender<crate::scheduler::RunUpdate>,
    /// Signalled after a person asks for a run to be cancelled.
    pub dispatcher_wakeup: Arc<Notify>,
    /// Who may read the web UI.
    pub ui: Arc<ui::UiSettings>,
    /// Where drift checks are asked for; `None` where nothing is promoted.
    pub drift_asks: Option<crate::scheduler::promotion::DriftAsks>,
}

/// `GET /readyz`: `200 ready` when the database answers and holds the schema this build writes;
/// otherwise `503` with the reason, so a load balancer or a Kubernetes readiness probe sends no
/// traffic here. `/healthz` stays liveness: the process answers.
async fn readiness(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    let store = state.store.clone();
    let versions = tokio::task::spawn_blocking(move || store.schema_versions()).await;
    match versions {
        Ok(Ok((found, current))) if found == current => {
            (StatusCode::OK, format!("ready: schema version {found}\n"))
        }
        Ok(Ok((found, current))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the database holds schema version {found}, this build writes {current}; restart to migrate\n"
            ),
        ),
        Ok(Err(error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the database does not answer: {error}\n"),
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {error}\n"),
        ),
    }
}

/// The whole HTTP application; tests call `router(state).oneshot(request)`.
pub fn router(state: AppState) -> Router {
    // What the JSON API lets anyone read follows the web UI's `ui.read`: where pages need a
    // session, these need a bearer token or a session too.
    let reads = Router::new()
        .route("/api/runs", get(api::list_runs))
        .route("/api/runs/{id}", get(api::get_run))
        .route("/api/runs/{id}/jobs/{job}/log", get(api::job_log))
        .route("/api/releases", get(deploy_api::releases))
        .route("/api/status", get(deploy_api::status))
        .route("/api/history", get(deploy_api::history))
        .route("/api/drift", get(drift_api::list))
        .route("/api/locks", get(locks_api::list))
        .merge(ui::api_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_reader,
        ));
    Router::new()
        .route("/webhooks/github", post(webhook::receive))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics::render))
        .route("/api/runs/{id}/approve", post(run_approval::approve_run))
        .route(
            "/api/environments/{environment}/{action}",
            post(deploy_api::act),
        )
        .route("/api/drift/{environment}", post(drift_api::check))
        .route(
            "/api/locks/{owner}/{name}/{environment}",
            delete(locks_api::unlock),
        )
        .merge(reads)
        .merge(ui::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
