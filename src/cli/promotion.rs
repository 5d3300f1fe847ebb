//! `sluice releases`, `status`, `history`, `approve`, `promote` and `rollback`: promotion seen and
//! steered from the command line, on the same store the server uses. Requests are recorded and
//! the server carries them out on its next pass. Whoever can write the data directory acts as an
//! admin; history records them as `LOGIN (local)`.

use crate::deploy::actions::{self, ActionError, Force};
use crate::model::access::Principal;
use crate::store::Database;
use crate::store::{CheckOutcome, DeployStore, RequestAction};
use chrono::{TimeZone, Utc};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Where the server keeps its data (as given to `sluice serve`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// OWNER/NAME; needed only when several repositories have releases.
    #[arg(long = "repo")]
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this environment.
    pub environment: Option<String>,
    /// Show the registered-model alias moves instead (from which version to which, by which release, when).
    #[arg(long)]
    pub models: bool,
    /// With --models: only this model.
    #[arg(long)]
    pub model: Option<String>,
    /// With --models: at most this many moves.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// With --models: as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    pub environment: String,
    /// The release (id or commit sha); default: the one waiting at the environment's gate.
    pub release: Option<String>,
    /// Who approves (default: $SLUICE_ACTOR, else $USER); recorded as `LOGIN (local)`.
    #[arg(long = "as")]
    pub actor: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    pub environment: String,
    pub release: String,
    /// Who promotes (default: $SLUICE_ACTOR, else $USER); recorded as `LOGIN (local)`.
    #[arg(long = "as")]
    pub actor: Option<String>,
    /// Skip the environment's gates (soak, approvals, freeze); needs --reason. Git order still holds.
    #[arg(long)]
    pub force: bool,
    /// Why; kept in the history. Required with --force.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub environment: String,
    /// The release to return to; default: the one the environment ran before.
    #[arg(long)]
    pub to: Option<String>,
    /// Who rolls back (default: $SLUICE_ACTOR, else $USER); recorded as `LOGIN (local)`.
    #[arg(long = "as")]
    pub actor: Option<String>,
    /// Why; kept in the history.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

fn open(args: &StoreArgs) -> anyhow::Result<(Arc<dyn Database>, String)> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(super::default_data_dir);
    let database = data_dir.join("sluice.db");
    if !database.exists() && !crate::store::database_url_is_set() {
        anyhow::bail!(
            "no sluice data in {}; pass --data-dir as given to `sluice serve` (or set SLUICE_DATABASE_URL to its PostgreSQL database)",
            data_dir.display()
        );
    }
    let store = crate::store::open(&database)?;
    let repository =
        actions::repository(store.as_ref(), args.repository.as_deref()).map_err(into_anyhow)?;
    Ok((store, repository))
}

fn into_anyhow(error: ActionError) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

/// The person at the keyboard, acting on the data directory (an admin, recorded as local).
pub(super) fn actor(given: &Option<String>) -> Principal {
    let login = given
        .clone()
        .or_else(|| std::env::var("SLUICE_ACTOR").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    Principal::local(&login)
}

fn when(seconds: i64) -> String {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub fn releases(args: StoreArgs) -> anyhow::Result<bool> {
    let (store, repository) = open(&args)?;
    print!("{}", render_releases(store.as_ref(), &repository)?);
    Ok(true)
}

pub fn render_releases(store: &dyn DeployStore, repository: &str) -> anyhow::Result<String> {
    let rejected = store.rejected_releases(repository)?;
    let mut text = format!(
        "{:<20} {:<12} {:<19} {:<10} {}\n",
        "RELEASE", "COMMIT", "CREATED", "AUTHOR", "CONTENTS"
    );
    for release in store.releases(repository)? {
        let mut contents = Vec::new();
        if !release.images.is_empty() {
            contents.push(format!("{} images", release.images.len()));
        }
        if !release.plans.is_empty() {
            contents.push(format!(
                "plans for {}",
                release.plans.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(tree) = &release.dag_tree {
            contents.push(format!("DAGs {}", &tree[..12.min(tree.len())]));
        }
        if !release.models.is_empty() {
            contents.push(format!(
                "model pins for {}",
                release
                    .models
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some((_, why)) = rejected.iter().find(|(id, _)| *id == release.id) {
            contents.push(format!("REJECTED: {why}"));
        }
        text.push_str(&format!(
            "{:<20} {:<12} {:<19} {:<10} {}\n",
            release.id,
            crate::model::short_commit(&release.commit),
            when(release.created_at),
            release.author.as_deref().unwrap_or("-"),
            contents.join("; ")
        ));
    }
    Ok(text)
}

pub fn status(args: StoreArgs) -> anyhow::Result<bool> {
    let (store, repository) = open(&args)?;
    print!("{}", render_status(store.as_ref(), &repository)?);
    Ok(true)
}

pub fn render_status(store: &dyn DeployStore, repository: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    let drift = crate::deploy::drift::view(store, Some(repository), None)?;
    for environment in actions::status(store, repository, &[]).map_err(into_anyhow)? {
        text.push_str(&format!(
            "{:<12} {}\n",
            environment.environment,
            match (&environment.release, environment.healthy_since) {
                (Some(release), Some(since)) =>
                    format!("runs {release}, healthy since {}", when(since)),
                _ => "no release yet".to_owned(),
            }
        ));
        if let Some(deployment) = &environment.deploying {
            text.push_str(&format!(
                "             locked: deploying {} ({}) since {}\n",
                deployment.release,
                deployment.action.as_str(),
                when(deployment.started_at)
            ));
        }
        if let Some((release, reason)) = &environment.waiting {
            text.push_str(&format!("             waiting: {release}: {reason}\n"));
        }
        if let Some(view) = drift
            .iter()
            .find(|view| view.environment == environment.environment)
        {
            for line in drift_lines(view) {
                text.push_str(&format!("             {line}\n"));
            }
        }
    }
    Ok(text)
}

/// What the last drift checks of an environment found, a line per domain that is not clean and
/// one per object that differs.
fn drift_lines(view: &crate::deploy::drift::EnvironmentView) -> Vec<String> {
    let mut lines = Vec::new();
    for domain in &view.domains {
        let checked = when(domain.checked_at);
        match domain.outcome {
            CheckOutcome::Clean => {}
            CheckOutcome::Drifted => lines.push(format!(
                "drift: {}: {} its release (checked {checked})",
                domain.domain,
                crate::deploy::reconcile::drift::differ(domain.drift.len())
            )),
            CheckOutcome::CouldNotCheck => lines.push(format!(
                "drift: {}: could not check at {checked}: {}",
                domain.domain,
                domain.reason.as_deref().unwrap_or("unknown")
            )),
        }
        for record in &domain.drift {
            lines.push(format!(
                "  {}: expected {}, found {} (since {})",
                record.object,
                record.expected,
                record.actual,
                when(record.first_seen)
            ));
        }
    }
    if lines.is_empty() && !view.domains.is_empty() {
        let latest = view.domains.iter().map(|domain| domain.checked_at).max();
        lines.push(format!(
            "drift: none (checked {})",
            when(latest.unwrap_or_default())
        ));
    }
    lines
}

pub fn history(args: HistoryArgs) -> anyhow::Result<bool> {
    if args.models {
        let Some(environment) = args.environment else {
            anyhow::bail!("name the environment: `sluice history ENV --models`");
        };
        return super::history::run(super::history::HistoryArgs {
            environment,
            models: true,
            model: args.model,
            limit: args.limit,
            json: args.json,
            data_dir: args.store.data_dir,
        });
    }
    let (store, repository) = open(&args.store)?;
    print!(
        "{}",
        render_history(store.as_ref(), &repository, args.environment.as_deref())?
    );
    Ok(true)
}

pub fn render_history(
    store: &dyn DeployStore,
    repository: &str,
    environment: Option<&str>,
) -> anyhow::Result<String> {
    let mut text = String::new();
    for entry in store.audit(repository, environment)? {
        text.push_str(&format!(
            "{}  {:<11} {:<9} {:<8} {:<20} {:<10} {}\n",
            when(entry.at),
            entry.environment.as_deref().unwrap_or("-"),
            entry.action,
            entry.outcome,
            entry.release.as_deref().unwrap_or("-"),
            entry.actor.as_deref().unwrap_or("sluice"),
            entry.reason
        ));
    }
    Ok(text)
}

pub fn approve(args: ApproveArgs) -> anyhow::Result<bool> {
    let (store, repository) = open(&args.store)?;
    let message = actions::approve(
        store.as_ref(),
        &repository,
        &args.environment,
        args.release.as_deref(),
        &actor(&args.actor),
        Utc::now().timestamp(),
    )
    .map_err(into_anyhow)?;
    println!("{message}");
    Ok(true)
}

pub fn promote(args: PromoteArgs) -> anyhow::Result<bool> {
    let (store, repository) = open(&args.store)?;
    let message = actions::request(
        store.as_ref(),
        &repository,
        &args.environment,
        RequestAction::Promote,
        Some(&args.release),
        &actor(&args.actor),
        Force {
            force: args.force,
            reason: args.reason.as_deref(),
        },
        Utc::now().timestamp(),
    )
    .map_err(into_anyhow)?;
    println!("{message}; the server carries it out on its next pass");
    Ok(true)
}

pub fn rollback(args: RollbackArgs) -> anyhow::Result<bool> {
    let (store, repository) = open(&args.store)?;
    let message = actions::request(
        store.as_ref(),
        &repository,
        &args.environment,
        RequestAction::Rollback,
        args.to.as_deref(),
        &actor(&args.actor),
        Force {
            force: false,
            reason: args.reason.as_deref(),
        },
        Utc::now().timestamp(),
    )
    .map_err(into_anyhow)?;
    println!("{message}; the server carries it out on its next pass");
    Ok(true)
}
