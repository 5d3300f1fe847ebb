//! An environment's `drift:` section: how often sluice compares the environment with the release
//! it runs, which domains it puts back by itself, and whether drift holds promotions.
//!
//! ```yaml
//! drift:
//!   interval: 10m              # default 10m; `off` checks only after deployments and on demand
//!   heal: [kubernetes, airflow, mlflow]   # default none; terraform is never healed automatically
//!   block: true                # default true: a release does not enter while drift is recorded
//! ```

use super::workflow::parse_duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How often an environment is checked when its file says nothing.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10 * 60);

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DriftSettings {
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub heal: Vec<String>,
    #[serde(default = "blocks_by_default")]
    pub block: bool,
}

fn blocks_by_default() -> bool {
    true
}

impl Default for DriftSettings {
    fn default() -> DriftSettings {
        DriftSettings {
            interval: None,
            heal: Vec::new(),
            block: true,
        }
    }
}

/// A problem in the section: the field path under `drift`, the message and what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftProblem {
    pub field: Vec<FieldPart>,
    pub message: String,
    pub hint: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FieldPart {
    Key(&'static str),
    Index(usize),
}

impl DriftSettings {
    /// The time between scheduled checks; `None` for `off`. A value that does not read is the
    /// default (the loader reports it).
    pub fn interval(&self) -> Option<Duration> {
        match self.interval.as_deref() {
            None => Some(DEFAULT_INTERVAL),
            Some("off") => None,
            Some(text) => Some(parse_duration(text).unwrap_or(DEFAULT_INTERVAL)),
        }
    }

    /// Whether drift found in `domain` is put back without asking.
    pub fn heals(&self, domain: &str) -> bool {
        domain != "terraform" && self.heal.iter().any(|name| name == domain)
    }

    /// What serde cannot check: the interval reads, and each domain to heal is configured
    /// and may be healed.
    pub fn problems(&self, configured: &[&str], registered: &[&str]) -> Vec<DriftProblem> {
        let mut problems = Vec::new();
        if let Some(text) = &self.interval
            && text != "off"
        {
            match parse_duration(text) {
                Err(problem) => problems.push(DriftProblem {
                    field: vec![FieldPart::Key("interval")],
                    message: problem,
                    hint: Some("write a duration such as `10m` or `1h`, or `off`".to_owned()),
                }),
                Ok(interval) if interval < Duration::from_secs(10) => problems.push(DriftProblem {
                    field: vec![FieldPart::Key("interval")],
                    message: format!("`{text}` is shorter than 10s"),
                    hint: Some("check at most every 10s; `1m` or more is usual".to_owned()),
                }),
                Ok(_) => {}
            }
        }
        for (index, domain) in self.heal.iter().enumerate() {
            let field = vec![FieldPart::Key("heal"), FieldPart::Index(index)];
            let problem = if domain == "terraform" {
                Some((
                    "terraform is never healed automatically".to_owned(),
                    "remove it: a drifted Terraform environment gets a plan stored for review instead",
                ))
            } else if !registered.contains(&domain.as_str()) {
                Some((
                    format!("`{domain}` is not a deploy target"),
                    "name kubernetes, airflow or mlflow",
                ))
            } else if !configured.contains(&domain.as_str()) {
                Some((
                    format!("`{domain}` is named, but the environment has no `{domain}:` section"),
                    "remove it, or configure the target",
                ))
            } else {
                None
            };
            if let Some((message, hint)) = problem {
                problems.push(DriftProblem {
                    field,
                    message,
                    hint: Some(hint.to_owned()),
                });
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check_every_ten_minutes_heal_nothing_and_block() {
        let settings = DriftSettings::default();
        assert_eq!(settings.interval(), Some(DEFAULT_INTERVAL));
        assert!(settings.block);
        assert!(!settings.heals("kubernetes"));
        let off = DriftSettings {
            interval: Some("off".into()),
            ..DriftSettings::default()
        };
        assert_eq!(off.interval(), None);
    }

    #[test]
    fn terraform_an_unknown_domain_and_an_unconfigured_one_are_refused_where_they_are() {
        let settings = DriftSettings {
            interval: Some("5 minutes".into()),
            heal: vec![
                "kubernetes".into(),
                "terraform".into(),
                "helm".into(),
                "airflow".into(),
            ],
            block: true,
        };
        let registered = ["terraform", "mlflow", "kubernetes", "airflow"];
        let problems = settings.problems(&["terraform", "kubernetes"], &registered);
        let places: Vec<(Vec<FieldPart>, &str)> = problems
            .iter()
            .map(|problem| (problem.field.clone(), problem.message.as_str()))
            .collect();
        assert_eq!(places.len(), 4, "{problems:?}");
        assert_eq!(places[0].0, [FieldPart::Key("interval")]);
        assert_eq!(
            places[1],
            (
                vec![FieldPart::Key("heal"), FieldPart::Index(1)],
                "terraform is never healed automatically"
            )
        );
        assert_eq!(places[2].1, "`helm` is not a deploy target");
        assert_eq!(
            places[3].1,
            "`airflow` is named, but the environment has no `airflow:` section"
        );
        assert!(!settings.heals("terraform"));
    }
}
