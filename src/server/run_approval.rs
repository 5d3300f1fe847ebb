//! `POST /api/runs/{id}/approve`: an approver (or the bootstrap token) lets the waiting runs of
//! an untrusted event (a pull request from a fork) start; the approval names who gave it. The server stores an approval delivery and
//! wakes the intake worker; it plans nothing itself.

use super::{ApiError, AppState};
use crate::scheduler::approval;
use crate::store::Inserted;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

pub async fn approve_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let principal = super::auth::principal_with(
        &state,
        &headers,
        crate::model::access::Role::Approver,
        "approving a fork's waiting run",
    )
    .await?;
    let approver = principal.recorded_as();
    let run_id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("run id `{id}` is not a number")))?;
    let store = state.store.clone();
    let approval = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let run = store
            .get_run(run_id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("no run with id {run_id}")))?;
        let waiting = run
            .reason
            .as_deref()
            .is_some_and(|reason| reason.starts_with(approval::WAITING));
        if !waiting {
            return Err(ApiError::Client(
                StatusCode::CONFLICT,
                format!(
                    "run {run_id} is not waiting for approval (it is {}); only the runs of a fork's pull request wait",
                    run.status
                ),
            ));
        }
        let delivery_id = run.delivery.ok_or_else(|| {
            ApiError::Client(
                StatusCode::CONFLICT,
                format!("run {run_id} has no delivery to plan again"),
            )
        })?;
        let original = store
            .delivery(&delivery_id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("delivery {delivery_id} is gone")))?;
        let approval = approval::approval_delivery(&original, run_id, &approver);
        let inserted = store.insert_delivery(&approval).map_err(ApiError::internal)?;
        Ok((approval.id, inserted))
    })
    .await
    .map_err(ApiError::internal)??;
    let (approval_id, inserted) = approval;
    if inserted == Inserted::New {
        state.intake_wakeup.notify_one();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "run": run_id,
            "approval": approval_id,
            "duplicate": inserted == Inserted::Duplicate,
        })),
    ))
}
