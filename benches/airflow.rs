//! DAG folder deploy benchmark: 10,000 DAG files (about 2 KiB each) with one changed between two
//! deploys. sluice's versioned deploy (`VersionedFolder::deploy`: hash every source file, hard
//! link the unchanged ones into a new version, copy the changed one, switch the symlink) against
//! `rsync -a --checksum` from the same source into a plain folder that holds the previous tree.
//! Reports wall time (median, min, max) and bytes copied for each.
//! Run with `cargo bench --bench airflow`; `BENCH_REPEATS` sets the repetitions (default 7),
//! `BENCH_FILES` the number of files (default 10000).

#[path = "common/machine.rs"]
mod machine;
#[path = "common/table.rs"]
mod table;

use sluice::targets::airflow::VersionedFolder;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use table::{milliseconds, print_table, ratio};

fn dag_text(index: usize, round: usize) -> String {
    let mut text = format!(
        "\"\"\"Generated DAG {index}.\"\"\"\nimport pendulum\nfrom airflow.sdk import DAG, task\n\nwith DAG(dag_id=\"generated_{index}\", schedule=None, start_date=pendulum.datetime(2025, 1, 1)):\n"
    );
    for task in 0..20 {
        text.push_str(&format!(
            "    # task {task} of DAG {index}: a line of ordinary padding to reach a typical size\n"
        ));
    }
    text.push_str(&format!("    ROUND = {round}\n"));
    text
}

fn median(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

/// A number from `rsync --stats`, e.g. "Total transferred file size: 2,051 bytes".
fn rsync_stat(stats: &str, label: &str) -> u64 {
    stats
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or("0")
                .replace(',', "")
        })
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

fn rsync(source: &Path, destination: &Path) -> String {
    let output = Command::new("rsync")
        .args(["-a", "--checksum", "--stats"])
        .arg(format!("{}/", source.display()))
        .arg(format!("{}/", destination.display()))
        .output()
        .expect("rsync runs; apt-get install rsync");
    assert!(
        output.status.success(),
        "rsync failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn main() {
    let repeats: usize = std::env::var("BENCH_REPEATS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(7)
        .max(1);
    let file_count: usize = std::env::var("BENCH_FILES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    if Command::new("rsync").arg("--version").output().is_err() {
        eprintln!("rsync is missing; install it (apt-get install rsync) and run again");
        std::process::exit(2);
    }
    println!(
        "airflow DAG deploy: {file_count} files, one changed per round, {repeats} rounds; {}",
        machine::describe()
    );
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let source = scratch.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    let mut total_bytes = 0u64;
    for index in 0..file_count {
        let text = dag_text(index, 0);
        total_bytes += text.len() as u64;
        std::fs::write(source.join(format!("dag_{index:05}.py")), text).unwrap();
    }
    let folder = VersionedFolder {
        folder: scratch.path().join("dags"),
        versions: scratch.path().join("dags.versions"),
        keep: 3,
    };
    let rsync_destination = scratch.path().join("rsync-dags");
    std::fs::create_dir_all(&rsync_destination).unwrap();
    folder.deploy(&source).unwrap();
    rsync(&source, &rsync_destination);

    let (mut sluice_times, mut rsync_times) = (Vec::new(), Vec::new());
    let (mut sluice_bytes, mut sluice_files, mut rsync_bytes, mut rsync_files) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=repeats {
        let changed_index = (round * 7919) % file_count;
        std::fs::write(
            source.join(format!("dag_{changed_index:05}.py")),
            dag_text(changed_index, round),
        )
        .unwrap();
        // Alternate which runs first so neither always meets a warmer page cache.
        let run_sluice =
            |times: &mut Vec<Duration>, bytes: &mut Vec<u64>, files: &mut Vec<usize>| {
                let started = Instant::now();
                let outcome = folder.deploy(&source).unwrap();
                times.push(started.elapsed());
                bytes.push(outcome.bytes_copied);
                files.push(outcome.files_copied);
            };
        let run_rsync =
            |times: &mut Vec<Duration>, bytes: &mut Vec<u64>, files: &mut Vec<usize>| {
                let started = Instant::now();
                let stats = rsync(&source, &rsync_destination);
                times.push(started.elapsed());
                bytes.push(rsync_stat(&stats, "Total transferred file size: "));
                files.push(rsync_stat(&stats, "Number of regular files transferred: ") as usize);
            };
        if round % 2 == 0 {
            run_sluice(&mut sluice_times, &mut sluice_bytes, &mut sluice_files);
            run_rsync(&mut rsync_times, &mut rsync_bytes, &mut rsync_files);
        } else {
            run_rsync(&mut rsync_times, &mut rsync_bytes, &mut rsync_files);
            run_sluice(&mut sluice_times, &mut sluice_bytes, &mut sluice_files);
        }
    }
    let (sluice_median, sluice_min, sluice_max) = median(&mut sluice_times);
    let (rsync_median, rsync_min, rsync_max) = median(&mut rsync_times);
    println!("tree: {file_count} files, {total_bytes} bytes\n");
    print_table(
        &[
            "tool",
            "median",
            "min",
            "max",
            "vs rsync",
            "files copied / round",
            "bytes copied / round",
        ],
        &[
            vec![
                "sluice VersionedFolder::deploy".into(),
                milliseconds(sluice_median),
                milliseconds(sluice_min),
                milliseconds(sluice_max),
                ratio(sluice_median.as_secs_f64(), rsync_median.as_secs_f64()),
                format!("{}", sluice_files.iter().max().unwrap()),
                format!("{}", sluice_bytes.iter().max().unwrap()),
            ],
            vec![
                "rsync -a --checksum".into(),
                milliseconds(rsync_median),
                milliseconds(rsync_min),
                milliseconds(rsync_max),
                ratio(1.0, 1.0),
                format!("{}", rsync_files.iter().max().unwrap()),
                format!("{}", rsync_bytes.iter().max().unwrap()),
            ],
        ],
    );
    println!("\nload average at the end: {}", machine::load_average());
}
