//! A small client for the parts of Airflow's REST API a deploy needs: DAGs, import errors,
//! pausing, Variables and health. Speaks Airflow 3 (`/api/v2`, a bearer token from
//! `/auth/token`) and Airflow 2 (`/api/v1`, basic auth). Knows HTTP and JSON only: nothing of
//! folders, releases or what counts as healthy. Passwords and tokens never reach an error.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(pub String);

/// A DAG as the API lists it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ApiDag {
    pub dag_id: String,
    #[serde(default)]
    pub is_paused: Option<bool>,
    #[serde(default)]
    pub fileloc: Option<String>,
    #[serde(default)]
    pub relative_fileloc: Option<String>,
    #[serde(default)]
    pub last_parsed_time: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ApiImportError {
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub stack_trace: String,
}

pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "Credentials {{ username: {:?}, password: <redacted> }}",
            self.username
        )
    }
}

pub struct AirflowApi {
    base: String,
    api_version: u8,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    token: tokio::sync::Mutex<Option<String>>,
    /// HTTP requests sent so far, logins included: what a check cost.
    requests: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for AirflowApi {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "AirflowApi {{ base: {:?}, api_version: {}, credentials: {:?} }}",
            self.base, self.api_version, self.credentials
        )
    }
}

impl AirflowApi {
    pub fn new(base: &str, api_version: u8, credentials: Option<Credentials>) -> AirflowApi {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a default HTTP client builds");
        AirflowApi {
            base: base.trim_end_matches('/').to_owned(),
            api_version,
            http,
            credentials,
            token: tokio::sync::Mutex::new(None),
            requests: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many HTTP requests this client has sent, logins included.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_request(&self) {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn prefix(&self) -> String {
        if self.api_version == 2 {
            format!("{}/api/v1", self.base)
        } else {
            format!("{}/api/v2", self.base)
        }
    }

    async fn bearer_token(&self, refresh: bool) -> Result<Option<String>, ApiError> {
        let Some(credentials) = &self.credentials else {
            return Ok(None);
        };
        let mut token = self.token.lock().await;
        if token.is_none() || refresh {
            let url = format!("{}/auth/token", self.base);
            self.count_request();
            let response = self
                .http
                .post(&url)
                .json(&json!({"username": credentials.username, "password": credentials.password}))
                .send()
                .await
                .map_err(|error| ApiError(format!("cannot reach airflow at {url}: {}; check `airflow.api` and that the API server runs", without_url(&error))))?;
            let status = response.status();
            if status.is_server_error() {
                return Err(ApiError(format!(
                    "airflow at {url} answered the login with {status}; check that the API server runs and is healthy"
                )));
            }
            if !status.is_success() {
                return Err(ApiError(format!(
                    "airflow at {url} refused the login of `{}` ({status}); check `airflow.auth`",
                    credentials.username
                )));
            }
            let body: Value = response.json().await.map_err(|error| {
                ApiError(format!(
                    "airflow at {url} answered the login with unreadable JSON: {error}"
                ))
            })?;
            let access_token = body
                .get("access_token")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError(format!(
                        "airflow at {url} answered the login without `access_token`"
                    ))
                })?;
            *token = Some(access_token.to_owned());
        }
        Ok(token.clone())
    }

    /// Sends one request; logs in again once when a token expired.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(reqwest::StatusCode, Value), ApiError> {
        let url = format!("{}{path}", self.prefix());
        for attempt in 0..2 {
            let mut request = self.http.request(method.clone(), &url);
            if self.api_version == 2 {
                if let Some(credentials) = &self.credentials {
                    request =
                        request.basic_auth(&credentials.username, Some(&credentials.password));
                }
            } else if let Some(token) = self.bearer_token(attempt > 0).await? {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            self.count_request();
            let response = request
                .send()
                .await
                .map_err(|error| ApiError(format!("cannot reach airflow at {url}: {}; check `airflow.api` and that the API server runs", without_url(&error))))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED
                && attempt == 0
                && self.api_version != 2
                && self.credentials.is_some()
            {
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            return Ok((status, value));
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn expect_success(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let (status, value) = self.send(method.clone(), path, body).await?;
        if status.is_success() {
            return Ok(value);
        }
        let detail = value
            .get("detail")
            .or_else(|| value.get("title"))
            .cloned()
            .unwrap_or(value);
        let hint = if status == reqwest::StatusCode::UNAUTHORIZED
            || status == reqwest::StatusCode::FORBIDDEN
        {
            "; check `airflow.auth`"
        } else {
            ""
        };
        Err(ApiError(format!(
            "airflow answered {method} {}{path} with {status}: {}{hint}",
            self.prefix(),
            short(&detail.to_string())
        )))
    }

    /// Every DAG Airflow knows, all pages.
    pub async fn dags(&self) -> Result<Vec<ApiDag>, ApiError> {
        self.paged("/dags", "dags").await
    }

    pub async fn import_errors(&self) -> Result<Vec<ApiImportError>, ApiError> {
        self.paged("/importErrors", "import_errors").await
    }

    async fn paged<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        field: &str,
    ) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        loop {
            let page = self
                .expect_success(
                    reqwest::Method::GET,
                    &format!("{path}?limit=100&offset={}", items.len()),
                    None,
                )
                .await?;
            let entries = page
                .get(field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = page
                .get("total_entries")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            let received = entries.len();
            for entry in entries {
                items.push(serde_json::from_value(entry).map_err(|error| {
                    ApiError(format!(
                        "airflow listed {path} in an unexpected shape: {error}"
                    ))
                })?);
            }
            if received == 0 || items.len() >= total {
                return Ok(items);
            }
        }
    }

    pub async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<(), ApiError> {
        self.expect_success(
            reqwest::Method::PATCH,
            &format!("/dags/{}?update_mask=is_paused", encode(dag_id)),
            Some(&json!({"is_paused": paused})),
        )
        .await
        .map(drop)
    }

    /// A Variable's value, or None when it does not exist.
    pub async fn variable(&self, key: &str) -> Result<Option<String>, ApiError> {
        let (status, value) = self
            .send(
                reqwest::Method::GET,
                &format!("/variables/{}", encode(key)),
                None,
            )
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ApiError(format!(
                "airflow answered GET variable `{key}` with {status}; check `airflow.auth`"
            )));
        }
        Ok(value
            .get("value")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    pub async fn set_variable(&self, key: &str, value: &str) -> Result<(), ApiError> {
        let body = json!({"key": key, "value": value});
        let (status, _) = self
            .send(
                reqwest::Method::PATCH,
                &format!("/variables/{}", encode(key)),
                Some(&body),
            )
            .await?;
        if status.is_success() {
            return Ok(());
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return self
                .expect_success(reqwest::Method::POST, "/variables", Some(&body))
                .await
                .map(drop);
        }
        Err(ApiError(format!(
            "airflow answered PATCH variable `{key}` with {status}; check `airflow.auth`"
        )))
    }

    pub async fn delete_variable(&self, key: &str) -> Result<(), ApiError> {
        let (status, _) = self
            .send(
                reqwest::Method::DELETE,
                &format!("/variables/{}", encode(key)),
                None,
            )
            .await?;
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(ApiError(format!(
                "airflow answered DELETE variable `{key}` with {status}"
            )))
        }
    }
}

fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn short(text: &str) -> String {
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// reqwest's errors repeat the URL, which may carry credentials; the caller names the URL itself.
fn without_url(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    message
}
