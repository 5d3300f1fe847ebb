//! `sluice drift [ENV] [--json]`: compare environments with the releases they run, in every
//! domain they configure, on the data directory the server uses, and heal what each
//! environment's `drift.heal` allows. Exits 1 while drift remains or a domain could not be
//! checked, so a script or a cron job notices.

use crate::deploy::gates::StaticTeams;
use crate::deploy::reconcile::drift::EnvironmentDrift;
use crate::policy::SystemClock;
use crate::scheduler::Mirrors;
use crate::scheduler::promotion::{HealAsk, PromotionService};
use crate::store::{CheckOutcome, DeployStore};
use clap::Args;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Only this environment (default: every environment, in promotion order).
    pub environment: Option<String>,
    /// Print what was found as JSON.
    #[arg(long)]
    pub json: bool,
    /// Heal this domain of ENV now, whatever `drift.heal` says (recorded as you, an admin).
    #[arg(long, value_name = "DOMAIN", requires = "environment")]
    pub heal: Option<String>,
    /// Apply the Terraform plan kept for review of ENV, named by its sha256 as `sluice drift`
    /// printed it (Terraform is never healed otherwise).
    #[arg(long, value_name = "SHA256", requires = "environment")]
    pub apply_plan: Option<String>,
    /// Who checks and heals (default: $SLUICE_ACTOR, else $USER); recorded as `LOGIN (local)`.
    #[arg(long = "as")]
    pub actor: Option<String>,
    /// Reach this Kubernetes API server instead of each environment's kubeconfig, as
    /// `sluice serve --kubernetes-api-server` does.
    #[arg(long, value_name = "URL")]
    pub kubernetes_api_server: Option<String>,
    #[command(flatten)]
    pub store: super::promotion::StoreArgs,
}

pub async fn run(args: DriftArgs) -> anyhow::Result<bool> {
    let data_dir = args
        .store
        .data_dir
        .clone()
        .unwrap_or_else(super::default_data_dir);
    let database_path = data_dir.join("sluice.db");
    if !database_path.exists() && !crate::store::database_url_is_set() {
        anyhow::bail!(
            "no sluice data in {}; pass --data-dir as given to `sluice serve` (or set SLUICE_DATABASE_URL to its PostgreSQL database)",
            data_dir.display()
        );
    }
    let database = crate::store::open(&database_path)?;
    let repositories = database.release_repositories()?;
    let mut targets =
        crate::targets::EnvironmentTargets::from_env(data_dir.clone(), database.clone());
    if let Some(text) = &args.kubernetes_api_server {
        targets.kubernetes_api = Some(
            crate::config::server::parse_api_server(text)
                .map_err(|problem| anyhow::anyhow!("--kubernetes-api-server: {problem}"))?,
        );
    }
    let store: Arc<dyn DeployStore> = database.clone();
    let service = PromotionService {
        store,
        mirrors: Arc::new(Mirrors::existing(data_dir.join("mirrors"), &repositories)),
        targets: Arc::new(targets),
        clock: Arc::new(SystemClock),
        teams: Arc::new(StaticTeams::default()),
        health: Default::default(),
        trees_dir: data_dir.join("releases"),
        interval: std::time::Duration::from_secs(60),
        wakeup: Default::default(),
        drift_asks: None,
    };
    let repository = args.store.repository.as_deref();
    let actor = super::promotion::actor(&args.actor).recorded_as();
    let checked = if args.heal.is_some() || args.apply_plan.is_some() {
        let heal = HealAsk {
            domain: args.heal.clone().unwrap_or_else(|| "terraform".to_owned()),
            plan: args.apply_plan.clone(),
        };
        let environment = args.environment.as_deref().unwrap_or_default();
        service
            .heal_by_hand(repository, environment, &heal, &actor)
            .await
    } else {
        service
            .ask_drift(repository, args.environment.as_deref(), Some(&actor))
            .await
    }
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checked)?);
    } else {
        print!("{}", render(&checked));
    }
    let settled = checked.iter().all(|environment| {
        environment
            .domains
            .iter()
            .all(|domain| domain.outcome == CheckOutcome::Clean)
    });
    Ok(settled)
}

/// What each environment's check found and did, a block per environment.
pub fn render(checked: &[EnvironmentDrift]) -> String {
    let mut text = String::new();
    for environment in checked {
        match (&environment.release, &environment.skipped) {
            (_, Some(why)) => {
                text.push_str(&format!(
                    "{}: not checked: {why}\n",
                    environment.environment
                ));
                continue;
            }
            (Some(release), None) => {
                text.push_str(&format!("{} (runs {release})\n", environment.environment));
            }
            (None, None) => text.push_str(&format!("{}\n", environment.environment)),
        }
        for domain in &environment.domains {
            if let Some(healed) = &domain.healed {
                text.push_str(&format!(
                    "  {:<11} healed {}: {}\n",
                    domain.domain,
                    count(healed.drifts.len()),
                    healed.summary
                ));
                for drift in &healed.drifts {
                    text.push_str(&format!(
                        "    {}: expected {}, found {}\n",
                        drift.object, drift.expected, drift.actual
                    ));
                }
            }
            let state = match domain.outcome {
                CheckOutcome::Clean => "no drift".to_owned(),
                CheckOutcome::Drifted => format!("drift: {}", count(domain.drifts.len())),
                CheckOutcome::CouldNotCheck => format!(
                    "could not check: {}",
                    domain.reason.as_deref().unwrap_or("unknown")
                ),
            };
            text.push_str(&format!("  {:<11} {state}\n", domain.domain));
            for drift in &domain.drifts {
                text.push_str(&format!(
                    "    {}: expected {}, found {}\n",
                    drift.object, drift.expected, drift.actual
                ));
            }
            if let Some(review) = &domain.review {
                if let Some(summary) = review.get("summary").and_then(|value| value.as_str()) {
                    text.push_str(&format!("    plan for review: {summary}\n"));
                }
                if let Some(who) = review.get("who_may_apply").and_then(|value| value.as_str()) {
                    text.push_str(&format!("    who may apply it: {who}\n"));
                }
            }
        }
    }
    text
}

fn count(objects: usize) -> String {
    if objects == 1 {
        "1 object".to_owned()
    } else {
        format!("{objects} objects")
    }
}
