//! The intake benchmark's report: one table row per peer with throughput at saturation (and its
//! ratio to the ceiling) and latency percentiles at the fixed rate, then the notes behind the
//! figures and the two targets. It only formats; it measures nothing.

use crate::load::Paced;
use crate::table::{milliseconds, print_table, ratio, thousands};
use std::time::Duration;

/// Throughput at saturation, however it was generated.
pub struct Throughput {
    pub requests_per_second: f64,
    pub errors: u64,
    /// Only `wrk` reports latency under saturation.
    pub p99: Option<Duration>,
}

/// One peer's figures; each phase either measured (with a note, such as sluice's commit counts)
/// or failed with the reason.
pub struct Row {
    pub name: String,
    pub is_ceiling: bool,
    pub is_sluice: bool,
    pub throughput: Result<(Throughput, Option<String>), String>,
    pub paced: Result<(Paced, Option<String>), String>,
}

pub fn print(rows: &[Row], rate: u32) {
    let ceiling_rate = rows
        .iter()
        .find(|row| row.is_ceiling)
        .and_then(|row| row.throughput.as_ref().ok())
        .map(|(throughput, _)| throughput.requests_per_second)
        .unwrap_or(0.0);
    let headers = [
        "peer".to_owned(),
        "req/s at saturation".to_owned(),
        "vs ceiling".to_owned(),
        "p99 at saturation".to_owned(),
        format!("p50 at {rate}/s"),
        format!("p99 at {rate}/s"),
        format!("p99.9 at {rate}/s"),
        format!("max at {rate}/s"),
        "errors".to_owned(),
    ];
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| table_row(row, ceiling_rate))
        .collect();
    print_table(&header_refs, &table_rows);
    println!();
    for row in rows {
        match &row.throughput {
            Err(error) => println!("{}: saturation failed: {error}", row.name),
            Ok((_, Some(note))) => println!("{}: saturation: {note}", row.name),
            Ok((_, None)) => {}
        }
        match &row.paced {
            Err(error) => println!("{}: fixed rate failed: {error}", row.name),
            Ok((paced, note)) => println!(
                "{}: fixed rate: offered {:.0} req/s, {} answers measured, pacer at worst {} late{}",
                row.name,
                paced.achieved_rate,
                paced.latencies.len(),
                milliseconds(paced.worst_pacer_lateness),
                note.as_ref()
                    .map(|note| format!("; {note}"))
                    .unwrap_or_default()
            ),
        }
    }
    let Some(sluice_row) = rows.iter().find(|row| row.is_sluice) else {
        return;
    };
    println!();
    if let (Ok((throughput, _)), true) = (&sluice_row.throughput, ceiling_rate > 0.0) {
        let share = throughput.requests_per_second / ceiling_rate;
        println!(
            "target: sluice >= 50% of the ceiling's throughput: {:.0}% -> {}",
            share * 100.0,
            verdict(share >= 0.5)
        );
    }
    if let Some(p99) = sluice_row
        .paced
        .as_ref()
        .ok()
        .and_then(|(paced, _)| paced.percentile(0.99))
    {
        println!(
            "target: sluice p99 <= 5 ms at {rate} req/s: {} -> {}",
            milliseconds(p99),
            verdict(p99 <= Duration::from_millis(5))
        );
    }
}

fn table_row(row: &Row, ceiling_rate: f64) -> Vec<String> {
    let mut cells = vec![row.name.clone()];
    let mut errors = 0;
    match &row.throughput {
        Ok((throughput, _)) => {
            errors += throughput.errors;
            cells.extend([
                thousands(throughput.requests_per_second),
                ratio(throughput.requests_per_second, ceiling_rate),
                throughput
                    .p99
                    .map(milliseconds)
                    .unwrap_or_else(|| "-".to_owned()),
            ]);
        }
        Err(_) => cells.extend(["failed", "-", "-"].map(str::to_owned)),
    }
    match &row.paced {
        Ok((paced, _)) => {
            errors += paced.outcomes.errors();
            let cell = |fraction| {
                paced
                    .percentile(fraction)
                    .map(milliseconds)
                    .unwrap_or_else(|| "-".to_owned())
            };
            cells.extend([cell(0.50), cell(0.99), cell(0.999), cell(1.0)]);
        }
        Err(_) => cells.extend(["failed", "-", "-", "-"].map(str::to_owned)),
    }
    cells.push(errors.to_string());
    cells
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
