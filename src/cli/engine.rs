//! Wiring shared by `serve`, `run` and `demo`: the store, the mirrors, and the background tasks.

use crate::deploy::execute::HealthSettings;
use crate::deploy::gates::{StaticTeams, TeamDirectory};
use crate::policy::SystemClock;
use crate::scheduler::promotion::{DriftAsk, DriftAsks, PromotionService};
use crate::scheduler::releases::ReleaseCutter;
use crate::scheduler::replica::{Claims, ReplicaSettings};
use crate::scheduler::{Dispatcher, EngineSettings, IntakeWorker, Mirrors, RunUpdate};
use crate::steps::{LocalRunner, StepRunner};
use crate::store::DeployStore;
use crate::store::{Database, Store};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

pub struct Engine {
    pub store: Arc<dyn Store>,
    pub deploy_store: Arc<dyn DeployStore>,
    /// The same store, for the parts that need its other faces (plans, locks, model history).
    pub database: Arc<dyn Database>,
    pub mirrors: Arc<Mirrors>,
    pub settings: EngineSettings,
    pub intake_wakeup: Arc<Notify>,
    pub dispatcher_wakeup: Arc<Notify>,
    pub updates: broadcast::Sender<RunUpdate>,
    pub promotion_wakeup: Arc<Notify>,
    /// Signalled after deliveries were planned (comment commands wait on it).
    pub commands_wakeup: Arc<Notify>,
    /// Signalled after a Terraform lock was released, so the plan queued behind it starts.
    pub lock_wakeup: Arc<Notify>,
    /// Drift checks asked for through the API, answered by the promotion service.
    pub drift_asks: DriftAsks,
    /// This process as a replica: its name and lease.
    pub replica: ReplicaSettings,
    /// Where this replica serves HTTP, as the others see it in `replicas`; set before `start`.
    pub address: String,
    /// What the dispatcher here announces; the relay hands it to `updates` and other replicas.
    local_updates: broadcast::Sender<RunUpdate>,
    /// Asks as they arrive, until `start` hands them to the router (`route_drift_asks`).
    drift_asked: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<DriftAsk>>>,
    /// The promotion service answering drift asks on this replica while it leads.
    leader_asks: Arc<std::sync::Mutex<Option<DriftAsks>>>,
    /// Carries out `run:` steps: the Docker runner unless `use_runner` chose Kubernetes.
    runner: Arc<dyn StepRunner>,
}

impl Engine {
    /// The engine on SQLite's file in `data_dir`, or on the PostgreSQL database
    /// `SLUICE_DATABASE_URL` names.
    pub fn open(
        data_dir: &Path,
        repositories: BTreeMap<String, String>,
        max_parallel_jobs: usize,
    ) -> anyhow::Result<Engine> {
        Engine::open_on(data_dir, None, repositories, max_parallel_jobs)
    }

    /// The engine on `database` (`postgres://...`, `sqlite:PATH` or a path), or as `open` when
    /// `None`.
    pub fn open_on(
        data_dir: &Path,
        database: Option<&str>,
        repositories: BTreeMap<String, String>,
        max_parallel_jobs: usize,
    ) -> anyhow::Result<Engine> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            anyhow::anyhow!(
                "cannot create the data directory {}: {error}",
                data_dir.display()
            )
        })?;
        forbid_inspection();
        let database = match database {
            Some(location) => crate::store::open_location(location, data_dir)?,
            None => crate::store::open(&data_dir.join("sluice.db"))?,
        };
        protect_data_dir(data_dir).map_err(|error| {
            anyhow::anyhow!(
                "cannot restrict the permissions of the data directory {}: {error}",
                data_dir.display()
            )
        })?;
        let store: Arc<dyn Store> = database.clone();
        let deploy_store: Arc<dyn DeployStore> = database.clone();
        let mut settings = EngineSettings::new(data_dir.to_owned());
        settings.max_parallel_jobs = max_parallel_jobs;
        settings.deploy_targets = Some(crate::scheduler::DeployTargets(Arc::new(
            crate::targets::EnvironmentTargets::from_env(data_dir.to_owned(), database.clone()),
        )));
        let mirrors = Arc::new(Mirrors::new(settings.mirrors_dir(), repositories));
        let (updates, _) = broadcast::channel(4096);
        let (local_updates, _) = broadcast::channel(4096);
        let (drift_asks, drift_asked) = tokio::sync::mpsc::channel(16);
        let replica = ReplicaSettings::new(
            ReplicaSettings::DEFAULT_LEASE,
            ReplicaSettings::DEFAULT_TAKEOVER,
        );
        Ok(Engine {
            store,
            deploy_store,
            database,
            mirrors,
            settings,
            intake_wakeup: Arc::new(Notify::new()),
            dispatcher_wakeup: Arc::new(Notify::new()),
            updates,
            promotion_wakeup: Arc::new(Notify::new()),
            commands_wakeup: Arc::new(Notify::new()),
            lock_wakeup: Arc::new(Notify::new()),
            drift_asks,
            drift_asked: std::sync::Mutex::new(Some(drift_asked)),
            leader_asks: Arc::new(std::sync::Mutex::new(None)),
            replica,
            address: String::new(),
            local_updates,
            runner: Arc::new(LocalRunner::default()),
        })
    }

    /// Every environment's Kubernetes target, in previews and promotion alike, deploys to the API
    /// server at `url` instead of its kubeconfig. Call before `start`.
    pub fn use_kubernetes_api(&mut self, url: url::Url) {
        self.settings.deploy_targets = Some(crate::scheduler::DeployTargets(Arc::new(
            crate::targets::EnvironmentTargets {
                kubernetes_api: Some(url),
                ..crate::targets::EnvironmentTargets::from_env(
                    self.settings.data_dir.clone(),
                    self.database.clone(),
                )
            },
        )));
    }

    /// The runner the server configuration's `runner:` names; call after the step settings are
    /// applied and before `start`.
    pub async fn use_runner(
        &mut self,
        config: &crate::config::server::ServerConfig,
    ) -> anyhow::Result<()> {
        use crate::config::runner::{DEFAULT_CHECKOUT_IMAGE, RunnerKind};
        let runner = &config.runner;
        if runner.kind == RunnerKind::Docker {
            return Ok(());
        }
        let api_server = runner
            .api_server
            .as_deref()
            .map(crate::config::server::parse_api_server)
            .transpose()
            .map_err(|problem| anyhow::anyhow!("runner.api-server: {problem}"))?;
        let settings = crate::steps::kubernetes::RunnerSettings {
            namespace: runner.namespace().to_owned(),
            service_account: runner.service_account.clone(),
            image: runner
                .image
                .clone()
                .or(self.settings.isolation.default_image.clone()),
            checkout_image: runner
                .checkout_image
                .clone()
                .unwrap_or_else(|| DEFAULT_CHECKOUT_IMAGE.to_owned()),
            cpu: runner.resources.cpu.clone(),
            memory: runner.resources.memory.clone(),
            user: self
                .settings
                .isolation
                .user
                .unwrap_or(crate::steps::isolation::UNPRIVILEGED_USER),
        };
        let namespace = settings.namespace.clone();
        self.runner = Arc::new(
            crate::steps::kubernetes::KubernetesRunner::connect(api_server, settings).await?,
        );
        eprintln!("sluice: jobs of `run:` steps run as Kubernetes Jobs in namespace {namespace}");
        Ok(())
    }

    /// Claims made as this replica; they look for work other replicas left every `poll`.
    pub fn claims(&self) -> Claims {
        Claims {
            store: self.database.clone(),
            replica: self.replica.id.clone(),
            poll: (self.replica.lease / 3).max(std::time::Duration::from_millis(100)),
        }
    }

    /// Registers this replica and starts its lease, the intake worker, the dispatcher and the
    /// relay of run updates in the background.
    pub fn start(&self) -> anyhow::Result<()> {
        crate::scheduler::replica::register(self.database.as_ref(), &self.replica, &self.address)?;
        tokio::spawn(crate::scheduler::replica::keep_lease(
            self.database.clone(),
            self.replica.clone(),
            self.address.clone(),
        ));
        if let Some(asked) = self.drift_asked.lock().expect("drift asks lock").take() {
            tokio::spawn(route_drift_asks(asked, self.leader_asks.clone()));
        }
        let runner = self.runner.clone();
        tokio::spawn(
            IntakeWorker {
                store: self.store.clone(),
                claims: self.claims(),
                mirrors: self.mirrors.clone(),
                wakeup: self.intake_wakeup.clone(),
                dispatcher_wakeup: self.dispatcher_wakeup.clone(),
                retry: crate::scheduler::planning_retry::RetrySchedule::PLANNING,
                commands_wakeup: self.commands_wakeup.clone(),
            }
            .run(),
        );
        self.start_dispatcher(runner);
        Ok(())
    }

    /// Starts the dispatcher and the relay that hands its updates to this replica's watchers and
    /// to the other replicas. `start` calls it; `sluice run` calls it alone after registering.
    pub fn start_dispatcher(&self, runner: Arc<dyn StepRunner>) {
        tokio::spawn(crate::scheduler::replica::relay_updates(
            self.database.clone(),
            self.replica.id.clone(),
            self.local_updates.subscribe(),
            self.updates.clone(),
        ));
        tokio::spawn(
            Dispatcher {
                store: self.store.clone(),
                claims: self.claims(),
                mirrors: self.mirrors.clone(),
                runner,
                settings: self.settings.clone(),
                wakeup: self.dispatcher_wakeup.clone(),
                updates: self.local_updates.clone(),
            }
            .run(),
        );
    }

    /// A new channel for the promotion service about to start here; asks go to it from now on.
    fn leader_asks(&self) -> tokio::sync::mpsc::Receiver<DriftAsk> {
        let (asks, asked) = tokio::sync::mpsc::channel(16);
        *self.leader_asks.lock().expect("leader asks lock") = Some(asks);
        asked
    }

    /// The Terraform lock queue: plans waiting for a lock are asked again once it is released.
    /// Leader's work: one replica at a time.
    pub fn start_lock_queue(&self) -> JoinHandle<()> {
        tokio::spawn(
            crate::scheduler::lock_queue::LockQueue {
                store: self.store.clone(),
                wakeup: self.lock_wakeup.clone(),
                intake_wakeup: self.intake_wakeup.clone(),
                interval: std::time::Duration::from_secs(2),
            }
            .run(),
        )
    }

    /// Starts cutting releases from finished merges and promoting them through the environments.
    /// Leader's work: one replica at a time.
    pub fn start_promotion(&self, promotion: PromotionSettings) -> Vec<JoinHandle<()>> {
        let cutter = tokio::spawn(
            ReleaseCutter {
                store: self.store.clone(),
                deploy_store: self.deploy_store.clone(),
                mirrors: self.mirrors.clone(),
                updates: self.updates.subscribe(),
                promotion_wakeup: self.promotion_wakeup.clone(),
            }
            .run(),
        );
        let data_dir = self.settings.data_dir.clone();
        let service = tokio::spawn(
            PromotionService {
                store: self.deploy_store.clone(),
                mirrors: self.mirrors.clone(),
                // The pull request's previews and promotion ask the same targets.
                targets: match &self.settings.deploy_targets {
                    Some(targets) => targets.0.clone(),
                    None => Arc::new(crate::targets::EnvironmentTargets::from_env(
                        data_dir.clone(),
                        self.database.clone(),
                    )),
                },
                clock: Arc::new(SystemClock),
                teams: promotion.teams,
                health: promotion.health,
                trees_dir: data_dir.join("releases"),
                interval: promotion.interval,
                wakeup: self.promotion_wakeup.clone(),
                drift_asks: Some(self.leader_asks()),
            }
            .run(),
        );
        vec![cutter, service]
    }
}

/// Makes this process non-dumpable: `/proc/<pid>/environ`, `mem` and friends become root's, and
/// no process of the same user can ptrace it, so a host step running as sluice's own user cannot
/// read the server's environment (webhook secret, tokens, plan key) or memory.
fn forbid_inspection() {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's dumpable flag.
    let result = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if result != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot make the process non-dumpable; host steps of the same user could read its environment"
        );
    }
}

/// Steps may run as an unprivileged user; they must reach their own workspace under
/// `workspaces/` and nothing else of the data directory. The directory itself can be traversed but
/// not listed, `workspaces/` likewise, and everything else (the database, mirrors, release trees,
/// Terraform's cache and state) is the server's alone.
fn protect_data_dir(data_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let set = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    };
    for directory in ["workspaces", "mirrors", "releases", "terraform"] {
        std::fs::create_dir_all(data_dir.join(directory))?;
    }
    set(data_dir, 0o711)?;
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name() == "workspaces" {
            set(&path, 0o711)?;
        } else if entry.file_type()?.is_dir() {
            set(&path, 0o700)?;
        } else {
            set(&path, 0o600)?;
        }
    }
    Ok(())
}

/// Hands each drift ask (from the API and the board) to the promotion service while this replica
/// leads; answers it as unavailable, naming why, while another replica leads.
async fn route_drift_asks(
    mut asked: tokio::sync::mpsc::Receiver<DriftAsk>,
    leader: Arc<std::sync::Mutex<Option<DriftAsks>>>,
) {
    while let Some(ask) = asked.recv().await {
        let service = leader
            .lock()
            .expect("leader asks lock")
            .clone()
            .filter(|service| !service.is_closed());
        let ask = match service {
            Some(service) => match service.send(ask).await {
                Ok(()) => continue,
                Err(returned) => returned.0,
            },
            None => ask,
        };
        let _ = ask.reply.send(Err(
            crate::scheduler::promotion::DriftAskError::Unavailable(
                "drift is checked by the replica that leads, and this one does not lead now; \
                 ask again (through the load balancer) in a moment"
                    .to_owned(),
            ),
        ));
    }
}

/// How promotion runs in a server.
#[derive(Clone)]
pub struct PromotionSettings {
    /// How often gates are looked at again without an event (soak times, freeze windows).
    pub interval: std::time::Duration,
    pub health: HealthSettings,
    /// GitHub's team memberships when a GitHub is configured, else the configuration's `teams:`.
    pub teams: Arc<dyn TeamDirectory>,
}

impl Default for PromotionSettings {
    fn default() -> PromotionSettings {
        PromotionSettings {
            interval: std::time::Duration::from_secs(15),
            health: HealthSettings::default(),
            teams: Arc::new(StaticTeams::default()),
        }
    }
}
