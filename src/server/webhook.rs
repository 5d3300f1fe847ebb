//! `POST /webhooks/github`: verify, store durably, answer. Nothing here plans or runs; a delivery
//! answered 202 is already on disk, so it survives any crash that follows.

use super::{ApiError, AppState};
use crate::model::Delivery;
use crate::store::Inserted;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Instant;

/// The answer's outcome label in `/metrics`.
pub(crate) fn outcome_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "ok",
        202 => "accepted",
        400 => "bad_request",
        401 => "bad_signature",
        403 => "forbidden",
        413 => "too_large",
        _ => "error",
    }
}

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let event = header_text(&headers, "x-github-event").unwrap_or_default();
    let response = match body {
        Ok(body) => handle(&state, &headers, &event, body)
            .await
            .unwrap_or_else(|error| error.into_response()),
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "body is larger than {} bytes; GitHub never sends more",
                    super::MAX_BODY_BYTES
                )
            } else {
                rejection.body_text()
            };
            ApiError::Client(status, message).into_response()
        }
    };
    let label = if event.is_empty() {
        "unknown"
    } else {
        event.as_str()
    };
    state
        .metrics
        .observe_delivery(label, outcome_label(response.status()), started.elapsed());
    response
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    event: &str,
    body: Bytes,
) -> Result<Response, ApiError> {
    verify_signature(&state.webhook_secret, headers, &body)?;
    if event.is_empty() {
        return Err(ApiError::bad_request("missing X-GitHub-Event header"));
    }
    if event.starts_with("sluice_") {
        return Err(ApiError::bad_request(format!(
            "event `{event}` is sluice's own and cannot be delivered from outside"
        )));
    }
    let delivery_id = header_text(headers, "x-github-delivery")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing X-GitHub-Delivery header"))?;
    let payload = decode_payload(headers, &body)?;
    // Only the repository's name matters here; deserialising into a small struct still checks
    // the whole body is valid JSON, without building a tree of it.
    let envelope: Envelope = serde_json::from_slice(&payload)
        .map_err(|error| ApiError::bad_request(format!("payload is not valid JSON: {error}")))?;
    if event == "ping" {
        let zen = envelope.zen.unwrap_or_default();
        return Ok((
            StatusCode::OK,
            axum::Json(serde_json::json!({ "ok": true, "zen": zen })),
        )
            .into_response());
    }
    let repository = envelope
        .repository
        .and_then(|repository| repository.full_name);
    if let Some(name) = &repository {
        if !state.repositories.contains_key(name) {
            return Err(ApiError::Client(
                StatusCode::FORBIDDEN,
                format!("repository `{name}` is not watched here; add it with --repo {name}=URL"),
            ));
        }
    }
    let delivery = Delivery {
        id: delivery_id.clone(),
        event: event.to_owned(),
        repository,
        payload: payload.into_owned(),
        received_at: chrono::Utc::now(),
    };
    let store = state.store.clone();
    let inserted = tokio::task::spawn_blocking(move || store.insert_delivery(&delivery))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    match inserted {
        Inserted::Duplicate => Ok((
            StatusCode::OK,
            axum::Json(serde_json::json!({ "delivery": delivery_id, "duplicate": true })),
        )
            .into_response()),
        Inserted::New => {
            state.intake_wakeup.notify_one();
            Ok((
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({ "delivery": delivery_id, "accepted": true })),
            )
                .into_response())
        }
    }
}

/// The parts of a payload the intake looks at; everything else is checked for syntax and skipped.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    repository: Option<EnvelopeRepository>,
    #[serde(default)]
    zen: Option<String>,
}

#[derive(serde::Deserialize)]
struct EnvelopeRepository {
    #[serde(default)]
    full_name: Option<String>,
}

/// Constant-time check of `X-Hub-Signature-256: sha256=<hex>` over the raw body.
fn verify_signature(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let unauthorized =
        |message: &str| ApiError::Client(StatusCode::UNAUTHORIZED, message.to_owned());
    let signature = header_text(headers, "x-hub-signature-256").ok_or_else(|| {
        unauthorized("missing X-Hub-Signature-256 header; configure the webhook secret on GitHub")
    })?;
    let hex_digest = signature
        .strip_prefix("sha256=")
        .ok_or_else(|| unauthorized("X-Hub-Signature-256 must start with `sha256=`"))?;
    let expected =
        hex::decode(hex_digest).map_err(|_| unauthorized("X-Hub-Signature-256 is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(ApiError::internal)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).map_err(|_| {
        unauthorized(
            "signature does not match; check that the webhook secret is the same on both sides",
        )
    })
}

/// GitHub sends either the JSON itself or a form with one field `payload`.
fn decode_payload<'body>(
    headers: &HeaderMap,
    body: &'body [u8],
) -> Result<std::borrow::Cow<'body, [u8]>, ApiError> {
    let content_type = header_text(headers, header::CONTENT_TYPE.as_str()).unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let payload = form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value.into_owned())
            .ok_or_else(|| ApiError::bad_request("form body has no `payload` field"))?;
        Ok(std::borrow::Cow::Owned(payload.into_bytes()))
    } else {
        Ok(std::borrow::Cow::Borrowed(body))
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// `sha256=<hex>` for a body; used by the demo and tests to sign deliveries.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
