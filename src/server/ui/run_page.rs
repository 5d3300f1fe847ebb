//! The run page (`/runs/{id}`).

use super::{UiError, Viewer};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::response::Response;

pub async fn show(
    State(_state): State<AppState>,
    _viewer: Viewer,
    Path(_id): Path<String>,
) -> Result<Response, UiError> {
    Err(UiError::not_found("todo"))
}

pub async fn cancel() -> Result<Response, UiError> {
    Err(UiError::not_found("todo"))
}

pub async fn rerun() -> Result<Response, UiError> {
    Err(UiError::not_found("todo"))
}
