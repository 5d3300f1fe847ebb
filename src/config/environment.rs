//! The typed schema of an environment file (`environments/*.yaml`): its place in the promotion
//! order, the branch it deploys from, its gates (with how a freeze window reads) and one section
//! per registered target, each typed by the target that owns it (`crate::targets`). The keys of
//! the file are this struct's own plus the registered targets' names, so a misspelt section is
//! refused like any other unknown key.

use super::drift::DriftSettings;
use crate::targets::TargetSections;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    pub name: String,
    /// The environment that must be healthy with a release before this one receives it.
    pub after: Option<String>,
    /// The branch whose pushes are merges that deploy here (default `main`).
    pub branch: Option<String>,
    pub description: Option<String>,
    pub gates: Gates,
    /// How drift from the running release is checked, healed and gated (`config::drift`).
    pub drift: DriftSettings,
    /// Each target's section, `None` where the file has none.
    pub targets: TargetSections,
    /// Values templated into steps as `env.vars.NAME`.
    pub vars: BTreeMap<String, String>,
}

impl Environment {
    pub fn deploy_branch(&self) -> &str {
        self.branch.as_deref().unwrap_or("main")
    }

    /// An environment with only a name: no order, gates or targets.
    pub fn named(name: &str) -> Environment {
        Environment {
            name: name.to_owned(),
            after: None,
            branch: None,
            description: None,
            gates: Gates::default(),
            drift: DriftSettings::default(),
            targets: TargetSections::default(),
            vars: BTreeMap::new(),
        }
    }
}

/// The keys an environment file may hold: its own, then one per registered target.
const OWN_KEYS: [&str; 7] = [
    "name",
    "after",
    "branch",
    "description",
    "gates",
    "drift",
    "vars",
];

static KEYS: [&str; OWN_KEYS.len() + TargetSections::NAMES.len()] = {
    let mut keys = [""; OWN_KEYS.len() + TargetSections::NAMES.len()];
    let mut index = 0;
    while index < keys.len() {
        keys[index] = if index < OWN_KEYS.len() {
            OWN_KEYS[index]
        } else {
            TargetSections::NAMES[index - OWN_KEYS.len()]
        };
        index += 1;
    }
    keys
};

/// One key of an environment file, recognised the way serde's derive recognises a field, so
/// that an unknown key is reported with the valid ones.
enum Key {
    Own(&'static str),
    Target(&'static str),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an environment key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                if let Some(own) = OWN_KEYS.iter().find(|own| **own == key) {
                    Ok(Key::Own(own))
                } else if let Some(target) = TargetSections::NAMES.iter().find(|name| **name == key)
                {
                    Ok(Key::Target(target))
                } else {
                    Err(E::unknown_field(key, &KEYS))
                }
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Environment, D::Error> {
        deserializer.deserialize_struct("Environment", &KEYS, EnvironmentVisitor)
    }
}

struct EnvironmentVisitor;

impl<'de> Visitor<'de> for EnvironmentVisitor {
    type Value = Environment;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("struct Environment")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Environment, A::Error> {
        let mut name: Option<String> = None;
        let mut environment = Environment::named("");
        let mut seen: Vec<&'static str> = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            let key_name = match key {
                Key::Own(key) | Key::Target(key) => key,
            };
            if seen.contains(&key_name) {
                return Err(de::Error::duplicate_field(key_name));
            }
            seen.push(key_name);
            match key {
                Key::Own("name") => name = Some(map.next_value()?),
                Key::Own("after") => environment.after = map.next_value()?,
                Key::Own("branch") => environment.branch = map.next_value()?,
                Key::Own("description") => environment.description = map.next_value()?,
                Key::Own("gates") => environment.gates = map.next_value()?,
                Key::Own("drift") => environment.drift = map.next_value()?,
                Key::Own("vars") => environment.vars = map.next_value()?,
                Key::Own(other) => unreachable!("`{other}` is in OWN_KEYS but not read"),
                Key::Target(target) => environment.targets.read(target, &mut map)?,
            }
        }
        environment.name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        Ok(environment)
    }
}

impl Serialize for Environment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("after", &self.after)?;
        map.serialize_entry("branch", &self.branch)?;
        map.serialize_entry("description", &self.description)?;
        map.serialize_entry("gates", &self.gates)?;
        map.serialize_entry("drift", &self.drift)?;
        self.targets.write(&mut map)?;
        map.serialize_entry("vars", &self.vars)?;
        map.end()
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
