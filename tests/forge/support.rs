//! Shared pieces of the forge tests: the real webhook payloads, a forge pointed at a recording
//! fake of the GitHub API (with a token or as a GitHub App), runs built from payloads, and a
//! Markdown checker.

use chrono::TimeZone;
use serde_json::{Value, json};
use sluice::forge::{Forge, GithubAuth, GithubClient, RetryPolicy};
use sluice::model::{EventKind, JobRecord, Run, Status};
use sluice::store::{MemoryOutbox, Outbox};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const REPOSITORY: &str = "Codertocat/Hello-World";

pub fn payload(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github-webhooks")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("the webhook fixture exists"))
        .expect("fixtures are JSON")
}

pub fn forge(server: &MockServer) -> (Forge, Arc<MemoryOutbox>) {
    let outbox = Arc::new(MemoryOutbox::default());
    let client = GithubClient::new(&server.uri(), GithubAuth::Token("test-token".to_owned()))
        .expect("the client builds")
        .with_retry(RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(10),
            longest_wait: Duration::from_secs(5),
        });
    let forge = Forge::new(client, outbox.clone())
        .with_run_url_base(Some("https://sluice.example.com".to_owned()));
    (forge, outbox)
}

/// A forge authenticated as a GitHub App (the test-only key in `tests/fixtures/github-app`),
/// with the fake answering the installation of `REPOSITORY` and its access tokens.
pub async fn app_forge(server: &MockServer, outbox: Arc<dyn Outbox>) -> Forge {
    Mock::given(method("GET"))
        .and(path(format!("/repos/{REPOSITORY}/installation")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 4242})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/4242/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_installation_token",
            "expires_at": "2099-01-01T00:00:00Z",
            "permissions": {"checks": "write"}
        })))
        .mount(server)
        .await;
    let key = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/github-app/test-only-private-key.pem"),
    )
    .expect("the test key exists");
    let client = GithubClient::new(
        &server.uri(),
        GithubAuth::App {
            app_id: 1234,
            private_key_pem: key,
        },
    )
    .expect("the client builds")
    .with_retry(RetryPolicy {
        attempts: 2,
        first_backoff: Duration::from_millis(10),
        longest_wait: Duration::from_secs(5),
    });
    Forge::new(client, outbox).with_run_url_base(Some("https://sluice.example.com".to_owned()))
}

/// The requests about the repository's content, without the App's installation and tokens.
pub async fn repository_requests(server: &MockServer) -> Vec<(String, String, Value)> {
    requests(server)
        .await
        .into_iter()
        .filter(|(_, path, _)| {
            !path.starts_with("/app/") && *path != format!("/repos/{REPOSITORY}/installation")
        })
        .collect()
}

pub fn job(name: &str, status: Status, reason: Option<&str>) -> JobRecord {
    JobRecord {
        name: name.to_owned(),
        status,
        reason: reason.map(str::to_owned),
        needs: Vec::new(),
        started_at: None,
        finished_at: None,
        steps: Vec::new(),
        outputs: Default::default(),
    }
}

/// A finished run of pipeline `platform` for the pull request in a `pull_request` payload.
pub fn pull_request_run(payload: &Value, id: i64, jobs: Vec<JobRecord>) -> Run {
    Run {
        id,
        repository: payload["repository"]["full_name"]
            .as_str()
            .unwrap()
            .to_owned(),
        commit: payload["pull_request"]["head"]["sha"]
            .as_str()
            .unwrap()
            .to_owned(),
        git_ref: format!(
            "refs/heads/{}",
            payload["pull_request"]["head"]["ref"].as_str().unwrap()
        ),
        event: EventKind::PullRequest,
        pipeline: "platform".to_owned(),
        status: Status::Succeeded,
        reason: None,
        created_at: chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 14, 0, 0)
            .unwrap(),
        finished_at: Some(
            chrono::Utc
                .with_ymd_and_hms(2026, 11, 28, 14, 3, 0)
                .unwrap(),
        ),
        concurrency_group: None,
        delivery: None,
        jobs,
    }
}

/// A running run of pipeline `platform` for the commit of the real `push` payload.
pub fn push_run(jobs: Vec<JobRecord>) -> Run {
    let push = payload("push/payload.json");
    Run {
        id: 9,
        repository: push["repository"]["full_name"].as_str().unwrap().to_owned(),
        commit: push["after"].as_str().unwrap().to_owned(),
        git_ref: push["ref"].as_str().unwrap().to_owned(),
        event: EventKind::Push,
        pipeline: "platform".to_owned(),
        status: Status::Running,
        reason: None,
        created_at: chrono::Utc::now(),
        finished_at: None,
        concurrency_group: None,
        delivery: None,
        jobs,
    }
}

/// (method, path with query, JSON body or Null) of every request the fake received.
pub async fn requests(server: &MockServer) -> Vec<(String, String, Value)> {
    server
        .received_requests()
        .await
        .expect("requests are recorded")
        .into_iter()
        .map(|request| {
            let path = match request.url.query() {
                Some(query) => format!("{}?{query}", request.url.path()),
                None => request.url.path().to_owned(),
            };
            let body = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            (request.method.to_string(), path, body)
        })
        .collect()
}

/// Checks one comment body the way GitHub would read it: code fences balance (a fence closes
/// only with at least as many of its characters), `<details>` balance outside code, and outside
/// code there is no live mention, no HTML other than sluice's own `<details>`/`<summary>` and
/// the marker comments.
pub fn assert_harmless(body: &str) {
    let mut open_fence: Option<(char, usize)> = None;
    let mut details_depth: i64 = 0;
    for line in body.lines() {
        let trimmed = line.trim();
        let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let fence_length = fence_char
            .map(|c| trimmed.chars().take_while(|x| *x == c).count())
            .unwrap_or(0);
        match open_fence {
            Some((character, length)) => {
                if fence_char == Some(character)
                    && fence_length >= length
                    && trimmed.chars().all(|c| c == character)
                {
                    open_fence = None;
                }
                continue;
            }
            None if fence_length >= 3 => {
                open_fence = Some((fence_char.unwrap(), fence_length));
                continue;
            }
            None => {}
        }
        let mut rest = trimmed;
        while let Some(index) = rest.find('@') {
            let after = &rest[index + 1..];
            assert!(
                !after.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "a live mention outside code in line {line:?}"
            );
            rest = after;
        }
        let allowed = [
            "<details>",
            "</details>",
            "<summary>",
            "</summary>",
            "<!-- sluice:",
        ];
        let mut rest = trimmed;
        while let Some(index) = rest.find('<') {
            let tail = &rest[index..];
            assert!(
                allowed.iter().any(|tag| tail.starts_with(tag)),
                "HTML outside code in line {line:?}"
            );
            rest = &tail[1..];
        }
        details_depth += trimmed.matches("<details>").count() as i64;
        details_depth -= trimmed.matches("</details>").count() as i64;
        assert!(details_depth >= 0, "</details> without <details>");
    }
    assert!(open_fence.is_none(), "the body ends inside a code block");
    assert_eq!(details_depth, 0, "<details> left open");
}
