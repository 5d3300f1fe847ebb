//! `sluice serve`: the webhook server with its intake worker, dispatcher and pollers.

use super::Engine;
use crate::config::{self, server::ServerConfig};
use crate::scheduler::Poller;
use crate::server::{AppState, BodyLimits, ConnectionSettings, Metrics, router};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: Option<String>,
    /// Where the database, mirrors and workspaces live.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The database: `postgres://USER:PASSWORD@HOST:PORT/NAME` for several replicas on one
    /// database, or `sqlite:PATH`; SQLite's file in the data directory by default.
    #[arg(
        long,
        env = "SLUICE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Server configuration file (YAML); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A repository to accept deliveries for: OWNER/NAME=URL (local path, file://, https or ssh). Repeatable.
    #[arg(long = "repo", value_name = "OWNER/NAME=URL")]
    pub repositories: Vec<String>,
    /// Jobs running at once across all runs.
    #[arg(long)]
    pub max_parallel_jobs: Option<usize>,
    /// Let this repository's trusted and member runs execute `run:` steps without `image:` as host
    /// processes (as `host-steps: true` in the configuration file does). Repeatable.
    #[arg(long = "host-steps", value_name = "OWNER/NAME")]
    pub host_steps: Vec<String>,
    /// The image of `run:` steps that name none (as `steps.image` in the configuration file).
    #[arg(long)]
    pub step_image: Option<String>,
    /// UID:GID steps run as (as `steps.user` in the configuration file; default 65534:65534 when
    /// sluice runs as root).
    #[arg(long, value_name = "UID:GID")]
    pub step_user: Option<String>,
    /// Deploy every environment's `kubernetes:` section to this API server instead of through
    /// its kubeconfig, e.g. `http://127.0.0.1:8001` from `kubectl proxy` (as
    /// `kubernetes.api-server` in the configuration file).
    #[arg(long, value_name = "URL")]
    pub kubernetes_api_server: Option<String>,
}

/// The API server every environment's Kubernetes target uses, from the flag or the file; `None`
/// leaves each environment to its kubeconfig.
fn kubernetes_api_server(
    file_config: &ServerConfig,
    args: &ServeArgs,
) -> anyhow::Result<Option<url::Url>> {
    let (text, source) = match (
        &args.kubernetes_api_server,
        &file_config.kubernetes.api_server,
    ) {
        (Some(text), _) => (text, "--kubernetes-api-server"),
        (None, Some(text)) => (text, "kubernetes.api-server in the server configuration"),
        (None, None) => return Ok(None),
    };
    crate::config::server::parse_api_server(text)
        .map(Some)
        .map_err(|problem| anyhow::anyhow!("{source}: {problem}"))
}

/// Step isolation, host steps and secret scopes from the configuration file and the flags.
fn apply_step_settings(
    settings: &mut crate::scheduler::EngineSettings,
    file_config: &ServerConfig,
    args: &ServeArgs,
) -> anyhow::Result<()> {
    let steps = &file_config.steps;
    settings.isolation = crate::steps::Isolation {
        host: false,
        default_image: args.step_image.clone().or(steps.image.clone()),
        user: match args.step_user.as_deref().or(steps.user.as_deref()) {
            Some(text) => Some(crate::config::validate_server::parse_user(text).ok_or_else(
                || {
                    anyhow::anyhow!(
                        "step user `{text}` is not `UID:GID`; write numbers such as `65534:65534`"
                    )
                },
            )?),
            None => None,
        },
        cpus: steps.cpus,
        memory_bytes: steps
            .memory
            .as_deref()
            .map(crate::config::server::parse_memory)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    let mut host_step_repositories: std::collections::BTreeSet<String> = file_config
        .repositories
        .iter()
        .filter(|repository| repository.host_steps)
        .map(|repository| repository.name.clone())
        .collect();
    host_step_repositories.extend(args.host_steps.iter().cloned());
    settings.host_steps = crate::scheduler::HostSteps::Repositories(host_step_repositories);
    settings.pull_request_secrets = file_config
        .secrets
        .iter()
        .filter(|(_, scope)| scope.pull_requests)
        .map(|(name, _)| name.clone())
        .collect();
    Ok(())
}

pub async fn run(args: ServeArgs) -> anyhow::Result<bool> {
    let secret = std::env::var("SLUICE_WEBHOOK_SECRET").ok().filter(|secret| !secret.is_empty()).ok_or_else(|| {
        anyhow::anyhow!("SLUICE_WEBHOOK_SECRET is not set; set it to the secret configured on the GitHub webhook")
    })?;
    let file_config = match &args.config {
        Some(path) => config::load_server_config(path).map_err(|diagnostics| {
            let lines: Vec<String> = diagnostics
                .iter()
                .map(|diagnostic| diagnostic.to_string())
                .collect();
            anyhow::anyhow!("the server configuration is invalid:\n{}", lines.join("\n"))
        })?,
        None => ServerConfig::default(),
    };
    let mut repositories: BTreeMap<String, String> = file_config
        .repositories
        .iter()
        .map(|repository| (repository.name.clone(), repository.url.clone()))
        .collect();
    for entry in &args.repositories {
        let (name, url) = parse_repo_flag(entry)?;
        repositories.insert(name, url);
    }
    if repositories.is_empty() {
        anyhow::bail!(
            "no repository to watch; add --repo OWNER/NAME=URL or `repositories:` in the config file"
        );
    }
    let listen = args
        .listen
        .clone()
        .or(file_config.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let data_dir = args
        .data_dir
        .clone()
        .or(file_config.data_dir.clone())
        .unwrap_or_else(super::default_data_dir);
    let max_parallel_jobs = args
        .max_parallel_jobs
        .or(file_config.max_parallel_jobs)
        .unwrap_or(4);
    let front_door = front_door_settings(&file_config.webhook)?;
    let kubernetes_api = kubernetes_api_server(&file_config, &args)?;
    let database = args.database.clone().or(file_config.database.clone());
    let mut engine = Engine::open_on(
        &data_dir,
        database.as_deref(),
        repositories.clone(),
        max_parallel_jobs,
    )?;
    engine.replica = replica_settings(&file_config.replicas)?;
    if let Some(url) = &kubernetes_api {
        engine.use_kubernetes_api(url.clone());
        eprintln!("sluice: every environment's kubernetes target deploys to {url}");
    }
    apply_step_settings(&mut engine.settings, &file_config, &args)?;
    engine.use_runner(&file_config).await?;
    // Bound before anything starts, so that the replica is registered with its address and
    // statuses and checks can link to this server's own run pages when no `run-url` is set.
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot listen on {listen}: {error}; choose another address with --listen"
            )
        })?;
    let address = listener.local_addr()?;
    engine.address = address.to_string();
    engine.start()?;
    let forge = build_forge(&file_config, engine.database.clone(), address)?;
    let teams = team_directory(&file_config, forge.as_ref(), &repositories);
    let promotion = promotion_settings(&file_config.promotion, teams.clone())?;
    let mut pollers = Vec::new();
    for repository in &file_config.repositories {
        if let Some(interval) = &repository.poll_interval {
            let interval = crate::config::workflow::parse_duration(interval).map_err(|error| {
                anyhow::anyhow!("repository `{}` poll-interval: {error}", repository.name)
            })?;
            pollers.push((repository.name.clone(), interval));
        }
    }
    let engine = Arc::new(engine);
    // Promotion, drift checks, the forge outbox, comment commands, the lock queue and polling
    // run on one replica at a time: the one holding the leader's lock.
    let leader_engine = engine.clone();
    tokio::spawn(crate::scheduler::replica::lead(
        engine.database.clone(),
        engine.replica.takeover,
        move || {
            let engine = &leader_engine;
            let mut tasks = engine.start_promotion(promotion.clone());
            tasks.push(engine.start_lock_queue());
            if let Some(forge) = &forge {
                tasks.push(start_forge_feedback(engine, forge.clone()));
                tasks.push(start_commands(engine, forge.clone(), teams.clone()));
            }
            for (repository, interval) in &pollers {
                tasks.push(tokio::spawn(
                    Poller {
                        store: engine.store.clone(),
                        mirrors: engine.mirrors.clone(),
                        repository: repository.clone(),
                        interval: *interval,
                        intake_wakeup: engine.intake_wakeup.clone(),
                    }
                    .run(),
                ));
            }
            tasks
        },
    ));
    let state = AppState {
        store: engine.store.clone(),
        deploy_store: engine.deploy_store.clone(),
        promotion_wakeup: engine.promotion_wakeup.clone(),
        api_token: std::env::var("SLUICE_API_TOKEN")
            .ok()
            .filter(|token| !token.is_empty())
            .map(Arc::new),
        webhook_secret: Arc::new(secret.into_bytes()),
        repositories: Arc::new(repositories),
        metrics: Arc::new(Metrics::default()),
        intake_wakeup: engine.intake_wakeup.clone(),
        body_limits: Arc::new(BodyLimits::new(
            front_door.max_concurrent_bodies,
            front_door.body_timeout,
        )),
        run_updates: engine.updates.clone(),
        dispatcher_wakeup: engine.dispatcher_wakeup.clone(),
        drift_asks: Some(engine.drift_asks.clone()),
        ui: Arc::new(crate::server::ui::UiSettings::for_listener(
            file_config.ui.read,
            address,
            file_config
                .github
                .as_ref()
                .and_then(|github| github.run_url.as_deref()),
        )),
    };
    // Deliveries stored before a restart are planned now.
    engine.intake_wakeup.notify_one();
    announce(&format!(
        "listening on http://{address} (data in {})",
        data_dir.display()
    ));
    let closing = state.ui.closing.clone();
    crate::server::serve(
        listener,
        router(state),
        ConnectionSettings {
            header_timeout: front_door.header_timeout,
        },
        async move {
            shutdown_signal().await;
            // Live pages' streams end now, so their connections do not hold the shutdown.
            closing.cancel();
        },
    )
    .await;
    // The other replicas take this one's work over now rather than when its lease runs out.
    let (database, replica) = (engine.database.clone(), engine.replica.id.clone());
    let _ = tokio::task::spawn_blocking(move || database.forget_replica(&replica)).await;
    Ok(true)
}

/// The replicas section of the server configuration, durations checked.
fn replica_settings(
    config: &crate::config::server::ReplicasConfig,
) -> anyhow::Result<crate::scheduler::replica::ReplicaSettings> {
    use crate::scheduler::replica::ReplicaSettings;
    let duration = |field: &str, value: &Option<String>, default: std::time::Duration| match value {
        None => Ok(default),
        Some(text) => crate::config::workflow::parse_duration(text).map_err(|error| {
            anyhow::anyhow!("replicas.{field} in the server configuration: {error}")
        }),
    };
    let lease = duration("lease", &config.lease, ReplicaSettings::DEFAULT_LEASE)?;
    let takeover = duration(
        "takeover",
        &config.takeover,
        ReplicaSettings::DEFAULT_TAKEOVER,
    )?;
    if lease < std::time::Duration::from_secs(1) {
        anyhow::bail!(
            "replicas.lease in the server configuration is under 1s; a replica renews it a few times per period, so give it at least a few seconds"
        );
    }
    Ok(ReplicaSettings::new(lease, takeover))
}

/// The webhook section of the server configuration, defaults filled in.
struct FrontDoorSettings {
    max_concurrent_bodies: usize,
    header_timeout: std::time::Duration,
    body_timeout: std::time::Duration,
}

fn front_door_settings(
    config: &crate::config::server::WebhookConfig,
) -> anyhow::Result<FrontDoorSettings> {
    let duration = |field: &str, value: &Option<String>, default: std::time::Duration| match value {
        None => Ok(default),
        Some(text) => crate::config::workflow::parse_duration(text).map_err(|error| {
            anyhow::anyhow!("webhook.{field} in the server configuration: {error}")
        }),
    };
    Ok(FrontDoorSettings {
        max_concurrent_bodies: config
            .max_concurrent_bodies
            .unwrap_or(crate::server::body::DEFAULT_MAX_CONCURRENT_BODIES),
        header_timeout: duration(
            "header-timeout",
            &config.header_timeout,
            crate::server::listen::DEFAULT_HEADER_TIMEOUT,
        )?,
        body_timeout: duration(
            "body-timeout",
            &config.body_timeout,
            crate::server::body::DEFAULT_BODY_TIMEOUT,
        )?,
    })
}

/// The GitHub the configuration's `github:` section names; `None` without one.
fn build_forge(
    config: &ServerConfig,
    outbox: Arc<dyn crate::store::Outbox>,
    address: std::net::SocketAddr,
) -> anyhow::Result<Option<Arc<crate::forge::Forge>>> {
    let Some(mut forge) = crate::forge::from_config(config.github.as_ref(), outbox)
        .map_err(|error| anyhow::anyhow!("github: {error}"))?
    else {
        return Ok(None);
    };
    if config
        .github
        .as_ref()
        .is_some_and(|github| github.run_url.is_none())
    {
        // Without `run-url`, links go to the run's page on this server.
        forge = forge.with_run_url_base(Some(format!("http://{address}")));
    }
    Ok(Some(Arc::new(forge)))
}

/// Who is in an `@org/team` of `gates.approvers`: GitHub, when configured; the configuration's
/// static `promotion.teams` only without one.
fn team_directory(
    config: &ServerConfig,
    forge: Option<&Arc<crate::forge::Forge>>,
    repositories: &BTreeMap<String, String>,
) -> Arc<dyn crate::deploy::gates::TeamDirectory> {
    match forge {
        Some(forge) => {
            if !config.promotion.teams.is_empty() {
                tracing::warn!(
                    "promotion.teams in the server configuration is not used: with github configured, team approvers are asked of GitHub"
                );
            }
            Arc::new(crate::forge::teams::GithubTeams {
                forge: forge.clone(),
                repositories: repositories.keys().cloned().collect(),
            })
        }
        None => Arc::new(crate::deploy::gates::StaticTeams(
            config.promotion.teams.clone(),
        )),
    }
}

/// Pull-request comments and commit statuses.
fn start_forge_feedback(
    engine: &Engine,
    forge: Arc<crate::forge::Forge>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(
        crate::scheduler::forge_feedback::ForgeFeedback {
            store: engine.store.clone(),
            forge,
            updates: engine.updates.subscribe(),
            contributions: Arc::new(crate::scheduler::contributions::JobOutputContributions {
                store: engine.store.clone(),
            }),
            scan_interval: std::time::Duration::from_secs(5),
            outbox_interval: std::time::Duration::from_secs(60),
        }
        .run(),
    )
}

/// Comment commands on pull requests, answered through the forge.
fn start_commands(
    engine: &Engine,
    forge: Arc<crate::forge::Forge>,
    teams: Arc<dyn crate::deploy::gates::TeamDirectory>,
) -> tokio::task::JoinHandle<()> {
    let service = Arc::new(crate::scheduler::commands::CommandService {
        store: engine.store.clone(),
        deploy_store: engine.deploy_store.clone(),
        forge,
        mirrors: engine.mirrors.clone(),
        teams,
        data_dir: engine.settings.data_dir.clone(),
        wakeup: engine.commands_wakeup.clone(),
        intake_wakeup: engine.intake_wakeup.clone(),
        promotion_wakeup: engine.promotion_wakeup.clone(),
        lock_wakeup: engine.lock_wakeup.clone(),
    });
    tokio::spawn(service.run())
}

/// Promotion settings from the server configuration, durations checked.
fn promotion_settings(
    config: &crate::config::server::PromotionConfig,
    teams: Arc<dyn crate::deploy::gates::TeamDirectory>,
) -> anyhow::Result<super::engine::PromotionSettings> {
    let duration = |field: &str, value: &Option<String>, default: std::time::Duration| match value {
        None => Ok(default),
        Some(text) => crate::config::workflow::parse_duration(text).map_err(|error| {
            anyhow::anyhow!("promotion.{field} in the server configuration: {error}")
        }),
    };
    let defaults = super::engine::PromotionSettings::default();
    Ok(super::engine::PromotionSettings {
        interval: duration("interval", &config.interval, defaults.interval)?,
        health: crate::deploy::execute::HealthSettings {
            poll: duration("health-poll", &config.health_poll, defaults.health.poll)?,
            timeout: duration(
                "health-timeout",
                &config.health_timeout,
                defaults.health.timeout,
            )?,
            retry: crate::deploy::execute::RetryPolicy {
                attempts: config
                    .retry_attempts
                    .unwrap_or(defaults.health.retry.attempts),
                backoff: duration(
                    "retry-backoff",
                    &config.retry_backoff,
                    defaults.health.retry.backoff,
                )?,
                max_backoff: duration(
                    "retry-backoff-max",
                    &config.retry_backoff_max,
                    defaults.health.retry.max_backoff,
                )?,
            },
        },
        teams,
    })
}

/// `OWNER/NAME=URL`; a relative local path is made absolute.
pub fn parse_repo_flag(entry: &str) -> anyhow::Result<(String, String)> {
    let (name, url) = entry
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--repo `{entry}` must look like OWNER/NAME=URL"))?;
    if name.split('/').count() != 2 || name.split('/').any(str::is_empty) {
        anyhow::bail!("--repo `{entry}`: the name must be OWNER/NAME as on GitHub");
    }
    if url.is_empty() {
        anyhow::bail!("--repo `{entry}`: the URL is empty");
    }
    Ok((name.to_owned(), absolute_if_local(url)))
}

pub fn absolute_if_local(url: &str) -> String {
    let is_remote = url.contains("://") || (url.contains('@') && url.contains(':'));
    if is_remote {
        return url.to_owned();
    }
    std::fs::canonicalize(url)
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| url.to_owned())
}

pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    announce("shutting down");
}

/// Says what the server as a whole does (listening, shutting down), whatever `SLUICE_LOG` filters: a plain line for people, or in
/// `--log-format json` an object shaped like the log's own lines, so a log shipper reading standard
/// error meets nothing but JSON.
fn announce(message: &str) {
    match super::log_format() {
        super::LogFormat::Text => eprintln!("sluice: {message}"),
        super::LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "INFO",
                "fields": { "message": message },
                "target": module_path!(),
            })
        ),
    }
}
