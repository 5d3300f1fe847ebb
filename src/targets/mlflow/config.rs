//! The typed `mlflow:` section of an environment file and the model pins file it names
//! (`platform/models/<environment>.yaml`), merged into one plan per model: which version to serve
//! (a number, or the newest version that passes the gates), under which alias or stage, and the
//! gates it must pass. Pure: reads text, never the network; knows nothing of the REST API.

use crate::config::PathPart;
use crate::config::environment::Environment;
use crate::config::section::{Section, SectionProblem, checked};
use crate::deploy::TargetError;
use crate::targets::workload::parse_workload_reference;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The environment file's `mlflow:` section.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MlflowSection {
    /// The tracking server, e.g. `http://127.0.0.1:5500`.
    pub tracking_uri: String,
    /// The model pins file, relative to the repository root.
    #[serde(default)]
    pub pins: Option<String>,
    /// `alias` (default) moves registered-model aliases; `stage` uses the legacy stages.
    #[serde(default)]
    pub mode: PromotionMode,
    #[serde(default)]
    pub auth: Option<AuthSection>,
    /// Attempts per request on 5xx answers and connection errors (default 4).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Wait before the first retry, doubled for each next one, e.g. `200ms` (default).
    #[serde(default)]
    pub retry_backoff: Option<String>,
    /// Per request, e.g. `30s` (default).
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelSection>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionMode {
    #[default]
    Alias,
    Stage,
}

impl PromotionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionMode::Alias => "alias",
            PromotionMode::Stage => "stage",
        }
    }
}

/// Credentials come from the environment of the sluice process, never from git.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// A variable holding a bearer token (MLflow's `MLFLOW_TRACKING_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Basic auth: the user name, with `password_env`.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
}

/// One model in the environment file; the pins file may add to it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    #[serde(default)]
    pub alias: Option<String>,
    /// The stage in stage mode: `Staging`, `Production`.
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub version: Option<VersionPin>,
    #[serde(default)]
    pub min_metric: BTreeMap<String, f64>,
    #[serde(default)]
    pub required_tags: Vec<String>,
    /// Metric → ε: the candidate may be worse than the alias's current holder by at most ε.
    #[serde(default)]
    pub max_regression: BTreeMap<String, f64>,
    /// Workloads to restart after the alias moved, e.g. `deployment/serving-api`.
    #[serde(default)]
    pub restart: Vec<String>,
    /// A second alias that keeps the version the main alias held before the move.
    #[serde(default)]
    pub keep_previous_as: Option<String>,
}

/// A version number, or `latest` / `newest-passing`: the newest version that passes the gates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionPin {
    Exact(u64),
    NewestPassing,
}

impl<'de> Deserialize<'de> for VersionPin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PinVisitor;
        impl serde::de::Visitor<'_> for PinVisitor {
            type Value = VersionPin;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a version number or `latest`")
            }
            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<VersionPin, E> {
                Ok(VersionPin::Exact(number))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<VersionPin, E> {
                VersionPin::parse(text).ok_or_else(|| {
                    E::custom(format!(
                        "version `{text}` is neither a number nor `latest`; pin a registered version number or write `latest`"
                    ))
                })
            }
        }
        deserializer.deserialize_any(PinVisitor)
    }
}

impl Serialize for VersionPin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            VersionPin::Exact(number) => serializer.serialize_u64(*number),
            VersionPin::NewestPassing => serializer.serialize_str("latest"),
        }
    }
}

impl VersionPin {
    pub fn parse(text: &str) -> Option<VersionPin> {
        match text.trim() {
            "latest" | "newest-passing" => Some(VersionPin::NewestPassing),
            number => number.parse().ok().map(VersionPin::Exact),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            VersionPin::Exact(number) => number.to_string(),
            VersionPin::NewestPassing => "newest-passing".to_string(),
        }
    }
}

/// The pins file: `platform/models/<environment>.yaml`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinsFile {
    pub environment: String,
    #[serde(default)]
    pub models: BTreeMap<String, ModelPin>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPin {
    pub version: VersionPin,
    #[serde(default)]
    pub alias: Option<String>,
    /// Where a rollback goes when sluice has recorded no earlier move.
    #[serde(default)]
    pub previous: Option<u64>,
    #[serde(default)]
    pub gates: PinGates,
    #[serde(default)]
    pub consumers: Vec<Consumer>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinGates {
    #[serde(default)]
    pub min_metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub required_tags: Vec<String>,
    #[serde(default)]
    pub max_regression: BTreeMap<String, f64>,
    /// The environment the version must have been promoted to before (from sluice's history).
    #[serde(default)]
    pub soak_in: Option<String>,
}

/// Something that uses the model and reacts to the alias moving.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub dag_id: Option<String>,
}

/// The gates a candidate version must pass.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gates {
    pub min_metrics: BTreeMap<String, f64>,
    pub required_tags: Vec<String>,
    pub max_regression: BTreeMap<String, f64>,
    pub soak_in: Option<String>,
}

/// Everything the target needs for one model, merged from both files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelPlan {
    pub name: String,
    pub version: VersionPin,
    /// The alias, or the stage in stage mode.
    pub alias: String,
    pub gates: Gates,
    pub restart: Vec<String>,
    pub keep_previous_as: Option<String>,
    pub previous: Option<u64>,
}

/// The whole typed configuration of the target for one environment.
#[derive(Clone, Debug, PartialEq)]
pub struct MlflowConfig {
    pub environment: String,
    pub tracking_uri: String,
    pub mode: PromotionMode,
    pub auth: Option<AuthSection>,
    pub attempts: u32,
    pub retry_backoff: Duration,
    pub timeout: Duration,
    pub pins: Option<String>,
    pub section_models: BTreeMap<String, ModelSection>,
}

impl Section for MlflowSection {
    fn problems(&self) -> Vec<SectionProblem> {
        let mut problems = Vec::new();
        let url_ok = url::Url::parse(&self.tracking_uri)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
        if !url_ok {
            problems.push(
                SectionProblem::new(
                    &["tracking_uri".into()],
                    format!("`{}` is not an http(s) URL", self.tracking_uri),
                )
                .hint("write e.g. `http://127.0.0.1:5000`"),
            );
        }
        if let Some(auth) = &self.auth {
            let basic = auth.username.is_some() || auth.password_env.is_some();
            if auth.token_env.is_some() == basic
                || (basic && (auth.username.is_none() || auth.password_env.is_none()))
            {
                problems.push(SectionProblem::new(
                    &["auth".into()],
                    "give either `token_env` or both `username` and `password_env`",
                ));
            }
        }
        for (field, text) in [
            ("retry_backoff", &self.retry_backoff),
            ("timeout", &self.timeout),
        ] {
            if let Some(text) = text
                && parse_duration(text).is_none()
            {
                problems.push(
                    SectionProblem::new(&[field.into()], format!("`{text}` is not a duration"))
                        .hint("write e.g. `200ms`, `5s` or `1m`"),
                );
            }
        }
        if self.retries == Some(0) {
            problems.push(
                SectionProblem::new(&["retries".into()], "0 retries is no attempt at all")
                    .hint("write 1 for a single attempt"),
            );
        }
        for (name, model) in &self.models {
            check_model_section(name, model, self.mode, &mut problems);
        }
        problems
    }
}

/// Parses the environment's `mlflow:` section; `None` when there is none. Collects every problem.
pub fn parse_section(environment: &Environment) -> Result<Option<MlflowConfig>, TargetError> {
    let Some(section) = &environment.targets.mlflow else {
        return Ok(None);
    };
    let section =
        checked(section, &environment.name, "mlflow").map_err(TargetError::Configuration)?;
    Ok(Some(MlflowConfig {
        environment: environment.name.clone(),
        tracking_uri: section.tracking_uri.trim_end_matches('/').to_string(),
        mode: section.mode,
        auth: section.auth.clone(),
        attempts: section.retries.unwrap_or(4),
        retry_backoff: section
            .retry_backoff
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(Duration::from_millis(200)),
        timeout: section
            .timeout
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(Duration::from_secs(30)),
        pins: section.pins.clone(),
        section_models: section.models.clone(),
    }))
}

fn check_model_section(
    name: &str,
    model: &ModelSection,
    mode: PromotionMode,
    problems: &mut Vec<SectionProblem>,
) {
    let within = |rest: &[PathPart]| -> Vec<PathPart> {
        let mut field: Vec<PathPart> = vec!["models".into(), name.into()];
        field.extend(rest.iter().cloned());
        field
    };
    if mode == PromotionMode::Stage && model.alias.is_some() && model.stage.is_none() {
        problems.push(
            SectionProblem::new(
                &within(&["alias".into()]),
                "mode is `stage` but only `alias` is set",
            )
            .hint("add `stage: Staging` or `stage: Production`"),
        );
    }
    if let Some(stage) = &model.stage
        && !["Staging", "Production", "Archived", "None"].contains(&stage.as_str())
    {
        problems.push(
            SectionProblem::new(
                &within(&["stage".into()]),
                format!("`{stage}` is not an MLflow stage"),
            )
            .hint("use Staging, Production, Archived or None"),
        );
    }
    for (metric, value) in &model.max_regression {
        if !value.is_finite() || *value < 0.0 {
            problems.push(
                SectionProblem::new(
                    &within(&["max_regression".into(), metric.into()]),
                    format!("{value} is not a non-negative number"),
                )
                .hint("write the largest drop allowed, e.g. 0.02"),
            );
        }
    }
    for (index, workload) in model.restart.iter().enumerate() {
        if parse_workload_reference(workload).is_none() {
            problems.push(
                SectionProblem::new(
                    &within(&["restart".into(), index.into()]),
                    format!("`{workload}` is not `kind/name`"),
                )
                .hint("write e.g. `deployment/serving-api`"),
            );
        }
    }
}

/// `250ms`, `5s`, `2m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let number: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => Some(Duration::from_secs(number * 60)),
        _ => None,
    }
}

impl MlflowConfig {
    /// Reads the pins file (if any) from the release's tree and merges it with the section into
    /// one plan per model. Collects every problem.
    pub fn model_plans(&self, tree: &Path) -> Result<Vec<ModelPlan>, TargetError> {
        let pins = match &self.pins {
            Some(relative) => Some(read_pins(&tree.join(relative), relative)?),
            None => None,
        };
        merge(
            self,
            pins.as_ref().map(|(file, pins)| (file.as_str(), pins)),
        )
    }
}

fn read_pins(path: &Path, relative: &str) -> Result<(String, PinsFile), TargetError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        TargetError::Configuration(format!(
            "{relative}: cannot read the model pins file ({error}); create it or fix `mlflow.pins`"
        ))
    })?;
    let pins = parse_pins(relative, &text)?;
    Ok((relative.to_string(), pins))
}

/// Parses a pins file's text; errors name the file and the field.
pub fn parse_pins(file: &str, text: &str) -> Result<PinsFile, TargetError> {
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|error| {
        TargetError::Configuration(format!("{file}: not valid YAML: {error}; fix the syntax"))
    })?;
    serde_path_to_error::deserialize(value).map_err(|error| {
        TargetError::Configuration(format!(
            "{file}: {}: {}; see \"Model pins\" in platform/README.md",
            error.path(),
            error.inner()
        ))
    })
}

/// Merges section and pins: the pins file decides the version; an alias named in both must
/// agree; metric floors take the stricter value; tags and restarts are the union.
pub fn merge(
    config: &MlflowConfig,
    pins: Option<(&str, &PinsFile)>,
) -> Result<Vec<ModelPlan>, TargetError> {
    let environment_file = format!("environments/{}.yaml", config.environment);
    let mut problems = Vec::new();
    if let Some((file, pins)) = pins
        && pins.environment != config.environment
    {
        problems.push(format!(
            "{file}: environment is `{}` but environments/{}.yaml names this file; point `mlflow.pins` at the file of `{}`",
            pins.environment, config.environment, config.environment
        ));
    }
    let mut names: Vec<&String> = config.section_models.keys().collect();
    if let Some((_, pins)) = pins {
        names.extend(pins.models.keys());
    }
    names.sort();
    names.dedup();
    let mut plans = Vec::new();
    for name in names {
        let section = config.section_models.get(name).cloned().unwrap_or_default();
        let pin = pins.and_then(|(_, pins)| pins.models.get(name));
        let pins_file = pins.map(|(file, _)| file).unwrap_or("the pins file");
        let version = match (pin.map(|pin| pin.version.clone()), section.version.clone()) {
            (Some(version), _) | (None, Some(version)) => version,
            (None, None) => {
                problems.push(format!(
                    "{environment_file}: mlflow.models.{name} has no version and no pin in {pins_file}; add `version: <number>` or `version: latest`"
                ));
                continue;
            }
        };
        let alias = match config.mode {
            PromotionMode::Stage => section.stage.clone(),
            PromotionMode::Alias => {
                match (section.alias.clone(), pin.and_then(|pin| pin.alias.clone())) {
                    (Some(section_alias), Some(pin_alias)) if section_alias != pin_alias => {
                        problems.push(format!(
                            "model `{name}`: {environment_file} says alias `{section_alias}` but {pins_file} says `{pin_alias}`; make them the same"
                        ));
                        None
                    }
                    (Some(alias), _) | (None, Some(alias)) => Some(alias),
                    (None, None) => None,
                }
            }
        };
        let Some(alias) = alias else {
            if !problems
                .iter()
                .any(|problem| problem.contains(&format!("`{name}`")))
            {
                problems.push(format!(
                    "{environment_file}: mlflow.models.{name} has no {}; add `{}: {}`",
                    if config.mode == PromotionMode::Stage {
                        "stage"
                    } else {
                        "alias"
                    },
                    if config.mode == PromotionMode::Stage {
                        "stage"
                    } else {
                        "alias"
                    },
                    if config.mode == PromotionMode::Stage {
                        "Staging"
                    } else {
                        config.environment.as_str()
                    },
                ));
            }
            continue;
        };
        let mut gates = Gates {
            min_metrics: section.min_metric.clone(),
            required_tags: section.required_tags.clone(),
            max_regression: section.max_regression.clone(),
            soak_in: None,
        };
        let mut restart = section.restart.clone();
        if let Some(pin) = pin {
            for (metric, floor) in &pin.gates.min_metrics {
                let entry = gates.min_metrics.entry(metric.clone()).or_insert(*floor);
                *entry = entry.max(*floor);
            }
            for (metric, epsilon) in &pin.gates.max_regression {
                let entry = gates
                    .max_regression
                    .entry(metric.clone())
                    .or_insert(*epsilon);
                *entry = entry.min(*epsilon);
            }
            gates
                .required_tags
                .extend(pin.gates.required_tags.iter().cloned());
            gates.soak_in = pin.gates.soak_in.clone();
            for consumer in &pin.consumers {
                if consumer.kind == "deployment"
                    && let Some(deployment) = &consumer.name
                {
                    restart.push(format!("deployment/{deployment}"));
                }
            }
        }
        gates.required_tags.sort();
        gates.required_tags.dedup();
        restart.sort();
        restart.dedup();
        plans.push(ModelPlan {
            name: name.clone(),
            version,
            alias,
            gates,
            restart,
            keep_previous_as: section.keep_previous_as.clone(),
            previous: pin.and_then(|pin| pin.previous),
        });
    }
    if problems.is_empty() {
        Ok(plans)
    } else {
        Err(TargetError::Configuration(problems.join("\n")))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
