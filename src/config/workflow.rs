//! The typed schema of a pipeline file (`workflows/*.yaml`), in the vocabulary of GitHub Actions.
//! Only shapes live here; what the fields mean is decided by the planner and the scheduler.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One pipeline file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    pub name: String,
    #[serde(default)]
    pub on: Triggers,
    /// Environment variables for every job and step of the pipeline.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
    /// Jobs by id, in file order.
    pub jobs: indexmap::IndexMap<String, Job>,
}

/// `on:`: which events start the pipeline. A pipeline with no triggers never starts by itself.
/// As on GitHub, `on: push`, `on: [push, pull_request]` and an event with nothing after it
/// (`push:`) mean "every such event".
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Triggers {
    pub push: Option<PushTrigger>,
    pub pull_request: Option<PullRequestTrigger>,
}

/// The mapping form of `on:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggersMapping {
    #[serde(default, deserialize_with = "present_even_if_empty")]
    push: Option<PushTrigger>,
    #[serde(default, deserialize_with = "present_even_if_empty")]
    pull_request: Option<PullRequestTrigger>,
}

/// `push:` with nothing after it is a trigger without filters, not an absent one.
fn present_even_if_empty<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(
        Option::<T>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

impl Triggers {
    const EVENTS: &'static [&'static str] = &["push", "pull_request"];

    fn add_event<E: serde::de::Error>(&mut self, event: &str) -> Result<(), E> {
        match event {
            "push" => self.push = Some(PushTrigger::default()),
            "pull_request" => self.pull_request = Some(PullRequestTrigger::default()),
            other => {
                return Err(E::custom(format!(
                    "unknown event `{other}`; pipelines start on {}",
                    Self::EVENTS
                        .iter()
                        .map(|event| format!("`{event}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )));
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Triggers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TriggersVisitor;

        impl<'de> serde::de::Visitor<'de> for TriggersVisitor {
            type Value = Triggers;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an event name, a list of event names, or a mapping")
            }

            fn visit_str<E: serde::de::Error>(self, event: &str) -> Result<Triggers, E> {
                let mut triggers = Triggers::default();
                triggers.add_event(event)?;
                Ok(triggers)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut events: A,
            ) -> Result<Triggers, A::Error> {
                let mut triggers = Triggers::default();
                while let Some(event) = events.next_element::<String>()? {
                    triggers.add_event(&event)?;
                }
                Ok(triggers)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mapping: A,
            ) -> Result<Triggers, A::Error> {
                let TriggersMapping { push, pull_request } = TriggersMapping::deserialize(
                    serde::de::value::MapAccessDeserializer::new(mapping),
                )?;
                Ok(Triggers { push, pull_request })
            }
        }

        deserializer.deserialize_any(TriggersVisitor)
    }
}

/// `on.push`: branch, tag and path filters. Pattern lists use GitHub's glob rules: `*`, `**`,
/// `?`, `[...]`, `!` negation, and later patterns override earlier ones.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PushTrigger {
    #[serde(default)]
    pub branches: Option<Vec<String>>,
    #[serde(default, rename = "branches-ignore")]
    pub branches_ignore: Option<Vec<String>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default, rename = "tags-ignore")]
    pub tags_ignore: Option<Vec<String>>,
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    #[serde(default, rename = "paths-ignore")]
    pub paths_ignore: Option<Vec<String>>,
}

/// `on.pull_request`: activity types, base branches and path filters.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PullRequestTrigger {
    /// Defaults to `opened`, `synchronize`, `reopened`, as on GitHub.
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Filters the pull request's *base* branch.
    #[serde(default)]
    pub branches: Option<Vec<String>>,
    #[serde(default, rename = "branches-ignore")]
    pub branches_ignore: Option<Vec<String>>,
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    #[serde(default, rename = "paths-ignore")]
    pub paths_ignore: Option<Vec<String>>,
}

/// `concurrency:`: at most one run per group at a time; with `cancel-in-progress` a newer run
/// cancels the older one, otherwise the newer run waits. Written as a string or a mapping.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Concurrency {
    Group(String),
    Detailed(ConcurrencyDetailed),
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyDetailed {
    pub group: String,
    #[serde(default, rename = "cancel-in-progress")]
    pub cancel_in_progress: bool,
}

impl Concurrency {
    pub fn group(&self) -> &str {
        match self {
            Concurrency::Group(group) => group,
            Concurrency::Detailed(detailed) => &detailed.group,
        }
    }

    pub fn cancel_in_progress(&self) -> bool {
        match self {
            Concurrency::Group(_) => false,
            Concurrency::Detailed(detailed) => detailed.cancel_in_progress,
        }
    }
}

/// One node of the pipeline graph.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Display name; the job id is the key under `jobs:`.
    #[serde(default)]
    pub name: Option<String>,
    /// Jobs that must finish first: one id or a list of ids.
    #[serde(default)]
    pub needs: Needs,
    /// A condition in GitHub's expression syntax, with or without `${{ }}`.
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `90s`, `10m`, `1h30m`, or a number of seconds.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
    /// The container image of the job's `run:` and `terraform:` steps that name none (instead of
    /// the server's `steps.image`).
    #[serde(default)]
    pub image: Option<String>,
    pub steps: Vec<Step>,
}

/// `needs:` as GitHub accepts it: a single job id or a list.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(from = "NeedsForm", into = "Vec<String>")]
pub struct Needs(pub Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum NeedsForm {
    One(String),
    Many(Vec<String>),
}

impl From<Needs> for Vec<String> {
    fn from(needs: Needs) -> Vec<String> {
        needs.0
    }
}

impl From<NeedsForm> for Needs {
    fn from(form: NeedsForm) -> Needs {
        match form {
            NeedsForm::One(one) => Needs(vec![one]),
            NeedsForm::Many(many) => Needs(many),
        }
    }
}

/// A duration as written in a pipeline: a number of seconds or text like `1h30m`, `10m`, `45s`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum DurationSpec {
    Seconds(u64),
    Text(String),
}

impl DurationSpec {
    /// The duration, or a message saying what is wrong with the text.
    pub fn to_duration(&self) -> Result<std::time::Duration, String> {
        match self {
            DurationSpec::Seconds(seconds) => Ok(std::time::Duration::from_secs(*seconds)),
            DurationSpec::Text(text) => parse_duration(text),
        }
    }
}

/// Parses `1h30m`, `10m`, `45s`, `250ms`, `2d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write e.g. `10m`, `90s` or `1h30m`".into());
    }
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(seconds));
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(format!(
                "invalid duration `{text}`; write e.g. `10m`, `90s` or `1h30m`"
            ));
        }
        let number: u64 = rest[..digits_end]
            .parse()
            .map_err(|_| format!("invalid duration `{text}`: number too large"))?;
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        total += match unit {
            "ms" => std::time::Duration::from_millis(number),
            "s" => std::time::Duration::from_secs(number),
            "m" => std::time::Duration::from_secs(number * 60),
            "h" => std::time::Duration::from_secs(number * 3600),
            "d" => std::time::Duration::from_secs(number * 86400),
            other => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{other}`; use ms, s, m, h or d"
                ));
            }
        };
    }
    Ok(total)
}

/// One step of a job. Exactly one step kind is set (`run` today; `build`, `terraform`, `policy`
/// and the sync kinds join as their own fields); the rest are options shared by every kind.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub name: Option<String>,
    /// A command line run with `shell` (default `bash -eo pipefail -c`, or `sh -ec` in a container).
    #[serde(default)]
    pub run: Option<String>,
    /// Run the command in this container image instead of as a host process.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default, rename = "working-directory")]
    pub working_directory: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    #[serde(default, rename = "continue-on-error")]
    pub continue_on_error: bool,
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
    /// Build a container image through the Docker engine and push it (see `config::build`).
    #[serde(default)]
    pub build: Option<super::build::BuildStep>,
    /// Plan an environment's Terraform or apply its reviewed plan (see `steps::terraform`).
    #[serde(default)]
    pub terraform: Option<TerraformStep>,
    /// Preview what a merge would deploy to an environment, judged by the policies (see
    /// `steps::preview`).
    #[serde(default)]
    pub preview: Option<PreviewStep>,
}

/// `preview: { environment: production }`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreviewStep {
    /// The environment file (`environments/<name>.yaml`) whose targets to ask.
    pub environment: String,
}

/// `terraform: { environment: dev, command: plan }`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TerraformStep {
    /// The environment file (`environments/<name>.yaml`) whose `terraform:` section to use.
    pub environment: String,
    pub command: TerraformCommand,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TerraformCommand {
    /// Plan, summarise, check the policies, store the plan encrypted under the lock.
    Plan,
    /// On a merge: apply the stored reviewed plan for the merged commit.
    Apply,
}

impl Step {
    /// The names of the step kinds set on this step; validation requires exactly one.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if self.run.is_some() {
            kinds.push("run");
        }
        if self.build.is_some() {
            kinds.push("build");
        }
        if self.terraform.is_some() {
            kinds.push("terraform");
        }
        if self.preview.is_some() {
            kinds.push("preview");
        }
        kinds
    }

    /// The name shown in logs and the API: the given name, or the kind and a short command.
    pub fn display_name(&self, index: usize) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        if let Some(command) = &self.run {
            let first_line = command.lines().next().unwrap_or("").trim();
            let short: String = first_line.chars().take(60).collect();
            return format!("run: {short}");
        }
        if let Some(build) = &self.build {
            return format!("build: {}", build.image);
        }
        if let Some(terraform) = &self.terraform {
            let command = match terraform.command {
                TerraformCommand::Plan => "plan",
                TerraformCommand::Apply => "apply",
            };
            return format!("terraform {command}: {}", terraform.environment);
        }
        if let Some(preview) = &self.preview {
            return format!("preview: {}", preview.environment);
        }
        format!("step {}", index + 1)
    }
}
