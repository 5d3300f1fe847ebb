//! The typed `airflow:` section of an environment file: where the release's DAGs are, the folder
//! Airflow reads, its API and how to log in, the interpreter that validates, the DAGs to unpause
//! and the Variables to set, with the checks serde cannot make. Parsing only: no IO, no HTTP,
//! nothing of promotion.

use crate::config::section::{Section, SectionProblem};
use crate::config::workflow::DurationSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The `airflow:` section, as written.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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

impl Section for AirflowConfig {
    fn problems(&self) -> Vec<SectionProblem> {
        let mut problems = Vec::new();
        if self.keep < 2 {
            problems.push(
                SectionProblem::new(&["keep".into()], format!("keeps {} version", self.keep))
                    .hint("keep at least 2 versions so a rollback has one"),
            );
        }
        if !matches!(self.api_version, 2 | 3) {
            problems.push(
                SectionProblem::new(
                    &["api_version".into()],
                    format!("there is no API version {}", self.api_version),
                )
                .hint("write 3 (`/api/v2`) or 2 (`/api/v1`)"),
            );
        }
        if self.folder.as_os_str().is_empty()
            || self
                .folder
                .parent()
                .is_none_or(|parent| parent.as_os_str().is_empty())
        {
            problems.push(
                SectionProblem::new(
                    &["folder".into()],
                    format!("`{}` is not a folder sluice can own", self.folder.display()),
                )
                .hint("name an absolute path like /srv/airflow/dev/dags"),
            );
        }
        if self.dags.is_absolute()
            || self
                .dags
                .components()
                .any(|part| matches!(part, std::path::Component::ParentDir))
        {
            problems.push(
                SectionProblem::new(
                    &["dags".into()],
                    format!("`{}` is not inside the repository", self.dags.display()),
                )
                .hint("name a folder inside the repository like platform/dags"),
            );
        }
        if let Some(api) = &self.api
            && url::Url::parse(api).is_err()
        {
            problems.push(
                SectionProblem::new(&["api".into()], format!("`{api}` is not a URL"))
                    .hint("write e.g. http://127.0.0.1:8080"),
            );
        }
        if let Some(auth) = &self.auth
            && auth.password_env.is_none()
            && auth.password_file.is_none()
        {
            problems.push(
                SectionProblem::new(
                    &["auth".into()],
                    "has neither `password_env` nor `password_file`",
                )
                .hint("name one"),
            );
        }
        if let Some(timeout) = &self.parse_timeout
            && let Err(message) = timeout.to_duration()
        {
            problems.push(SectionProblem::new(&["parse_timeout".into()], message));
        }
        for (field, set) in [
            ("unpause", !self.unpause.is_empty()),
            ("variables", !self.variables.is_empty()),
        ] {
            if set && self.api.is_none() {
                problems.push(
                    SectionProblem::new(&[field.into()], "needs `airflow.api` to reach Airflow")
                        .hint("add `api:`"),
                );
            }
        }
        problems
    }
}

impl AirflowConfig {
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
        let parsed = serde_json::from_value::<AirflowConfig>(section.clone())
            .map_err(|error| error.to_string())
            .and_then(|config| {
                crate::config::section::checked(&config, "dev", "airflow").map(|_| ())
            });
        match (parsed, expect) {
            (Ok(()), Ok(())) => {}
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
            Err("environments/dev.yaml: `airflow.keep`: keeps 1 version; keep at least 2"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "api": "nope"}),
            Err("`airflow.api`: `nope` is not a URL"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "unpause": ["x"]}),
            Err("`airflow.unpause`: needs `airflow.api`"),
        );
        check(
            json!({"dags": "../d", "folder": "/s/f"}),
            Err("`airflow.dags`: `../d` is not inside the repository"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "auth": {"username": "a"}}),
            Err("neither"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "parse_timeout": "soon"}),
            Err("`airflow.parse_timeout`"),
        );
        check(
            json!({"dags": "d", "folder": "/s/f", "auth": {"username": "a", "x": 1}}),
            Err("unknown field `x`"),
        );
    }

    #[test]
    fn versions_sit_beside_the_folder_by_default() {
        let config: AirflowConfig =
            serde_json::from_value(json!({"dags": "d", "folder": "/srv/dev/dags"})).unwrap();
        assert_eq!(
            config.versions_directory(),
            PathBuf::from("/srv/dev/dags.versions")
        );
    }
}
