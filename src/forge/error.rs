//! The errors of the forge layer: what went wrong talking to GitHub, named so that callers can
//! tell a refusal (do not retry) from an outage (retry later). Never carries a token.

/// A GitHub call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The configuration cannot build a client (bad URL, unreadable key).
    #[error("github client configuration is invalid: {0}")]
    Config(String),
    /// GitHub could not be reached or the connection broke, after every retry.
    #[error("cannot reach github for {method} {path}: {message}; it is retried later")]
    Transport {
        method: &'static str,
        path: String,
        message: String,
    },
    /// GitHub answered with an error status (after every retry for 5xx and rate limits).
    #[error("github answered {status} to {method} {path}: {message}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
    },
    /// GitHub answered with a body sluice cannot read.
    #[error("github answered {method} {path} with an unexpected body: {message}")]
    Body {
        method: &'static str,
        path: String,
        message: String,
    },
}

impl ForgeError {
    /// Worth trying again later (an outage or a rate limit), as opposed to a refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            ForgeError::Transport { .. } => true,
            ForgeError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 403,
            ForgeError::Config(_) | ForgeError::Body { .. } => false,
        }
    }
}
