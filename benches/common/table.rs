//! Plain-text tables for benchmark reports, in Markdown pipe syntax so a run's output can be pasted
//! into `BENCHMARKS.md` as it is. Knows nothing about what is being measured.

// Each benchmark binary uses only some of these helpers.
#![allow(dead_code)]

use std::time::Duration;

/// Prints a Markdown table; the first column is left-aligned, the others right-aligned.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(cell.chars().count());
        }
    }
    let render = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(index, cell)| {
                if index == 0 {
                    format!("{cell:<width$}", width = widths[index])
                } else {
                    format!("{cell:>width$}", width = widths[index])
                }
            })
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    println!(
        "{}",
        render(headers.iter().map(|header| header.to_string()).collect())
    );
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(index, width)| {
            if index == 0 {
                format!(":{}", "-".repeat(width.saturating_sub(1).max(1)))
            } else {
                format!("{}:", "-".repeat(width.saturating_sub(1).max(1)))
            }
        })
        .collect();
    println!("| {} |", rule.join(" | "));
    for row in rows {
        println!("{}", render(row.clone()));
    }
}

/// Milliseconds with enough digits for sub-millisecond figures: `0.214 ms`, `12.3 ms`.
pub fn milliseconds(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 10.0 {
        format!("{millis:.3} ms")
    } else if millis < 100.0 {
        format!("{millis:.2} ms")
    } else {
        format!("{millis:.1} ms")
    }
}

/// `0.42x`, `3.1x`: how many times the first figure is the second.
pub fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator <= 0.0 {
        return "n/a".to_owned();
    }
    let ratio = numerator / denominator;
    if ratio < 10.0 {
        format!("{ratio:.2}x")
    } else {
        format!("{ratio:.1}x")
    }
}

/// Thousands separated by commas: `48,213`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}
