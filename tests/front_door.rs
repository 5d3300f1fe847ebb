//! The webhook server under abuse, end to end with a real `sluice serve` process: made-up event
//! names cannot grow `/metrics`, many large forged bodies at once cannot exhaust memory, payloads
//! that can never be planned do not hold good deliveries back, deeply nested JSON is refused
//! before it is stored, slow clients are disconnected, and the promotion API checks its token
//! before it looks at the body.

#[path = "support/abuse.rs"]
mod abuse;
mod support;

use abuse::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::*;

/// Tests that measure time or memory run one at a time, so they do not measure each other.
static MEASURING: Mutex<()> = Mutex::new(());

fn measuring() -> std::sync::MutexGuard<'static, ()> {
    MEASURING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const PIPELINE: &str = r#"
name: ci
on:
  push:
    branches: [main]
jobs:
  test:
    steps:
      - run: echo "testing $SLUICE_SHA"
"#;

fn repo_with_pipeline() -> (TestRepo, String) {
    let repo = TestRepo::new();
    let first = repo.commit(&[("workflows/ci.yaml", PIPELINE)], "first");
    (repo, first)
}

fn metrics(server: &Server) -> String {
    http()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

fn queued_deliveries(server: &Server) -> String {
    metrics(server)
        .lines()
        .find(|line| line.starts_with("sluice_queue_depth{queue=\"deliveries\"}"))
        .unwrap()
        .to_owned()
}

#[test]
fn five_thousand_made_up_event_names_leave_metrics_small() {
    let _measuring = measuring();
    let (repo, _) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    let url = server.url("/webhooks/github");
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let client = http();
                for _ in 0..1250 {
                    let event = format!("evt-{:016x}", rand::random::<u64>());
                    let response = client
                        .post(&url)
                        .header("x-github-event", event)
                        .header("x-github-delivery", "unsigned")
                        .body("{}")
                        .send()
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 401);
                }
            });
        }
    });
    let text = metrics(&server);
    println!("/metrics after 5,000 made-up events: {} bytes", text.len());
    assert!(text.len() < 50 * 1024, "{} bytes:\n{text}", text.len());
    assert!(
        text.contains(
            "sluice_webhook_deliveries_total{event=\"other\",outcome=\"bad_signature\"} 5000"
        ),
        "{text}"
    );
}

#[test]
fn forty_forged_24_mib_uploads_at_once_keep_memory_bounded() {
    let _measuring = measuring();
    let (repo, _) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    let body = bytes::Bytes::from(vec![b'x'; 24 * 1024 * 1024]);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let uploads: Vec<_> = (0..40)
            .map(|index| {
                let body = body.clone();
                let url = server.url("/webhooks/github");
                scope.spawn(move || {
                    let response = http()
                        .post(url)
                        .header("content-type", "application/json")
                        .header("x-github-event", "push")
                        .header("x-github-delivery", format!("forged-{index}"))
                        .header("x-hub-signature-256", forged_signature())
                        .body(body)
                        .send()
                        .unwrap_or_else(|error| panic!("upload {index} got no answer: {error}"));
                    response.status().as_u16()
                })
            })
            .collect();
        uploads
            .into_iter()
            .map(|upload| upload.join().unwrap())
            .collect()
    });
    let peak = peak_rss_bytes(server.child.id());
    let refused_busy = statuses.iter().filter(|status| **status == 503).count();
    println!(
        "peak RSS {} MiB; {refused_busy} of 40 uploads answered 503",
        peak / (1024 * 1024)
    );
    assert!(
        statuses
            .iter()
            .all(|status| *status == 401 || *status == 503),
        "{statuses:?}"
    );
    // Some bodies were read whole and checked; the budget did not refuse everything.
    assert!(statuses.contains(&401), "{statuses:?}");
    assert!(
        peak < 400 * 1024 * 1024,
        "peak RSS {} MiB",
        peak / (1024 * 1024)
    );
    let health = http().get(server.url("/healthz")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[test]
fn pushes_that_can_never_be_planned_do_not_hold_a_good_push_back() {
    let _measuring = measuring();
    let (repo, first) = repo_with_pipeline();
    let second = repo.commit(&[("src/app.py", "print('v2')\n")], "change");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    for index in 0..3 {
        let mut poison: serde_json::Value =
            serde_json::from_slice(&push_payload("main", &first, &second)).unwrap();
        poison.as_object_mut().unwrap().remove("after");
        let body = serde_json::to_vec(&poison).unwrap();
        let (status, text) = deliver(&server, "push", &format!("poison-{index}"), &body);
        assert_eq!(status, 202, "{text}");
    }
    let (status, text) = deliver(
        &server,
        "push",
        "good-1",
        &push_payload("main", &first, &second),
    );
    assert_eq!(status, 202, "{text}");
    let accepted = Instant::now();
    let runs = wait_for("the good push's run", Duration::from_secs(30), || {
        let runs = server.runs(&format!("?commit={second}"));
        (!runs.is_empty()).then_some(runs)
    });
    let planned_after = accepted.elapsed();
    println!("the good push was planned {planned_after:?} after it was accepted");
    assert!(
        planned_after < Duration::from_secs(3),
        "planned only after {planned_after:?}"
    );
    assert_eq!(runs.len(), 1);
    // The poison pushes were recorded as errors at once: nothing is left waiting.
    assert_eq!(
        queued_deliveries(&server),
        "sluice_queue_depth{queue=\"deliveries\"} 0"
    );
}

#[test]
fn a_body_nested_a_hundred_thousand_levels_deep_is_refused_and_not_stored() {
    let (repo, first) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), repo.path());
    let nested = format!(
        r#"{{"repository": {{"full_name": "{REPOSITORY}"}}, "deep": {}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, text) = deliver(&server, "push", "deep-1", nested.as_bytes());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("deeper than 128 levels"), "{text}");
    assert_eq!(
        queued_deliveries(&server),
        "sluice_queue_depth{queue=\"deliveries\"} 0"
    );
    // Nothing was stored: the same delivery id with a good body is new (202, not 200).
    let body = push_payload("main", &"0".repeat(40), &first);
    assert_eq!(deliver(&server, "push", "deep-1", &body).0, 202);
}

#[test]
fn a_client_that_stalls_in_its_headers_is_disconnected_after_the_header_timeout() {
    let (repo, _) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let config = server_config(data.path(), "webhook:\n  header-timeout: 1s\n");
    let server = Server::start_with(
        data.path(),
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &["--config", config.to_str().unwrap()],
    );
    let stalled = send_and_stall(
        &socket_address(&server.base_url),
        b"POST /webhooks/github HTTP/1.1\r\nHost: localhost\r\nX-GitHub-Ev",
        Duration::from_secs(10),
    );
    println!("closed {:?} after the last byte", stalled.closed_after);
    assert!(
        stalled.closed_after < Duration::from_secs(3),
        "{:?}",
        stalled.closed_after
    );
    assert!(!stalled.answer.contains("HTTP/1.1 2"), "{}", stalled.answer);
    // The server itself is fine.
    let health = http().get(server.url("/healthz")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[test]
fn a_body_that_stops_arriving_is_answered_408_after_the_body_timeout() {
    let (repo, _) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let config = server_config(data.path(), "webhook:\n  body-timeout: 1s\n");
    let server = Server::start_with(
        data.path(),
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &["--config", config.to_str().unwrap()],
    );
    let request = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: localhost\r\nX-GitHub-Event: push\r\n\
         X-GitHub-Delivery: slow-1\r\nX-Hub-Signature-256: {}\r\nContent-Length: 1000\r\n\r\n{{\"ref\":",
        forged_signature()
    );
    let stalled = send_and_stall(
        &socket_address(&server.base_url),
        request.as_bytes(),
        Duration::from_secs(10),
    );
    assert!(
        stalled.answer.starts_with("HTTP/1.1 408"),
        "{}",
        stalled.answer
    );
    assert!(
        stalled.closed_after < Duration::from_secs(3),
        "{:?}",
        stalled.closed_after
    );
}

#[test]
fn the_promotion_api_answers_a_wrong_token_with_401_before_reading_a_malformed_body() {
    let (repo, _) = repo_with_pipeline();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(
        data.path(),
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &[],
        &[("SLUICE_API_TOKEN", std::path::Path::new("the-right-token"))],
    );
    let url = server.url("/api/environments/production/promote");
    let wrong = http()
        .post(&url)
        .header("authorization", "Bearer not-the-token")
        .header("content-type", "application/json")
        .body("{\"actor\": ")
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.text().unwrap().contains("bearer token"));
    // With the right token the same body is what is wrong.
    let right = http()
        .post(&url)
        .header("authorization", "Bearer the-right-token")
        .header("content-type", "application/json")
        .body("{\"actor\": ")
        .send()
        .unwrap();
    assert_eq!(right.status().as_u16(), 400);
}
