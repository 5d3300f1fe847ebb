//! The typed schema of an environment file (`environments/*.yaml`): its place in the promotion
//! order, the branch it deploys from, its gates and its targets. Later layers give the targets meaning.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub name: String,
    /// The environment that must be healthy with a release before this one receives it.
    #[serde(default)]
    pub after: Option<String>,
    /// The branch whose pushes are merges that deploy here (default `main`).
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub gates: Gates,
    #[serde(default)]
    pub terraform: Option<serde_json::Value>,
    #[serde(default)]
    pub kubernetes: Option<serde_json::Value>,
    #[serde(default)]
    pub airflow: Option<serde_json::Value>,
    #[serde(default)]
    pub mlflow: Option<serde_json::Value>,
    /// Values templated into steps as `env.vars.NAME`.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
}

impl Environment {
    pub fn deploy_branch(&self) -> &str {
        self.branch.as_deref().unwrap_or("main")
    }
}

/// What must hold before a release enters the environment.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// How long the previous environment must have been healthy, e.g. `10m`.
    #[serde(default)]
    pub soak: Option<String>,
    /// How many people other than the release's author must approve (0 = none).
    #[serde(default)]
    pub approvals: u32,
    /// Users or `@org/team` entries whose approval counts.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Windows in which nothing deploys here.
    #[serde(default)]
    pub freeze: Vec<FreezeWindow>,
}

/// "no deploys from Friday 12:00 to Monday 06:00, Europe/Amsterdam".
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    /// `friday 12:00`
    pub from: String,
    /// `monday 06:00`
    pub to: String,
    /// IANA time zone name; default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}
