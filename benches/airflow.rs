//! DAG folder deploy benchmark: 10,000 DAG files (about 2 KiB each) with one changed between two
//! deploys. sluice's versioned deploy (`VersionedFolder::deploy`: hash every source file, hard
//! link the unchanged ones into a new version, copy the changed one, switch the symlink) against
//! `rsync -a --delete --checksum` from the same source into a plain folder that holds the previous
//! tree. Reports wall time (median, min, max) and bytes copied for each, and checks after every
//! round that both destinations hold the changed file's new content and every file.
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
        .args(["-a", "--delete", "--checksum", "--stats"])
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
    // Steady state: more versions than `keep` exist after two rounds, so each deploy reuses the
    // directory of the version it prunes. The second folder keeps every version, so each deploy
    // builds a new directory of hard links: what the first deploys of an environment cost.
    let folder = VersionedFolder {
        folder: scratch.path().join("dags"),
        versions: scratch.path().join("dags.versions"),
        keep: 3,
    };
    let fresh_folder = VersionedFolder {
        folder: scratch.path().join("dags-fresh"),
        versions: scratch.path().join("dags-fresh.versions"),
        keep: repeats + 2,
    };
    let rsync_destination = scratch.path().join("rsync-dags");
    std::fs::create_dir_all(&rsync_destination).unwrap();
    folder.deploy(&source).unwrap();
    fresh_folder.deploy(&source).unwrap();
    rsync(&source, &rsync_destination);

    let names = [
        "sluice VersionedFolder::deploy, keep 3 (steady state)",
        "sluice VersionedFolder::deploy, no version to reuse",
        "rsync -a --delete --checksum",
    ];
    // (wall time, files copied, bytes copied) per contender and round.
    let mut samples: Vec<Vec<(Duration, usize, u64)>> = vec![Vec::new(); names.len()];
    for round in 1..=repeats {
        let changed_index = (round * 7919) % file_count;
        std::fs::write(
            source.join(format!("dag_{changed_index:05}.py")),
            dag_text(changed_index, round),
        )
        .unwrap();
        // Rotate which runs first so none always meets a warmer page cache.
        for turn in 0..names.len() {
            let contender = (round + turn) % names.len();
            let started = Instant::now();
            let (files, bytes) = match contender {
                0 | 1 => {
                    let target = if contender == 0 {
                        &folder
                    } else {
                        &fresh_folder
                    };
                    let outcome = target.deploy(&source).unwrap();
                    (outcome.files_copied, outcome.bytes_copied)
                }
                _ => {
                    let stats = rsync(&source, &rsync_destination);
                    (
                        rsync_stat(&stats, "Number of regular files transferred: ") as usize,
                        rsync_stat(&stats, "Total transferred file size: "),
                    )
                }
            };
            samples[contender].push((started.elapsed(), files, bytes));
        }
        let changed_name = format!("dag_{changed_index:05}.py");
        for (destination, extra) in [
            (&folder.folder, 1),
            (&fresh_folder.folder, 1),
            (&rsync_destination, 0),
        ] {
            assert_eq!(
                std::fs::read_to_string(destination.join(&changed_name)).unwrap(),
                dag_text(changed_index, round),
                "{} does not hold the new {changed_name}",
                destination.display()
            );
            assert_eq!(
                std::fs::read_dir(destination).unwrap().count(),
                file_count + extra,
                "{} does not hold every file (and sluice's manifest)",
                destination.display()
            );
        }
    }
    println!("tree: {file_count} files, {total_bytes} bytes\n");
    let mut rsync_times: Vec<Duration> = samples[2].iter().map(|sample| sample.0).collect();
    let (rsync_median, _, _) = median(&mut rsync_times);
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(&samples)
        .map(|(name, samples)| {
            let mut times: Vec<Duration> = samples.iter().map(|sample| sample.0).collect();
            let (middle, fastest, slowest) = median(&mut times);
            vec![
                (*name).to_owned(),
                milliseconds(middle),
                milliseconds(fastest),
                milliseconds(slowest),
                ratio(middle.as_secs_f64(), rsync_median.as_secs_f64()),
                format!("{}", samples.iter().map(|sample| sample.1).max().unwrap()),
                format!("{}", samples.iter().map(|sample| sample.2).max().unwrap()),
            ]
        })
        .collect();
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
        &rows,
    );
    println!("\nload average at the end: {}", machine::load_average());
}
