//! Who may do what: the roles a personal API token carries, the principal a request acts as, and
//! the pure pieces of tokens (their sha256, lifetimes such as `90d`). No IO: tokens are made by
//! the command line and looked up by the server through the store.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token lets its holder do. Each role may do everything the roles before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Approves environments and a fork's waiting runs, asks for promotions and rollbacks.
    Approver,
    /// Everything, including forced promotion and unlocking Terraform locks.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether a holder of this role may do what needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How a principal proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A personal token made with `sluice token create`.
    PersonalToken,
    /// The server's `SLUICE_API_TOKEN`: an admin with no person behind it.
    BootstrapToken,
    /// The command line on the data directory: whoever can write it is an admin.
    Local,
    /// A pull-request comment: the login GitHub signed the delivery with, and GitHub's word
    /// that it has write permission on the repository.
    GithubComment,
}

/// Who a request acts as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The person's login; `None` for the bootstrap token.
    pub person: Option<String>,
    pub role: Role,
    pub via: Via,
}

/// The suffix history gives actions taken on the data directory rather than through the server.
pub const LOCAL_SUFFIX: &str = " (local)";
/// How history names the bootstrap token.
pub const BOOTSTRAP_NAME: &str = "api-token";

impl Principal {
    /// Someone on the command line, with the data directory.
    pub fn local(login: &str) -> Principal {
        Principal {
            person: Some(login.to_owned()),
            role: Role::Admin,
            via: Via::Local,
        }
    }

    /// A commenter GitHub vouches for (write permission on the repository): may approve and
    /// ask for what an approver may, never force.
    pub fn github(login: &str) -> Principal {
        Principal {
            person: Some(login.to_owned()),
            role: Role::Approver,
            via: Via::GithubComment,
        }
    }

    /// The name approvals and history record: `alice`, `alice (local)` or `api-token`.
    pub fn recorded_as(&self) -> String {
        match (&self.person, self.via) {
            (Some(person), Via::Local) => format!("{person}{LOCAL_SUFFIX}"),
            (Some(person), _) => person.clone(),
            (None, _) => BOOTSTRAP_NAME.to_owned(),
        }
    }
}

/// The person's login in a recorded name: `alice` for `alice (local)`.
pub fn login_of(recorded: &str) -> &str {
    recorded.strip_suffix(LOCAL_SUFFIX).unwrap_or(recorded)
}

/// What a personal token starts with, so that it is recognisable in a leak scan.
pub const TOKEN_PREFIX: &str = "sluice_";

/// Hex sha256 of a token as presented: the only form of it the store keeps.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token's text from its random bytes: the prefix and the bytes as hex.
pub fn token_text(random: &[u8; 32]) -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(random))
}

/// A lifetime such as `90d`, `12h`, `30m` or `2w`, in seconds.
pub fn parse_lifetime(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let refuse =
        || format!("`{text}` is not a lifetime; write a number and a unit: 30m, 12h, 90d, 2w");
    let split = text
        .find(|character: char| !character.is_ascii_digit())
        .ok_or_else(refuse)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| refuse())?;
    let seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(refuse()),
    };
    if number == 0 {
        return Err(format!(
            "`{text}` is no time at all; give a lifetime such as 90d"
        ));
    }
    number.checked_mul(seconds).ok_or_else(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_allows_what_the_roles_below_it_allow_and_nothing_above() {
        assert!(Role::Admin.allows(Role::Approver));
        assert!(Role::Approver.allows(Role::Approver));
        assert!(Role::Approver.allows(Role::Viewer));
        assert!(!Role::Approver.allows(Role::Admin));
        assert!(!Role::Viewer.allows(Role::Approver));
        for role in [Role::Viewer, Role::Approver, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn principals_are_recorded_by_login_with_local_actions_marked() {
        assert_eq!(Principal::local("alice").recorded_as(), "alice (local)");
        let personal = Principal {
            person: Some("bob".into()),
            role: Role::Approver,
            via: Via::PersonalToken,
        };
        assert_eq!(personal.recorded_as(), "bob");
        let bootstrap = Principal {
            person: None,
            role: Role::Admin,
            via: Via::BootstrapToken,
        };
        assert_eq!(bootstrap.recorded_as(), "api-token");
        assert_eq!(login_of("alice (local)"), "alice");
        assert_eq!(login_of("bob"), "bob");
    }

    #[test]
    fn lifetimes_read_minutes_hours_days_and_weeks_and_refuse_the_rest() {
        assert_eq!(parse_lifetime("90d"), Ok(90 * 86_400));
        assert_eq!(parse_lifetime("12h"), Ok(12 * 3600));
        assert_eq!(parse_lifetime("2w"), Ok(14 * 86_400));
        assert_eq!(parse_lifetime("30m"), Ok(1800));
        for wrong in ["", "d", "90", "90y", "-1d", "0d"] {
            assert!(parse_lifetime(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn a_token_is_prefixed_hex_and_its_hash_is_stable_and_differs_from_it() {
        let token = token_text(&[7; 32]);
        assert!(token.starts_with("sluice_"));
        assert_eq!(token.len(), "sluice_".len() + 64);
        assert_eq!(token_sha256(&token), token_sha256(&token));
        assert_ne!(token_sha256(&token), token_sha256(&token_text(&[8; 32])));
        assert!(!token_sha256(&token).contains(&token[7..]));
    }
}
