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
    /// How many jobs run at once across all runs (default 4).
    #[serde(default, rename = "max-parallel-jobs")]
    pub max_parallel_jobs: Option<usize>,
    #[serde(default)]
    pub repositories: Vec<RepositoryConfig>,
    /// Pull-request comments, commit statuses and comment commands; none posted when absent.
    #[serde(default)]
    pub github: Option<GithubConfig>,
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
    /// Where people see runs (`{run-url}/runs/{id}` is linked from comments and statuses).
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
}
