//! `sluice locks` and `sluice unlock`: the Terraform locks on the data directory, who holds them,
//! for how long and who waits behind; releasing one leaves its queue for the head to plan again.

use crate::store::Database;
use crate::terraform::locks::{self, LockView, UnlockWanted};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct LocksArgs {
    /// As JSON (the shape `GET /api/locks` answers).
    #[arg(long)]
    pub json: bool,
    /// Where the server keeps its data (as given to `sluice serve`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    pub environment: String,
    /// OWNER/NAME, when several repositories lock the environment.
    #[arg(long = "repo")]
    pub repository: Option<String>,
    /// Only the lock this pull request holds.
    #[arg(long)]
    pub pull_request: Option<u64>,
    /// The Terraform directory, when the environment has several locked.
    #[arg(long)]
    pub dir: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

fn open(data_dir: &Option<PathBuf>) -> anyhow::Result<Arc<dyn Database>> {
    let data_dir = data_dir.clone().unwrap_or_else(super::default_data_dir);
    let database = data_dir.join("sluice.db");
    if !database.exists() && !crate::store::database_url_is_set() {
        anyhow::bail!(
            "no sluice data in {}; pass --data-dir as given to `sluice serve` (or set SLUICE_DATABASE_URL to its PostgreSQL database)",
            data_dir.display()
        );
    }
    Ok(crate::store::open(&database)?)
}

pub fn list(args: LocksArgs) -> anyhow::Result<bool> {
    let store = open(&args.data_dir)?;
    let views = locks::list(store.as_ref(), chrono::Utc::now())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else {
        print!("{}", render(&views));
    }
    Ok(true)
}

fn age(seconds: i64) -> String {
    match seconds {
        ..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
        _ => format!("{}d{:02}h", seconds / 86_400, (seconds % 86_400) / 3600),
    }
}

/// One line per lock, its queue indented below it.
pub fn render(views: &[LockView]) -> String {
    if views.is_empty() {
        return "no terraform locks are held\n".to_owned();
    }
    let mut text = format!(
        "{:<24} {:<12} {:<20} {:<22} {:<17} {:<7} {}\n",
        "REPOSITORY", "ENVIRONMENT", "DIR", "HOLDER", "ACQUIRED", "AGE", "LEASE EXPIRES"
    );
    for view in views {
        text.push_str(&format!(
            "{:<24} {:<12} {:<20} {:<22} {:<17} {:<7} {}{}\n",
            view.repository,
            view.environment,
            view.dir,
            view.holder.label,
            view.acquired_at.format("%Y-%m-%d %H:%M"),
            age(view.age_seconds),
            view.lease_expires_at.format("%Y-%m-%d %H:%M"),
            if view.expired { " (expired)" } else { "" }
        ));
        for (position, waiting) in view.queue.iter().enumerate() {
            text.push_str(&format!(
                "    queued {}: {} since {}\n",
                position + 1,
                waiting.label,
                waiting.enqueued_at.format("%Y-%m-%d %H:%M")
            ));
        }
    }
    text
}

pub fn unlock(args: UnlockArgs) -> anyhow::Result<bool> {
    let store = open(&args.data_dir)?;
    let released = locks::unlock_one(
        store.as_ref(),
        &UnlockWanted {
            repository: args.repository.as_deref(),
            environment: &args.environment,
            pull_request: args.pull_request,
            dir: args.dir.as_deref(),
        },
    )?;
    println!(
        "{}",
        locks::unlocked_message(&released.lock, released.queue.len())
    );
    Ok(true)
}
