//! `POST /webhooks/github`: verify, store durably, answer. Nothing here plans or runs; a delivery
//! answered 202 is already on disk, so it survives any crash that follows. What costs memory or
//! time comes last: a request without a well-formed signature is refused before its body is
//! read, the body is read under the server's body budget (`body.rs`), and a payload nested
//! deeper than `MAX_JSON_DEPTH` is refused before it is parsed or stored.

use super::body::ReadBody;
use super::json_depth::{MAX_JSON_DEPTH, check_depth};
use super::{ApiError, AppState};
use crate::model::Delivery;
use crate::store::Inserted;
use axum::extract::{Request, State};
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
        408 => "timeout",
        413 => "too_large",
        503 => "busy",
        _ => "error",
    }
}

pub async fn receive(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let event = header_text(&headers, "x-github-event");
    let (Ok(response) | Err(response)) =
        read_and_handle(&state, &headers, event.as_deref(), body).await;
    state.metrics.observe_delivery(
        event.as_deref(),
        outcome_label(response.status()),
        started.elapsed(),
    );
    response
}

async fn read_and_handle(
    state: &AppState,
    headers: &HeaderMap,
    event: Option<&str>,
    body: axum::body::Body,
) -> Result<Response, Response> {
    let expected_signature =
        signature_from_headers(headers).map_err(IntoResponse::into_response)?;
    let body = state
        .body_limits
        .read(headers, body, super::MAX_BODY_BYTES)
        .await
        .map_err(IntoResponse::into_response)?;
    handle(
        state,
        headers,
        event.unwrap_or_default(),
        &expected_signature,
        body,
    )
    .await
    .map_err(IntoResponse::into_response)
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    event: &str,
    expected_signature: &[u8],
    body: ReadBody,
) -> Result<Response, ApiError> {
    let ReadBody {
        bytes: body,
        permit,
    } = body;
    verify_signature(&state.webhook_secret, expected_signature, &body)?;
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
    let payload = decode_payload(headers, body)?;
    check_depth(&payload, MAX_JSON_DEPTH).map_err(|too_deep| {
        ApiError::bad_request(format!(
            "payload nests deeper than {} levels (at byte {}); GitHub's payloads never do, so \
             check what sent this delivery",
            too_deep.limit, too_deep.offset
        ))
    })?;
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
    if let Some(name) = &repository
        && !state.repositories.contains_key(name)
    {
        return Err(ApiError::Client(
            StatusCode::FORBIDDEN,
            format!("repository `{name}` is not watched here; add it with --repo {name}=URL"),
        ));
    }
    let delivery = Delivery {
        id: delivery_id.clone(),
        event: event.to_owned(),
        repository,
        payload,
        received_at: chrono::Utc::now(),
    };
    // Signed, well-formed and bounded: only GitHub gets this far. Waiting for the durable write
    // holds no permit, so concurrent deliveries still share one fsync (group commit).
    drop(permit);
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

fn unauthorized(message: &str) -> ApiError {
    ApiError::Client(StatusCode::UNAUTHORIZED, message.to_owned())
}

/// The digest `X-Hub-Signature-256: sha256=<hex>` claims; checked before any of the body is read.
fn signature_from_headers(headers: &HeaderMap) -> Result<Vec<u8>, ApiError> {
    let signature = header_text(headers, "x-hub-signature-256").ok_or_else(|| {
        unauthorized("missing X-Hub-Signature-256 header; configure the webhook secret on GitHub")
    })?;
    let hex_digest = signature
        .strip_prefix("sha256=")
        .ok_or_else(|| unauthorized("X-Hub-Signature-256 must start with `sha256=`"))?;
    let digest =
        hex::decode(hex_digest).map_err(|_| unauthorized("X-Hub-Signature-256 is not hex"))?;
    if digest.len() != 32 {
        return Err(unauthorized(
            "X-Hub-Signature-256 must hold a 64-digit SHA-256 digest",
        ));
    }
    Ok(digest)
}

/// Constant-time check of the claimed digest against the HMAC of the raw body.
fn verify_signature(secret: &[u8], expected: &[u8], body: &[u8]) -> Result<(), ApiError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(ApiError::internal)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(expected).map_err(|_| {
        unauthorized(
            "signature does not match; check that the webhook secret is the same on both sides",
        )
    })
}

/// GitHub sends either the JSON itself or a form with one field `payload`.
fn decode_payload(headers: &HeaderMap, body: Vec<u8>) -> Result<Vec<u8>, ApiError> {
    let content_type = header_text(headers, header::CONTENT_TYPE.as_str()).unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let payload = form_urlencoded::parse(&body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value.into_owned())
            .ok_or_else(|| ApiError::bad_request("form body has no `payload` field"))?;
        Ok(payload.into_bytes())
    } else {
        Ok(body)
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
