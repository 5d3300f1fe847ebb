//! Team approvers as GitHub knows them: `@org/team` in `gates.approvers` is asked of
//! `GET /orgs/{org}/teams/{team}/memberships/{user}` each time a gate is decided, and only an
//! `active` membership counts (an invitation still `pending` does not). When GitHub cannot be
//! asked, the approval does not count this time and the gate says why; the next pass asks again.

use super::client::Method;
use super::error::ForgeError;
use super::publish::Forge;
use crate::deploy::gates::{Membership, TeamDirectory};
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;

/// The source named in the history for memberships GitHub decided.
pub const SOURCE: &str = "GitHub";

pub struct GithubTeams {
    pub forge: Arc<Forge>,
    /// The repositories sluice serves: with App authentication, the installation of one in the
    /// team's organisation answers for it.
    pub repositories: Vec<String>,
}

impl GithubTeams {
    fn repository_for(&self, org: &str) -> String {
        self.repositories
            .iter()
            .find(|repository| {
                repository
                    .split_once('/')
                    .is_some_and(|(owner, _)| owner.eq_ignore_ascii_case(org))
            })
            .or_else(|| self.repositories.first())
            .cloned()
            .unwrap_or_default()
    }
}

impl TeamDirectory for GithubTeams {
    fn membership<'a>(&'a self, team: &'a str, login: &'a str) -> BoxFuture<'a, Membership> {
        Box::pin(async move {
            let Some((org, slug)) = team.trim_start_matches('@').split_once('/') else {
                return Membership {
                    member: false,
                    source: SOURCE.to_owned(),
                    note: Some(format!("`{team}` is not `@org/team`")),
                };
            };
            let repository = self.repository_for(org);
            let answer = self
                .forge
                .client()
                .request(
                    &repository,
                    Method::Get,
                    &format!("/orgs/{org}/teams/{slug}/memberships/{login}"),
                    None,
                )
                .await;
            let (member, note) = match answer {
                Ok(response) => match response.body.get("state").and_then(Value::as_str) {
                    Some("active") => (true, None),
                    Some(state) => (false, Some(format!("membership {state}"))),
                    None => (
                        false,
                        Some("no membership state in GitHub's answer".to_owned()),
                    ),
                },
                Err(ForgeError::Status { status: 404, .. }) => {
                    (false, Some("not a member".to_owned()))
                }
                Err(error) => (false, Some(format!("GitHub did not answer ({error})"))),
            };
            Membership {
                member,
                source: SOURCE.to_owned(),
                note,
            }
        })
    }
}
