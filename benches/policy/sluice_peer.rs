//! sluice's side of the policy benchmark: the default Terraform policies compiled once with the
//! real `sluice::policy` API, then each plan parsed and evaluated afresh as the policy input
//! `{"terraform": plan}` (`PolicySet::evaluate` clones the compiled engine per call, as the
//! server's check does); and the `sluice policy
//! check` command, one process per plan. Knows nothing of the other engines.

use super::samples::{PerPlan, Verdict};
use anyhow::Context;
use sluice::policy::{PolicyContext, PolicySet, PolicySources, load_sources};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Compiled {
    pub sources: PolicySources,
    pub policy_set: PolicySet,
    /// Median time of `load_sources` + `PolicySet::compile`.
    pub compile: Duration,
}

/// Loads and compiles the policy directory `repeats` times and keeps the last set.
pub fn compile(policy_directory: &Path, repeats: usize) -> anyhow::Result<Compiled> {
    let mut samples = Vec::with_capacity(repeats);
    let mut compiled = None;
    for _ in 0..repeats {
        let started = Instant::now();
        let sources = load_sources(policy_directory)
            .map_err(|errors| anyhow::anyhow!("{errors}"))
            .with_context(|| format!("loading {}", policy_directory.display()))?;
        let policy_set = PolicySet::compile(&sources).map_err(|errors| {
            anyhow::anyhow!(
                "the policies of {} do not compile: {errors}",
                policy_directory.display()
            )
        })?;
        samples.push(started.elapsed());
        compiled = Some((sources, policy_set));
    }
    let (sources, policy_set) = compiled.context("at least one repeat")?;
    Ok(Compiled {
        sources,
        policy_set,
        compile: super::samples::median(&mut samples),
    })
}

/// What one pass of evaluations found, and the timings of all passes.
pub struct Evaluated {
    pub verdicts: Vec<Verdict>,
    pub timings: PerPlan,
}

/// Parses and evaluates every plan text `repeats` times; the verdicts come from the first pass.
pub fn evaluate_all(
    policy_set: &PolicySet,
    plan_texts: &[String],
    context: &PolicyContext,
    repeats: usize,
) -> anyhow::Result<Evaluated> {
    let mut samples = vec![Vec::with_capacity(repeats); plan_texts.len()];
    let mut verdicts = Vec::with_capacity(plan_texts.len());
    for repeat in 0..repeats {
        for (index, plan_text) in plan_texts.iter().enumerate() {
            let started = Instant::now();
            let plan: serde_json::Value =
                serde_json::from_str(plan_text).context("a plan is not JSON")?;
            let evaluation = policy_set.evaluate(&sluice::policy::terraform_input(&plan), context);
            samples[index].push(started.elapsed());
            if repeat == 0 {
                verdicts.push(if evaluation.errors.is_empty() {
                    let mut by_rule: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for finding in &evaluation.findings {
                        by_rule
                            .entry(finding.rule.clone())
                            .or_default()
                            .push(finding.message.clone());
                    }
                    by_rule.values_mut().for_each(|messages| messages.sort());
                    Verdict::Messages(by_rule)
                } else {
                    let errors: Vec<String> =
                        evaluation.errors.iter().map(ToString::to_string).collect();
                    Verdict::Error(errors.join("; "))
                });
            }
            std::hint::black_box(&evaluation);
        }
    }
    Ok(Evaluated {
        verdicts,
        timings: PerPlan::from_samples(&samples),
    })
}

/// `sluice policy check --terraform-plan P --json` for every plan, one process each, the context
/// given as flags. Returns the wall time of each process; fails on any exit code other than 0
/// (passed) or 1 (denied).
pub fn cli_per_plan(
    policy_directory: &Path,
    plan_paths: &[PathBuf],
    context_flags: &[String],
) -> anyhow::Result<PerPlan> {
    let binary = env!("CARGO_BIN_EXE_sluice");
    let mut samples = Vec::with_capacity(plan_paths.len());
    for plan_path in plan_paths {
        let started = Instant::now();
        let output = Command::new(binary)
            .args(["policy", "check", "--json", "--terraform-plan"])
            .arg(plan_path)
            .arg("--policies")
            .arg(policy_directory)
            .args(context_flags)
            .output()
            .with_context(|| format!("cannot start {binary}"))?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            matches!(output.status.code(), Some(0 | 1)),
            "sluice policy check on {} exited with {}: {}",
            plan_path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        samples.push(vec![elapsed]);
    }
    Ok(PerPlan::from_samples(&samples))
}
