//! `GET /api/locks` (open, like every read) lists every Terraform lock with its holder, age,
//! lease and queue; `DELETE /api/locks/{owner}/{name}/{environment}?dir=&pull_request=` releases
//! one (admin only, token checked first) and leaves its queue for the queue's head to be planned.

use super::{ApiError, AppState};
use crate::model::access::Role;
use crate::terraform::locks::{self, LockView, UnlockError, UnlockWanted};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<LockView>>, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || locks::list(store.as_ref(), chrono::Utc::now()))
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .map_err(ApiError::internal)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockQuery {
    pub dir: Option<String>,
    pub pull_request: Option<u64>,
}

pub async fn unlock(
    State(state): State<AppState>,
    Path((owner, name, environment)): Path<(String, String, String)>,
    headers: HeaderMap,
    query: Result<Query<UnlockQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal =
        super::auth::principal_with(&state, &headers, Role::Admin, "unlocking a terraform lock")
            .await?;
    let Query(query) = query.map_err(|rejection| {
        ApiError::bad_request(format!(
            "{rejection}; the query takes `dir` and `pull_request` (a number)"
        ))
    })?;
    let store = state.store.clone();
    let repository = format!("{owner}/{name}");
    let released = tokio::task::spawn_blocking(move || {
        let wanted = UnlockWanted {
            repository: Some(&repository),
            environment: &environment,
            pull_request: query.pull_request,
            dir: query.dir.as_deref(),
        };
        locks::unlock_one(store.as_ref(), &wanted)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|error| match error {
        UnlockError::NotFound(message) => ApiError::not_found(message),
        UnlockError::Ambiguous(message) => ApiError::Client(StatusCode::CONFLICT, message),
        UnlockError::Store(error) => ApiError::internal(error),
    })?;
    let queued = released.queue.len();
    let released = released.lock;
    tracing::info!(
        by = %principal.recorded_as(),
        repository = %released.target.repository,
        environment = %released.target.environment,
        dir = %released.target.dir,
        "terraform lock released through the API"
    );
    Ok(Json(serde_json::json!({
        "message": locks::unlocked_message(&released, queued),
        "released_by": principal.recorded_as(),
        "queue": queued,
    })))
}
