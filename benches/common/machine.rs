//! What the benchmark ran on: core count, processor model and load average, printed with every
//! report because the figures mean little without them (other work on a small machine skews them).

// Each benchmark binary uses only some of these helpers.
#![allow(dead_code)]

pub fn describe() -> String {
    let cores = std::thread::available_parallelism()
        .map(|count| count.get().to_string())
        .unwrap_or_else(|_| "?".to_owned());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|cpuinfo| {
            cpuinfo
                .lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown processor".to_owned());
    format!("{cores} cores, {model}; load average {}", load_average())
}

/// The 1, 5 and 15 minute load averages, as the kernel prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The median time to make an 8 KiB overwrite durable with `fdatasync` in `directory`: the floor
/// under every durable commit there.
pub fn fdatasync_median(directory: &std::path::Path) -> std::io::Result<std::time::Duration> {
    use std::io::{Seek, SeekFrom, Write};
    let path = directory.join("fdatasync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0x5au8; 8192];
    file.write_all(&block)?;
    file.sync_all()?;
    let mut samples = Vec::new();
    for _ in 0..31 {
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&block)?;
        let started = std::time::Instant::now();
        file.sync_data()?;
        samples.push(started.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    samples.sort_unstable();
    Ok(samples[samples.len() / 2])
}
