//! `sluice plan --env NAME [--dir PATH]`: the `terraform` step's plan, run locally on the working
//! tree: init, validate, plan, show, the summary and the policy findings, printed. Nothing is
//! stored and no lock is taken; exit 1 on any deny or policy error.

use crate::policy::{PolicyContext, SystemClock};
use crate::terraform::{TerraformJob, operations};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The environment whose `terraform:` section to use (`environments/NAME.yaml`).
    #[arg(long = "env")]
    pub environment: String,
    /// Plan this directory instead of the environment's `terraform.dir` (relative to the root).
    #[arg(long)]
    pub dir: Option<String>,
    /// The repository root holding environments/, policies/ and the Terraform.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// The folder of `.rego` policies and data files (default: `policies` under the root).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Where the plugin cache and the local state live.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: PlanArgs) -> anyhow::Result<bool> {
    let mut settings = crate::steps::terraform::load_settings(&args.root, &args.environment)
        .map_err(|message| anyhow::anyhow!("{message}"))?;
    if let Some(dir) = &args.dir {
        settings.dir = dir.trim_end_matches('/').to_owned();
    }
    let (line_sender, mut line_receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let printer = tokio::spawn(async move {
        while let Some(line) = line_receiver.recv().await {
            // Each line arrives with its line break, as a job's log stores it.
            eprint!("{line}");
        }
    });
    let job = TerraformJob {
        settings,
        repository: "local/working-tree".to_owned(),
        checkout: args.root.clone(),
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(super::default_data_dir),
        env: crate::terraform::runner::operator_environment(),
        log: Some(line_sender),
        cancel: Default::default(),
        container: None,
    };
    let mut context = PolicyContext::at(&SystemClock);
    context.environment = Some(args.environment.clone());
    context.event = Some("manual".to_owned());
    let policies = args
        .policies
        .clone()
        .unwrap_or_else(|| args.root.join("policies"));
    let outcome = operations::plan_only(&job, &policies, &context).await;
    drop(job);
    let _ = printer.await;
    let (_, change) = outcome?;
    println!("plan {} ({})", change.sha256, args.environment);
    print!("{}", change.summary_text);
    for line in change.policy_lines() {
        println!("{line}");
    }
    Ok(change.evaluation.passed())
}
