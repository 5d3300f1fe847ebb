//! The promotion API: read releases, status and history; approve, promote and roll back. Writes
//! need a bearer token (`auth.rs`), checked before the body is read; the acting person is the
//! token's owner, never a field of the body. What each role may do is decided in
//! `deploy::actions`, so the command line refuses the same things.

use super::{ApiError, AppState};
use crate::deploy::Release;
use crate::deploy::actions::{self, ActionError};
use crate::model::access::{Principal, Role};
use crate::store::{AuditEntry, DeployStore};
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
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    /// Skip the gates (admin only, with a reason).
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

fn refused(error: ActionError) -> ApiError {
    super::auth::refused(error)
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

/// An action's body is a few names; nothing larger is read.
const MAX_ACTION_BODY_BYTES: usize = 64 * 1024;

/// `POST /api/environments/{environment}/{approve|promote|rollback}`.
pub async fn act(
    State(state): State<AppState>,
    Path((environment, verb)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), Response> {
    let principal =
        super::auth::principal_with(&state, &headers, Role::Approver, "changing promotion")
            .await
            .map_err(IntoResponse::into_response)?;
    let body = state
        .body_limits
        .read(&headers, body, MAX_ACTION_BODY_BYTES)
        .await
        .map_err(IntoResponse::into_response)?;
    let body = parse_action(&body.bytes).map_err(IntoResponse::into_response)?;
    act_as(state, environment, verb, principal, body)
        .await
        .map_err(IntoResponse::into_response)
}

/// The body of an action; an `actor` field is refused, since the token says who acts.
fn parse_action(bytes: &[u8]) -> Result<ActionBody, ApiError> {
    const SHAPE: &str = r#"send {"release": "RELEASE", "repository": "OWNER/NAME", "force": false, "reason": "TEXT"}"#;
    let value: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        serde_json::from_slice(bytes).map_err(|error| {
            ApiError::bad_request(format!("the body is not JSON: {error}; {SHAPE}"))
        })?
    };
    if value.get("actor").is_some() {
        return Err(ApiError::bad_request(
            "`actor` is not accepted: the person is the token's owner; leave it out",
        ));
    }
    serde_json::from_value(value).map_err(|error| {
        ApiError::bad_request(format!("the body is not an action: {error}; {SHAPE}"))
    })
}

async fn act_as(
    state: AppState,
    environment: String,
    verb: String,
    principal: Principal,
    body: ActionBody,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let now = chrono::Utc::now().timestamp();
    let message = with_store(&state, move |store| {
        let repository = actions::repository(store, body.repository.as_deref())?;
        let release = body.release.as_deref();
        let force = actions::Force {
            force: body.force,
            reason: body.reason.as_deref(),
        };
        let action = actions::EnvironmentAction::parse(&verb)?;
        actions::perform(
            store,
            &repository,
            &environment,
            action,
            release,
            &principal,
            force,
            now,
        )
    })
    .await?;
    state.promotion_wakeup.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "message": message })),
    ))
}
