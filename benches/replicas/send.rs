//! The load: `deliveries` signed `push` deliveries, each with its own `X-GitHub-Delivery`, sent
//! from `clients` threads, each a closed loop over its own keep-alive connections; delivery `i`
//! goes to replica `i % replicas`, so the replicas share the load in turn with no balancer.

use std::time::{Duration, Instant};

pub struct Load<'a> {
    pub replica_urls: &'a [String],
    pub body: &'a [u8],
    pub signature: &'a str,
    pub delivery_prefix: &'a str,
    pub deliveries: usize,
    pub clients: usize,
}

pub struct Sent {
    /// Each accepted delivery's time from sending its request to reading the 202.
    pub latencies: Vec<Duration>,
    /// Answers other than 202, and failed requests, with what they said (at most a few kept).
    pub refused: usize,
    pub refusals: Vec<String>,
    /// From the first request to the last 202.
    pub sending_period: Duration,
}

/// The delivery id of delivery `index`.
pub fn delivery_id(prefix: &str, index: usize) -> String {
    format!("{prefix}-{index}")
}

pub fn send(load: &Load, started: Instant) -> Sent {
    let lanes: Vec<(Vec<Duration>, Vec<String>, Option<Instant>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..load.clients)
            .map(|lane| scope.spawn(move || send_lane(load, lane)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a sending thread panicked"))
            .collect()
    });
    let mut latencies = Vec::new();
    let mut refusals = Vec::new();
    let mut last_accepted = started;
    for (lane_latencies, lane_refusals, lane_last) in lanes {
        latencies.extend(lane_latencies);
        refusals.extend(lane_refusals);
        if let Some(lane_last) = lane_last {
            last_accepted = last_accepted.max(lane_last);
        }
    }
    let refused = refusals.len();
    refusals.truncate(5);
    Sent {
        latencies,
        refused,
        refusals,
        sending_period: last_accepted - started,
    }
}

fn send_lane(load: &Load, lane: usize) -> (Vec<Duration>, Vec<String>, Option<Instant>) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client");
    let mut latencies = Vec::new();
    let mut refusals = Vec::new();
    let mut last_accepted = None;
    for index in (lane..load.deliveries).step_by(load.clients) {
        let replica = &load.replica_urls[index % load.replica_urls.len()];
        let delivery = delivery_id(load.delivery_prefix, index);
        let sent_at = Instant::now();
        let answer = client
            .post(format!("{replica}/webhooks/github"))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", &delivery)
            .header("x-hub-signature-256", load.signature)
            .body(load.body.to_vec())
            .send()
            .and_then(|response| {
                let status = response.status().as_u16();
                response.text().map(|text| (status, text))
            });
        match answer {
            Ok((202, _)) => {
                let answered_at = Instant::now();
                latencies.push(answered_at - sent_at);
                last_accepted = Some(answered_at);
            }
            Ok((status, text)) => {
                refusals.push(format!("{delivery} to {replica}: {status} {text}"))
            }
            Err(error) => refusals.push(format!("{delivery} to {replica}: {error}")),
        }
    }
    (latencies, refusals, last_accepted)
}
