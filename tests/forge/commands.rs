//! Comment commands from real `issue_comment` payloads: permission checks, fork refusal, apply
//! requirements, help for unknown commands; the work goes to a recording `CommandHandler`.

use super::support::{REPOSITORY, forge, payload, requests};
use serde_json::{Value, json};
use sluice::forge::commands::{
    CommandHandler, CommandOutcome, CommandRequest, CommandResult, comment_event, handle_comment,
};
use sluice::model::{Delivery, EventKind};
use sluice::scheduler::{EventRequest, StoredPlan, event_from_delivery};
use sluice::terraform::ApplyRequirement;
use std::sync::Mutex;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Records every call; answers `ok`.
#[derive(Default)]
struct Recording {
    calls: Mutex<Vec<String>>,
    requirements: Vec<ApplyRequirement>,
}

impl Recording {
    fn record(&self, call: String) -> CommandResult {
        self.calls.lock().unwrap().push(call);
        Ok("done".to_owned())
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl CommandHandler for Recording {
    async fn plan(&self, request: &CommandRequest, environment: Option<&str>) -> CommandResult {
        self.record(format!(
            "plan {environment:?} at {} fork={}",
            request.state.head_sha, request.state.from_fork
        ))
    }
    async fn apply(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
        approved: bool,
    ) -> CommandResult {
        self.record(format!(
            "apply {environment:?} at {} approved={approved} mergeable={:?}",
            request.state.head_sha, request.state.mergeable
        ))
    }
    async fn approve(
        &self,
        _request: &CommandRequest,
        environment: &str,
        release: Option<&str>,
    ) -> CommandResult {
        self.record(format!("approve {environment} {release:?}"))
    }
    async fn unlock(&self, _request: &CommandRequest, environment: Option<&str>) -> CommandResult {
        self.record(format!("unlock {environment:?}"))
    }
    async fn run(&self, request: &CommandRequest) -> CommandResult {
        self.record(format!("run by {}", request.commenter))
    }
    async fn apply_requirements(
        &self,
        _request: &CommandRequest,
        _environment: Option<&str>,
    ) -> Vec<ApplyRequirement> {
        self.requirements.clone()
    }
}

/// The real `issue_comment` payload, as a comment on pull request 2 saying `body`.
fn comment_payload(body: &str) -> Value {
    let mut comment = payload("issue_comment/created.payload.json");
    comment["issue"]["number"] = json!(2);
    comment["issue"]["pull_request"] = json!({
        "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/2"
    });
    comment["comment"]["body"] = json!(body);
    comment
}

/// The pull request as the API answers it, from the real `pull_request` payload.
fn pull_request(from_fork: bool, mergeable: bool) -> Value {
    let mut pull_request = payload("pull_request/opened.payload.json")["pull_request"].clone();
    if from_fork {
        pull_request["head"]["repo"]["full_name"] = json!("attacker/Hello-World");
        pull_request["head"]["repo"]["fork"] = json!(true);
    }
    pull_request["mergeable"] = json!(mergeable);
    pull_request
}

async fn mount_github(server: &MockServer, permission: &str, pull: Value, reviews: Value) {
    Mock::given(method("POST"))
        .and(path(
            "/repos/Codertocat/Hello-World/issues/comments/492700400/reactions",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/repos/Codertocat/Hello-World/collaborators/Codertocat/permission",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "permission": permission, "role_name": permission, "user": {"login": "Codertocat"}
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/pulls/2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pull))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/pulls/2/reviews"))
        .respond_with(ResponseTemplate::new(200).set_body_json(reviews))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/Codertocat/Hello-World/issues/2/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 900})))
        .mount(server)
        .await;
}

fn answers(sent: &[(String, String, Value)]) -> Vec<String> {
    sent.iter()
        .filter(|(verb, path, _)| verb == "POST" && path.ends_with("/issues/2/comments"))
        .map(|(_, _, body)| body["body"].as_str().unwrap().to_owned())
        .collect()
}

fn reactions(sent: &[(String, String, Value)]) -> Vec<String> {
    sent.iter()
        .filter(|(_, path, _)| path.ends_with("/reactions"))
        .map(|(_, _, body)| body["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_commenter_without_write_permission_is_refused() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    mount_github(&server, "read", pull_request(false, true), json!([])).await;
    let handler = Recording::default();
    let event = comment_event(&comment_payload("/sluice apply dev")).expect("a command comment");
    let outcome = handle_comment(&forge, &handler, &event).await.unwrap();
    assert!(matches!(outcome, CommandOutcome::Refused(_)), "{outcome:?}");
    assert!(handler.calls().is_empty(), "{:?}", handler.calls());
    let sent = requests(&server).await;
    assert_eq!(reactions(&sent), vec!["eyes", "-1"]);
    let answers = answers(&sent);
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0].contains(
            "has `read` permission on this repository; sluice commands need write permission"
        ),
        "{}",
        answers[0]
    );
    assert!(
        !sent.iter().any(|(_, path, _)| path.contains("/pulls/")),
        "nothing else is asked once refused"
    );
}

#[tokio::test]
async fn a_writer_s_apply_reaches_the_handler_with_github_s_review_verdict() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    let approved = json!([
        {"user": {"login": "reviewer"}, "state": "CHANGES_REQUESTED"},
        {"user": {"login": "reviewer"}, "state": "APPROVED"}
    ]);
    mount_github(&server, "write", pull_request(false, true), approved).await;
    let handler = Recording {
        requirements: vec![ApplyRequirement::Approved, ApplyRequirement::Mergeable],
        ..Recording::default()
    };
    let event = comment_event(&comment_payload("/sluice apply dev")).unwrap();
    let outcome = handle_comment(&forge, &handler, &event).await.unwrap();
    assert_eq!(outcome, CommandOutcome::Done("done".to_owned()));
    assert_eq!(
        handler.calls(),
        vec![
            "apply Some(\"dev\") at ec26c3e57ca3a959ca5aad62de7213c562f8c821 approved=true mergeable=Some(true)"
        ]
    );
    let sent = requests(&server).await;
    assert_eq!(reactions(&sent), vec!["eyes", "rocket"]);
    assert_eq!(
        answers(&sent),
        vec!["<!-- sluice:command-answer -->\n`/sluice apply` by @Codertocat: done\n"]
    );
}

#[tokio::test]
async fn the_handler_is_told_the_pull_request_is_not_approved_and_not_mergeable() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    mount_github(&server, "admin", pull_request(false, false), json!([])).await;
    let handler = Recording {
        requirements: vec![ApplyRequirement::Approved, ApplyRequirement::Mergeable],
        ..Recording::default()
    };
    let event = comment_event(&comment_payload("/sluice apply")).unwrap();
    handle_comment(&forge, &handler, &event).await.unwrap();
    assert_eq!(
        handler.calls(),
        vec![
            "apply None at ec26c3e57ca3a959ca5aad62de7213c562f8c821 approved=false mergeable=Some(false)"
        ]
    );
    // Without an `approved` requirement GitHub's reviews are not asked for.
    server.reset().await;
    mount_github(&server, "admin", pull_request(false, true), json!([])).await;
    let handler = Recording::default();
    handle_comment(&forge, &handler, &event).await.unwrap();
    let sent = requests(&server).await;
    assert!(
        !sent.iter().any(|(_, path, _)| path.contains("/reviews")),
        "{sent:?}"
    );
}

#[tokio::test]
async fn an_unknown_command_gets_the_help_text_and_an_ordinary_comment_nothing() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    mount_github(&server, "write", pull_request(false, true), json!([])).await;
    let handler = Recording::default();
    let event = comment_event(&comment_payload("/sluice destroy everything")).unwrap();
    assert_eq!(
        handle_comment(&forge, &handler, &event).await.unwrap(),
        CommandOutcome::Help
    );
    let sent = requests(&server).await;
    assert_eq!(reactions(&sent), vec!["confused"]);
    assert!(answers(&sent)[0].contains("/sluice plan [ENV]"));

    server.reset().await;
    let ordinary = comment_event(&comment_payload("You are totally right!")).unwrap();
    assert_eq!(
        handle_comment(&forge, &handler, &ordinary).await.unwrap(),
        CommandOutcome::Ignored
    );
    assert!(requests(&server).await.is_empty());
    // The real payload is a comment on an issue, not a pull request: not a command at all.
    assert_eq!(
        comment_event(&payload("issue_comment/created.payload.json")),
        None
    );
}

#[tokio::test]
async fn a_fork_pull_request_gets_no_secrets_and_no_apply() {
    // Planning: the real `pull_request` payload, its head moved to a fork.
    let mut opened = payload("pull_request/opened.payload.json");
    opened["pull_request"]["head"]["repo"]["full_name"] = json!("attacker/Hello-World");
    let delivery = Delivery {
        id: "fork-1".to_owned(),
        event: "pull_request".to_owned(),
        repository: Some(REPOSITORY.to_owned()),
        payload: serde_json::to_vec(&opened).unwrap(),
        received_at: chrono::Utc::now(),
    };
    let request = event_from_delivery(&delivery).unwrap();
    assert!(
        matches!(
            request,
            EventRequest::PullRequest {
                from_fork: true,
                ..
            }
        ),
        "{request:?}"
    );
    let event = sluice::model::Event {
        kind: EventKind::PullRequest,
        repository: REPOSITORY.to_owned(),
        git_ref: "refs/heads/changes".to_owned(),
        commit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821".to_owned(),
        before: None,
        base_branch: Some("master".to_owned()),
        action: Some("opened".to_owned()),
        pull_request: Some(2),
        actor: Some("Codertocat".to_owned()),
        changed_paths: None,
    };
    let files = vec![sluice::config::SourceFile {
        path: "workflows/platform.yaml".to_owned(),
        contents: b"name: platform\non:\n  pull_request: {}\njobs:\n  plan:\n    steps:\n      - run: echo ${{ secrets.TOKEN }}\n".to_vec(),
    }];
    let trust = if request.is_from_fork() {
        sluice::model::TrustLevel::Untrusted
    } else {
        sluice::model::TrustLevel::Member
    };
    let runs = sluice::scheduler::plan_runs_for(&files, &event, trust, None);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let plan: StoredPlan = serde_json::from_str(&runs[0].plan).unwrap();
    let secrets = std::collections::BTreeMap::from([("TOKEN".to_owned(), "s3cret".to_owned())]);
    assert_eq!(plan.trust, sluice::model::TrustLevel::Untrusted);
    let mut settings = sluice::scheduler::EngineSettings::new(std::env::temp_dir());
    settings.secrets = secrets;
    assert!(settings.secrets_for_run(plan.trust).is_empty());
    // A new push to the pull request cancels the previous run of the pipeline.
    let concurrency = plan
        .run
        .concurrency
        .expect("a pull request's run is superseded by the next");
    assert!(concurrency.cancel_in_progress);
    assert_eq!(
        concurrency.group,
        "pull_request:Codertocat/Hello-World#2:platform"
    );

    // Applying: refused even for an admin, and the handler never hears of it.
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    mount_github(&server, "admin", pull_request(true, true), json!([])).await;
    let handler = Recording::default();
    let comment = comment_event(&comment_payload("/sluice apply dev")).unwrap();
    let outcome = handle_comment(&forge, &handler, &comment).await.unwrap();
    assert!(handler.calls().is_empty(), "{:?}", handler.calls());
    let CommandOutcome::Refused(message) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(message.contains("fork"), "{message}");
    // Planning a fork's pull request is allowed; the handler is told it is a fork.
    let plan_comment = comment_event(&comment_payload("/sluice plan")).unwrap();
    handle_comment(&forge, &handler, &plan_comment)
        .await
        .unwrap();
    assert_eq!(
        handler.calls(),
        vec!["plan None at ec26c3e57ca3a959ca5aad62de7213c562f8c821 fork=true"]
    );
}
