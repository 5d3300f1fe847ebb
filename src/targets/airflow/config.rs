//! The typed `airflow:` section of an environment file: where the release's DAGs are, the folder
//! Airflow reads, its API and how to log in, the interpreter that validates, the DAGs to unpause
//! and the Variables to set. Parsing only: no IO, no HTTP, nothing of promotion.

use crate::config::workflow::DurationSpec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The `airflow:` section, as written.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AirflowConfig {
    /// The DAG folder inside the release's tree, e.g. `platform/dags`.
    pub dags: PathBuf,
    /// The path Airflow's `dags_folder` names. sluice owns it: a symlink to a version directory.
    pub folder: PathBuf,
    /// Where version directories live (default: `<folder>.versions`, beside the folder).
    #[serde(default)]
    pub versions: Option<PathBuf>,
    /// How many versions to keep for rollback, the live one included (default 5, at least 2).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// The API server's base URL, e.g. `http://127.0.0.1:8089`; without it nothing is verified.
    #[serde(default)]
    pub api: Option<String>,
    /// `3` for `/api/v2` with a token from `/auth/token`, `2` for `/api/v1` with basic auth.
    #[serde(default = "default_api_version")]
    pub api_version: u8,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// The interpreter with Airflow installed that validates DAGs (default `python3`).
    #[serde(default, alias = "interpreter")]
    pub python: Option<PathBuf>,
    /// Import every DAG with `DagBag` before deploying (default true).
    #[serde(default = "default_true")]
    pub validate: bool,
    /// DAG ids to unpause once they are parsed.
    #[serde(default)]
    pub unpause: Vec<String>,
    /// Airflow Variables to set before the switch, so one DAG file serves every environment.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// How long to wait for the DAG processor to parse a new version (default 5m).
    #[serde(default)]
    pub parse_timeout: Option<DurationSpec>,
}

/// How sluice logs in to the API. The password is read at use, never stored in the config.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub username: String,
    /// Name of an environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file holding the password, or Airflow's generated `simple_auth_manager_passwords.json`
    /// (a JSON object from user name to password).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

fn default_keep() -> usize {
    5
}
fn default_api_version() -> u8 {
    3
}
fn default_true() -> bool {
    true
}

impl AirflowConfig {
    /// Parses the section of environment `environment_name`, collecting every problem.
    pub fn parse(environment_name: &str, section: &serde_json::Value) -> Result<Self, String> {
        let config: AirflowConfig = serde_path_to_error::deserialize(section.clone()).map_err(|error| {
            let field = error.path().to_string();
            let field = if field == "." { String::new() } else { format!(".{field}") };
            format!(
                "environment `{environment_name}`: field `airflow{field}`: {}; fix environments/{environment_name}.yaml",
                error.inner()
            )
        })?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems
                .into_iter()
                .map(|problem| format!("environment `{environment_name}`: {problem}; fix environments/{environment_name}.yaml"))
                .collect::<Vec<_>>()
                .join("\n"))
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.keep < 2 {
            problems.push(format!(
                "field `airflow.keep` is {}; keep at least 2 versions so a rollback has one",
                self.keep
            ));
        }
        if !matches!(self.api_version, 2 | 3) {
            problems.push(format!(
                "field `airflow.api_version` is {}; write 3 (`/api/v2`) or 2 (`/api/v1`)",
                self.api_version
            ));
        }
        if self.folder.as_os_str().is_empty()
            || self
                .folder
                .parent()
                .is_none_or(|parent| parent.as_os_str().is_empty())
        {
            problems.push(format!(
                "field `airflow.folder` is `{}`; name an absolute path like /srv/airflow/dev/dags",
                self.folder.display()
            ));
        }
        if self.dags.is_absolute()
            || self
                .dags
                .components()
                .any(|part| matches!(part, std::path::Component::ParentDir))
        {
            problems.push(format!("field `airflow.dags` is `{}`; name a folder inside the repository like platform/dags", self.dags.display()));
        }
        if let Some(api) = &self.api
            && url::Url::parse(api).is_err()
        {
            problems.push(format!(
                "field `airflow.api` is `{api}`, not a URL; write e.g. http://127.0.0.1:8080"
            ));
        }
        if let Some(auth) = &self.auth
            && auth.password_env.is_none()
            && auth.password_file.is_none()
        {
            problems.push(
                "field `airflow.auth` has neither `password_env` nor `password_file`; name one"
                    .to_owned(),
            );
        }
        if let Some(timeout) = &self.parse_timeout
            && let Err(message) = timeout.to_duration()
        {
            problems.push(format!("field `airflow.parse_timeout`: {message}"));
        }
        if !self.unpause.is_empty() && self.api.is_none() {
            problems.push(
                "field `airflow.unpause` needs `airflow.api` to reach Airflow; add it".to_owned(),
            );
        }
        if !self.variables.is_empty() && self.api.is_none() {
            problems.push(
                "field `airflow.variables` needs `airflow.api` to reach Airflow; add it".to_owned(),
            );
        }
        problems
    }

    pub fn versions_directory(&self) -> PathBuf {
        self.versions.clone().unwrap_or_else(|| {
            let mut name = self.folder.file_name().unwrap_or_default().to_os_string();
            name.push(".versions");
            self.folder.with_file_name(name)
        })
    }

    pub fn parse_timeout(&self) -> Duration {
        self.parse_timeout
            .as_ref()
            .and_then(|timeout| timeout.to_duration().ok())
            .unwrap_or(Duration::from_secs(300))
    }

    pub fn python(&self) -> PathBuf {
        self.python
            .clone()
            .unwrap_or_else(|| PathBuf::from("python3"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(section: serde_json::Value, expect: Result<(), &str>) {
        let parsed = AirflowConfig::parse("dev", &section);
        match (parsed, expect) {
            (Ok(_), Ok(())) => {}
            (Err(message), Err(fragment)) => {
                assert!(message.contains(fragment), "`{message}` lacks `{fragment}`")
            }
            (other, expect) => panic!("{section}: got {other:?}, want {expect:?}"),
        }
    }

    #[test]
    fn sections_parse_or_name_the_field() {
        check(
            json!({"dags": "platform/dags", "folder": "/srv/airflow/dev/dags"}),
            Ok(()),
        );
        check(
            json!({"dags": "platform/dags", "folder": "/srv/a/dags", "api": "http://127.0.0.1:8089",
                   "validate": true, "unpause": ["a"], "variables": {"k": "v"}, "keep": 3,
                   "auth": {"username": "admin", "password_env": "P"}, "interpreter": "/v/bin/python",
                   "parse_timeout": "2m"}),
            Ok(()),
        );
        check(
            json!({"dags": "d", "folder": "/f", "colour": 1}),
            Err("unknown field `colour`"),
        );
        check(json!({"folder": "/f"}), Err("missing field `dags`"));
        check(
            json!({"dags": "d", "folder": "/s/f", "keep": 1}),
            Err("`airflow.keep` is 1"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "api": "nope"}),
            Err("`airflow.api` is `nope`"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "unpause": ["x"]}),
            Err("`airflow.unpause` needs"),
        );
        check(
            json!({"dags": "../d", "folder": "/s/f"}),
            Err("`airflow.dags` is `../d`"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "auth": {"username": "a"}}),
            Err("neither"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "parse_timeout": "soon"}),
            Err("parse_timeout"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "auth": {"username": "a", "x": 1}}),
            Err("field `airflow.auth"),
        );
    }

    #[test]
    fn versions_sit_beside_the_folder_by_default() {
        let config = AirflowConfig::parse(
            "dev",
            &serde_json::json!({"dags": "d", "folder": "/srv/dev/dags"}),
        )
        .unwrap();
        assert_eq!(
            config.versions_directory(),
            PathBuf::from("/srv/dev/dags.versions")
        );
    }
}
