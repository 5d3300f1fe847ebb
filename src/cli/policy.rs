//! `sluice policy check` and `sluice policy test`: Rego policies from the command line. Prints
//! for humans (or JSON with `--json`); the evaluation itself is `crate::policy`'s. `check` takes
//! the whole policy input (`--input`) or a Terraform plan (`--terraform-plan`, alias `--plan`),
//! which it wraps as `{"terraform": plan}`.

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
    /// Check a policy input (`--input`, `{"terraform": ..., "kubernetes": ..., "airflow": ...,
    /// "mlflow": ...}`) or a Terraform plan (`--terraform-plan`, `terraform show -json` output)
    /// against the policies: print every deny and warning with its rule, exit 1 on any deny or
    /// policy error.
    Check(CheckArgs),
    /// Run the `test_*` rules of the policies and their `*_test.rego` files, like `opa test`.
    Test(TestArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("document").required(true).args(["input", "terraform_plan"])))]
pub struct CheckArgs {
    /// The whole policy input as JSON: an object with any of `terraform`, `kubernetes`, `airflow`
    /// and `mlflow`. A Terraform plan given here is checked as `{"terraform": plan}`, with a note.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// A Terraform plan as JSON (`terraform show -json PLANFILE > plan.json`), checked as
    /// `{"terraform": plan}`.
    #[arg(long = "terraform-plan", visible_alias = "plan")]
    pub terraform_plan: Option<PathBuf>,
    /// The environment checked (`data.sluice.context.environment`).
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
    /// The commit checked (`data.sluice.context.commit`).
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

impl CheckArgs {
    /// The file checked, as given.
    fn document(&self) -> &Path {
        self.input
            .as_deref()
            .or(self.terraform_plan.as_deref())
            .unwrap_or(Path::new("-"))
    }
}

/// Reads the document to check and makes it sluice's policy input: a `--terraform-plan` file is
/// wrapped as `{"terraform": plan}`; an `--input` file is the input itself, unless it is a plan
/// (`format_version` and `resource_changes` or `planned_values`), which is wrapped with a note on
/// stderr. An input none of whose keys is a domain gets a note too: no policy reads it.
fn read_input(args: &CheckArgs) -> anyhow::Result<serde_json::Value> {
    let path = args.document();
    let is_plan = args.terraform_plan.is_some();
    let text = std::fs::read_to_string(path).with_context(|| {
        if is_plan {
            format!(
                "cannot read the plan {}; write it with `terraform show -json PLANFILE > plan.json`",
                path.display()
            )
        } else {
            format!("cannot read the policy input {}", path.display())
        }
    })?;
    let document: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        if is_plan {
            format!(
                "the plan {} is not JSON; pass the output of `terraform show -json PLANFILE`, not the binary plan file",
                path.display()
            )
        } else {
            format!(
                "the policy input {} is not JSON; write an object with any of `terraform`, `kubernetes`, `airflow` and `mlflow`",
                path.display()
            )
        }
    })?;
    if is_plan {
        return Ok(policy::terraform_input(&document));
    }
    if policy::is_terraform_plan(&document) {
        eprintln!(
            "note: {} is a Terraform plan (`terraform show -json`), not a whole policy input; checking it as {{\"terraform\": <plan>}} (pass it with --terraform-plan to say so)",
            path.display()
        );
        return Ok(policy::terraform_input(&document));
    }
    if !document.is_object() {
        anyhow::bail!(
            "the policy input {} is not a JSON object; write an object with any of `terraform`, `kubernetes`, `airflow` and `mlflow`",
            path.display()
        );
    }
    if policy::domains_of(&document).is_empty() {
        eprintln!(
            "note: {} has none of `terraform`, `kubernetes`, `airflow` and `mlflow`, so no policy reads it; a Terraform plan goes under `terraform` (or pass it with --terraform-plan)",
            path.display()
        );
    }
    Ok(document)
}

fn check(args: CheckArgs) -> anyhow::Result<bool> {
    let input = read_input(&args)?;
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
        Ok(policy_set) => policy_set.evaluate(&input, &context),
        Err(errors) => Evaluation {
            errors: errors.0,
            ..Evaluation::default()
        },
    };
    if args.json {
        print_check_json(&args, &input, &evaluation);
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
        args.document().display(),
        args.environment
            .as_deref()
            .map(|environment| format!(" ({environment})"))
            .unwrap_or_default(),
        evaluation.errors.len(),
        evaluation.rules_evaluated,
    );
}

fn print_check_json(args: &CheckArgs, input: &serde_json::Value, evaluation: &Evaluation) {
    let document = json!({
        "input": args.document().display().to_string(),
        "domains": policy::domains_of(input),
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
