//! checkov's side of the policy benchmark: `checkov -f PLAN --framework terraform_plan -o json
//! --skip-download`, one process per plan as a CI step would run it, and the directory form
//! (`-d DIR`) once over all plans. checkov runs its own built-in checks, not the Rego policies:
//! the same plans, a different rule set. Knows nothing of the other engines.

use super::samples::PerPlan;
use anyhow::Context;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `SLUICE_CHECKOV`, else `.venv-checkov/bin/checkov` as `scripts/bench-policy.sh` makes it;
/// the reason when it does not run.
pub fn find(repository_root: &Path) -> Result<(PathBuf, String), String> {
    let candidate = std::env::var_os("SLUICE_CHECKOV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository_root.join(".venv-checkov/bin/checkov"));
    match Command::new(&candidate).arg("--version").output() {
        Ok(output) if output.status.success() => Ok((
            candidate,
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        )),
        _ => Err(format!(
            "{} does not run; run scripts/bench-policy.sh, which installs checkov into .venv-checkov (or set SLUICE_CHECKOV)",
            candidate.display()
        )),
    }
}

/// What checkov reported: checks passed and failed, resources seen.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub resources: u64,
    pub parsing_errors: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.resources += other.resources;
        self.parsing_errors += other.parsing_errors;
    }
}

/// Runs checkov with `target_arguments`; exit codes 0 (all passed) and 1 (a check failed) are
/// both results.
fn run(checkov: &Path, target_arguments: &[&OsStr]) -> anyhow::Result<(Duration, Counts)> {
    // An empty working directory, so that no `.checkov.yaml` of the checkout changes the run.
    let work = tempfile::tempdir()?;
    let started = Instant::now();
    let output = Command::new(checkov)
        .args(target_arguments)
        .args([
            "--framework",
            "terraform_plan",
            "-o",
            "json",
            "--skip-download",
        ])
        .current_dir(work.path())
        .output()
        .with_context(|| format!("cannot start {}", checkov.display()))?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        matches!(output.status.code(), Some(0 | 1)),
        "checkov exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    Ok((elapsed, counts_of(&report)))
}

/// Sums the `summary` of a report: one object, or a list of them (one per framework).
fn counts_of(report: &Value) -> Counts {
    let mut counts = Counts::default();
    match report {
        Value::Array(reports) => reports.iter().for_each(|one| counts.add(counts_of(one))),
        Value::Object(object) => {
            let summary = object.get("summary").unwrap_or(report);
            let number = |key: &str| summary.get(key).and_then(Value::as_u64).unwrap_or(0);
            counts = Counts {
                passed: number("passed"),
                failed: number("failed"),
                resources: number("resource_count"),
                parsing_errors: number("parsing_errors"),
            };
        }
        _ => {}
    }
    counts
}

/// One process per plan; the wall time of each.
pub fn per_file(checkov: &Path, plan_paths: &[PathBuf]) -> anyhow::Result<(PerPlan, Counts)> {
    let mut samples = Vec::with_capacity(plan_paths.len());
    let mut total = Counts::default();
    for plan_path in plan_paths {
        let (elapsed, counts) = run(checkov, &[OsStr::new("-f"), plan_path.as_os_str()])
            .with_context(|| format!("checkov on {}", plan_path.display()))?;
        samples.push(vec![elapsed]);
        total.add(counts);
    }
    Ok((PerPlan::from_samples(&samples), total))
}

/// One process over the whole directory.
pub fn directory(checkov: &Path, plans_directory: &Path) -> anyhow::Result<(Duration, Counts)> {
    run(checkov, &[OsStr::new("-d"), plans_directory.as_os_str()])
}
