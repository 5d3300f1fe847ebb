//! The typed schema of a `build` step: a container image built through the Docker engine from a
//! directory of the commit, tagged from templates, and pushed to a registry. Only shapes and
//! defaults live here; `steps::build` gives them meaning. Templates (`{{ git.short_sha }}`,
//! `${{ secrets.NAME }}`) are kept as written and rendered when the step runs.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `build:` on a step.
///
/// ```yaml
/// - build:
///     context: platform                               # the directory sent to the engine
///     dockerfile: platform/images/trainer/Dockerfile  # default: <context>/Dockerfile
///     image: 127.0.0.1:5000/trainer                   # repository, registry host included
///     tags: ["{{ git.short_sha }}", "{{ git.branch }}"]
///     args: { BASE_IMAGE: local/python:3.11 }
/// ```
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BuildStep {
    /// The build context: a directory relative to the repository root (default `.`). Files
    /// matched by its `.dockerignore` are not sent.
    #[serde(default = "default_context")]
    pub context: String,
    /// The Dockerfile, relative to the repository root; default `Dockerfile` in the context.
    /// It may lie outside the context.
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// The image repository, e.g. `127.0.0.1:5000/trainer` or `registry.example.com/ml/trainer`.
    /// Without a registry host in it, `registry` is put in front.
    pub image: String,
    /// A registry host (`127.0.0.1:5000`) to put in front of `image`.
    #[serde(default)]
    pub registry: Option<String>,
    /// Tag templates; `{{ git.short_sha }}`, `{{ git.sha }}`, `{{ git.branch }}` (made a valid
    /// tag: `/` and other characters become `-`) and `{{ git.tag }}`. Default: the short sha.
    /// Only trusted runs (pushes to a deploy branch) push them; a member run pushes one tag of
    /// its own (`pr-<number>`, `branch-<branch>`, `sha-<commit>`) instead.
    #[serde(default = "default_tags")]
    pub tags: Vec<String>,
    /// Build arguments (`ARG` values), templated.
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// The stage of a multi-stage Dockerfile to build; default the last one.
    #[serde(default)]
    pub target: Option<String>,
    /// Labels on the image, templated; sluice adds `dev.sluice.context-digest` and the OCI labels
    /// `org.opencontainers.image.{revision,source,created}`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Push the tags to the registry and record the pushed digest (default true). Without a
    /// push the job records the local image id only.
    #[serde(default = "default_push")]
    pub push: bool,
    /// Registry credentials. Without them sluice uses the `auths` entry for the registry in the
    /// Docker `config.json` (`$DOCKER_CONFIG`, else `~/.docker/config.json`), if any.
    #[serde(default)]
    pub credentials: Option<RegistryCredentials>,
}

/// A user name and a password or token, usually `${{ secrets.NAME }}`; never logged.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RegistryCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

fn default_context() -> String {
    ".".to_owned()
}

fn default_tags() -> Vec<String> {
    vec!["{{ git.short_sha }}".to_owned()]
}

fn default_push() -> bool {
    true
}

impl BuildStep {
    /// The Dockerfile's path relative to the repository root.
    pub fn dockerfile_path(&self) -> String {
        match &self.dockerfile {
            Some(path) => path.clone(),
            None if self.context.trim_end_matches('/') == "." || self.context.is_empty() => {
                "Dockerfile".to_owned()
            }
            None => format!("{}/Dockerfile", self.context.trim_end_matches('/')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BuildStep, String> {
        serde_saphyr::from_str(text).map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let step = parse("image: 127.0.0.1:5000/trainer\n").unwrap();
        assert_eq!(step.context, ".");
        assert_eq!(step.dockerfile_path(), "Dockerfile");
        assert_eq!(step.tags, vec!["{{ git.short_sha }}"]);
        assert!(step.push);
        assert!(step.credentials.is_none());
    }

    #[test]
    fn the_dockerfile_defaults_to_the_context_directory() {
        let step = parse("image: x/y\ncontext: platform/images/serving-api/\n").unwrap();
        assert_eq!(
            step.dockerfile_path(),
            "platform/images/serving-api/Dockerfile"
        );
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let error = parse("image: x/y\ndockerfil: Dockerfile\n").unwrap_err();
        assert!(error.contains("dockerfil"), "{error}");
    }

    #[test]
    fn credentials_never_show_the_password_in_debug_output() {
        let step = parse("image: x/y\ncredentials: { username: ci, password: hunter2 }\n").unwrap();
        let shown = format!("{step:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ci"));
    }
}
