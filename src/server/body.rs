//! Reading request bodies under a budget. At most `max_concurrent` bodies are read and held at
//! once, each up to a size limit and within a deadline, so the memory bodies take is bounded by
//! that count times the limit whatever clients send. A request that finds every permit taken is
//! answered `503` with `Retry-After` before any of its body is read; what it still sends is read
//! and thrown away in the background, so the client gets the answer instead of a reset
//! connection. Knows HTTP bodies and nothing of webhooks or signatures.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies read at once when the configuration says nothing.
pub const DEFAULT_MAX_CONCURRENT_BODIES: usize = 8;
/// How long a whole body may take to arrive when the configuration says nothing.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// What a client told `503` is asked to wait, in seconds.
const RETRY_AFTER_SECONDS: u64 = 2;

/// The shared budget for reading bodies; one per server.
pub struct BodyLimits {
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    body_timeout: Duration,
    /// Refused bodies being thrown away; past `max_draining` their connections are closed.
    draining: Arc<AtomicUsize>,
}

impl Default for BodyLimits {
    fn default() -> BodyLimits {
        BodyLimits::new(DEFAULT_MAX_CONCURRENT_BODIES, DEFAULT_BODY_TIMEOUT)
    }
}

/// A body read whole, and the permit that counts it among the bodies being read. Dropping the
/// permit lets the next body in; keep it while the bytes are checked, so that what anonymous
/// clients can make the server hold stays bounded.
pub struct ReadBody {
    pub bytes: Vec<u8>,
    pub permit: OwnedSemaphorePermit,
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Every permit is taken.
    Busy {
        max_concurrent: usize,
    },
    TooLarge {
        limit: usize,
    },
    TimedOut {
        after: Duration,
    },
    /// The connection failed while the body arrived.
    Broken(String),
}

impl BodyLimits {
    /// `max_concurrent` must be at least 1 (the configuration checks it).
    pub fn new(max_concurrent: usize, body_timeout: Duration) -> BodyLimits {
        let max_concurrent = max_concurrent.max(1);
        BodyLimits {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            body_timeout,
            draining: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Reads the whole body under a permit, refusing at once when none is free or when
    /// `Content-Length` already says it is larger than `limit`.
    pub async fn read(
        &self,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<ReadBody, BodyError> {
        let declared_length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared_length.is_some_and(|length| length > limit as u64) {
            self.discard(body, limit);
            return Err(BodyError::TooLarge { limit });
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.discard(body, limit);
            return Err(BodyError::Busy {
                max_concurrent: self.max_concurrent,
            });
        };
        // Reserving what the client declared avoids growing (and briefly doubling) the buffer;
        // pages it never fills cost no memory.
        let capacity = declared_length.map_or(64 * 1024, |length| length as usize);
        match tokio::time::timeout(self.body_timeout, collect(body, capacity, limit)).await {
            Ok(Ok(bytes)) => Ok(ReadBody { bytes, permit }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(BodyError::TimedOut {
                after: self.body_timeout,
            }),
        }
    }

    /// Reads and drops what the client still sends of a refused body, holding one frame at a
    /// time, up to twice the limit and within the body timeout; then the connection is closed.
    fn discard(&self, body: Body, limit: usize) {
        let max_draining = self.max_concurrent * 8;
        if self.draining.fetch_add(1, Ordering::SeqCst) >= max_draining {
            self.draining.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let draining = self.draining.clone();
        let body_timeout = self.body_timeout;
        tokio::spawn(async move {
            let drain = async {
                let mut stream = body.into_data_stream();
                let mut discarded = 0usize;
                while let Some(Ok(chunk)) = stream.next().await {
                    discarded += chunk.len();
                    if discarded > limit.saturating_mul(2) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(body_timeout, drain).await;
            draining.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn collect(body: Body, capacity: usize, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::with_capacity(capacity.min(limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| BodyError::Broken(error.to_string()))?;
        if bytes.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            BodyError::Busy { max_concurrent } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the server is already reading {max_concurrent} request bodies; retry in \
                     {RETRY_AFTER_SECONDS} seconds"
                ),
            ),
            BodyError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "body is larger than {limit} bytes, the most this endpoint reads; send less"
                ),
            ),
            BodyError::TimedOut { after } => (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} seconds; send it again on a faster connection",
                    after.as_secs_f64()
                ),
            ),
            BodyError::Broken(reason) => (
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {reason}; send it again"),
            ),
        };
        let mut response = super::ApiError::Client(status, message).into_response();
        if matches!(self, BodyError::Busy { .. }) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length(bytes: usize) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes));
        headers
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let limits = BodyLimits::default();
        let read = limits
            .read(&length(5), Body::from("hello"), 10)
            .await
            .unwrap();
        assert_eq!(read.bytes, b"hello");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_whether_declared_or_not() {
        let limits = BodyLimits::default();
        let declared = limits
            .read(&length(11), Body::from("0123456789a"), 10)
            .await;
        assert_eq!(declared.err(), Some(BodyError::TooLarge { limit: 10 }));
        let undeclared = limits
            .read(&HeaderMap::new(), Body::from("0123456789a"), 10)
            .await;
        assert_eq!(undeclared.err(), Some(BodyError::TooLarge { limit: 10 }));
    }

    #[tokio::test]
    async fn while_every_permit_is_held_the_next_body_is_refused_with_503_and_retry_after() {
        let limits = BodyLimits::new(1, DEFAULT_BODY_TIMEOUT);
        let held = limits.read(&length(1), Body::from("a"), 10).await.unwrap();
        let refused = limits.read(&length(1), Body::from("b"), 10).await.err();
        assert_eq!(refused, Some(BodyError::Busy { max_concurrent: 1 }));
        let response = refused.unwrap().into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        drop(held);
        let again = limits.read(&length(1), Body::from("c"), 10).await.unwrap();
        assert_eq!(again.bytes, b"c");
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_times_out_and_frees_its_permit() {
        let limits = BodyLimits::new(1, Duration::from_millis(50));
        let (_sender, stalled) =
            tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
        let never_ending = Body::from_stream(tokio_stream_from(stalled));
        let refused = limits.read(&length(100), never_ending, 1000).await.err();
        assert_eq!(
            refused,
            Some(BodyError::TimedOut {
                after: Duration::from_millis(50)
            })
        );
        assert_eq!(
            refused.unwrap().into_response().status(),
            StatusCode::REQUEST_TIMEOUT
        );
        assert!(limits.read(&length(1), Body::from("d"), 10).await.is_ok());
    }

    /// A stream of what the channel receives, without pulling in `tokio-stream`.
    fn tokio_stream_from(
        receiver: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
        futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        })
    }
}
