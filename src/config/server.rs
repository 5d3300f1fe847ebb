//! The typed schema of the server configuration file (`sluice serve --config FILE`).
//! Command-line flags override what the file says.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `127.0.0.1:8080` by default.
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default, rename = "data-dir")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://...` for several replicas on one database, or `sqlite:PATH`; SQLite's file in
    /// the data directory by default. `--database` and `SLUICE_DATABASE_URL` override it.
    #[serde(default)]
    pub database: Option<String>,
    /// How replicas on one database share the work: their leases and the leader's takeover.
    #[serde(default)]
    pub replicas: ReplicasConfig,
    /// How many jobs run at once across all runs (default 4).
    #[serde(default, rename = "max-parallel-jobs")]
    pub max_parallel_jobs: Option<usize>,
    #[serde(default)]
    pub repositories: Vec<RepositoryConfig>,
    /// How releases are promoted through the environments.
    #[serde(default)]
    pub promotion: PromotionConfig,
    /// Pull-request comments, commit statuses and comment commands; none posted when absent.
    #[serde(default)]
    pub github: Option<GithubConfig>,
    /// How `run:` steps are isolated: the default image, the user, CPU and memory limits.
    #[serde(default)]
    pub steps: StepsConfig,
    /// Which events each secret (`SLUICE_SECRET_<NAME>`) reaches: trusted ones only unless
    /// `pull-requests: true`.
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, SecretScope>,
    /// Limits of the HTTP front door: bodies read at once, header and body timeouts.
    #[serde(default)]
    pub webhook: WebhookConfig,
    /// How the Kubernetes target reaches clusters when not through each environment's kubeconfig.
    #[serde(default)]
    pub kubernetes: KubernetesServerConfig,
    /// The web UI: who may read it.
    #[serde(default)]
    pub ui: UiConfig,
    /// Where `run:` steps execute: `docker` (default) or `kubernetes`.
    #[serde(default)]
    pub runner: super::runner::RunnerConfig,
}

/// `replicas:` in the server configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReplicasConfig {
    /// How long a replica's claims outlive its last renewal (default 15s); a replica that dies
    /// has its deliveries and runs taken over after this.
    #[serde(default)]
    pub lease: Option<String>,
    /// How often a replica tries to take the leader's lock (default 5s): when the leader dies,
    /// another leads within this time.
    #[serde(default)]
    pub takeover: Option<String>,
}

/// `ui:` in the server configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// `open` (anyone who reaches the port reads) or `signed-in` (only people signed in with a
    /// personal token). Unset: open when the server listens on a loopback address only, signed-in
    /// otherwise.
    #[serde(default)]
    pub read: Option<UiRead>,
}

/// Who may read the web UI's pages.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UiRead {
    Open,
    SignedIn,
}

/// The Kubernetes settings of a server, for every environment of every repository it deploys.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesServerConfig {
    /// An API server reached without credentials, e.g. `http://127.0.0.1:8001` from `kubectl
    /// proxy`; when set, every environment's `kubernetes:` section deploys there instead of
    /// through its `kubeconfig`, `context` or `in_cluster`.
    #[serde(default, rename = "api-server")]
    pub api_server: Option<String>,
}

/// An API server URL as `kubernetes.api-server` and `--kubernetes-api-server` take it: http or
/// https, a host, no credentials (the server is reached as it answers, as through `kubectl
/// proxy`), no query or fragment.
pub fn parse_api_server(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim()).map_err(|error| {
        format!("`{text}` is not a URL ({error}); write e.g. `http://127.0.0.1:8001`")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}` is not an http(s) URL; write e.g. `http://127.0.0.1:8001` as `kubectl proxy` prints it"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "`{text}` names no host; write e.g. `http://127.0.0.1:8001`"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{}` carries credentials, which sluice does not send; run `kubectl proxy` and give its URL",
            redact_credentials(&url)
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{text}` has a query or fragment; give the API server's base URL only"
        ));
    }
    Ok(url)
}

/// The URL with any user name and password replaced, for messages.
fn redact_credentials(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("***");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Step isolation settings of a server (`docs/security.md`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepsConfig {
    /// The image of `run:` steps that name none, e.g. `local/sluice-step:1`.
    #[serde(default)]
    pub image: Option<String>,
    /// `UID:GID` steps run as (default `65534:65534` when sluice runs as root).
    #[serde(default)]
    pub user: Option<String>,
    /// CPUs one container step may use, e.g. `2` or `0.5`.
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Memory one container step may use, e.g. `2g`.
    #[serde(default)]
    pub memory: Option<String>,
}

/// Where one secret may go.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretScope {
    /// Member events (pushes to other branches, pull requests from this repository) get it too.
    #[serde(default, rename = "pull-requests")]
    pub pull_requests: bool,
}

/// Promotion settings of a server.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromotionConfig {
    /// How often gates are looked at again without an event (default `15s`).
    #[serde(default)]
    pub interval: Option<String>,
    /// How often a target's health is asked for after an apply (default `2s`).
    #[serde(default, rename = "health-poll")]
    pub health_poll: Option<String>,
    /// How long a target may take to become healthy before the deployment is rolled back (default `10m`).
    #[serde(default, rename = "health-timeout")]
    pub health_timeout: Option<String>,
    /// How many times an apply that met a transient error (a target unreachable or answering 5xx)
    /// is tried in all before the release is rolled back and rejected (default 5).
    #[serde(default, rename = "retry-attempts")]
    pub retry_attempts: Option<u32>,
    /// The wait before the first retry, doubled before each next one (default `2s`).
    #[serde(default, rename = "retry-backoff")]
    pub retry_backoff: Option<String>,
    /// The longest wait between two attempts (default `1m`).
    #[serde(default, rename = "retry-backoff-max")]
    pub retry_backoff_max: Option<String>,
    /// Members of the teams named in `gates.approvers`, e.g. `example/ml-platform-leads: [alice]`.
    #[serde(default)]
    pub teams: std::collections::BTreeMap<String, Vec<String>>,
}

/// How sluice reaches GitHub: a token from an environment variable, or a GitHub App.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// `https://api.github.com` by default; `https://HOST/api/v3` for GitHub Enterprise.
    #[serde(default, rename = "api-url")]
    pub api_url: Option<String>,
    /// The environment variable holding a token (the token itself never goes in the file).
    #[serde(default, rename = "token-env")]
    pub token_env: Option<String>,
    /// A GitHub App's id; with `private-key-path`, instead of a token.
    #[serde(default, rename = "app-id")]
    pub app_id: Option<u64>,
    #[serde(default, rename = "private-key-path")]
    pub private_key_path: Option<PathBuf>,
    /// Where people see runs (`{run-url}/runs/{id}` is linked from comments, statuses and check
    /// runs). Without it, links go to this server's API, `http://{listen}/api/runs/{id}`.
    #[serde(default, rename = "run-url")]
    pub run_url: Option<String>,
}

/// A repository sluice accepts deliveries for and watches.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// `OWNER/NAME` as GitHub spells it.
    pub name: String,
    /// Where to fetch from: a local path, `file://`, `https://` or ssh.
    pub url: String,
    /// Watch without webhooks: fetch this often and synthesise push events (e.g. `1m`).
    #[serde(default, rename = "poll-interval")]
    pub poll_interval: Option<String>,
    /// Trusted and member runs of this repository may run `run:` steps without `image:` as host
    /// processes (an unprivileged user, a clean environment); untrusted runs never do.
    #[serde(default, rename = "host-steps")]
    pub host_steps: bool,
}

/// Parses a memory size as Docker writes it: `512m`, `2g`, `1073741824`.
pub fn parse_memory(text: &str) -> Result<i64, String> {
    let trimmed = text.trim().to_ascii_lowercase();
    let (digits, multiplier) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 1i64 << 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        _ => (trimmed.as_str(), 1),
    };
    digits
        .parse::<i64>()
        .ok()
        .filter(|value| *value > 0)
        .and_then(|value| value.checked_mul(multiplier))
        .ok_or_else(|| {
            format!(
                "memory `{text}` is not a size; write bytes or a number with k, m or g (e.g. `2g`)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_read_as_docker_writes_them() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("2G"), Ok(2 << 30));
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("0").is_err());
    }

    #[test]
    fn an_api_server_is_an_http_url_with_a_host_and_no_credentials() {
        assert_eq!(
            parse_api_server("http://127.0.0.1:8001").unwrap().as_str(),
            "http://127.0.0.1:8001/"
        );
        assert!(parse_api_server("https://k8s.internal/prefix").is_ok());
        for (text, says) in [
            ("127.0.0.1:8001", "not a URL"),
            ("localhost:8001", "not an http(s) URL"),
            ("ftp://127.0.0.1", "not an http(s) URL"),
            ("http://127.0.0.1:8001/?watch=1", "query or fragment"),
        ] {
            let problem = parse_api_server(text).unwrap_err();
            assert!(problem.contains(says), "{text}: {problem}");
        }
        let problem = parse_api_server("http://admin:hunter2@127.0.0.1:8001").unwrap_err();
        assert!(problem.contains("credentials"), "{problem}");
        assert!(
            !problem.contains("hunter2"),
            "the password is not echoed: {problem}"
        );
    }
}

/// Limits that keep the HTTP server up under abuse; every field has a default.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Request bodies read at once (default 8); one more is answered `503` before it is read.
    /// Bodies take at most this many times 25 MiB of memory.
    #[serde(default, rename = "max-concurrent-bodies")]
    pub max_concurrent_bodies: Option<usize>,
    /// How long a client may take to send a request's line and headers (default `10s`); also
    /// how long an idle connection stays open.
    #[serde(default, rename = "header-timeout")]
    pub header_timeout: Option<String>,
    /// How long a request's whole body may take to arrive (default `30s`); later is `408`.
    #[serde(default, rename = "body-timeout")]
    pub body_timeout: Option<String>,
}
