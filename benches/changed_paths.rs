//! Changed-paths benchmark: `Mirror::changed_paths(A, B)` against `git diff --name-only A B` on a
//! generated repository of 50,000 files and 2,000 commits, for pairs of commits from adjacent to
//! first..last. Both must list the same paths; the median of repeated runs is compared.
//! Run with `cargo bench --bench changed_paths`; `BENCH_REPEATS` sets the repetitions (default 21).

#[path = "changed_paths/generate.rs"]
mod generate;
#[path = "common/machine.rs"]
mod machine;
#[path = "common/table.rs"]
mod table;

use anyhow::Context;
use sluice::git::Mirror;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use table::{milliseconds, print_table, ratio};

const REPOSITORY: &str = "bench/monorepo";

/// A comparison: `from` None means a new branch (every path of `to`).
struct Pair {
    label: String,
    from: Option<usize>,
    to: usize,
}

struct Timings {
    /// `Mirror::open` then `changed_paths`: nothing cached in the process, like a git command.
    sluice_fresh: Duration,
    /// `changed_paths` again on the same mirror, its libgit2 object cache warm.
    sluice: Duration,
    git_plain: Duration,
    git_no_renames: Duration,
    paths: usize,
    /// Why the two lists differ, if they do.
    mismatch: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let repeats: usize = std::env::var("BENCH_REPEATS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(21)
        .max(1);
    let cache_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .context("CARGO_TARGET_TMPDIR has a parent")?
        .join("bench-repos");

    println!("machine: {}", machine::describe());
    let generation_started = Instant::now();
    let repository = generate::ensure(&cache_dir)?;
    println!(
        "repository: {} ({} files at the first commit, {} commits), ready in {:.1} s",
        repository.path.display(),
        generate::FILES,
        repository.commits.len(),
        generation_started.elapsed().as_secs_f64()
    );
    let mirrors_dir = cache_dir.join("mirrors");
    let mirror_started = Instant::now();
    let url = repository.path.to_string_lossy().into_owned();
    let mirror = Mirror::open(&mirrors_dir, REPOSITORY, &url)?;
    mirror.fetch()?;
    let mirror_path = mirrors_dir.join(format!("{REPOSITORY}.git"));
    anyhow::ensure!(
        mirror_path.is_dir(),
        "the mirror is not at {}; the benchmark runs git there too",
        mirror_path.display()
    );
    println!(
        "mirror: {} fetched in {:.1} s",
        mirror_path.display(),
        mirror_started.elapsed().as_secs_f64()
    );
    println!(
        "median of {repeats} runs each; sluice in process, git as `git diff --name-only A B` \
         (a new process per run, as a caller of the CLI would); sluice with a freshly opened \
         mirror (nothing cached, like git) and again on a mirror kept open (as the server does)"
    );
    let mut startup_samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let started = Instant::now();
        let output = Command::new("git")
            .arg("--git-dir")
            .arg(&mirror_path)
            .args([
                "diff",
                "--name-only",
                &repository.commits[0],
                &repository.commits[0],
            ])
            .output()?;
        startup_samples.push(started.elapsed());
        std::hint::black_box(output);
    }
    println!(
        "git process floor: `git diff --name-only A A` (nothing to compare) takes {} (median)",
        milliseconds(median(&mut startup_samples))
    );
    println!();

    let last = repository.commits.len() - 1;
    let middle = repository.commits.len() / 2;
    let pairs = [
        Pair {
            label: format!("adjacent ({middle}..{})", middle + 1),
            from: Some(middle),
            to: middle + 1,
        },
        Pair {
            label: format!("adjacent ({}..{last})", last - 1),
            from: Some(last - 1),
            to: last,
        },
        Pair {
            label: format!("100 apart ({middle}..{})", middle + 100),
            from: Some(middle),
            to: middle + 100,
        },
        Pair {
            label: format!("1,000 apart ({}..{last})", last - 1000),
            from: Some(last - 1000),
            to: last,
        },
        Pair {
            label: format!("first..last (0..{last})"),
            from: Some(0),
            to: last,
        },
        Pair {
            label: format!("new branch (none..{last})"),
            from: None,
            to: last,
        },
    ];

    let mut rows = Vec::new();
    let mut mismatches = Vec::new();
    let mut sluice_no_slower_everywhere = true;
    let mut fresh_no_slower_everywhere = true;
    for pair in &pairs {
        let from = pair.from.map(|index| repository.commits[index].as_str());
        let to = repository.commits[pair.to].as_str();
        let timings = compare(&mirror, &mirrors_dir, &url, &mirror_path, from, to, repeats)
            .with_context(|| format!("pair {}", pair.label))?;
        rows.push(vec![
            pair.label.clone(),
            timings.paths.to_string(),
            milliseconds(timings.git_plain),
            milliseconds(timings.git_no_renames),
            milliseconds(timings.sluice_fresh),
            milliseconds(timings.sluice),
            ratio(
                timings.git_plain.as_secs_f64(),
                timings.sluice_fresh.as_secs_f64(),
            ),
            ratio(
                timings.git_plain.as_secs_f64(),
                timings.sluice.as_secs_f64(),
            ),
        ]);
        sluice_no_slower_everywhere &= timings.sluice <= timings.git_plain;
        fresh_no_slower_everywhere &= timings.sluice_fresh <= timings.git_plain;
        if let Some(mismatch) = timings.mismatch {
            mismatches.push(format!("{}: {mismatch}", pair.label));
        }
    }
    print_table(
        &[
            "pair",
            "paths",
            "git diff --name-only",
            "git, --no-renames",
            "sluice, fresh mirror",
            "sluice, warm mirror",
            "git / fresh",
            "git / warm",
        ],
        &rows,
    );
    println!();
    println!(
        "the new-branch row compares with `git ls-tree -r --name-only B`; the same-paths check \
         uses `--no-renames`, which lists both sides of a rename as `changed_paths` does"
    );
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "target: sluice no slower than `git diff --name-only` on every pair: fresh mirror {}, warm mirror {}",
        verdict(fresh_no_slower_everywhere),
        verdict(sluice_no_slower_everywhere)
    );
    println!("load average after: {}", machine::load_average());
    if mismatches.is_empty() {
        println!("same path sets as git for every pair: yes");
        Ok(())
    } else {
        for mismatch in &mismatches {
            println!("DIFFERENT PATHS {mismatch}");
        }
        anyhow::bail!("{} pairs list different paths than git", mismatches.len())
    }
}

/// Times both sides alternately, checks the path sets, returns medians.
#[allow(clippy::too_many_arguments)]
fn compare(
    mirror: &Mirror,
    mirrors_dir: &Path,
    url: &str,
    mirror_path: &Path,
    from: Option<&str>,
    to: &str,
    repeats: usize,
) -> anyhow::Result<Timings> {
    let sluice_paths: BTreeSet<String> = mirror.changed_paths(from, to)?.into_iter().collect();
    let git_paths = git_paths(mirror_path, from, to, false)?;
    let mismatch = (sluice_paths != git_paths).then(|| {
        let only_sluice: Vec<_> = sluice_paths.difference(&git_paths).take(5).collect();
        let only_git: Vec<_> = git_paths.difference(&sluice_paths).take(5).collect();
        format!(
            "{} paths from sluice, {} from git; only in sluice: {only_sluice:?}; only in git: {only_git:?}",
            sluice_paths.len(),
            git_paths.len()
        )
    });
    let mut sluice_fresh_samples = Vec::with_capacity(repeats);
    let mut sluice_samples = Vec::with_capacity(repeats);
    let mut git_plain_samples = Vec::with_capacity(repeats);
    let mut git_no_renames_samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let started = Instant::now();
        let fresh_mirror = Mirror::open(mirrors_dir, REPOSITORY, url)?;
        let listed = fresh_mirror.changed_paths(from, to)?;
        sluice_fresh_samples.push(started.elapsed());
        std::hint::black_box(listed);
        drop(fresh_mirror);

        let started = Instant::now();
        let listed = mirror.changed_paths(from, to)?;
        sluice_samples.push(started.elapsed());
        std::hint::black_box(listed);

        let started = Instant::now();
        std::hint::black_box(git_output(mirror_path, from, to, true)?);
        git_plain_samples.push(started.elapsed());

        let started = Instant::now();
        std::hint::black_box(git_output(mirror_path, from, to, false)?);
        git_no_renames_samples.push(started.elapsed());
    }
    Ok(Timings {
        sluice_fresh: median(&mut sluice_fresh_samples),
        sluice: median(&mut sluice_samples),
        git_plain: median(&mut git_plain_samples),
        git_no_renames: median(&mut git_no_renames_samples),
        paths: sluice_paths.len(),
        mismatch,
    })
}

/// What git lists, as a set; renames split into both sides, like `changed_paths`.
fn git_paths(
    mirror_path: &Path,
    from: Option<&str>,
    to: &str,
    detect_renames: bool,
) -> anyhow::Result<BTreeSet<String>> {
    let output = git_output(mirror_path, from, to, detect_renames)?;
    Ok(String::from_utf8(output)?
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect())
}

fn git_output(
    mirror_path: &Path,
    from: Option<&str>,
    to: &str,
    detect_renames: bool,
) -> anyhow::Result<Vec<u8>> {
    let mut command = Command::new("git");
    command
        .arg("--git-dir")
        .arg(mirror_path)
        .args(["-c", "core.quotePath=false"]);
    match from {
        Some(from) => {
            command.args(["diff", "--name-only"]);
            if !detect_renames {
                command.arg("--no-renames");
            }
            command.args([from, to]);
        }
        None => {
            command.args(["ls-tree", "-r", "--name-only", to]);
        }
    }
    let output = command.output().context("run git; is it installed?")?;
    anyhow::ensure!(
        output.status.success(),
        "git failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(output.stdout)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}
