//! Image-build benchmark, against the real Docker engine and the registry on 127.0.0.1:5000
//! (scripts/setup-docker.sh and scripts/setup-registry.sh start them). Three figures in one run:
//! the cold build-and-push time of sluice next to `docker build --no-cache` + `docker push` on the
//! same context, an unchanged re-run of three images as a share of their cold pass (and the
//! engine's build count during it), and sluice's peak memory while it sends a 1 GiB context.
//! Run with `cargo bench --bench build`.
//!
//! Settings (environment): `BENCH_ROUNDS` (cold rounds, default 5), `BENCH_LARGE_CONTEXT_MIB`
//! (size of the large context, default 1024), `BENCH_PARTS` (default `cold,rerun,memory`).

#[path = "build/context.rs"]
mod context;
#[path = "common/machine.rs"]
mod machine;
#[path = "build/memory.rs"]
mod memory;
#[path = "build/sluice_build.rs"]
mod sluice_build;
#[path = "common/table.rs"]
mod table;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The registry the images are pushed to.
pub const REGISTRY: &str = "127.0.0.1:5000";

fn number_setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().collect();
    if arguments.get(1).map(String::as_str) == Some(memory::CHILD_ARGUMENT) {
        return memory::child_main(&arguments[2..]);
    }
    let rounds = number_setting("BENCH_ROUNDS", 5).max(1) as usize;
    let large_context_mib = number_setting("BENCH_LARGE_CONTEXT_MIB", 1024);
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "cold,rerun,memory".to_owned());
    let wanted = |part: &str| parts.split(',').any(|name| name.trim() == part);

    println!("machine: {}", machine::describe());
    println!("engine: Docker {}", docker_server_version());
    let scratch = tempfile::Builder::new()
        .prefix("build-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let run_tag = format!("{:x}", std::process::id());

    if wanted("cold") {
        cold_overhead(&runtime, scratch.path(), rounds, &run_tag)?;
    }
    if wanted("rerun") {
        unchanged_rerun(&runtime, scratch.path(), &run_tag)?;
    }
    if wanted("memory") {
        large_context_memory(scratch.path(), large_context_mib, &run_tag)?;
    }
    println!("load average after: {}", machine::load_average());
    Ok(())
}

fn docker_server_version() -> String {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown (is the engine running?)".to_owned())
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

/// Part 1: the same small context, cold every round (a fresh nonce file is the first layer, so
/// neither sluice nor the engine can reuse anything), built and pushed by sluice and by the CLI.
fn cold_overhead(
    runtime: &tokio::runtime::Runtime,
    scratch: &Path,
    rounds: usize,
    run_tag: &str,
) -> anyhow::Result<()> {
    let workspace = scratch.join("cold");
    let context_bytes = context::write_small_context(&workspace.join("app"))?;
    let sluice_image = format!("{REGISTRY}/sluice-bench/cold-sluice-{run_tag}");
    let cli_image = format!("{REGISTRY}/sluice-bench/cold-cli-{run_tag}");
    println!();
    println!(
        "cold build and push: context of {context_bytes} bytes (Dockerfile FROM local/busybox:1, 2 COPY, 2 RUN), a fresh nonce each build, {rounds} rounds, order alternating"
    );
    let mut sluice_samples = Vec::new();
    let mut cli_samples = Vec::new();
    for round in 0..rounds {
        let tag = format!("round-{round}");
        let mut measure_sluice = || -> anyhow::Result<()> {
            context::write_nonce(&workspace.join("app"), &format!("sluice {run_tag} {round}"))?;
            let started = Instant::now();
            let report = runtime.block_on(sluice_build::build(
                &workspace,
                "app",
                &sluice_image,
                &tag,
                true,
            ))?;
            sluice_samples.push(started.elapsed());
            anyhow::ensure!(
                report.built && report.digest.is_some(),
                "sluice did not build and push in round {round}: {report:?}"
            );
            Ok(())
        };
        let mut measure_cli = || -> anyhow::Result<()> {
            context::write_nonce(&workspace.join("app"), &format!("cli {run_tag} {round}"))?;
            let reference = format!("{cli_image}:{tag}");
            let started = Instant::now();
            run_cli(&[
                "build",
                "--no-cache",
                "--quiet",
                "-t",
                &reference,
                workspace.join("app").to_str().unwrap_or("."),
            ])?;
            run_cli(&["push", "--quiet", &reference])?;
            cli_samples.push(started.elapsed());
            Ok(())
        };
        if round % 2 == 0 {
            measure_sluice()?;
            measure_cli()?;
        } else {
            measure_cli()?;
            measure_sluice()?;
        }
    }
    let sluice_median = median(&sluice_samples);
    let cli_median = median(&cli_samples);
    let row = |name: &str, samples: &[Duration], own_median: Duration| {
        let minimum = samples.iter().min().copied().unwrap_or_default();
        let maximum = samples.iter().max().copied().unwrap_or_default();
        vec![
            name.to_owned(),
            table::milliseconds(own_median),
            table::milliseconds(minimum),
            table::milliseconds(maximum),
            table::ratio(own_median.as_secs_f64(), cli_median.as_secs_f64()),
        ]
    };
    table::print_table(
        &["builder", "median", "min", "max", "vs CLI"],
        &[
            row(
                "sluice build_and_push (2 tags pushed)",
                &sluice_samples,
                sluice_median,
            ),
            row(
                "docker build --no-cache + docker push",
                &cli_samples,
                cli_median,
            ),
        ],
    );
    println!(
        "cold overhead: sluice/CLI = {} (target <= 1.10x)",
        table::ratio(sluice_median.as_secs_f64(), cli_median.as_secs_f64())
    );
    Ok(())
}

fn run_cli(arguments: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("docker").args(arguments).output()?;
    anyhow::ensure!(
        output.status.success(),
        "docker {} failed: {}",
        arguments.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Part 2: three images built and pushed once, then the same three again; the second pass must
/// ask the engine for no build.
fn unchanged_rerun(
    runtime: &tokio::runtime::Runtime,
    scratch: &Path,
    run_tag: &str,
) -> anyhow::Result<()> {
    let workspace = scratch.join("rerun");
    let names = ["trainer", "serving", "features"];
    for name in names {
        context::write_small_context(&workspace.join(name))?;
        context::write_nonce(&workspace.join(name), &format!("rerun {run_tag} {name}"))?;
    }
    let images: Vec<String> = names
        .iter()
        .map(|name| format!("{REGISTRY}/sluice-bench/rerun-{name}-{run_tag}"))
        .collect();
    let pass = |label: &str| -> anyhow::Result<(Duration, u64, usize)> {
        let calls_before = sluice::steps::build::build_calls();
        let started = Instant::now();
        let mut built_count = 0;
        for (name, image) in names.iter().zip(&images) {
            let report =
                runtime.block_on(sluice_build::build(&workspace, name, image, "main", true))?;
            anyhow::ensure!(
                report.digest.is_some(),
                "{label} pass: {image} was not pushed: {report:?}"
            );
            built_count += usize::from(report.built);
        }
        let elapsed = started.elapsed();
        Ok((
            elapsed,
            sluice::steps::build::build_calls() - calls_before,
            built_count,
        ))
    };
    println!();
    println!(
        "unchanged re-run: 3 images (own context each), built and pushed in turn, then the same 3 again"
    );
    let (cold_time, cold_calls, cold_built) = pass("cold")?;
    let (rerun_time, rerun_calls, rerun_built) = pass("re-run")?;
    let share = rerun_time.as_secs_f64() / cold_time.as_secs_f64() * 100.0;
    table::print_table(
        &["pass", "time", "engine builds", "% of cold"],
        &[
            vec![
                "cold".to_owned(),
                table::milliseconds(cold_time),
                cold_calls.to_string(),
                "100%".to_owned(),
            ],
            vec![
                "unchanged re-run".to_owned(),
                table::milliseconds(rerun_time),
                rerun_calls.to_string(),
                format!("{share:.1}%"),
            ],
        ],
    );
    println!(
        "re-run: {share:.1}% of the cold pass (target <= 5%), {rerun_calls} builds (target 0); reports said built for {rerun_built} of 3 (cold: {cold_built} of 3)"
    );
    assert_eq!(
        rerun_calls, 0,
        "the unchanged re-run asked the engine to build"
    );
    assert_eq!(cold_calls, 3, "the cold pass should build all three images");
    Ok(())
}

/// Part 3: a context holding one large sparse file, built by a child process of this binary,
/// which reports its own peak resident set.
fn large_context_memory(scratch: &Path, mebibytes: u64, run_tag: &str) -> anyhow::Result<()> {
    let workspace = scratch.join("large");
    let large_file = context::write_large_context(&workspace.join("app"), mebibytes)?;
    let image = format!("{REGISTRY}/sluice-bench/large-{run_tag}");
    println!();
    println!(
        "large context: one sparse file of {mebibytes} MiB plus a Dockerfile (FROM local/busybox:1, COPY of a small file), built without push by a child process"
    );
    let outcome = memory::run_child(&workspace, "app", &image);
    std::fs::remove_file(&large_file)?;
    let measured = outcome?;
    table::print_table(
        &["what", "value"],
        &[
            vec![
                "context bytes sent".to_owned(),
                table::thousands(measured.bytes_sent as f64),
            ],
            vec![
                "build time".to_owned(),
                table::milliseconds(measured.elapsed),
            ],
            vec![
                "peak RSS (VmHWM)".to_owned(),
                format!("{:.1} MiB", measured.peak_rss_bytes as f64 / 1048576.0),
            ],
            vec![
                "peak RSS (getrusage of the child)".to_owned(),
                format!(
                    "{:.1} MiB",
                    measured.rusage_max_rss_bytes as f64 / 1048576.0
                ),
            ],
        ],
    );
    println!(
        "large context: peak RSS {:.1} MiB while sending {} bytes (target < 64 MiB)",
        measured.peak_rss_bytes as f64 / 1048576.0,
        measured.bytes_sent
    );
    // The engine keeps no use for the image; leave the registry and engine as they were.
    let _ = run_cli(&["rmi", "--force", &format!("{image}:main")]);
    Ok(())
}
