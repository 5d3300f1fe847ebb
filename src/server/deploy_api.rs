//! The promotion API: read releases, status and history; approve, promote and roll back. Writes
//! need `Authorization: Bearer <SLUICE_API_TOKEN>` and are refused when no token is configured.
//! The acting person is named by the `actor` field of the body, which is read and parsed only
//! after the token was checked.

use super::{ApiError, AppState};
use crate::deploy::Release;
use crate::deploy::actions::{self, ActionError};
use crate::deploy::state::{AuditEntry, DeployStore, RequestAction};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct RepositoryQuery {
    pub repository: Option<String>,
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ActionBody {
    pub actor: String,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
}

fn refused(error: ActionError) -> ApiError {
    match error {
        ActionError::Refused(message) => ApiError::Client(StatusCode::CONFLICT, message),
        ActionError::Store(error) => ApiError::internal(error),
    }
}

async fn with_store<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&dyn DeployStore) -> Result<T, ActionError> + Send + 'static,
) -> Result<T, ApiError> {
    let store: Arc<dyn DeployStore> = state.deploy_store.clone();
    tokio::task::spawn_blocking(move || work(store.as_ref()))
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)
}

pub async fn releases(
    State(state): State<AppState>,
    Query(query): Query<RepositoryQuery>,
) -> Result<Json<Vec<Release>>, ApiError> {
    with_store(&state, move |store| {
        let repository = actions::repository(store, query.repository.as_deref())?;
        Ok(store.releases(&repository)?)
    })
    .await
    .map(Json)
}

pub async fn history(
    State(state): State<AppState>,
    Query(query): Query<RepositoryQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    with_store(&state, move |store| {
        let repository = actions::repository(store, query.repository.as_deref())?;
        Ok(store.audit(&repository, query.environment.as_deref())?)
    })
    .await
    .map(Json)
}

pub async fn status(
    State(state): State<AppState>,
    Query(query): Query<RepositoryQuery>,
) -> Result<Json<Vec<actions::EnvironmentStatus>>, ApiError> {
    with_store(&state, move |store| {
        let repository = actions::repository(store, query.repository.as_deref())?;
        actions::status(store, &repository, &[])
    })
    .await
    .map(Json)
}

pub(super) fn authorise(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.api_token else {
        return Err(ApiError::Client(
            StatusCode::FORBIDDEN,
            "the promotion API is read-only until the server has SLUICE_API_TOKEN set".to_owned(),
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes()).into() {
        Ok(())
    } else {
        Err(ApiError::Client(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token; send `Authorization: Bearer $SLUICE_API_TOKEN`"
                .to_owned(),
        ))
    }
}

/// An action's body is a few names; nothing larger is read.
const MAX_ACTION_BODY_BYTES: usize = 64 * 1024;

/// `POST /api/environments/{environment}/{approve|promote|rollback}`.
pub async fn act(
    State(state): State<AppState>,
    Path((environment, verb)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), Response> {
    authorise(&state, &headers).map_err(IntoResponse::into_response)?;
    let body = state
        .body_limits
        .read(&headers, body, MAX_ACTION_BODY_BYTES)
        .await
        .map_err(IntoResponse::into_response)?;
    let body: ActionBody = serde_json::from_slice(&body.bytes).map_err(|error| {
        ApiError::bad_request(format!(
            "the body is not an action: {error}; send {{\"actor\": \"LOGIN\", \"release\": \"RELEASE\"}}"
        ))
        .into_response()
    })?;
    act_as(state, environment, verb, body)
        .await
        .map_err(IntoResponse::into_response)
}

async fn act_as(
    state: AppState,
    environment: String,
    verb: String,
    body: ActionBody,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if body.actor.trim().is_empty() {
        return Err(ApiError::bad_request("`actor` must name the person acting"));
    }
    let now = chrono::Utc::now().timestamp();
    let message = with_store(&state, move |store| {
        let repository = actions::repository(store, body.repository.as_deref())?;
        let release = body.release.as_deref();
        match verb.as_str() {
            "approve" => {
                actions::approve(store, &repository, &environment, release, &body.actor, now)
            }
            "promote" => actions::request(
                store,
                &repository,
                &environment,
                RequestAction::Promote,
                release,
                &body.actor,
                now,
            ),
            "rollback" => actions::request(
                store,
                &repository,
                &environment,
                RequestAction::Rollback,
                release,
                &body.actor,
                now,
            ),
            other => Err(ActionError::Refused(format!(
                "unknown action `{other}`; use approve, promote or rollback"
            ))),
        }
    })
    .await?;
    state.promotion_wakeup.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "message": message })),
    ))
}
