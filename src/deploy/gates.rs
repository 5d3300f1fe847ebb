//! Gates: what must hold before a release enters an environment. Pure: every decision is made
//! from plain values (the environment's gates, approvals, when the previous environment became
//! healthy, the time), so each can be tested with a fixed clock.

use crate::config::environment::{Environment, FreezeWindow, WeekWindow};
use crate::config::workflow::parse_duration;
use crate::deploy::Release;
use chrono::{DateTime, Datelike, Timelike, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;

/// What a directory says about one person and one team, and who said it (recorded in the
/// history with the gate decision).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub member: bool,
    /// `GitHub` or `the server configuration`.
    pub source: String,
    /// Why not, when not a member: `membership pending`, `not a member`, `GitHub did not answer: …`.
    pub note: Option<String>,
}

/// Who belongs to an `@org/team` named in `gates.approvers`: GitHub's team memberships when a
/// GitHub is configured, else the server configuration's `teams:`.
pub trait TeamDirectory: Send + Sync {
    /// `team` as written in `gates.approvers` (`@org/team`).
    fn membership<'a>(&'a self, team: &'a str, login: &'a str) -> BoxFuture<'a, Membership>;
}

/// Team membership written down (server configuration without GitHub, tests, the demo).
#[derive(Clone, Debug, Default)]
pub struct StaticTeams(pub std::collections::BTreeMap<String, Vec<String>>);

impl StaticTeams {
    pub fn is_member(&self, team: &str, login: &str) -> bool {
        self.0
            .get(team.trim_start_matches('@'))
            .or_else(|| self.0.get(team))
            .is_some_and(|members| members.iter().any(|member| member == login))
    }
}

impl TeamDirectory for StaticTeams {
    fn membership<'a>(&'a self, team: &'a str, login: &'a str) -> BoxFuture<'a, Membership> {
        let member = self.is_member(team, login);
        Box::pin(std::future::ready(Membership {
            member,
            source: "the server configuration".to_owned(),
            note: (!member).then(|| "not listed under `teams:`".to_owned()),
        }))
    }
}

/// The memberships a gate decision needs, asked for before the (pure) decision is made:
/// `(team, login)` -> what the directory said.
#[derive(Clone, Debug, Default)]
pub struct Memberships(pub std::collections::BTreeMap<(String, String), Membership>);

impl Memberships {
    fn get(&self, team: &str, login: &str) -> Option<&Membership> {
        self.0.get(&(team.to_owned(), login.to_owned()))
    }
}

/// Asks the directory about every approver of `approvals` who is not named directly in
/// `gates.approvers`, for every team the environment names.
pub async fn resolve_memberships(
    environment: &Environment,
    approvals: &[String],
    directory: &dyn TeamDirectory,
) -> Memberships {
    let approvers = &environment.gates.approvers;
    let mut resolved = Memberships::default();
    for recorded in approvals {
        let login = &crate::model::access::login_of(recorded).to_owned();
        if approvers.iter().any(|allowed| allowed == login) {
            continue;
        }
        for team in approvers.iter().filter(|allowed| allowed.starts_with('@')) {
            let membership = directory.membership(team, login).await;
            resolved.0.insert((team.clone(), login.clone()), membership);
        }
    }
    resolved
}

/// Everything a gate decision reads.
pub struct GateInput<'a> {
    pub environment: &'a Environment,
    pub release: &'a Release,
    /// When the environment before this one became healthy with the release (`None` for the first
    /// environment, which has no soak to wait for).
    pub previous_healthy_since: Option<DateTime<Utc>>,
    /// Logins that approved this release for this environment.
    pub approvals: &'a [String],
    /// What the team directory said about the approvers (`resolve_memberships`).
    pub memberships: &'a Memberships,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GateDecision {
    /// `soak`, `approval`, `freeze`.
    pub gate: &'static str,
    pub passed: bool,
    pub reason: String,
}

/// Every gate of the environment, passed or not, in a fixed order.
pub fn evaluate(input: &GateInput<'_>) -> Vec<GateDecision> {
    let gates = &input.environment.gates;
    let mut decisions = Vec::new();
    if let (Some(soak), Some(since)) = (&gates.soak, input.previous_healthy_since) {
        decisions.push(soak_decision(soak, since, input.now));
    }
    if gates.approvals > 0 {
        decisions.push(approval_decision(input));
    }
    for window in &gates.freeze {
        decisions.push(freeze_decision(window, input.now));
    }
    decisions
}

fn soak_decision(soak: &str, since: DateTime<Utc>, now: DateTime<Utc>) -> GateDecision {
    let required = match parse_duration(soak) {
        Ok(required) => required,
        Err(problem) => {
            return GateDecision {
                gate: "soak",
                passed: false,
                reason: format!("`gates.soak` is not a duration: {problem}"),
            };
        }
    };
    let waited = (now - since).to_std().unwrap_or_default();
    let passed = waited >= required;
    let reason = if passed {
        format!("healthy for {} (soak {soak})", human(waited))
    } else {
        format!(
            "soaking: healthy for {} of {soak}; {} to go",
            human(waited),
            human(required - waited)
        )
    };
    GateDecision {
        gate: "soak",
        passed,
        reason,
    }
}

pub(crate) fn human(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

fn approval_decision(input: &GateInput<'_>) -> GateDecision {
    let gates = &input.environment.gates;
    let author = input.release.author.as_deref();
    let mut counted: Vec<(String, String)> = Vec::new();
    let mut refused = Vec::new();
    for recorded in input.approvals {
        // `alice (local)` and `alice` are one person.
        let login = &crate::model::access::login_of(recorded).to_owned();
        if Some(login.as_str()) == author {
            refused.push(format!("{login} (the release's author)"));
            continue;
        }
        if input.release.contributors.contains(login) {
            refused.push(format!("{login} (a contributor to the release)"));
            continue;
        }
        if counted.iter().any(|(known, _)| known == login) {
            continue;
        }
        if gates.approvers.is_empty() || gates.approvers.iter().any(|allowed| allowed == login) {
            counted.push((login.clone(), String::new()));
            continue;
        }
        let teams: Vec<(&String, Option<&Membership>)> = gates
            .approvers
            .iter()
            .filter(|allowed| allowed.starts_with('@'))
            .map(|team| (team, input.memberships.get(team, login)))
            .collect();
        match teams
            .iter()
            .find(|(_, membership)| membership.is_some_and(|membership| membership.member))
        {
            Some((team, Some(membership))) => counted.push((
                login.clone(),
                format!(" ({team}, per {})", membership.source),
            )),
            _ => {
                let why: Vec<String> = teams
                    .iter()
                    .map(|(team, membership)| match membership {
                        Some(membership) => format!(
                            "{team}: {}, per {}",
                            membership.note.as_deref().unwrap_or("not a member"),
                            membership.source
                        ),
                        None => format!("{team}: not asked"),
                    })
                    .collect();
                let detail = if why.is_empty() {
                    String::new()
                } else {
                    format!("; {}", why.join("; "))
                };
                refused.push(format!(
                    "{login} (not in {}{detail})",
                    gates.approvers.join(", ")
                ));
            }
        }
    }
    let required = gates.approvals as usize;
    let passed = counted.len() >= required;
    let mut reason = format!("{} of {required} approvals", counted.len());
    if !counted.is_empty() {
        let names: Vec<String> = counted
            .iter()
            .map(|(login, via)| format!("{login}{via}"))
            .collect();
        reason.push_str(&format!(" ({})", names.join(", ")));
    }
    if !refused.is_empty() {
        reason.push_str(&format!("; not counted: {}", refused.join(", ")));
    }
    if !passed {
        let who = if gates.approvers.is_empty() {
            "anyone who did not write or land the release".to_owned()
        } else {
            gates.approvers.join(", ")
        };
        reason.push_str(&format!(
            "; waiting for approval by {who} (`/sluice approve {} {}` on the pull request, or `sluice approve {} {}`)",
            input.environment.name, input.release.id, input.environment.name, input.release.id
        ));
    }
    GateDecision {
        gate: "approval",
        passed,
        reason,
    }
}

fn freeze_decision(window: &FreezeWindow, now: DateTime<Utc>) -> GateDecision {
    let described = format!(
        "freeze {} to {} {}",
        window.from,
        window.to,
        window.timezone.as_deref().unwrap_or("UTC")
    );
    let WeekWindow { from, to, zone } = match window.bounds() {
        Ok(bounds) => bounds,
        Err(problem) => {
            return GateDecision {
                gate: "freeze",
                passed: false,
                reason: format!("{described}: {problem}"),
            };
        }
    };
    let local = now.with_timezone(&zone);
    let point =
        local.weekday().num_days_from_monday() * 24 * 60 + local.hour() * 60 + local.minute();
    let inside = if from <= to {
        from <= point && point < to
    } else {
        point >= from || point < to
    };
    let reason = match (&window.reason, inside) {
        (Some(why), true) => format!("{described}: {why}; now {}", local.format("%A %H:%M %Z")),
        (None, true) => format!("{described}; now {}", local.format("%A %H:%M %Z")),
        (_, false) => format!("outside {described}"),
    };
    GateDecision {
        gate: "freeze",
        passed: !inside,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::environment::Gates;
    use chrono::TimeZone;

    fn environment(gates: Gates) -> Environment {
        Environment {
            name: "production".into(),
            after: Some("staging".into()),
            branch: None,
            description: None,
            gates,
            drift: Default::default(),
            targets: Default::default(),
            vars: Default::default(),
        }
    }

    fn release(author: &str) -> Release {
        Release {
            id: "r7-0123456789ab".into(),
            repository: "acme/platform".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            branch: "main".into(),
            author: Some(author.into()),
            created_at: 0,
            sequence: 7,
            images: Default::default(),
            plans: Default::default(),
            dag_tree: None,
            models: Default::default(),
            config_commit: None,
            contributors: Default::default(),
        }
    }

    fn at(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
            .unwrap()
    }

    fn decide(
        gates: Gates,
        approvals: &[&str],
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Vec<GateDecision> {
        let environment = environment(gates);
        let mut release = release("alice");
        release.contributors.insert("erin".into());
        let approvals: Vec<String> = approvals.iter().map(|login| login.to_string()).collect();
        let teams = StaticTeams(
            [("example/leads".to_owned(), vec!["carol".to_owned()])]
                .into_iter()
                .collect(),
        );
        let memberships = futures_util::FutureExt::now_or_never(resolve_memberships(
            &environment,
            &approvals,
            &teams,
        ))
        .expect("static teams answer at once");
        evaluate(&GateInput {
            environment: &environment,
            release: &release,
            previous_healthy_since: since,
            approvals: &approvals,
            memberships: &memberships,
            now,
        })
    }

    #[test]
    fn soak_waits_until_the_previous_environment_was_healthy_long_enough() {
        let gates = Gates {
            soak: Some("10m".into()),
            ..Gates::default()
        };
        let since = at(2026, 11, 24, 9, 0);
        let early = decide(gates.clone(), &[], Some(since), at(2026, 11, 24, 9, 4));
        assert!(!early[0].passed);
        assert!(
            early[0].reason.contains("6m00s to go"),
            "{}",
            early[0].reason
        );
        let later = decide(gates, &[], Some(since), at(2026, 11, 24, 9, 10));
        assert!(later[0].passed, "{}", later[0].reason);
    }

    #[test]
    fn the_author_and_people_outside_the_approvers_do_not_count() {
        let gates = Gates {
            approvals: 1,
            approvers: vec!["@example/leads".into(), "dave".into()],
            ..Gates::default()
        };
        let now = at(2026, 11, 24, 9, 0);
        let by_author = decide(gates.clone(), &["alice"], None, now);
        assert!(!by_author[0].passed);
        assert!(
            by_author[0].reason.contains("alice (the release's author)"),
            "{}",
            by_author[0].reason
        );
        let by_outsider = decide(gates.clone(), &["bob"], None, now);
        assert!(!by_outsider[0].passed, "{}", by_outsider[0].reason);
        assert!(
            by_outsider[0].reason.contains(
                "bob (not in @example/leads, dave; @example/leads: not listed under `teams:`, per the server configuration)"
            ),
            "{}",
            by_outsider[0].reason
        );
        let by_member = &decide(gates.clone(), &["carol"], None, now)[0];
        assert!(by_member.passed);
        assert!(
            by_member
                .reason
                .contains("carol (@example/leads, per the server configuration)"),
            "{}",
            by_member.reason
        );
        assert!(decide(gates, &["dave"], None, now)[0].passed);
    }

    #[test]
    fn a_contributor_does_not_count_and_one_person_counts_once_from_the_server_and_locally() {
        let gates = Gates {
            approvals: 2,
            ..Gates::default()
        };
        let now = at(2026, 11, 24, 9, 0);
        let decision = &decide(
            gates.clone(),
            &["erin", "carol", "carol (local)"],
            None,
            now,
        )[0];
        assert!(!decision.passed, "{}", decision.reason);
        assert!(
            decision.reason.starts_with("1 of 2 approvals (carol)")
                && decision
                    .reason
                    .contains("erin (a contributor to the release)"),
            "{}",
            decision.reason
        );
        assert!(decide(gates, &["carol (local)", "dave"], None, now)[0].passed);
    }

    #[test]
    fn a_weekend_freeze_in_amsterdam_holds_from_friday_noon_to_monday_morning() {
        let gates = Gates {
            freeze: vec![FreezeWindow {
                from: "friday 12:00".into(),
                to: "monday 06:00".into(),
                timezone: Some("Europe/Amsterdam".into()),
                reason: Some("no production deploys over the weekend".into()),
            }],
            ..Gates::default()
        };
        // 2026-11-27 is a Friday; Amsterdam is UTC+1 in November.
        let check = |now: DateTime<Utc>, frozen: bool| {
            let decision = &decide(gates.clone(), &[], None, now)[0];
            assert_eq!(!decision.passed, frozen, "{now}: {}", decision.reason);
        };
        check(at(2026, 11, 27, 10, 59), false);
        check(at(2026, 11, 27, 11, 0), true);
        check(at(2026, 11, 29, 23, 0), true);
        check(at(2026, 11, 30, 4, 59), true);
        check(at(2026, 11, 30, 5, 0), false);
        check(at(2026, 11, 25, 12, 0), false);
    }

    #[test]
    fn a_malformed_window_is_explained_and_blocks() {
        let window = FreezeWindow {
            from: "fri 12".into(),
            to: "monday 06:00".into(),
            timezone: Some("Mars/Olympus".into()),
            reason: None,
        };
        assert!(
            window
                .bounds()
                .unwrap_err()
                .contains("`12` in `fri 12` is not a time")
        );
        let gates = Gates {
            freeze: vec![window],
            ..Gates::default()
        };
        assert!(!decide(gates, &[], None, at(2026, 11, 25, 12, 0))[0].passed);
    }
}
