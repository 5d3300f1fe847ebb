//! `sluice history ENV --models`: what happened in an environment, read from the store and
//! printed for humans (or JSON). So far it shows the registered-model alias moves.

use crate::store::AliasMoveFilter;
use crate::targets::mlflow::render_history;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The environment, as named in environments/<name>.yaml.
    pub environment: String,
    /// Show the registered-model alias moves (from which version to which, by which release, when).
    #[arg(long)]
    pub models: bool,
    /// Only this model.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn run(args: HistoryArgs) -> anyhow::Result<bool> {
    if !args.models {
        anyhow::bail!(
            "say which history to show: `sluice history {} --models` shows the model alias moves",
            args.environment
        );
    }
    let data_dir = args.data_dir.unwrap_or_else(super::default_data_dir);
    let database = data_dir.join("sluice.db");
    if !database.exists() && !crate::store::database_url_is_set() {
        anyhow::bail!(
            "no sluice data in {}; run `sluice serve` first, or pass --data-dir (or set SLUICE_DATABASE_URL to the server's PostgreSQL database)",
            data_dir.display()
        );
    }
    let store = crate::store::open(&database)?;
    let moves = store.alias_moves(&AliasMoveFilter {
        environment: Some(args.environment.clone()),
        model: args.model,
        alias: None,
        limit: Some(args.limit),
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&moves)?);
    } else {
        print!("{}", render_history(&args.environment, &moves));
    }
    Ok(true)
}
