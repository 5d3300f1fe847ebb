//! The read-only runs API: `/api/runs`, `/api/runs/{id}`, `/api/runs/{id}/jobs/{job}/log`.

use super::ui::RunsQuery;
use super::{ApiError, AppState};
use crate::model::Run;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;

/// `GET /api/runs`: the runs page's query (repository, branch, event, status, commit, before,
/// limit), answered as JSON.
pub async fn list_runs(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Vec<Run>>, ApiError> {
    let filter = query.filter(100).map_err(ApiError::bad_request)?;
    let store = state.store.clone();
    let runs = tokio::task::spawn_blocking(move || store.list_runs(&filter))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(runs))
}

pub async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let run_id = parse_run_id(&id)?;
    let store = state.store.clone();
    let run = tokio::task::spawn_blocking(move || store.get_run(run_id))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    run.map(Json).ok_or_else(|| {
        ApiError::not_found(format!("no run with id {run_id}; list runs at /api/runs"))
    })
}

pub async fn job_log(
    State(state): State<AppState>,
    Path((id, job)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let run_id = parse_run_id(&id)?;
    let store = state.store.clone();
    let job_name = job.clone();
    let log = tokio::task::spawn_blocking(move || store.job_log(run_id, &job_name))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    match log {
        Some(text) => Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text)),
        None => Err(ApiError::not_found(format!(
            "run {run_id} has no job `{job}`; see /api/runs/{run_id} for its jobs"
        ))),
    }
}

fn parse_run_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .map_err(|_| ApiError::bad_request(format!("run id `{text}` is not a number")))
}
