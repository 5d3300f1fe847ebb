//! The policy benchmark's report: per-plan timing tables per context, the agreement between
//! sluice and regopy (mismatches and findings per rule), and the figures against the targets.
//! Prints Markdown tables; knows nothing of how the engines ran.

use super::samples::{PerPlan, Verdict};
use super::table::{milliseconds, print_table, ratio};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const SLUICE: &str = "sluice (in process)";

/// Whole-process figures of the first context.
#[derive(Default)]
pub struct Whole {
    pub sluice_in_process: Option<Duration>,
    pub sluice_cli: Option<PerPlan>,
    /// (mode, wall time of one process over all plans)
    pub regopy: Vec<(String, Duration)>,
    pub checkov_per_file: Option<PerPlan>,
    pub checkov_directory: Option<Duration>,
}

struct EngineRun {
    context: String,
    label: String,
    timings: PerPlan,
    findings_by_rule: BTreeMap<String, usize>,
    plans_with_errors: usize,
}

struct Agreement {
    context: String,
    label: String,
    plans: usize,
    mismatches: Vec<String>,
}

pub struct Report {
    rules: Vec<String>,
    runs: Vec<EngineRun>,
    failures: Vec<(String, String, String)>,
    agreements: Vec<Agreement>,
    /// (context, mode, wall time of the process, its setup before the first plan)
    regopy_processes: Vec<(String, String, Duration, Duration)>,
}

impl Report {
    pub fn new(rules: Vec<String>) -> Report {
        Report {
            rules,
            runs: Vec::new(),
            failures: Vec::new(),
            agreements: Vec::new(),
            regopy_processes: Vec::new(),
        }
    }

    pub fn add_engine(
        &mut self,
        context: &str,
        label: &str,
        timings: &PerPlan,
        verdicts: &[Verdict],
    ) {
        let mut findings_by_rule = BTreeMap::new();
        for rule in &self.rules {
            let count = verdicts
                .iter()
                .map(|verdict| verdict.messages(rule).len())
                .sum();
            findings_by_rule.insert(rule.clone(), count);
        }
        self.runs.push(EngineRun {
            context: context.to_owned(),
            label: label.to_owned(),
            timings: timings.clone(),
            findings_by_rule,
            plans_with_errors: verdicts
                .iter()
                .filter(|verdict| matches!(verdict, Verdict::Error(_)))
                .count(),
        });
    }

    pub fn add_process(&mut self, context: &str, mode: &str, process: Duration, setup: Duration) {
        self.regopy_processes
            .push((context.to_owned(), mode.to_owned(), process, setup));
    }

    /// (mode, process wall time, setup) of the regopy runs in `context`.
    pub fn regopy_processes(&self, context: &str) -> Vec<(String, Duration, Duration)> {
        self.regopy_processes
            .iter()
            .filter(|(run_context, ..)| run_context == context)
            .map(|(_, mode, process, setup)| (mode.clone(), *process, *setup))
            .collect()
    }

    pub fn add_failure(&mut self, context: &str, label: &str, message: &str) {
        println!("{label} in {context} failed: {message}");
        self.failures
            .push((context.to_owned(), label.to_owned(), message.to_owned()));
    }

    /// Compares every rule's messages on every plan; an error on either side is a mismatch.
    pub fn compare(
        &mut self,
        context: &str,
        label: &str,
        plan_paths: &[PathBuf],
        sluice: &[Verdict],
        other: &[Verdict],
    ) {
        let mut mismatches = Vec::new();
        if sluice.len() != other.len() {
            mismatches.push(format!(
                "sluice judged {} plans, {label} {}",
                sluice.len(),
                other.len()
            ));
        }
        for ((plan_path, ours), theirs) in plan_paths.iter().zip(sluice).zip(other) {
            let name = plan_path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Verdict::Error(error) = ours {
                mismatches.push(format!("{name}: sluice failed: {error}"));
                continue;
            }
            if let Verdict::Error(error) = theirs {
                mismatches.push(format!("{name}: {label} failed: {error}"));
                continue;
            }
            for rule in &self.rules {
                if ours.messages(rule) != theirs.messages(rule) {
                    mismatches.push(format!(
                        "{name} {rule}:\n    sluice: {:?}\n    {label}: {:?}",
                        ours.messages(rule),
                        theirs.messages(rule)
                    ));
                }
            }
        }
        self.agreements.push(Agreement {
            context: context.to_owned(),
            label: label.to_owned(),
            plans: plan_paths.len(),
            mismatches,
        });
    }

    pub fn mismatch_count(&self) -> usize {
        self.agreements
            .iter()
            .map(|agreement| agreement.mismatches.len())
            .sum::<usize>()
            + self.failures.len()
    }

    fn run(&self, context: &str, label: &str) -> Option<&EngineRun> {
        self.runs
            .iter()
            .find(|run| run.context == context && run.label == label)
    }

    /// One pass of sluice over every plan in `context`: the sum of the per-plan medians.
    pub fn sluice_total(&self, context: &str) -> Duration {
        self.run(context, SLUICE)
            .map_or(Duration::ZERO, |run| run.timings.total())
    }

    pub fn print_per_plan_tables(&self) {
        let mut contexts: Vec<&str> = Vec::new();
        for run in &self.runs {
            if !contexts.contains(&run.context.as_str()) {
                contexts.push(&run.context);
            }
        }
        for context in contexts {
            println!();
            println!("## Per plan, in process ({context})");
            println!();
            let sluice_mean = self
                .run(context, SLUICE)
                .map_or(0.0, |run| run.timings.mean().as_secs_f64());
            let rows: Vec<Vec<String>> = self
                .runs
                .iter()
                .filter(|run| run.context == context)
                .map(|run| {
                    let timings = &run.timings;
                    vec![
                        run.label.clone(),
                        milliseconds(timings.total()),
                        milliseconds(timings.mean()),
                        milliseconds(timings.percentile(50.0)),
                        milliseconds(timings.percentile(90.0)),
                        milliseconds(timings.percentile(100.0)),
                        ratio(timings.mean().as_secs_f64(), sluice_mean),
                    ]
                })
                .collect();
            print_table(
                &[
                    "engine",
                    "all plans",
                    "mean",
                    "median",
                    "p90",
                    "max",
                    "mean vs sluice",
                ],
                &rows,
            );
        }
    }

    pub fn print_agreement(&self) {
        println!();
        println!("## Agreement with regopy");
        println!();
        let rows: Vec<Vec<String>> = self
            .agreements
            .iter()
            .map(|agreement| {
                let errors = |label: &str| {
                    self.run(&agreement.context, label)
                        .map_or("-".to_owned(), |run| run.plans_with_errors.to_string())
                };
                vec![
                    format!("{}, {}", agreement.context, agreement.label),
                    agreement.plans.to_string(),
                    self.rules.len().to_string(),
                    format!("{} / {}", errors(SLUICE), errors(&agreement.label)),
                    agreement.mismatches.len().to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "context, engine",
                "plans",
                "rules",
                "plans with errors (sluice / regopy)",
                "mismatches",
            ],
            &rows,
        );
        for agreement in &self.agreements {
            for mismatch in agreement.mismatches.iter().take(10) {
                println!(
                    "mismatch ({}, {}): {mismatch}",
                    agreement.context, agreement.label
                );
            }
        }
        println!();
        println!("findings per rule over all plans (sluice / regopy query / regopy bundle):");
        println!();
        let mut contexts: Vec<&str> = Vec::new();
        for run in &self.runs {
            if !contexts.contains(&run.context.as_str()) {
                contexts.push(&run.context);
            }
        }
        let mut headers = vec!["rule".to_owned()];
        headers.extend(contexts.iter().map(|context| (*context).to_owned()));
        let rows: Vec<Vec<String>> = self
            .rules
            .iter()
            .map(|rule| {
                let mut row = vec![rule.clone()];
                for context in &contexts {
                    let counts: Vec<String> = [SLUICE, "regopy (query)", "regopy (bundle)"]
                        .iter()
                        .filter_map(|label| self.run(context, label))
                        .map(|run| {
                            run.findings_by_rule
                                .get(rule)
                                .copied()
                                .unwrap_or(0)
                                .to_string()
                        })
                        .collect();
                    row.push(counts.join(" / "));
                }
                row
            })
            .collect();
        let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        print_table(&header_refs, &rows);
    }

    /// The ratios the issue sets targets for: how many times faster sluice is.
    pub fn print_targets(&self, context: &str, whole: &Whole, plans: usize) {
        println!();
        println!("## Against the targets ({context}; \"x\" = how many times faster sluice is)");
        println!();
        let Some(sluice) = self.run(context, SLUICE) else {
            return;
        };
        let sluice_mean = sluice.timings.mean().as_secs_f64();
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut row = |comparison: String, theirs: f64, ours: f64, target: f64| {
            let met = if theirs / ours >= target {
                "met"
            } else {
                "NOT met"
            };
            rows.push(vec![
                comparison,
                ratio(theirs, ours),
                format!("≥ {target}x: {met}"),
            ]);
        };
        for mode in ["query", "bundle"] {
            if let Some(run) = self.run(context, &format!("regopy ({mode})")) {
                row(
                    format!("regopy ({mode}) per plan in process vs sluice per plan in process"),
                    run.timings.mean().as_secs_f64(),
                    sluice_mean,
                    1.0,
                );
            }
        }
        if let Some(sluice_whole) = whole.sluice_in_process {
            for (mode, regopy_process) in &whole.regopy {
                row(
                    format!("regopy ({mode}) whole process vs sluice load + compile + all plans"),
                    regopy_process.as_secs_f64(),
                    sluice_whole.as_secs_f64(),
                    1.0,
                );
            }
        }
        if let Some(checkov) = &whole.checkov_per_file {
            row(
                "checkov -f per plan (process) vs sluice per plan in process".to_owned(),
                checkov.mean().as_secs_f64(),
                sluice_mean,
                10.0,
            );
            if let Some(cli) = &whole.sluice_cli {
                row(
                    "checkov -f per plan (process) vs sluice policy check per plan (process)"
                        .to_owned(),
                    checkov.mean().as_secs_f64(),
                    cli.mean().as_secs_f64(),
                    10.0,
                );
            }
        }
        if let (Some(directory), Some(sluice_whole)) =
            (whole.checkov_directory, whole.sluice_in_process)
        {
            row(
                "checkov -d per plan vs sluice load + compile + all plans, per plan".to_owned(),
                directory.as_secs_f64() / plans as f64,
                sluice_whole.as_secs_f64() / plans as f64,
                10.0,
            );
        }
        print_table(&["comparison", "sluice faster by", "target"], &rows);
    }
}
