//! One error type for every handler: bad input is echoed back with its status, internal errors are
//! answered generically and logged once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub enum ApiError {
    /// The request is wrong; the message is safe to show and says what to fix.
    Client(StatusCode, String),
    /// Something failed on our side; the detail is logged, not shown.
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::Client(StatusCode::BAD_REQUEST, message.into())
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::Client(StatusCode::NOT_FOUND, message.into())
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(detail.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Client(status, message) => {
                let body = serde_json::json!({ "error": message });
                (status, axum::Json(body)).into_response()
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                let body = serde_json::json!({ "error": "internal error; see the server log" });
                (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
            }
        }
    }
}
