//! What one configuration measured in one repeat, medians over the repeats, and the tables:
//! intake, end to end, and where the CPU went, each configuration against SQLite×1.

use crate::table::{milliseconds, print_table, ratio};
use std::time::Duration;

/// One repeat of one configuration.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Accepted deliveries over the time from the first request to the last 202.
    pub intake_per_second: f64,
    pub intake_p50: Duration,
    pub intake_p99: Duration,
    /// From the first request to the last 202.
    pub sending_period: Duration,
    /// Deliveries over the time from the first request to the last run's `finished_at`.
    pub runs_per_second: f64,
    /// A run's `finished_at` minus its delivery's `received_at`.
    pub run_p50: Duration,
    pub run_p99: Duration,
    /// From the first request until the benchmark saw every run finished: the CPU window.
    pub window: Duration,
    pub sluice_cpu_seconds: f64,
    pub postgres_cpu_seconds: f64,
    pub client_cpu_seconds: f64,
    pub machine_cpu_seconds: f64,
    pub machine_utilisation: f64,
    /// Transactions PostgreSQL rolled back as a lost race (40001 or 40P01); sluice retries them.
    pub serialization_failures: usize,
    /// The first 70 characters of each failed transaction's statement.
    pub failed_statements: Vec<String>,
    /// Summed, not medians, over the repeats.
    pub runs_not_succeeded: usize,
    pub replica_warnings: usize,
    pub replica_errors: usize,
}

pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        length if length % 2 == 1 => values[length / 2],
        length => (values[length / 2 - 1] + values[length / 2]) / 2.0,
    }
}

/// The median of each figure on its own over the repeats.
fn medians(repeats: &[Measurement]) -> Measurement {
    let of = |figure: fn(&Measurement) -> f64| median(repeats.iter().map(figure).collect());
    let duration = |figure: fn(&Measurement) -> f64| Duration::from_secs_f64(of(figure));
    Measurement {
        intake_per_second: of(|m| m.intake_per_second),
        intake_p50: duration(|m| m.intake_p50.as_secs_f64()),
        intake_p99: duration(|m| m.intake_p99.as_secs_f64()),
        sending_period: duration(|m| m.sending_period.as_secs_f64()),
        runs_per_second: of(|m| m.runs_per_second),
        run_p50: duration(|m| m.run_p50.as_secs_f64()),
        run_p99: duration(|m| m.run_p99.as_secs_f64()),
        window: duration(|m| m.window.as_secs_f64()),
        sluice_cpu_seconds: of(|m| m.sluice_cpu_seconds),
        postgres_cpu_seconds: of(|m| m.postgres_cpu_seconds),
        client_cpu_seconds: of(|m| m.client_cpu_seconds),
        machine_cpu_seconds: of(|m| m.machine_cpu_seconds),
        machine_utilisation: of(|m| m.machine_utilisation),
        serialization_failures: of(|m| m.serialization_failures as f64).round() as usize,
        failed_statements: repeats
            .iter()
            .flat_map(|m| m.failed_statements.iter().cloned())
            .collect(),
        runs_not_succeeded: repeats.iter().map(|m| m.runs_not_succeeded).sum(),
        replica_warnings: repeats.iter().map(|m| m.replica_warnings).sum(),
        replica_errors: repeats.iter().map(|m| m.replica_errors).sum(),
    }
}

fn seconds(duration: Duration) -> String {
    if duration >= Duration::from_secs(10) {
        format!("{:.1} s", duration.as_secs_f64())
    } else if duration >= Duration::from_secs(1) {
        format!("{:.2} s", duration.as_secs_f64())
    } else {
        milliseconds(duration)
    }
}

/// Prints one line per repeat, as it finishes, so a long run shows its progress and spread.
pub fn print_repeat(name: &str, repeat: usize, measurement: &Measurement) {
    println!(
        "{name}, repeat {repeat}: intake {:.0}/s p99 {}; runs {:.1}/s, run p99 {}; CPU s sluice {:.1}, PostgreSQL {:.1}, client {:.1}, machine {:.1} ({:.0}% busy) over {}; serialization failures {}",
        measurement.intake_per_second,
        milliseconds(measurement.intake_p99),
        measurement.runs_per_second,
        seconds(measurement.run_p99),
        measurement.sluice_cpu_seconds,
        measurement.postgres_cpu_seconds,
        measurement.client_cpu_seconds,
        measurement.machine_cpu_seconds,
        measurement.machine_utilisation * 100.0,
        seconds(measurement.window),
        measurement.serialization_failures,
    );
}

/// The three tables of medians; the first configuration is the baseline of every ratio.
pub fn print(configurations: &[(String, Vec<Measurement>)], deliveries: usize) {
    let rows: Vec<(&str, Measurement)> = configurations
        .iter()
        .filter(|(_, repeats)| !repeats.is_empty())
        .map(|(name, repeats)| (name.as_str(), medians(repeats)))
        .collect();
    let Some((baseline_name, baseline)) = rows.first().cloned() else {
        println!("nothing was measured");
        return;
    };
    println!();
    println!(
        "intake: {deliveries} deliveries, medians over the repeats; ratios against {baseline_name}"
    );
    println!();
    print_table(
        &[
            "configuration",
            "sending period",
            "deliveries/s",
            "vs base",
            "p50",
            "p99",
            "p99 vs base",
        ],
        &rows
            .iter()
            .map(|(name, m)| {
                vec![
                    name.to_string(),
                    seconds(m.sending_period),
                    format!("{:.0}", m.intake_per_second),
                    ratio(m.intake_per_second, baseline.intake_per_second),
                    milliseconds(m.intake_p50),
                    milliseconds(m.intake_p99),
                    ratio(
                        m.intake_p99.as_secs_f64(),
                        baseline.intake_p99.as_secs_f64(),
                    ),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!();
    println!(
        "end to end: from the first request until every run finished; run latency is a run's finished_at minus its delivery's received_at"
    );
    println!();
    print_table(
        &[
            "configuration",
            "runs/s",
            "vs base",
            "run p50",
            "run p99",
            "p99 vs base",
            "runs not succeeded",
            "replica ERROR lines",
        ],
        &rows
            .iter()
            .map(|(name, m)| {
                vec![
                    name.to_string(),
                    format!("{:.1}", m.runs_per_second),
                    ratio(m.runs_per_second, baseline.runs_per_second),
                    seconds(m.run_p50),
                    seconds(m.run_p99),
                    ratio(m.run_p99.as_secs_f64(), baseline.run_p99.as_secs_f64()),
                    m.runs_not_succeeded.to_string(),
                    m.replica_errors.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!();
    println!(
        "CPU over the same window: cores used (CPU seconds per second; the machine has {} cores), \
         then CPU milliseconds per run; sluice's CPU includes the host steps it ran",
        cores_here()
    );
    println!();
    print_table(
        &[
            "configuration",
            "window",
            "sluice",
            "PostgreSQL",
            "client",
            "rest of machine",
            "machine busy",
            "sluice ms/run",
            "PostgreSQL ms/run",
            "serialization failures",
        ],
        &rows
            .iter()
            .map(|(name, m)| {
                let window = m.window.as_secs_f64().max(1e-9);
                let rest = (m.machine_cpu_seconds
                    - m.sluice_cpu_seconds
                    - m.postgres_cpu_seconds
                    - m.client_cpu_seconds)
                    .max(0.0);
                vec![
                    name.to_string(),
                    seconds(m.window),
                    format!("{:.2}", m.sluice_cpu_seconds / window),
                    format!("{:.2}", m.postgres_cpu_seconds / window),
                    format!("{:.2}", m.client_cpu_seconds / window),
                    format!("{:.2}", rest / window),
                    format!("{:.0}%", m.machine_utilisation * 100.0),
                    format!("{:.1}", m.sluice_cpu_seconds * 1000.0 / deliveries as f64),
                    format!("{:.1}", m.postgres_cpu_seconds * 1000.0 / deliveries as f64),
                    m.serialization_failures.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    print_failed_statements(&rows, configurations);
    let warnings: usize = rows.iter().map(|(_, m)| m.replica_warnings).sum();
    if warnings > 0 {
        println!();
        println!(
            "the replicas logged {warnings} WARN or ERROR lines in all; the first of each repeat are printed above"
        );
    }
}

fn cores_here() -> usize {
    std::thread::available_parallelism().map_or(0, |count| count.get())
}

/// Which statements lost races, summed over the repeats, most frequent first.
fn print_failed_statements(
    rows: &[(&str, Measurement)],
    configurations: &[(String, Vec<Measurement>)],
) {
    for (name, measurement) in rows {
        if measurement.failed_statements.is_empty() {
            continue;
        }
        let repeats = configurations
            .iter()
            .find(|(configuration, _)| configuration == name)
            .map_or(0, |(_, repeats)| repeats.len());
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for statement in &measurement.failed_statements {
            *counts.entry(statement.as_str()).or_insert(0) += 1;
        }
        let mut counted: Vec<(&str, usize)> = counts.into_iter().collect();
        counted.sort_by(|left, right| right.1.cmp(&left.1));
        println!();
        println!(
            "{name}: statements of the transactions that lost a race, over {repeats} repeats ({} in all)",
            measurement.failed_statements.len()
        );
        for (statement, count) in counted.iter().take(6) {
            println!("  {count:>5}  {statement}");
        }
    }
}
