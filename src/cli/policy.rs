//! `sluice policy check` and `sluice policy test`: Rego policies from the command line. Prints
//! for humans (or JSON with `--json`); the evaluation itself is `crate::policy`'s.

use crate::policy::{
    self, Evaluation, FixedClock, PolicyContext, PolicyError, PolicySet, Severity, SystemClock,
    TestOutcome, TestReport,
};
use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a Terraform plan (`terraform show -json` output) against the policies: print every
    /// deny and warning with its rule, exit 1 on any deny or policy error.
    Check(CheckArgs),
    /// Run the `test_*` rules of the policies and their `*_test.rego` files, like `opa test`.
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plan as JSON: `terraform show -json PLANFILE > plan.json`.
    #[arg(long)]
    pub plan: PathBuf,
    /// The environment the plan is for (`data.sluice.context.environment`).
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// The folder of `.rego` and data files.
    #[arg(long, default_value = "policies")]
    pub policies: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// The event being checked (`data.sluice.context.event`): pull_request, push, merge, manual.
    #[arg(long, default_value = "manual")]
    pub event: String,
    /// Who made the change (`data.sluice.context.author`).
    #[arg(long)]
    pub author: Option<String>,
    /// The commit the plan was made from (`data.sluice.context.commit`).
    #[arg(long)]
    pub commit: Option<String>,
    /// Someone who approved the change (`data.sluice.context.approvals`); repeat for several.
    #[arg(long = "approved-by")]
    pub approvals: Vec<String>,
    /// Check as if at this time (RFC 3339, e.g. 2025-01-03T16:00:00Z) instead of now.
    #[arg(long)]
    pub time: Option<String>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The folder of `.rego` files and their tests.
    #[arg(default_value = "policies")]
    pub dir: PathBuf,
}

pub fn run(command: PolicyCommand) -> anyhow::Result<bool> {
    match command {
        PolicyCommand::Check(args) => check(args),
        PolicyCommand::Test(args) => test(&args.dir),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<bool> {
    let plan_text = std::fs::read_to_string(&args.plan).with_context(|| {
        format!(
            "cannot read the plan {}; write it with `terraform show -json PLANFILE > plan.json`",
            args.plan.display()
        )
    })?;
    let plan: serde_json::Value = serde_json::from_str(&plan_text).with_context(|| {
        format!(
            "the plan {} is not JSON; pass the output of `terraform show -json PLANFILE`, not the binary plan file",
            args.plan.display()
        )
    })?;
    let mut context = match &args.time {
        Some(time) => {
            let instant = chrono::DateTime::parse_from_rfc3339(time).with_context(|| {
                format!("--time {time} is not an RFC 3339 time; write e.g. 2025-01-03T16:00:00Z")
            })?;
            PolicyContext::at(&FixedClock(instant.with_timezone(&chrono::Utc)))
        }
        None => PolicyContext::at(&SystemClock),
    };
    context.environment = args.environment.clone();
    context.event = Some(args.event.clone());
    context.author = args.author.clone();
    context.commit = args.commit.clone();
    context.approvals = args.approvals.clone();

    let evaluation = match policy::load_sources(&args.policies)
        .and_then(|sources| PolicySet::compile(&sources))
    {
        Ok(policy_set) => policy_set.evaluate(&plan, &context),
        Err(errors) => Evaluation {
            errors: errors.0,
            ..Evaluation::default()
        },
    };
    if args.json {
        print_check_json(&args, &evaluation);
    } else {
        print_check_text(&args, &evaluation);
    }
    Ok(evaluation.passed())
}

fn print_check_text(args: &CheckArgs, evaluation: &Evaluation) {
    for finding in &evaluation.findings {
        let label = match finding.severity {
            Severity::Deny => "DENY",
            Severity::Warn => "WARN",
        };
        println!("{label:<5} {}: {}", finding.rule, finding.message);
    }
    for error in &evaluation.errors {
        println!("ERROR {error}");
    }
    let denials = evaluation.denials().count();
    let warnings = evaluation.warnings().count();
    let verdict = if evaluation.passed() {
        "passed"
    } else {
        "FAILED"
    };
    println!(
        "{}{}: {denials} denied, {warnings} warning(s), {} error(s), {} rule(s) evaluated: {verdict}",
        args.plan.display(),
        args.environment
            .as_deref()
            .map(|environment| format!(" ({environment})"))
            .unwrap_or_default(),
        evaluation.errors.len(),
        evaluation.rules_evaluated,
    );
}

fn print_check_json(args: &CheckArgs, evaluation: &Evaluation) {
    let document = json!({
        "plan": args.plan.display().to_string(),
        "environment": args.environment,
        "passed": evaluation.passed(),
        "denials": evaluation.denials().count(),
        "warnings": evaluation.warnings().count(),
        "rules_evaluated": evaluation.rules_evaluated,
        "findings": evaluation.findings,
        "errors": evaluation.errors.iter().map(error_json).collect::<Vec<_>>(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&document).unwrap_or_default()
    );
}

fn error_json(error: &PolicyError) -> serde_json::Value {
    let mut value = serde_json::to_value(error).unwrap_or_default();
    value["location"] = json!(error.location());
    value
}

fn test(dir: &Path) -> anyhow::Result<bool> {
    let report = match policy::load_sources(dir).and_then(|sources| policy::run_tests(&sources)) {
        Ok(report) => report,
        Err(errors) => {
            for error in &errors.0 {
                println!("ERROR {error}");
            }
            println!(
                "{}: the policies do not compile; no test ran",
                dir.display()
            );
            return Ok(false);
        }
    };
    print_test_report(dir, &report);
    Ok(report.passed())
}

fn print_test_report(dir: &Path, report: &TestReport) {
    for result in &report.results {
        let location = format!("{}:{}", result.file, result.line);
        match &result.outcome {
            TestOutcome::Pass => println!("PASS  {}  ({location})", result.path()),
            TestOutcome::Fail => println!("FAIL  {}  ({location})", result.path()),
            TestOutcome::Skip => println!("SKIP  {}  ({location})", result.path()),
            TestOutcome::Error(error) => println!("ERROR {}: {error}", result.path()),
        }
    }
    println!("{}", "-".repeat(72));
    println!(
        "{}: PASS: {}/{}  FAIL: {}  ERROR: {}  SKIP: {}",
        dir.display(),
        report.passed_count(),
        report.results.len(),
        report.failed_count(),
        report.error_count(),
        report.skipped_count(),
    );
}
