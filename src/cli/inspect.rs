//! `sluice runs` and `sluice logs`: read the store, print for humans (or JSON).

use crate::store::{Database, RunFilter};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[arg(long)]
    pub repository: Option<String>,
    #[arg(long)]
    pub commit: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run id (see `sluice runs`).
    pub run: i64,
    /// One job; all jobs when omitted.
    pub job: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

fn open_store(data_dir: Option<PathBuf>) -> anyhow::Result<Arc<dyn Database>> {
    let data_dir = data_dir.unwrap_or_else(super::default_data_dir);
    let database = data_dir.join("sluice.db");
    if !database.exists() && !crate::store::database_url_is_set() {
        anyhow::bail!(
            "no sluice data in {}; run `sluice run` or `sluice serve` first, or pass --data-dir (or set SLUICE_DATABASE_URL to the server's PostgreSQL database)",
            data_dir.display()
        );
    }
    Ok(crate::store::open(&database)?)
}

pub fn runs(args: RunsArgs) -> anyhow::Result<bool> {
    let store = open_store(args.data_dir)?;
    let runs = store.list_runs(&RunFilter {
        repository: args.repository,
        commit: args.commit,
        limit: Some(args.limit),
        ..Default::default()
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(true);
    }
    if runs.is_empty() {
        println!("no runs recorded");
    }
    for run in runs {
        let jobs: Vec<String> = run
            .jobs
            .iter()
            .map(|job| format!("{}={}", job.name, job.status))
            .collect();
        println!(
            "{:>5}  {:<10} {:<24} {:<13} {} {}  {}",
            run.id,
            run.status.as_str(),
            run.pipeline,
            run.event.as_str(),
            crate::model::short_commit(&run.commit),
            run.created_at.format("%Y-%m-%d %H:%M:%S"),
            jobs.join(" ")
        );
    }
    Ok(true)
}

pub fn logs(args: LogsArgs) -> anyhow::Result<bool> {
    let store = open_store(args.data_dir)?;
    let run = store.get_run(args.run)?.ok_or_else(|| {
        anyhow::anyhow!("no run with id {}; list them with `sluice runs`", args.run)
    })?;
    let jobs: Vec<String> = match &args.job {
        Some(job) => {
            if !run.jobs.iter().any(|record| &record.name == job) {
                let names: Vec<&str> = run.jobs.iter().map(|record| record.name.as_str()).collect();
                anyhow::bail!(
                    "run {} has no job `{job}`; its jobs are: {}",
                    run.id,
                    names.join(", ")
                );
            }
            vec![job.clone()]
        }
        None => run.jobs.iter().map(|job| job.name.clone()).collect(),
    };
    for job in jobs {
        let log = store.job_log(run.id, &job)?.unwrap_or_default();
        if args.job.is_none() {
            println!("==> {job} <==");
        }
        print!("{log}");
    }
    Ok(true)
}
