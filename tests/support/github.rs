//! A local fake of the GitHub REST API for tests that run a real `sluice serve`: it keeps state
//! (people's permissions, team memberships, pull requests, their reviews and commits, comments,
//! reactions, statuses) and answers the calls sluice makes, recording when each arrived. Built on
//! wiremock, running on its own threads, so blocking tests drive it without an async context.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A comment as the fake keeps it.
#[derive(Clone, Debug)]
pub struct FakeComment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub at: Instant,
}

#[derive(Default)]
pub struct GithubState {
    /// login -> `admin`, `write`, `read`, ...
    pub permissions: BTreeMap<String, String>,
    /// (`org/team`, login) -> `active` or `pending`.
    pub memberships: BTreeMap<(String, String), String>,
    pub pulls: BTreeMap<u64, Value>,
    pub reviews: BTreeMap<u64, Value>,
    pub commits: BTreeMap<u64, Value>,
    pub comments: Vec<FakeComment>,
    /// (comment id, content, when)
    pub reactions: Vec<(u64, String, Instant)>,
    /// (sha, status body)
    pub statuses: Vec<(String, Value)>,
    next_id: u64,
}

pub struct FakeGithub {
    pub server: MockServer,
    pub state: Arc<Mutex<GithubState>>,
    runtime: tokio::runtime::Runtime,
}

struct Responder(Arc<Mutex<GithubState>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let path = request.url.path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let method = request.method.to_string();
        let number = |text: &str| text.parse::<u64>().unwrap_or(0);
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["repos", _, _, "collaborators", user, "permission"]) => {
                let permission = state
                    .permissions
                    .get(*user)
                    .cloned()
                    .unwrap_or_else(|| "none".to_owned());
                ResponseTemplate::new(200).set_body_json(json!({
                    "permission": permission, "role_name": permission, "user": { "login": user }
                }))
            }
            ("GET", ["repos", _, _, "pulls", pull]) => match state.pulls.get(&number(pull)) {
                Some(document) => ResponseTemplate::new(200).set_body_json(document.clone()),
                None => not_found(),
            },
            ("GET", ["repos", _, _, "pulls", pull, "reviews"]) => ResponseTemplate::new(200)
                .set_body_json(
                    state
                        .reviews
                        .get(&number(pull))
                        .cloned()
                        .unwrap_or(json!([])),
                ),
            ("GET", ["repos", _, _, "pulls", pull, "commits"]) => ResponseTemplate::new(200)
                .set_body_json(
                    state
                        .commits
                        .get(&number(pull))
                        .cloned()
                        .unwrap_or(json!([])),
                ),
            ("GET", ["orgs", org, "teams", team, "memberships", user]) => {
                match state
                    .memberships
                    .get(&(format!("{org}/{team}"), (*user).to_owned()))
                {
                    Some(membership) => ResponseTemplate::new(200).set_body_json(json!({
                        "state": membership, "role": "member"
                    })),
                    None => not_found(),
                }
            }
            ("POST", ["repos", _, _, "issues", "comments", comment, "reactions"]) => {
                state.reactions.push((
                    number(comment),
                    body["content"].as_str().unwrap_or_default().to_owned(),
                    Instant::now(),
                ));
                ResponseTemplate::new(201).set_body_json(json!({ "id": 1 }))
            }
            ("GET", ["repos", _, _, "issues", issue, "comments"]) => {
                let page = request
                    .url
                    .query_pairs()
                    .find(|(key, _)| key == "page")
                    .map(|(_, value)| number(&value))
                    .unwrap_or(1);
                let listed: Vec<Value> = if page <= 1 {
                    state
                        .comments
                        .iter()
                        .filter(|comment| comment.issue == number(issue))
                        .map(|comment| json!({ "id": comment.id, "body": comment.body }))
                        .collect()
                } else {
                    Vec::new()
                };
                ResponseTemplate::new(200).set_body_json(Value::Array(listed))
            }
            ("POST", ["repos", _, _, "issues", issue, "comments"]) => {
                state.next_id += 1;
                let id = 5_000 + state.next_id;
                state.comments.push(FakeComment {
                    id,
                    issue: number(issue),
                    body: body["body"].as_str().unwrap_or_default().to_owned(),
                    at: Instant::now(),
                });
                ResponseTemplate::new(201).set_body_json(json!({ "id": id }))
            }
            ("PATCH", ["repos", _, _, "issues", "comments", comment]) => {
                let id = number(comment);
                if let Some(existing) = state.comments.iter_mut().find(|known| known.id == id) {
                    existing.body = body["body"].as_str().unwrap_or_default().to_owned();
                    existing.at = Instant::now();
                }
                ResponseTemplate::new(200).set_body_json(json!({ "id": id }))
            }
            ("DELETE", ["repos", _, _, "issues", "comments", comment]) => {
                let id = number(comment);
                state.comments.retain(|known| known.id != id);
                ResponseTemplate::new(204)
            }
            ("POST", ["repos", _, _, "statuses", sha]) => {
                state.statuses.push(((*sha).to_owned(), body));
                ResponseTemplate::new(201).set_body_json(json!({ "id": 1 }))
            }
            _ => not_found(),
        }
    }
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" }))
}

impl FakeGithub {
    pub fn start() -> FakeGithub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(GithubState::default()));
        let server = runtime.block_on(async {
            let server = MockServer::start().await;
            Mock::given(wiremock::matchers::any())
                .respond_with(Responder(state.clone()))
                .mount(&server)
                .await;
            server
        });
        FakeGithub {
            server,
            state,
            runtime,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn with<T>(&self, change: impl FnOnce(&mut GithubState) -> T) -> T {
        change(&mut self.state.lock().unwrap())
    }

    pub fn grant(&self, login: &str, permission: &str) {
        self.with(|state| {
            state
                .permissions
                .insert(login.to_owned(), permission.to_owned())
        });
    }

    pub fn set_membership(&self, team: &str, login: &str, membership: &str) {
        self.with(|state| {
            state
                .memberships
                .insert((team.to_owned(), login.to_owned()), membership.to_owned())
        });
    }

    /// Comments sluice posted on `issue`, oldest first.
    pub fn comments_on(&self, issue: u64) -> Vec<FakeComment> {
        self.with(|state| {
            state
                .comments
                .iter()
                .filter(|comment| comment.issue == issue)
                .cloned()
                .collect()
        })
    }

    /// sluice's answers (replies to commands) on `issue`, oldest first.
    pub fn answers_on(&self, issue: u64) -> Vec<FakeComment> {
        self.comments_on(issue)
            .into_iter()
            .filter(|comment| comment.body.contains("sluice:command-answer"))
            .collect()
    }

    /// Reactions to one comment, in order.
    pub fn reactions_to(&self, comment: u64) -> Vec<String> {
        self.with(|state| {
            state
                .reactions
                .iter()
                .filter(|(id, _, _)| *id == comment)
                .map(|(_, content, _)| content.clone())
                .collect()
        })
    }

    pub fn first_reaction_at(&self, comment: u64) -> Option<Instant> {
        self.with(|state| {
            state
                .reactions
                .iter()
                .find(|(id, _, _)| *id == comment)
                .map(|(_, _, at)| *at)
        })
    }

    /// Every request the fake received: (method, path).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.runtime
            .block_on(self.server.received_requests())
            .unwrap_or_default()
            .into_iter()
            .map(|request| (request.method.to_string(), request.url.path().to_owned()))
            .collect()
    }
}

/// A pull request as GitHub's API answers it, from the real `pull_request` payload: `number`
/// in `repository`, head `head_sha` on branch `head_ref`, base `main`, opened by `author`.
pub fn pull_request_document(
    repository: &str,
    number: u64,
    head_ref: &str,
    head_sha: &str,
    base_sha: &str,
    author: &str,
) -> Value {
    let mut document =
        crate::support::fixture("pull_request/opened.payload.json")["pull_request"].clone();
    document["number"] = json!(number);
    document["state"] = json!("open");
    document["merged"] = json!(false);
    document["mergeable"] = json!(true);
    document["merge_commit_sha"] = Value::Null;
    document["user"]["login"] = json!(author);
    document["head"]["ref"] = json!(head_ref);
    document["head"]["sha"] = json!(head_sha);
    document["head"]["repo"]["full_name"] = json!(repository);
    document["base"]["ref"] = json!("main");
    document["base"]["sha"] = json!(base_sha);
    document["base"]["repo"]["full_name"] = json!(repository);
    document
}

/// A `pull_request` webhook payload for `document` with `action`.
pub fn pull_request_payload(repository: &str, action: &str, document: &Value) -> Vec<u8> {
    let mut payload = crate::support::fixture("pull_request/opened.payload.json");
    payload["action"] = json!(action);
    payload["number"] = document["number"].clone();
    payload["pull_request"] = document.clone();
    payload["repository"]["full_name"] = json!(repository);
    serde_json::to_vec(&payload).unwrap()
}

/// An `issue_comment` `created` payload (the real one) with `body` by `login` on pull request
/// `number`; `comment_id` identifies it for reactions.
pub fn comment_payload(
    repository: &str,
    number: u64,
    comment_id: u64,
    login: &str,
    body: &str,
) -> Value {
    let mut payload = crate::support::fixture("issue_comment/created.payload.json");
    payload["issue"]["number"] = json!(number);
    payload["issue"]["pull_request"] = json!({
        "url": format!("https://api.github.com/repos/{repository}/pulls/{number}")
    });
    payload["comment"]["id"] = json!(comment_id);
    payload["comment"]["body"] = json!(body);
    payload["comment"]["user"]["login"] = json!(login);
    payload["comment"]["user"]["type"] = json!("User");
    payload["sender"]["login"] = json!(login);
    payload["repository"]["full_name"] = json!(repository);
    payload
}
