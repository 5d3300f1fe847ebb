//! Who a request acts as. `Authorization: Bearer TOKEN` names a principal: a personal token
//! (`sluice token create`) gives its owner's login and role; the server's `SLUICE_API_TOKEN` is
//! the bootstrap admin with no person behind it, which may do anything an admin may except
//! approve. Tokens are found by their sha256; the store never holds one. Checked before any body
//! is read.

use super::{ApiError, AppState};
use crate::deploy::actions::{self, ActionError};
use crate::model::access::{Principal, Role, Via, token_sha256};
use axum::http::{HeaderMap, StatusCode};

fn unauthorised(message: impl Into<String>) -> ApiError {
    ApiError::Client(StatusCode::UNAUTHORIZED, message.into())
}

/// The principal behind the request's bearer token, or 401 saying what is wrong with it.
pub async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(given) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
    else {
        return Err(unauthorised(
            "this needs a bearer token: send `Authorization: Bearer TOKEN` with a personal token from `sluice token create`",
        ));
    };
    if let Some(bootstrap) = &state.api_token
        && subtle::ConstantTimeEq::ct_eq(given.as_bytes(), bootstrap.as_bytes()).into()
    {
        return Ok(Principal {
            person: None,
            role: Role::Admin,
            via: Via::BootstrapToken,
        });
    }
    let sha256 = token_sha256(given);
    let store = state.store.clone();
    let now = chrono::Utc::now().timestamp();
    tokio::task::spawn_blocking(move || {
        let Some(record) = store.api_token_by_sha256(&sha256).map_err(ApiError::internal)? else {
            return Err(unauthorised(
                "unknown bearer token; `sluice token list` shows the tokens there are, and an admin makes one with `sluice token create NAME --role ROLE`",
            ));
        };
        if let Some(refusal) = record.refusal(now) {
            return Err(unauthorised(refusal));
        }
        // Failing to note the last use must not refuse the request.
        if let Err(error) = store.touch_api_token(&sha256, now) {
            tracing::warn!(%error, "cannot record an api token's use");
        }
        Ok(Principal {
            person: Some(record.name),
            role: record.role,
            via: Via::PersonalToken,
        })
    })
    .await
    .map_err(ApiError::internal)?
}

/// The principal, refused with 403 unless its role is at least `needed` for `what`.
pub async fn principal_with(
    state: &AppState,
    headers: &HeaderMap,
    needed: Role,
    what: &str,
) -> Result<Principal, ApiError> {
    let principal = principal(state, headers).await?;
    actions::require(&principal, needed, what).map_err(refused)?;
    Ok(principal)
}

/// An action's refusal as an HTTP answer: 403 for a role or identity, 409 for the state of things.
pub fn refused(error: ActionError) -> ApiError {
    match error {
        ActionError::Forbidden(message) => ApiError::Client(StatusCode::FORBIDDEN, message),
        ActionError::Refused(message) => ApiError::Client(StatusCode::CONFLICT, message),
        ActionError::Store(error) => ApiError::internal(error),
    }
}

/// Lets a read of the JSON API through where `ui.read: open`; where `ui.read: signed-in`, only
/// with a valid bearer token (any role) or a signed-in session, else 401 saying how to read.
pub async fn require_reader(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.ui.read == super::ui::UiRead::Open {
        return next.run(request).await;
    }
    let headers = request.headers();
    let allowed = if headers.contains_key(axum::http::header::AUTHORIZATION) {
        match principal(&state, headers).await {
            Ok(_) => true,
            Err(refusal) => return refusal.into_response(),
        }
    } else {
        super::ui::session::signed_in(&state, headers).await
    };
    if allowed {
        return next.run(request).await;
    }
    unauthorised(
        "this server's runs, logs and releases are read by people only (ui.read: signed-in): send `Authorization: Bearer TOKEN` with a personal token from `sluice token create`, or sign in at /signin",
    )
    .into_response()
}
