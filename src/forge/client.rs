//! The GitHub client: octocrab set up for github.com or GitHub Enterprise (any API base URL),
//! authenticated by a token or as a GitHub App (installation tokens, found per repository), and
//! every request retried with backoff: 5xx answers and transport errors with growing pauses, rate
//! limits (`403`/`429` with `Retry-After` or `x-ratelimit-reset`) after the wait GitHub asks for.
//! Speaks JSON over paths; knows nothing of comments, statuses or runs.

use super::error::ForgeError;
use octocrab::Octocrab;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;

/// How sluice proves who it is to GitHub.
#[derive(Clone)]
pub enum GithubAuth {
    /// A personal access token or any bearer token.
    Token(String),
    /// A GitHub App: the app's id and its PEM private key. Each repository is reached through
    /// the installation GitHub reports for it.
    App {
        app_id: u64,
        private_key_pem: Vec<u8>,
    },
}

impl std::fmt::Debug for GithubAuth {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GithubAuth::Token(_) => formatter.write_str("Token(<redacted>)"),
            GithubAuth::App { app_id, .. } => write!(formatter, "App({app_id})"),
        }
    }
}

/// How hard a request is tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The pause after the first 5xx or transport error; doubled after each further one.
    pub first_backoff: Duration,
    /// No single wait is longer than this, whatever GitHub asks for; a longer rate limit fails
    /// the request (the outbox tries it again later).
    pub longest_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            longest_wait: Duration::from_secs(120),
        }
    }
}

/// The HTTP methods the forge uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A successful answer: its status and its JSON body (`Null` when empty).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

/// What an error answer said about retrying, read from its headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetrySignals {
    pub status: u16,
    pub retry_after: Option<String>,
    pub ratelimit_remaining: Option<String>,
    pub ratelimit_reset: Option<String>,
}

/// How long to wait before trying again after `signals` on try number `attempt` (from 1), or
/// `None` when the answer is final (a refusal such as 404 or a 403 that is not a rate limit).
/// `now_epoch_seconds` is the current Unix time, for `x-ratelimit-reset`.
pub fn retry_wait(
    signals: &RetrySignals,
    attempt: u32,
    policy: &RetryPolicy,
    now_epoch_seconds: u64,
) -> Option<Duration> {
    let backoff = policy
        .first_backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let retry_after = signals
        .retry_after
        .as_deref()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let exhausted = signals.ratelimit_remaining.as_deref().map(str::trim) == Some("0");
    let reset_wait = signals
        .ratelimit_reset
        .as_deref()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(|reset| Duration::from_secs(reset.saturating_sub(now_epoch_seconds).max(1)));
    match signals.status {
        429 | 403 => {
            if let Some(wait) = retry_after {
                Some(wait)
            } else if exhausted && reset_wait.is_some() {
                reset_wait
            } else if signals.status == 429 {
                Some(backoff)
            } else {
                None
            }
        }
        500..=599 => Some(retry_after.unwrap_or(backoff)),
        _ => None,
    }
}

/// One GitHub API endpoint, shared by every repository sluice reports to.
pub struct GithubClient {
    octocrab: Octocrab,
    is_app: bool,
    retry: RetryPolicy,
    /// App only: one installation client per repository, found on first use.
    installations: Mutex<HashMap<String, Octocrab>>,
}

impl GithubClient {
    /// `api_url` is `https://api.github.com` or an Enterprise URL such as
    /// `https://github.example.com/api/v3`.
    pub fn new(api_url: &str, auth: GithubAuth) -> Result<GithubClient, ForgeError> {
        let builder = Octocrab::builder()
            .base_uri(api_url.trim_end_matches('/'))
            .map_err(|error| {
                ForgeError::Config(format!(
                    "github api url `{api_url}` is not a URL ({error}); use e.g. https://api.github.com"
                ))
            })?;
        let (builder, is_app) = match auth {
            GithubAuth::Token(token) => (builder.personal_token(token), false),
            GithubAuth::App {
                app_id,
                private_key_pem,
            } => {
                let key = octocrab::EncodingKey::from_rsa_pem(&private_key_pem).map_err(
                    |error| {
                        ForgeError::Config(format!(
                            "the private key of github app {app_id} is not an RSA PEM key ({error}); download a new key from the app's settings"
                        ))
                    },
                )?;
                (builder.app(octocrab::models::AppId(app_id), key), true)
            }
        };
        let octocrab = builder.build().map_err(|error| {
            ForgeError::Config(format!("cannot build the github client: {error}"))
        })?;
        Ok(GithubClient {
            octocrab,
            is_app,
            retry: RetryPolicy::default(),
            installations: Mutex::new(HashMap::new()),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> GithubClient {
        self.retry = retry;
        self
    }

    /// Authenticated as a GitHub App (check runs could be used instead of statuses).
    pub fn is_app(&self) -> bool {
        self.is_app
    }

    /// Sends one request for `repository` (`OWNER/NAME`), retrying as the policy says.
    /// `path` starts with `/` and is relative to the API URL.
    pub async fn request(
        &self,
        repository: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ApiResponse, ForgeError> {
        let octocrab = self.client_for(repository).await?;
        self.request_with(&octocrab, method, path, body).await
    }

    async fn client_for(&self, repository: &str) -> Result<Octocrab, ForgeError> {
        if !self.is_app {
            return Ok(self.octocrab.clone());
        }
        if let Some(client) = self.installations.lock().await.get(repository) {
            return Ok(client.clone());
        }
        let path = format!("/repos/{repository}/installation");
        let answer = self
            .request_with(&self.octocrab, Method::Get, &path, None)
            .await?;
        let installation_id = answer
            .body
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| ForgeError::Body {
                method: "GET",
                path: path.clone(),
                message: "no installation `id`; is the app installed on the repository?".to_owned(),
            })?;
        let client = self
            .octocrab
            .installation(octocrab::models::InstallationId(installation_id))
            .map_err(|error| {
                ForgeError::Config(format!(
                    "cannot use installation {installation_id} for {repository}: {error}"
                ))
            })?;
        self.installations
            .lock()
            .await
            .insert(repository.to_owned(), client.clone());
        Ok(client)
    }

    async fn request_with(
        &self,
        octocrab: &Octocrab,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ApiResponse, ForgeError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = match method {
                Method::Get => octocrab._get(path).await,
                Method::Post => octocrab._post(path, body).await,
                Method::Patch => octocrab._patch(path, body).await,
                Method::Delete => octocrab._delete(path, body).await,
            };
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    let message = transport_message(&error);
                    if attempt < self.retry.attempts {
                        let wait = self
                            .retry
                            .first_backoff
                            .saturating_mul(1u32 << (attempt - 1).min(16));
                        tracing::warn!(method = method.as_str(), path, attempt, %message, "github request failed; retrying");
                        tokio::time::sleep(wait.min(self.retry.longest_wait)).await;
                        continue;
                    }
                    return Err(ForgeError::Transport {
                        method: method.as_str(),
                        path: path.to_owned(),
                        message,
                    });
                }
            };
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            };
            let signals = RetrySignals {
                status,
                retry_after: header("retry-after"),
                ratelimit_remaining: header("x-ratelimit-remaining"),
                ratelimit_reset: header("x-ratelimit-reset"),
            };
            let text = octocrab.body_to_string(response).await.unwrap_or_default();
            if (200..300).contains(&status) {
                let body = if text.trim().is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).map_err(|error| ForgeError::Body {
                        method: method.as_str(),
                        path: path.to_owned(),
                        message: error.to_string(),
                    })?
                };
                return Ok(ApiResponse { status, body });
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs())
                .unwrap_or_default();
            let wait = retry_wait(&signals, attempt, &self.retry, now);
            match wait {
                Some(wait) if attempt < self.retry.attempts && wait <= self.retry.longest_wait => {
                    tracing::warn!(
                        method = method.as_str(),
                        path,
                        status,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "github asked to retry"
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    return Err(ForgeError::Status {
                        method: method.as_str(),
                        path: path.to_owned(),
                        status,
                        message: error_message(&text),
                    });
                }
            }
        }
    }
}

/// GitHub's `message` field, or the start of the body.
fn error_message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|body| {
            body.get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| text.chars().take(200).collect())
}

fn transport_message(error: &octocrab::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(signals: RetrySignals, attempt: u32, expect: Option<Duration>) {
        let policy = RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(100),
            longest_wait: Duration::from_secs(60),
        };
        assert_eq!(
            retry_wait(&signals, attempt, &policy, 1_000),
            expect,
            "{signals:?} attempt {attempt}"
        );
    }

    fn signals(status: u16) -> RetrySignals {
        RetrySignals {
            status,
            ..RetrySignals::default()
        }
    }

    #[test]
    fn waits_follow_the_status_and_the_headers() {
        check(signals(502), 1, Some(Duration::from_millis(100)));
        check(signals(503), 3, Some(Duration::from_millis(400)));
        check(signals(404), 1, None);
        check(signals(422), 1, None);
        // A 403 without rate-limit headers is a refusal, not a rate limit.
        check(signals(403), 1, None);
        check(signals(429), 2, Some(Duration::from_millis(200)));
        check(
            RetrySignals {
                retry_after: Some("7".into()),
                ..signals(403)
            },
            1,
            Some(Duration::from_secs(7)),
        );
        check(
            RetrySignals {
                ratelimit_remaining: Some("0".into()),
                ratelimit_reset: Some("1030".into()),
                ..signals(403)
            },
            1,
            Some(Duration::from_secs(30)),
        );
        // A reset already past still waits a moment.
        check(
            RetrySignals {
                ratelimit_remaining: Some("0".into()),
                ratelimit_reset: Some("900".into()),
                ..signals(429)
            },
            1,
            Some(Duration::from_secs(1)),
        );
        // Remaining calls left: the 403 is a refusal.
        check(
            RetrySignals {
                ratelimit_remaining: Some("12".into()),
                ratelimit_reset: Some("1030".into()),
                ..signals(403)
            },
            1,
            None,
        );
    }
}
