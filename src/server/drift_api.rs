//! The drift API: `GET /api/drift` lists what the last checks found (a reader's view), and
//! `POST /api/drift/{environment}` checks one environment now, healing what its `drift.heal`
//! allows: an approver's act, since healing writes to the environment. The check runs in the
//! promotion service; this handler asks it and waits for the answer.

use super::{ApiError, AppState};
use crate::deploy::drift::{self, EnvironmentView};
use crate::deploy::reconcile::drift::EnvironmentDrift;
use crate::model::access::Role;
use crate::scheduler::promotion::{self, DriftAskError, HealAsk};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct DriftQuery {
    pub repository: Option<String>,
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CheckQuery {
    pub repository: Option<String>,
    /// Heal this domain now (admins), opted in or not.
    pub heal: Option<String>,
    /// Apply the Terraform plan kept for review with this sha256 (admins).
    pub apply_plan: Option<String>,
}

/// `GET /api/drift[?repository=&environment=]`.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<DriftQuery>,
) -> Result<Json<Vec<EnvironmentView>>, ApiError> {
    let store = state.deploy_store.clone();
    tokio::task::spawn_blocking(move || {
        drift::view(
            store.as_ref(),
            query.repository.as_deref(),
            query.environment.as_deref(),
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
    .map(Json)
}

/// `POST /api/drift/{environment}[?repository=][&heal=DOMAIN][&apply_plan=SHA256]`: checks now
/// (approvers) or heals one domain by hand (admins) and answers what was found and done.
pub async fn check(
    State(state): State<AppState>,
    Path(environment): Path<String>,
    Query(query): Query<CheckQuery>,
    headers: HeaderMap,
) -> Result<Json<Vec<EnvironmentDrift>>, ApiError> {
    let by_hand = query.heal.is_some() || query.apply_plan.is_some();
    let (needed, what) = if by_hand {
        (Role::Admin, "healing drift by hand")
    } else {
        (Role::Approver, "checking and healing drift")
    };
    let principal = super::auth::principal_with(&state, &headers, needed, what).await?;
    let heal = by_hand.then(|| HealAsk {
        domain: query.heal.clone().unwrap_or_else(|| "terraform".to_owned()),
        plan: query.apply_plan.clone(),
    });
    let asked = promotion::ask(
        state.drift_asks.as_ref(),
        query.repository,
        environment,
        heal,
        principal.recorded_as(),
    )
    .await;
    match asked {
        Ok(checked) => Ok(Json(checked)),
        Err(DriftAskError::NotFound(message)) => Err(ApiError::not_found(message)),
        Err(DriftAskError::Refused(message)) => {
            Err(ApiError::Client(StatusCode::CONFLICT, message))
        }
        Err(DriftAskError::Unavailable(message)) => {
            Err(ApiError::Client(StatusCode::SERVICE_UNAVAILABLE, message))
        }
        Err(DriftAskError::Failed(message)) => Err(ApiError::internal(message)),
    }
}
