//! The command line: `validate`, `serve`, `run`, `runs`, `logs`, `demo`, `policy`, `plan`, and promotion
//! (`releases`, `status`, `history`, `approve`, `promote`, `rollback`), `token`, `locks`, `unlock` and `migrate`. The only module that
//! prints for humans; everything it does goes through the library's modules.

mod demo;
mod demo_airflow;
mod demo_drift;
mod demo_promotion;
mod demo_pull_request;
mod drift;
mod engine;
mod history;
mod inspect;
mod local_run;
mod locks;
mod migrate;
mod plan;
mod policy;
mod promotion;
mod serve;
mod token;
mod validate;

pub use engine::Engine;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "GitOps CI/CD for machine-learning platforms"
)]
pub struct Cli {
    /// How log lines are written to standard error: `text` for people (coloured only on a
    /// terminal) or `json`, one object per line, for log shippers.
    #[arg(long, global = true, value_enum, env = "SLUICE_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// The format chosen for this process's log lines (text until `main` chose).
pub(crate) fn log_format() -> LogFormat {
    LOG_FORMAT.get().copied().unwrap_or_default()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflows/ and environments/ in DIR and report every problem as path:line:column.
    Validate {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run the webhook server.
    Serve(serve::ServeArgs),
    /// Run the pipelines for one commit locally, exactly as the server would.
    Run(local_run::RunArgs),
    /// List recorded runs, newest first.
    Runs(inspect::RunsArgs),
    /// Print a run's job logs.
    Logs(inspect::LogsArgs),
    /// The whole flow on the bundled example platform: pull requests with their Terraform plans and
    /// comment, merges promoted through dev, staging and production, and a rollback.
    Demo(demo::DemoArgs),
    /// Rego policies: check a Terraform plan against them, or run their unit tests.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The releases cut from merges, newest first.
    Releases(promotion::StoreArgs),
    /// Each environment's release, health, pending gates and locks.
    Status(promotion::StoreArgs),
    /// Every deployment and gate decision: who, what, when, why, and the outcome (`--models`: every
    /// move of a registered model's alias).
    History(promotion::HistoryArgs),
    /// Approve a release for an environment.
    Approve(promotion::ApproveArgs),
    /// Deploy a release to an environment now, outside automatic promotion.
    Promote(promotion::PromoteArgs),
    /// Return an environment to an earlier release and reject the current one.
    Rollback(promotion::RollbackArgs),
    /// Compare environments with the releases they run in every domain (Terraform, Kubernetes,
    /// Airflow, MLflow) and heal what `drift.heal` allows; exit 1 while drift remains.
    Drift(drift::DriftArgs),
    /// Plan an environment's Terraform on the working tree and check the policies (exit 1 on deny).
    Plan(plan::PlanArgs),
    /// Every Terraform lock: repository, environment, dir, holder, age, lease and queue.
    Locks(locks::LocksArgs),
    /// Release one Terraform lock, whoever holds it; its queue stays.
    Unlock(locks::UnlockArgs),
    /// Personal API tokens: create (printed once), list, revoke.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Copy an installation's history from its SQLite file into an empty PostgreSQL database.
    Migrate(migrate::MigrateArgs),
}

/// Where runs and mirrors live unless `--data-dir` says otherwise.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("sluice");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/sluice"),
        None => PathBuf::from(".sluice"),
    }
}

/// Parses the arguments, runs the command, and turns the outcome into an exit code:
/// 0 success, 1 a failed check or run, 2 a usage or set-up error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Validate { dir } => validate::run(&dir),
        Command::Serve(args) => runtime().and_then(|runtime| runtime.block_on(serve::run(args))),
        Command::Run(args) => runtime().and_then(|runtime| runtime.block_on(local_run::run(args))),
        Command::Runs(args) => inspect::runs(args),
        Command::Logs(args) => inspect::logs(args),
        Command::Demo(args) => {
            demo::ensure_plan_key();
            runtime().and_then(|runtime| runtime.block_on(demo::run(args)))
        }
        Command::Policy(command) => policy::run(command),
        Command::Releases(args) => promotion::releases(args),
        Command::Status(args) => promotion::status(args),
        Command::History(args) => promotion::history(args),
        Command::Approve(args) => promotion::approve(args),
        Command::Promote(args) => promotion::promote(args),
        Command::Rollback(args) => promotion::rollback(args),
        Command::Drift(args) => runtime().and_then(|runtime| runtime.block_on(drift::run(args))),
        Command::Plan(args) => runtime().and_then(|runtime| runtime.block_on(plan::run(args))),
        Command::Token(command) => token::run(command),
        Command::Locks(args) => locks::list(args),
        Command::Unlock(args) => locks::unlock(args),
        Command::Migrate(args) => migrate::run(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Log lines go to standard error. Text is coloured only when standard error is a terminal (and
/// `NO_COLOR` is not set), so files and pipes get no escape codes.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let _ = LOG_FORMAT.set(format);
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
            subscriber.with_ansi(colour).try_init()
        }
        LogFormat::Json => subscriber.json().try_init(),
    };
}
