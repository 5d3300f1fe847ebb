//! A small client for MLflow's model-registry REST API (`/api/2.0/mlflow/...`): model versions,
//! their runs' metrics, aliases, tags and legacy stages. Retries 5xx answers, 429 and connection
//! errors with doubling waits; sends a bearer token or basic auth. Knows nothing of gates,
//! environments or releases. Errors name the endpoint and MLflow's error code, never credentials.

use super::config::MlflowConfig;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum MlflowError {
    #[error(
        "mlflow at {tracking_uri} could not be reached for {endpoint} after {attempts} attempts ({message}); check that the server runs and `mlflow.tracking_uri` is right"
    )]
    Unreachable {
        tracking_uri: String,
        endpoint: String,
        attempts: u32,
        message: String,
    },
    #[error(
        "mlflow {endpoint} answered {status} {code} after {attempts} attempts: {message}; check the MLflow server's log"
    )]
    Server {
        endpoint: String,
        status: u16,
        code: String,
        attempts: u32,
        message: String,
    },
    #[error("mlflow {endpoint} refused the request: {status} {code}: {message}")]
    Refused {
        endpoint: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("mlflow {endpoint} answered something that is not what the API describes: {message}")]
    Decode { endpoint: String, message: String },
    #[error("{0}")]
    Credentials(String),
}

impl MlflowError {
    /// Whether MLflow said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            MlflowError::Refused {
                status,
                code,
                message,
                ..
            } => {
                *status == 404
                    || code == "RESOURCE_DOES_NOT_EXIST"
                    || (code == "INVALID_PARAMETER_VALUE" && message.contains("not found"))
            }
            _ => false,
        }
    }
}

/// One registered model version as the registry describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub current_stage: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl ModelVersion {
    pub fn number(&self) -> u64 {
        self.version.parse().unwrap_or(0)
    }

    fn from_api(value: &Value) -> Option<ModelVersion> {
        let tags = value
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(|tag| {
                        Some((
                            tag.get("key")?.as_str()?.to_string(),
                            tag.get("value")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let text = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_string);
        Some(ModelVersion {
            name: text("name")?,
            version: text("version")?,
            status: text("status").unwrap_or_default(),
            run_id: text("run_id").filter(|run_id| !run_id.is_empty()),
            current_stage: text("current_stage"),
            tags,
        })
    }
}

enum Credentials {
    None,
    Token(String),
    Basic(String, String),
}

pub struct MlflowClient {
    http: reqwest::Client,
    tracking_uri: String,
    credentials: Credentials,
    attempts: u32,
    retry_backoff: Duration,
    /// HTTP requests sent so far, retries included: what a check cost.
    requests: std::sync::atomic::AtomicU64,
}

impl MlflowClient {
    /// Reads credentials from the variables the configuration names.
    pub fn new(config: &MlflowConfig) -> Result<MlflowClient, MlflowError> {
        let read_variable = |variable: &str| {
            std::env::var(variable).map_err(|_| {
                MlflowError::Credentials(format!(
                    "environments/{}.yaml: mlflow.auth names the variable `{variable}`, which is not set for sluice; set it or remove mlflow.auth",
                    config.environment
                ))
            })
        };
        let credentials = match &config.auth {
            None => Credentials::None,
            Some(auth) => match (&auth.token_env, &auth.username, &auth.password_env) {
                (Some(token_env), _, _) => Credentials::Token(read_variable(token_env)?),
                (None, Some(username), Some(password_env)) => {
                    Credentials::Basic(username.clone(), read_variable(password_env)?)
                }
                _ => Credentials::None,
            },
        };
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|error| {
                MlflowError::Credentials(format!("cannot build an HTTP client: {error}"))
            })?;
        Ok(MlflowClient {
            http,
            tracking_uri: config.tracking_uri.clone(),
            credentials,
            attempts: config.attempts.max(1),
            retry_backoff: config.retry_backoff,
            requests: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn tracking_uri(&self) -> &str {
        &self.tracking_uri
    }

    /// How many HTTP requests this client has sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends one API call, retrying 5xx, 429 and connection errors.
    async fn call(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.tracking_uri);
        let mut wait = self.retry_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), &url).query(query);
            if let Some(body) = &body {
                request = request.json(body);
            }
            request = match &self.credentials {
                Credentials::None => request,
                Credentials::Token(token) => request.bearer_auth(token),
                Credentials::Basic(username, password) => {
                    request.basic_auth(username, Some(password))
                }
            };
            let last_attempt = attempt >= self.attempts;
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match request.send().await {
                Err(error) => {
                    if last_attempt {
                        return Err(MlflowError::Unreachable {
                            tracking_uri: self.tracking_uri.clone(),
                            endpoint: endpoint.to_string(),
                            attempts: attempt,
                            message: without_url(&error),
                        });
                    }
                }
                Ok(response) => {
                    let status = response.status();
                    let retryable =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retryable || last_attempt {
                        let text = response.text().await.unwrap_or_default();
                        return self.answer(endpoint, status, &text, attempt);
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }

    fn answer(
        &self,
        endpoint: &str,
        status: StatusCode,
        text: &str,
        attempts: u32,
    ) -> Result<Value, MlflowError> {
        let parsed: Option<Value> = serde_json::from_str(text).ok();
        if status.is_success() {
            return parsed.ok_or_else(|| MlflowError::Decode {
                endpoint: endpoint.to_string(),
                message: format!("the body is not JSON: {}", shorten(text)),
            });
        }
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|value| value.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let code = field("error_code").unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_uppercase()
                .replace(' ', "_")
        });
        let message = field("message").unwrap_or_else(|| shorten(text));
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(MlflowError::Server {
                endpoint: endpoint.to_string(),
                status: status.as_u16(),
                code,
                attempts,
                message,
            })
        } else {
            Err(MlflowError::Refused {
                endpoint: endpoint.to_string(),
                status: status.as_u16(),
                code,
                message,
            })
        }
    }

    fn decode_version(endpoint: &str, value: &Value) -> Result<ModelVersion, MlflowError> {
        value
            .get("model_version")
            .and_then(ModelVersion::from_api)
            .ok_or_else(|| MlflowError::Decode {
                endpoint: endpoint.to_string(),
                message: "no `model_version` with a name and a version".to_string(),
            })
    }

    /// `None` when the model or the version does not exist.
    pub async fn model_version(
        &self,
        model: &str,
        version: &str,
    ) -> Result<Option<ModelVersion>, MlflowError> {
        let endpoint = "model-versions/get";
        match self
            .call(
                Method::GET,
                endpoint,
                &[("name", model), ("version", version)],
                None,
            )
            .await
        {
            Ok(value) => Self::decode_version(endpoint, &value).map(Some),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every version of the model, newest (highest number) first.
    pub async fn model_versions(&self, model: &str) -> Result<Vec<ModelVersion>, MlflowError> {
        let filter = format!("name='{}'", model.replace('\'', "\\'"));
        let mut versions = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut query = vec![("filter", filter.as_str()), ("max_results", "1000")];
            if !page_token.is_empty() {
                query.push(("page_token", page_token.as_str()));
            }
            let value = self
                .call(Method::GET, "model-versions/search", &query, None)
                .await?;
            if let Some(page) = value.get("model_versions").and_then(Value::as_array) {
                versions.extend(page.iter().filter_map(ModelVersion::from_api));
            }
            match value.get("next_page_token").and_then(Value::as_str) {
                Some(token) if !token.is_empty() => page_token = token.to_string(),
                _ => break,
            }
        }
        versions.sort_by_key(|version| std::cmp::Reverse(version.number()));
        Ok(versions)
    }

    /// The latest value of each metric of the run.
    pub async fn run_metrics(&self, run_id: &str) -> Result<BTreeMap<String, f64>, MlflowError> {
        let value = self
            .call(Method::GET, "runs/get", &[("run_id", run_id)], None)
            .await?;
        let metrics = value
            .pointer("/run/data/metrics")
            .and_then(Value::as_array)
            .map(|metrics| {
                metrics
                    .iter()
                    .filter_map(|metric| {
                        Some((
                            metric.get("key")?.as_str()?.to_string(),
                            metric.get("value")?.as_f64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(metrics)
    }

    /// The version the alias points at; `None` when the alias (or the model) does not exist.
    pub async fn alias_version(
        &self,
        model: &str,
        alias: &str,
    ) -> Result<Option<ModelVersion>, MlflowError> {
        let endpoint = "registered-models/alias";
        match self
            .call(
                Method::GET,
                endpoint,
                &[("name", model), ("alias", alias)],
                None,
            )
            .await
        {
            Ok(value) => Self::decode_version(endpoint, &value).map(Some),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: &str,
    ) -> Result<(), MlflowError> {
        self.call(
            Method::POST,
            "registered-models/alias",
            &[],
            Some(json!({"name": model, "alias": alias, "version": version})),
        )
        .await
        .map(drop)
    }

    /// Removes the alias; removing one that does not exist is not an error.
    pub async fn delete_alias(&self, model: &str, alias: &str) -> Result<(), MlflowError> {
        match self
            .call(
                Method::DELETE,
                "registered-models/alias",
                &[],
                Some(json!({"name": model, "alias": alias})),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(error),
        }
    }

    pub async fn set_version_tag(
        &self,
        model: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        self.call(
            Method::POST,
            "model-versions/set-tag",
            &[],
            Some(json!({"name": model, "version": version, "key": key, "value": value})),
        )
        .await
        .map(drop)
    }

    /// Legacy stages: moves the version to `stage`, archiving the versions there before.
    pub async fn transition_stage(
        &self,
        model: &str,
        version: &str,
        stage: &str,
    ) -> Result<(), MlflowError> {
        self.call(
            Method::POST,
            "model-versions/transition-stage",
            &[],
            Some(json!({"name": model, "version": version, "stage": stage, "archive_existing_versions": true})),
        )
        .await
        .map(drop)
    }

    /// The newest version in the stage; `None` when the stage is empty or the model is unknown.
    pub async fn stage_version(
        &self,
        model: &str,
        stage: &str,
    ) -> Result<Option<ModelVersion>, MlflowError> {
        let value = match self
            .call(
                Method::POST,
                "registered-models/get-latest-versions",
                &[],
                Some(json!({"name": model, "stages": [stage]})),
            )
            .await
        {
            Ok(value) => value,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) => return Err(error),
        };
        let mut versions: Vec<ModelVersion> = value
            .get("model_versions")
            .and_then(Value::as_array)
            .map(|versions| versions.iter().filter_map(ModelVersion::from_api).collect())
            .unwrap_or_default();
        versions.sort_by_key(|version| std::cmp::Reverse(version.number()));
        Ok(versions.into_iter().next())
    }
}

/// reqwest's error text without the URL's query, which may carry model names but never secrets;
/// kept short.
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text.to_string()
    }
}
