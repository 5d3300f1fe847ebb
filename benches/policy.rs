//! Policy benchmark: the default Terraform policy set (`policies/terraform`) over the 121 real
//! plans of `tests/fixtures/terraform-plans`, evaluated by sluice (in process, the real
//! `sluice::policy` API, a fresh evaluation per plan; and `sluice policy check`, a process per
//! plan), by regopy (Microsoft's rego-cpp; same modules, data and inputs; one Python process
//! timing its own loop, and the whole process), and by checkov (its own built-in checks for
//! `terraform_plan`; a process per plan, and the directory form once). Every plan's messages,
//! rule by rule, must be equal in sluice and regopy; the mismatch count is printed and any
//! mismatch fails the run.
//!
//! Run with `scripts/bench-policy.sh` (installs regopy and checkov into virtual environments)
//! or `cargo bench --bench policy`. Settings: `BENCH_REPEATS` (passes over the plans for sluice,
//! default 11), `BENCH_REGOPY_REPEATS` (the same for regopy, default 1), `BENCH_CONTEXTS` (1 runs
//! only the first context; default 2), `BENCH_REGOPY_MODES` (default `query,bundle`),
//! `BENCH_CHECKOV_FILES` (how many plans, spread evenly over the sorted list, checkov checks one
//! process each; default all), `SLUICE_REGOPY_PYTHON`, `SLUICE_CHECKOV`.

#[path = "policy/checkov.rs"]
mod checkov;
#[path = "common/machine.rs"]
mod machine;
#[path = "policy/regopy.rs"]
mod regopy;
#[path = "policy/report.rs"]
mod report;
#[path = "policy/samples.rs"]
mod samples;
#[path = "policy/sluice_peer.rs"]
mod sluice_peer;
#[path = "common/table.rs"]
mod table;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sluice::policy::{FixedClock, PolicyContext};
use std::path::{Path, PathBuf};
use table::{milliseconds, print_table};

/// A context the policies run in, with the same context as `sluice policy check` flags.
struct NamedContext {
    name: &'static str,
    context: PolicyContext,
    flags: Vec<String>,
}

fn named_context(name: &'static str, environment: &str, event: &str, time: &str) -> NamedContext {
    let instant: DateTime<Utc> = DateTime::parse_from_rfc3339(time)
        .expect("a valid time")
        .with_timezone(&Utc);
    let mut context = PolicyContext::at(&FixedClock(instant));
    context.environment = Some(environment.to_owned());
    context.event = Some(event.to_owned());
    context.author = Some("alice".to_owned());
    context.commit = Some("3f9c2ab".to_owned());
    let flags = [
        "--env",
        environment,
        "--event",
        event,
        "--author",
        "alice",
        "--commit",
        "3f9c2ab",
        "--time",
        time,
    ]
    .map(str::to_owned)
    .to_vec();
    NamedContext {
        name,
        context,
        flags,
    }
}

fn setting(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
}

fn main() -> anyhow::Result<()> {
    let repeats = setting("BENCH_REPEATS").unwrap_or(11).max(1);
    // rego-cpp takes a large fraction of a second per plan: one pass by default.
    let regopy_repeats = setting("BENCH_REGOPY_REPEATS").unwrap_or(1).max(1);
    let repository_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let policy_directory = repository_root.join("policies/terraform");
    let plans_directory = repository_root.join("tests/fixtures/terraform-plans");
    let plan_paths = plan_files(&plans_directory)?;
    let plan_texts: Vec<String> = plan_paths
        .iter()
        .map(std::fs::read_to_string)
        .collect::<Result<_, _>>()
        .context("reading the plans")?;
    let plan_bytes: usize = plan_texts.iter().map(String::len).sum();
    let checkov_files = setting("BENCH_CHECKOV_FILES")
        .unwrap_or(plan_paths.len())
        .min(plan_paths.len());

    println!("machine: {}", machine::describe());
    println!(
        "plans: {} files in {} ({:.1} MiB); policies: {}",
        plan_paths.len(),
        plans_directory.display(),
        plan_bytes as f64 / (1024.0 * 1024.0),
        policy_directory.display()
    );
    let compiled = sluice_peer::compile(&policy_directory, repeats)?;
    let rules: Vec<String> = compiled
        .policy_set
        .rules()
        .iter()
        .map(|rule| rule.path())
        .collect();
    println!(
        "sluice: {} modules, {} rules ({}); load + compile {} (median of {repeats})",
        compiled.sources.modules.len(),
        rules.len(),
        rules.join(", "),
        milliseconds(compiled.compile)
    );
    let regopy_python = regopy::find_python(&repository_root);
    let checkov_found = checkov::find(&repository_root);
    match &regopy_python {
        Ok(python) => println!("regopy: {}", python.display()),
        Err(reason) => println!("regopy: skipped: {reason}"),
    }
    match &checkov_found {
        Ok((path, version)) => println!("checkov: {version} at {}", path.display()),
        Err(reason) => println!("checkov: skipped: {reason}"),
    }
    println!(
        "per plan: median of {repeats} passes over all plans for sluice, {regopy_repeats} for \
         regopy; each timed step parses the plan's JSON text (already in memory) and evaluates \
         every rule"
    );

    let contexts = [
        named_context(
            "production, merge, Friday",
            "production",
            "merge",
            "2025-01-03T16:00:00Z",
        ),
        named_context(
            "dev, pull_request, Thursday",
            "dev",
            "pull_request",
            "2025-01-02T10:00:00Z",
        ),
    ];
    let context_count = setting("BENCH_CONTEXTS")
        .unwrap_or(contexts.len())
        .clamp(1, contexts.len());
    let regopy_modes: Vec<String> = std::env::var("BENCH_REGOPY_MODES")
        .unwrap_or_else(|_| "query,bundle".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut report = report::Report::new(rules.clone());
    for named in &contexts[..context_count] {
        let sluice_run =
            sluice_peer::evaluate_all(&compiled.policy_set, &plan_texts, &named.context, repeats)?;
        report.add_engine(
            named.name,
            report::SLUICE,
            &sluice_run.timings,
            &sluice_run.verdicts,
        );
        let Ok(python) = &regopy_python else {
            continue;
        };
        let mut data = compiled.sources.data.clone();
        let conflicts = sluice::policy::merge_data(&mut data, named.context.to_data(), "context");
        anyhow::ensure!(
            conflicts.is_empty(),
            "the context conflicts with the data files"
        );
        let job = regopy::Job {
            modules: &compiled.sources.modules,
            data: &data,
            rules: &rules,
            plan_paths: &plan_paths,
        };
        for mode in &regopy_modes {
            let label = format!("regopy ({mode})");
            match regopy::run(python, &job, mode, regopy_repeats) {
                Ok(run) => {
                    report.add_engine(named.name, &label, &run.timings, &run.verdicts);
                    report.add_process(named.name, mode, run.process, run.setup);
                    report.compare(
                        named.name,
                        &label,
                        &plan_paths,
                        &sluice_run.verdicts,
                        &run.verdicts,
                    );
                }
                Err(error) => report.add_failure(named.name, &label, &format!("{error:#}")),
            }
        }
    }
    report.print_per_plan_tables();
    report.print_agreement();

    // Whole processes, in the first context only: what one CI step costs.
    println!();
    println!("## Whole processes ({})", contexts[0].name);
    println!();
    let first = &contexts[0];
    let mut process_rows: Vec<Vec<String>> = Vec::new();
    let mut whole = report::Whole::default();
    whole.sluice_in_process = Some(compiled.compile + report.sluice_total(first.name));
    process_rows.push(vec![
        "sluice in process: load + compile once, then all plans".to_owned(),
        milliseconds(whole.sluice_in_process.unwrap_or_default()),
        milliseconds(whole.sluice_in_process.unwrap_or_default() / plan_paths.len() as u32),
    ]);
    let cli = sluice_peer::cli_per_plan(&policy_directory, &plan_paths, &first.flags)?;
    process_rows.push(vec![
        "sluice policy check: one process per plan (sum; mean per plan)".to_owned(),
        milliseconds(cli.total()),
        milliseconds(cli.mean()),
    ]);
    whole.sluice_cli = Some(cli.clone());
    for (mode, process, setup) in report.regopy_processes(first.name) {
        process_rows.push(vec![
            format!(
                "regopy ({mode}): one Python process, {regopy_repeats} pass(es) over all plans (setup {})",
                milliseconds(setup)
            ),
            milliseconds(process),
            milliseconds(process / (plan_paths.len() * regopy_repeats) as u32),
        ]);
        whole.regopy.push((mode, process / regopy_repeats as u32));
    }
    if let Ok((checkov_path, _)) = &checkov_found {
        // An even spread over the sorted plans when not all are checked.
        let sampled: Vec<PathBuf> = (0..checkov_files)
            .map(|index| plan_paths[index * plan_paths.len() / checkov_files].clone())
            .collect();
        let (per_file, per_file_counts) = checkov::per_file(checkov_path, &sampled)?;
        process_rows.push(vec![
            format!(
                "checkov -f: one process per plan, {checkov_files} plans (sum; mean per plan; {} passed, {} failed checks)",
                per_file_counts.passed, per_file_counts.failed
            ),
            milliseconds(per_file.total()),
            milliseconds(per_file.mean()),
        ]);
        let (directory_time, directory_counts) =
            checkov::directory(checkov_path, &plans_directory)?;
        process_rows.push(vec![
            format!(
                "checkov -d: one process, all plans ({} resources, {} passed, {} failed checks, {} parsing errors)",
                directory_counts.resources, directory_counts.passed, directory_counts.failed, directory_counts.parsing_errors
            ),
            milliseconds(directory_time),
            milliseconds(directory_time / plan_paths.len() as u32),
        ]);
        whole.checkov_per_file = Some(per_file);
        whole.checkov_directory = Some(directory_time);
    }
    print_table(&["process", "wall time", "per plan"], &process_rows);
    report.print_targets(first.name, &whole, plan_paths.len());
    println!();
    println!("load average after: {}", machine::load_average());
    let mismatches = report.mismatch_count();
    anyhow::ensure!(
        mismatches == 0,
        "{mismatches} plan/rule result(s) differ between sluice and regopy; see above"
    );
    Ok(())
}

fn plan_files(directory: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(directory)
        .with_context(|| format!("reading {}", directory.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<PathBuf>, _>>()?
        .into_iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    anyhow::ensure!(!paths.is_empty(), "no plans in {}", directory.display());
    Ok(paths)
}
