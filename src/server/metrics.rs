//! Prometheus text exposition: deliveries by event and outcome, the intake latency histogram,
//! runs and jobs by status and the queue depth (read from the store at scrape time). Every label
//! comes from a fixed set, so what clients send can never add series.

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

/// The GitHub events counted under their own name; every other `X-GitHub-Event` is `other`.
const KNOWN_EVENTS: [&str; 16] = [
    "check_run",
    "check_suite",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "installation",
    "issue_comment",
    "ping",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "push",
    "release",
    "status",
    "workflow_run",
];

/// The `event` label for an `X-GitHub-Event` header: a known event's name, `other` for any other
/// value, `unknown` when the header is missing or empty.
pub fn event_label(header: Option<&str>) -> &'static str {
    match header {
        None | Some("") => "unknown",
        Some(event) => KNOWN_EVENTS
            .iter()
            .find(|known| **known == event)
            .copied()
            .unwrap_or("other"),
    }
}

#[derive(Default)]
pub struct Metrics {
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Counts one answer at the webhook endpoint; `event` is the `X-GitHub-Event` header as sent.
    pub fn observe_delivery(&self, event: Option<&str>, outcome: &'static str, elapsed: Duration) {
        let event = event_label(event);
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
    let deploy_store = state.deploy_store.clone();
    let drift = tokio::task::spawn_blocking(move || {
        crate::deploy::drift::view(deploy_store.as_ref(), None, None)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    render_drift(&drift, &mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

/// One series per environment and domain that was checked: environments and domains come from
/// the default branch's configuration, a bounded set. A check that could not run keeps the objects
/// found before and says so in `sluice_drift_check_up`.
fn render_drift(views: &[crate::deploy::drift::EnvironmentView], out: &mut String) {
    let series = |view: &crate::deploy::drift::EnvironmentView, domain: &str| {
        format!(
            "repository=\"{}\",environment=\"{}\",domain=\"{}\"",
            label(&view.repository),
            label(&view.environment),
            label(domain)
        )
    };
    out.push_str(
        "# HELP sluice_drift_objects Objects that differ from the release the environment runs.\n",
    );
    out.push_str("# TYPE sluice_drift_objects gauge\n");
    for view in views {
        for domain in &view.domains {
            let labels = series(view, &domain.domain);
            let _ = writeln!(
                out,
                "sluice_drift_objects{{{labels}}} {}",
                domain.drift.len()
            );
        }
    }
    out.push_str("# HELP sluice_drift_check_up Whether the last drift check of the domain could reach its system (0: could not check).\n");
    out.push_str("# TYPE sluice_drift_check_up gauge\n");
    for view in views {
        for domain in &view.domains {
            let up = u8::from(domain.outcome != crate::store::CheckOutcome::CouldNotCheck);
            let labels = series(view, &domain.domain);
            let _ = writeln!(out, "sluice_drift_check_up{{{labels}}} {up}");
        }
    }
}

/// A label value as the exposition format wants it.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_events_keep_their_name_and_everything_else_is_other_or_unknown() {
        for event in [
            "push",
            "pull_request",
            "issue_comment",
            "ping",
            "check_run",
            "delete",
        ] {
            assert_eq!(event_label(Some(event)), event);
        }
        assert_eq!(event_label(Some("Push")), "other");
        assert_eq!(event_label(Some("push ")), "other");
        assert_eq!(event_label(Some("x9f2k1q")), "other");
        assert_eq!(event_label(None), "unknown");
        assert_eq!(event_label(Some("")), "unknown");
    }

    #[test]
    fn a_thousand_different_event_headers_add_one_series_per_outcome() {
        let metrics = Metrics::default();
        for index in 0..1000 {
            let event = format!("made_up_event_{index}");
            metrics.observe_delivery(Some(&event), "bad_signature", Duration::from_millis(1));
        }
        metrics.observe_delivery(Some("push"), "accepted", Duration::from_millis(1));
        let mut out = String::new();
        metrics.render_intake(&mut out);
        let series: Vec<&str> = out
            .lines()
            .filter(|line| line.starts_with("sluice_webhook_deliveries_total{"))
            .collect();
        assert_eq!(
            series,
            [
                "sluice_webhook_deliveries_total{event=\"other\",outcome=\"bad_signature\"} 1000",
                "sluice_webhook_deliveries_total{event=\"push\",outcome=\"accepted\"} 1",
            ]
        );
    }
}
