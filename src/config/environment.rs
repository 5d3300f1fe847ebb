//! The typed schema of an environment file (`environments/*.yaml`): its place in the promotion
//! order, the branch it deploys from, its gates (with how a freeze window reads) and its targets.
//! Later layers give the targets meaning.

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

/// A freeze window as the gate reads it: minutes since Monday 00:00 in `zone`; `to` before
/// `from` means the window wraps over the end of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeekWindow {
    pub from: u32,
    pub to: u32,
    pub zone: chrono_tz::Tz,
}

impl FreezeWindow {
    /// The window's bounds, or what is wrong with its fields: the loader reports that at the
    /// window's position, and the freeze gate blocks on it.
    pub fn bounds(&self) -> Result<WeekWindow, String> {
        let from = parse_week_point(&self.from)?;
        let to = parse_week_point(&self.to)?;
        let zone = match &self.timezone {
            None => chrono_tz::UTC,
            Some(zone) => zone.parse::<chrono_tz::Tz>().map_err(|_| {
                format!("`{zone}` is not an IANA time zone such as `Europe/Amsterdam`")
            })?,
        };
        Ok(WeekWindow { from, to, zone })
    }
}

/// A point in the week, in minutes since Monday 00:00.
fn parse_week_point(text: &str) -> Result<u32, String> {
    let mut words = text.split_whitespace();
    let (Some(day), Some(time), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!("`{text}` is not `DAY HH:MM` (e.g. `friday 12:00`)"));
    };
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let day_lower = day.to_ascii_lowercase();
    let day_index = DAYS
        .iter()
        .position(|name| *name == day_lower || name[..3] == *day_lower)
        .ok_or_else(|| format!("`{day}` in `{text}` is not a day of the week"))?;
    let (hours, minutes) = time
        .split_once(':')
        .and_then(|(hours, minutes)| {
            Some((hours.parse::<u32>().ok()?, minutes.parse::<u32>().ok()?))
        })
        .filter(|(hours, minutes)| *hours < 24 && *minutes < 60)
        .ok_or_else(|| format!("`{time}` in `{text}` is not a time HH:MM"))?;
    Ok(day_index as u32 * 24 * 60 + hours * 60 + minutes)
}
