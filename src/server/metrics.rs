//! Prometheus text exposition: deliveries by event and outcome, the intake latency histogram,
//! runs and jobs by status and the queue depth (read from the store at scrape time).

use super::{ApiError, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the intake latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
pub struct Metrics {
    deliveries: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn observe_delivery(&self, event: &str, outcome: &'static str, elapsed: Duration) {
        // Events are GitHub's names; cap the label's length so a hostile header cannot bloat metrics.
        let event: String = event
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        if let Ok(mut deliveries) = self.deliveries.lock() {
            *deliveries.entry((event, outcome)).or_insert(0) += 1;
        }
        let seconds = elapsed.as_secs_f64();
        for (index, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[index].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    fn render_intake(&self, out: &mut String) {
        out.push_str("# HELP sluice_webhook_deliveries_total Webhook deliveries received, by event and outcome.\n");
        out.push_str("# TYPE sluice_webhook_deliveries_total counter\n");
        if let Ok(deliveries) = self.deliveries.lock() {
            for ((event, outcome), count) in deliveries.iter() {
                let _ = writeln!(
                    out,
                    "sluice_webhook_deliveries_total{{event=\"{event}\",outcome=\"{outcome}\"}} {count}"
                );
            }
        }
        out.push_str("# HELP sluice_webhook_intake_seconds Time from request to answer at the webhook endpoint.\n");
        out.push_str("# TYPE sluice_webhook_intake_seconds histogram\n");
        for (index, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let count = self.latency_buckets[index].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "sluice_webhook_intake_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let total = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "sluice_webhook_intake_seconds_bucket{{le=\"+Inf\"}} {total}"
        );
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0;
        let _ = writeln!(out, "sluice_webhook_intake_seconds_sum {sum}");
        let _ = writeln!(out, "sluice_webhook_intake_seconds_count {total}");
    }
}

pub async fn render(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::new();
    state.metrics.render_intake(&mut out);
    let store = state.store.clone();
    let stats = tokio::task::spawn_blocking(move || store.stats())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    out.push_str("# HELP sluice_runs Runs by status.\n# TYPE sluice_runs gauge\n");
    for (status, count) in &stats.runs_by_status {
        let _ = writeln!(out, "sluice_runs{{status=\"{status}\"}} {count}");
    }
    out.push_str("# HELP sluice_jobs Jobs by status.\n# TYPE sluice_jobs gauge\n");
    let mut queued_jobs = 0;
    for (status, count) in &stats.jobs_by_status {
        if *status == crate::model::Status::Queued {
            queued_jobs = *count;
        }
        let _ = writeln!(out, "sluice_jobs{{status=\"{status}\"}} {count}");
    }
    out.push_str("# HELP sluice_queue_depth Work waiting: deliveries not yet planned and jobs not yet started.\n");
    out.push_str("# TYPE sluice_queue_depth gauge\n");
    let _ = writeln!(
        out,
        "sluice_queue_depth{{queue=\"deliveries\"}} {}",
        stats.pending_deliveries
    );
    let _ = writeln!(out, "sluice_queue_depth{{queue=\"jobs\"}} {queued_jobs}");
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
