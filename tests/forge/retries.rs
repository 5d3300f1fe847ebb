//! GitHub failing: 5xx answers are retried, rate limits wait as long as GitHub says (measured),
//! and what still cannot be posted is kept in the outbox, never failing the run.

use super::support::{REPOSITORY, forge, requests};
use serde_json::json;
use sluice::forge::{CommitStatus, OutboxItem};
use sluice::store::Outbox;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const COMMIT: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
const STATUSES: &str =
    "/repos/Codertocat/Hello-World/statuses/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";

fn status_item() -> OutboxItem {
    OutboxItem::Status {
        repository: REPOSITORY.to_owned(),
        commit: COMMIT.to_owned(),
        status: CommitStatus {
            state: "success".to_owned(),
            context: "sluice/platform/build".to_owned(),
            description: "succeeded".to_owned(),
            target_url: None,
        },
    }
}

/// Answers from a list in turn (the last one repeats) and notes when each request came.
struct Sequence {
    answers: Vec<ResponseTemplate>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Respond for Sequence {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let mut arrivals = self.arrivals.lock().unwrap();
        arrivals.push(Instant::now());
        let index = (arrivals.len() - 1).min(self.answers.len() - 1);
        self.answers[index].clone()
    }
}

async fn mount_sequence(
    server: &MockServer,
    answers: Vec<ResponseTemplate>,
) -> Arc<Mutex<Vec<Instant>>> {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path(STATUSES))
        .respond_with(Sequence {
            answers,
            arrivals: arrivals.clone(),
        })
        .mount(server)
        .await;
    arrivals
}

#[tokio::test]
async fn a_502_then_a_201_is_retried_and_succeeds() {
    let server = MockServer::start().await;
    let (forge, outbox) = forge(&server);
    mount_sequence(
        &server,
        vec![
            ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"),
            ResponseTemplate::new(201).set_body_json(json!({"id": 1})),
        ],
    )
    .await;
    assert!(forge.send(status_item()).await);
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1], "the same request is sent again");
    assert!(outbox.pending().unwrap().is_empty());
}

#[tokio::test]
async fn a_rate_limit_answer_waits_as_long_as_retry_after_says() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    let arrivals = mount_sequence(
        &server,
        vec![
            ResponseTemplate::new(403)
                .insert_header("retry-after", "1")
                .insert_header("x-ratelimit-remaining", "0")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit."})),
            ResponseTemplate::new(201).set_body_json(json!({"id": 1})),
        ],
    )
    .await;
    assert!(forge.send(status_item()).await);
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2);
    let waited = arrivals[1] - arrivals[0];
    assert!(
        waited >= Duration::from_secs(1),
        "retried after only {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "waited far too long: {waited:?}"
    );
}

#[tokio::test]
async fn a_429_with_a_reset_time_waits_until_then() {
    let server = MockServer::start().await;
    let (forge, _outbox) = forge(&server);
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let arrivals = mount_sequence(
        &server,
        vec![
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str()),
            ResponseTemplate::new(201).set_body_json(json!({"id": 1})),
        ],
    )
    .await;
    assert!(forge.send(status_item()).await);
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2);
    assert!(arrivals[1] - arrivals[0] >= Duration::from_secs(1));
}

#[tokio::test]
async fn what_github_never_takes_is_kept_and_delivered_later() {
    let server = MockServer::start().await;
    let (forge, outbox) = forge(&server);
    mount_sequence(&server, vec![ResponseTemplate::new(503)]).await;
    assert!(
        !forge.send(status_item()).await,
        "the send reports it was not delivered"
    );
    let kept = outbox.pending().unwrap();
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0].last_error.as_deref().unwrap().contains("503"),
        "{kept:?}"
    );
    assert_eq!(
        requests(&server).await.len(),
        3,
        "three tries before keeping it"
    );

    // GitHub is back; nothing is due yet, then it is.
    server.reset().await;
    mount_sequence(
        &server,
        vec![ResponseTemplate::new(201).set_body_json(json!({"id": 1}))],
    )
    .await;
    assert_eq!(forge.retry_outbox_at(chrono::Utc::now()).await, 0);
    let later = chrono::Utc::now() + chrono::Duration::minutes(5);
    assert_eq!(forge.retry_outbox_at(later).await, 1);
    assert!(outbox.pending().unwrap().is_empty());
    assert_eq!(requests(&server).await.len(), 1);
}
