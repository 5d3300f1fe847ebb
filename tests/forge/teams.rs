//! Team approvers as GitHub answers for them: the gate counts an approval only while
//! `GET /orgs/{org}/teams/{team}/memberships/{user}` says `active`, and says which source decided
//! and why it did not count.

use super::support::forge;
use serde_json::json;
use sluice::config::environment::Environment;
use sluice::deploy::Release;
use sluice::deploy::gates::{self, GateInput};
use sluice::forge::teams::GithubTeams;
use std::sync::Arc;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn membership(server: &MockServer, login: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(format!(
            "/orgs/example/teams/leads/memberships/{login}"
        )))
        .respond_with(answer)
        .mount(server)
        .await;
}

fn state(state: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "state": state, "role": "member" }))
}

async fn approval_gate(teams: &GithubTeams, approver: &str) -> gates::GateDecision {
    let environment: Environment = serde_json::from_value(json!({
        "name": "production",
        "gates": { "approvals": 1, "approvers": ["@example/leads"] }
    }))
    .unwrap();
    let release: Release = serde_json::from_value(json!({
        "id": "r4-0123456789ab", "repository": "Codertocat/Hello-World",
        "commit": "0123456789abcdef", "branch": "main", "author": "alice",
        "created_at": 0, "sequence": 4
    }))
    .unwrap();
    let approvals = vec![approver.to_owned()];
    let memberships = gates::resolve_memberships(&environment, &approvals, teams).await;
    gates::evaluate(&GateInput {
        environment: &environment,
        release: &release,
        previous_healthy_since: None,
        approvals: &approvals,
        memberships: &memberships,
        now: chrono::Utc::now(),
    })
    .remove(0)
}

#[tokio::test]
async fn only_an_active_membership_counts_and_the_gate_says_github_decided() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    let teams = GithubTeams {
        forge: Arc::new(forge),
        repositories: vec!["Codertocat/Hello-World".to_owned()],
    };
    membership(&server, "carol", state("active")).await;
    membership(&server, "dave", state("pending")).await;
    membership(&server, "frank", ResponseTemplate::new(502)).await;

    let carol = approval_gate(&teams, "carol").await;
    assert!(carol.passed, "{}", carol.reason);
    assert!(
        carol.reason.contains("carol (@example/leads, per GitHub)"),
        "{}",
        carol.reason
    );
    let dave = approval_gate(&teams, "dave").await;
    assert!(!dave.passed);
    assert!(
        dave.reason
            .contains("@example/leads: membership pending, per GitHub"),
        "{}",
        dave.reason
    );
    // Not in the team at all: GitHub answers 404.
    let erin = approval_gate(&teams, "erin").await;
    assert!(!erin.passed);
    assert!(
        erin.reason.contains("not a member, per GitHub"),
        "{}",
        erin.reason
    );
    // GitHub failing is never taken for a yes.
    let frank = approval_gate(&teams, "frank").await;
    assert!(!frank.passed);
    assert!(
        frank.reason.contains("GitHub did not answer"),
        "{}",
        frank.reason
    );

    // Carol's membership goes back to pending: the next decision no longer counts her.
    server.reset().await;
    membership(&server, "carol", state("pending")).await;
    let later = approval_gate(&teams, "carol").await;
    assert!(!later.passed, "{}", later.reason);
}
