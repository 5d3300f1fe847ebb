//! Why a release waits, in plain words: a recorded gate decision (`gate: text | gate: text`, as
//! the reconciler writes it) read back into soak time left, approvals given and missing, the
//! freeze window and when it ends, and what the policies deny. Pure: every answer is made from
//! the recorded text, the approvals in the store and the time, so each can be tested alone.

use crate::config::environment::FreezeWindow;
use crate::deploy::Release;
use crate::model::access::login_of;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// One held gate, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    Soak {
        /// What is left now, counting the time since the decision was recorded.
        left_seconds: Option<i64>,
        recorded: String,
    },
    Approval {
        required: Option<usize>,
        /// Recorded approvals that count (not the author, not a contributor, not refused).
        given: Vec<String>,
        /// Recorded approvals the gate did not count, with why.
        not_counted: Vec<String>,
        /// `None` when the gate did not say (it says when it still waits).
        who_may: Option<String>,
    },
    Freeze {
        window: String,
        reason: Option<String>,
        /// When the window ends next, if the recorded window could be read back.
        ends_at: Option<i64>,
    },
    Policy {
        /// `false`: the policies could not be checked (the next pass asks again).
        denied: bool,
        text: String,
    },
    Other {
        gate: String,
        text: String,
    },
}

/// A gate decision's reason split into `(gate, text)` pairs.
pub fn gate_lines(reason: &str) -> Vec<(String, String)> {
    reason
        .split(" | ")
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once(": ") {
            Some((gate, text)) if !gate.contains(' ') => (gate.to_owned(), text.to_owned()),
            _ => (String::new(), line.to_owned()),
        })
        .collect()
}

/// Everything a blocked gate decision holds the release for, explained at `now`.
/// `decided_at` is when the decision was recorded; `approvals` are the ones in the store now.
pub fn explain(
    reason: &str,
    decided_at: i64,
    now: i64,
    release: Option<&Release>,
    approvals: &[String],
) -> Vec<Held> {
    gate_lines(reason)
        .into_iter()
        .map(|(gate, text)| match gate.as_str() {
            "soak" => Held::Soak {
                left_seconds: text
                    .split("; ")
                    .find_map(|part| part.strip_suffix(" to go"))
                    .and_then(parse_human)
                    .map(|left| (left - (now - decided_at)).max(0)),
                recorded: text,
            },
            "approval" => approval(&text, release, approvals),
            "freeze" => freeze(&text, now),
            "policy" => Held::Policy {
                denied: !(text.starts_with("could not check")
                    || text.starts_with("cannot ")
                    || text.starts_with("the default branch's policies do not load")),
                text,
            },
            _ => Held::Other { gate, text },
        })
        .collect()
}

fn approval(text: &str, release: Option<&Release>, approvals: &[String]) -> Held {
    let required = text
        .split_once(" approvals")
        .and_then(|(head, _)| head.rsplit_once(" of "))
        .and_then(|(_, count)| count.trim().parse().ok());
    let not_counted: Vec<String> = text
        .split("; ")
        .find_map(|part| part.strip_prefix("not counted: "))
        .map(split_people)
        .unwrap_or_default();
    let refused: Vec<&str> = not_counted
        .iter()
        .filter_map(|entry| entry.split_whitespace().next())
        .collect();
    let mut given: Vec<String> = Vec::new();
    for recorded in approvals {
        let login = login_of(recorded);
        let contributor = release.is_some_and(|release| release.is_contributor(login));
        if contributor || refused.contains(&login) || given.iter().any(|known| known == login) {
            continue;
        }
        given.push(login.to_owned());
    }
    let who_may = text
        .split_once("waiting for approval by ")
        .map(|(_, rest)| {
            rest.split_once(" (`")
                .map_or(rest, |(who, _)| who)
                .trim()
                .to_owned()
        });
    Held::Approval {
        required,
        given,
        not_counted,
        who_may,
    }
}

/// `a (x, y), b (z)` → `["a (x, y)", "b (z)"]`: commas inside parentheses stay.
fn split_people(list: &str) -> Vec<String> {
    let mut people = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for character in list.chars() {
        match character {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                people.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(character);
    }
    if !current.trim().is_empty() {
        people.push(current.trim().to_owned());
    }
    people
}

/// `freeze friday 12:00 to monday 06:00 Europe/Amsterdam: no deploys; now Friday 13:00 CET`.
fn freeze(text: &str, now: i64) -> Held {
    let unreadable = || Held::Freeze {
        window: text.to_owned(),
        reason: None,
        ends_at: None,
    };
    let Some(rest) = text.strip_prefix("freeze ") else {
        return unreadable();
    };
    let words: Vec<&str> = rest.splitn(6, ' ').collect();
    let [from_day, from_time, "to", to_day, to_time, tail] = words.as_slice() else {
        return unreadable();
    };
    let (zone, after) = tail
        .find([':', ';'])
        .map_or((*tail, ""), |at| (&tail[..at], &tail[at..]));
    let reason = after
        .strip_prefix(": ")
        .map(|why| why.split_once("; now ").map_or(why, |(why, _)| why))
        .map(str::to_owned);
    let window = FreezeWindow {
        from: format!("{from_day} {from_time}"),
        to: format!("{to_day} {to_time}"),
        timezone: Some(zone.to_owned()),
        reason: reason.clone(),
    };
    Held::Freeze {
        window: format!("{} to {} {zone}", window.from, window.to),
        ends_at: freeze_end(&window, now),
        reason,
    }
}

/// The next time the window's end comes round after `now`.
pub fn freeze_end(window: &FreezeWindow, now: i64) -> Option<i64> {
    let bounds = window.bounds().ok()?;
    let now = DateTime::<Utc>::from_timestamp(now, 0)?;
    let local = now.with_timezone(&bounds.zone);
    let point =
        local.weekday().num_days_from_monday() * 24 * 60 + local.hour() * 60 + local.minute();
    const WEEK: u32 = 7 * 24 * 60;
    let minutes = match (bounds.to + WEEK - point) % WEEK {
        0 => WEEK,
        minutes => minutes,
    };
    Some(now.timestamp() - i64::from(local.second()) + i64::from(minutes) * 60)
}

/// `6m00s`, `1h02m`, `45s` (the gates' way of writing a duration) → seconds.
pub fn parse_human(text: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut number = String::new();
    let mut any = false;
    for character in text.trim().chars() {
        if character.is_ascii_digit() {
            number.push(character);
            continue;
        }
        let unit = match character {
            'd' => 86400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        total += number.parse::<i64>().ok()? * unit;
        number.clear();
        any = true;
    }
    (any && number.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        let mut release =
            Release::unrecorded("acme/platform", &"a".repeat(40), "main", Some("dave"));
        release.contributors.insert("erin".into());
        release
    }

    #[test]
    fn soak_time_left_counts_the_time_since_the_decision() {
        let held = explain(
            "soak: soaking: healthy for 4m00s of 10m; 6m00s to go",
            1000,
            1060,
            None,
            &[],
        );
        assert_eq!(
            held,
            [Held::Soak {
                left_seconds: Some(300),
                recorded: "soaking: healthy for 4m00s of 10m; 6m00s to go".into()
            }]
        );
        assert_eq!(parse_human("1h02m"), Some(3720));
        assert_eq!(parse_human("soon"), None);
    }

    #[test]
    fn approvals_name_who_gave_them_and_how_many_are_missing() {
        let reason = "approval: 1 of 2 approvals (carol); not counted: dave (the release's author), bob (not in @acme/leads, frank; @acme/leads: not a member, per GitHub); waiting for approval by @acme/leads, frank (`/sluice approve production r2` on the pull request, or `sluice approve production r2`)";
        let approvals = [
            "carol".to_owned(),
            "dave".into(),
            "bob".into(),
            "erin".into(),
        ];
        let held = explain(reason, 0, 0, Some(&release()), &approvals);
        let [
            Held::Approval {
                required,
                given,
                not_counted,
                who_may,
            },
        ] = held.as_slice()
        else {
            panic!("{held:?}");
        };
        assert_eq!(*required, Some(2));
        assert_eq!(given, &["carol"]);
        assert_eq!(not_counted.len(), 2, "{not_counted:?}");
        assert_eq!(who_may.as_deref(), Some("@acme/leads, frank"));
    }

    #[test]
    fn a_freeze_says_when_it_ends_and_a_policy_what_it_denies() {
        // 2026-11-27 is a Friday; 13:00 in Amsterdam is 12:00 UTC.
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 27, 12, 0, 0)
            .unwrap()
            .timestamp();
        let reason = "freeze: freeze friday 12:00 to monday 06:00 Europe/Amsterdam: weekend; now Friday 13:00 CET | policy: deny `no-public-buckets`: bucket is public";
        let held = explain(reason, now, now, None, &[]);
        let monday_five_utc = now + (2 * 24 + 17) * 3600;
        assert_eq!(
            held[0],
            Held::Freeze {
                window: "friday 12:00 to monday 06:00 Europe/Amsterdam".into(),
                reason: Some("weekend".into()),
                ends_at: Some(monday_five_utc),
            }
        );
        assert!(matches!(&held[1], Held::Policy { denied: true, text } if text.contains("public")));
    }
}
