//! The frame every page shares: the navigation, who is looking and what their role lets them do,
//! and the small pieces pages repeat (status badges, times, durations, the CSRF field).

use super::session::Viewer;
use crate::model::access::Role;
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Which section of the navigation a page belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Runs,
    Environments,
    History,
    Delivery,
    None,
}

const SECTIONS: [(Nav, &str, &str); 4] = [
    (Nav::Runs, "/", "Runs"),
    (Nav::Environments, "/environments", "Environments"),
    (Nav::History, "/history", "History"),
    (Nav::Delivery, "/metrics/delivery", "Delivery metrics"),
];

/// What a role lets its holder do, in the words the page shows.
pub fn role_allows(role: Role) -> &'static str {
    match role {
        Role::Viewer => "you may read; approving and promoting need the approver role",
        Role::Approver => {
            "you may approve releases you did not write, ask for promotions and rollbacks, and cancel, re-run or approve runs"
        }
        Role::Admin => {
            "you may do everything, including forcing a promotion past its gates with a reason"
        }
    }
}

/// A whole HTML page: `<title>`, navigation, who is looking, then `body`.
pub fn page(viewer: &Viewer, title: &str, nav: Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · sluice" }
                link rel="stylesheet" href=(super::assets::STYLESHEET);
                script src=(super::assets::SCRIPT) defer {}
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    a.brand href="/" { "sluice" }
                    nav aria-label="Sections" {
                        ul {
                            @for (section, href, label) in SECTIONS {
                                li {
                                    @if section == nav {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    (identity(viewer))
                }
                main #main { (body) }
            }
        }
    }
}

fn identity(viewer: &Viewer) -> Markup {
    html! {
        div.identity {
            @match &viewer.principal {
                Some(principal) => {
                    span #whoami {
                        "Signed in as " strong { (principal.recorded_as()) }
                        " (" (principal.role) "): " (role_allows(principal.role)) "."
                    }
                    form method="post" action="/signout" {
                        (viewer.csrf_field())
                        button type="submit" { "Sign out" }
                    }
                }
                None => {
                    span #whoami { "Reading as a guest; sign in to act." }
                    a.button href="/signin" { "Sign in" }
                }
            }
        }
    }
}

/// A status as a badge: the word itself, coloured by kind (never colour alone).
pub fn status_badge(status: &str) -> Markup {
    let kind = match status {
        "succeeded" | "deployed" | "passed" | "healthy" | "recorded" | "done" | "clean" => "good",
        "failed" | "rejected" | "rolled_back" | "denied" | "unhealthy" | "refused" | "drifted" => {
            "bad"
        }
        "running" | "deploying" | "started" | "requeued" => "busy",
        "queued" | "waiting" | "blocked" | "pending" | "could_not_check" => "wait",
        _ => "plain",
    };
    html! { span class={ "badge " (kind) } { (status.replace('_', " ")) } }
}

/// A Unix time as UTC, readable without JavaScript.
pub fn time(at: i64) -> Markup {
    match chrono::DateTime::from_timestamp(at, 0) {
        Some(when) => html! {
            time datetime=(when.to_rfc3339()) { (when.format("%Y-%m-%d %H:%M:%S UTC")) }
        },
        None => html! { "?" },
    }
}

/// A duration in seconds as people say it: `42s`, `3m 05s`, `2h 10m`, `3d 4h`.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        3600..86400 => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {}h", seconds / 86400, seconds % 86400 / 3600),
    }
}

/// Markup already escaped by its maker (rendered ANSI, drawn SVG).
pub fn trusted(html: String) -> Markup {
    PreEscaped(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(65), "1m 05s");
        assert_eq!(duration(7260), "2h 01m");
        assert_eq!(duration(3 * 86400 + 4 * 3600), "3d 4h");
        assert_eq!(duration(-5), "0s");
    }
}
