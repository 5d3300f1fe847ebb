//! This process as one replica among several on one database: its name and lease (renewed while
//! it lives), the claims its intake worker and dispatcher make, the leader's work that runs on one
//! replica at a time, and the relay that carries run updates between replicas so that a browser
//! or API client on any replica follows every run live. On SQLite the process is the only
//! replica and always leads, so one `sluice serve` behaves as before.

use super::dispatch::RunUpdate;
use crate::model::{Run, RunId};
use crate::store::{Coordination, PendingDelivery, StoreResult};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The NOTIFY channel run updates travel on between replicas.
const UPDATES_CHANNEL: &str = "sluice_run_updates";

/// Log lines are cut to this many bytes between replicas (NOTIFY payloads stay under 8000);
/// the page that shows a log reads it whole from the store.
const LINE_LIMIT: usize = 2000;

/// How long a replica's claims outlive its last renewal, and how often a follower tries to take
/// the leader's lock.
#[derive(Clone, Debug)]
pub struct ReplicaSettings {
    pub id: String,
    pub lease: Duration,
    pub takeover: Duration,
}

impl ReplicaSettings {
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
    pub const DEFAULT_TAKEOVER: Duration = Duration::from_secs(5);

    /// A new name for this process: host, process id and a random suffix, so a restarted
    /// replica never answers for the claims of the one before it.
    pub fn new(lease: Duration, takeover: Duration) -> ReplicaSettings {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "sluice".to_string());
        let suffix: u32 = rand::random();
        ReplicaSettings {
            id: format!("{host}-{}-{suffix:08x}", std::process::id()),
            lease,
            takeover,
        }
    }
}

fn lease_until(lease: Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::MAX)
}

/// What the intake worker and the dispatcher claim as this replica.
#[derive(Clone)]
pub struct Claims {
    pub store: Arc<dyn Coordination>,
    pub replica: String,
    /// How often they look for work other replicas left behind.
    pub poll: Duration,
}

impl Claims {
    async fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(&dyn Coordination, &str) -> StoreResult<T> + Send + 'static,
    ) -> Option<T> {
        let (store, replica) = (self.store.clone(), self.replica.clone());
        match tokio::task::spawn_blocking(move || work(store.as_ref(), &replica)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                tracing::error!(%error, "{what}: store error");
                None
            }
            Err(error) => {
                tracing::error!(%error, "{what}: task failed");
                None
            }
        }
    }

    pub(super) async fn deliveries(&self, limit: usize) -> Option<Vec<PendingDelivery>> {
        self.call("claiming deliveries", move |store, replica| {
            store.claim_deliveries(replica, chrono::Utc::now(), limit)
        })
        .await
    }

    /// Claims up to `limit` runs, then returns every unfinished run this replica holds.
    pub(super) async fn runs(&self, limit: usize) -> Option<Vec<Run>> {
        self.call("claiming runs", move |store, replica| {
            if limit > 0 {
                let claimed = store.claim_runs(replica, chrono::Utc::now(), limit)?;
                if !claimed.is_empty() {
                    tracing::info!(runs = ?claimed, "claimed runs");
                }
            }
            store.held_runs(replica)
        })
        .await
    }

    /// Whether the job may start: this replica still holds its run.
    pub(super) async fn start_job(&self, run: RunId, job: String) -> bool {
        self.call("starting a job", move |store, replica| {
            store.start_job(replica, run, &job)
        })
        .await
        .unwrap_or(false)
    }
}

/// Renews the lease of a replica `register` recorded, a few times per lease period, until the
/// process ends; registers it again if its row is gone. A replica that cannot renew keeps trying;
/// once its lease has run out, the others take its work over and its own attempts to start jobs
/// of those runs are refused.
pub async fn keep_lease(store: Arc<dyn Coordination>, settings: ReplicaSettings, address: String) {
    let renew_every = settings.lease / 3;
    loop {
        tokio::time::sleep(renew_every).await;
        let (store, settings, address) = (store.clone(), settings.clone(), address.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            if store.renew_replica(&settings.id, lease_until(settings.lease))? {
                return Ok(());
            }
            register(store.as_ref(), &settings, &address)
        })
        .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "cannot renew this replica's lease"),
            Err(error) => tracing::error!(%error, "renewing this replica's lease failed"),
        }
    }
}

/// Registers the replica once, now, so that its claims count from the first moment.
pub fn register(
    store: &dyn Coordination,
    settings: &ReplicaSettings,
    address: &str,
) -> StoreResult<()> {
    store.register_replica(
        &settings.id,
        address,
        chrono::Utc::now(),
        lease_until(settings.lease),
    )
}

/// Runs the leader's work on this replica whenever it holds the leader's lock: `start` spawns
/// the tasks, which are aborted when the lock is lost. A follower tries for the lock every
/// `takeover`, so when the leader dies another replica leads within that time.
pub async fn lead(
    store: Arc<dyn Coordination>,
    takeover: Duration,
    start: impl Fn() -> Vec<JoinHandle<()>> + Send + 'static,
) {
    let check_every = takeover.max(Duration::from_millis(100));
    loop {
        let taking = store.clone();
        let lock = match tokio::task::spawn_blocking(move || taking.try_lead()).await {
            Ok(Ok(lock)) => lock,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot ask for the leader's lock");
                None
            }
            Err(_) => None,
        };
        let Some(lock) = lock else {
            tokio::time::sleep(check_every).await;
            continue;
        };
        tracing::info!("this replica leads: promotion, drift checks and the forge outbox run here");
        let tasks = start();
        let lock = Arc::new(std::sync::Mutex::new(lock));
        loop {
            tokio::time::sleep(check_every).await;
            let checking = lock.clone();
            let held = tokio::task::spawn_blocking(move || {
                checking
                    .lock()
                    .map(|lock| lock.still_held())
                    .unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            if !held {
                break;
            }
        }
        tracing::warn!("this replica lost the leader's lock; stopping the leader's work");
        for task in tasks {
            task.abort();
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Relayed {
    from: String,
    update: RunUpdate,
}

/// Hands every update the dispatcher makes here to this replica's watchers and to the other
/// replicas, and the other replicas' updates to this replica's watchers.
pub async fn relay_updates(
    store: Arc<dyn Coordination>,
    replica: String,
    mut local: broadcast::Receiver<RunUpdate>,
    watchers: broadcast::Sender<RunUpdate>,
) {
    let subscribing = store.clone();
    let remote = tokio::task::spawn_blocking(move || subscribing.subscribe(UPDATES_CHANNEL))
        .await
        .ok()
        .and_then(|subscription| {
            subscription
                .map_err(|error| tracing::error!(%error, "cannot follow the other replicas' runs"))
                .ok()
        })
        .flatten();
    let others_listen = remote.is_some();
    if let Some(mut remote) = remote {
        let (watchers, replica) = (watchers.clone(), replica.clone());
        tokio::spawn(async move {
            while let Some(payload) = remote.recv().await {
                match serde_json::from_str::<Relayed>(&payload) {
                    Ok(relayed) if relayed.from != replica => {
                        let _ = watchers.send(relayed.update);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "an unreadable update from another replica")
                    }
                }
            }
        });
    }
    loop {
        let update = match local.recv().await {
            Ok(update) => update,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let _ = watchers.send(update.clone());
        let mut batch = vec![update];
        while let Ok(update) = local.try_recv() {
            let _ = watchers.send(update.clone());
            batch.push(update);
        }
        if !others_listen {
            continue;
        }
        let payloads: Vec<String> = batch
            .into_iter()
            .map(|update| {
                let update = match update {
                    RunUpdate::LogLine { run, job, line } => RunUpdate::LogLine {
                        run,
                        job,
                        line: cut(line),
                    },
                    other => other,
                };
                serde_json::to_string(&Relayed {
                    from: replica.clone(),
                    update,
                })
                .unwrap_or_default()
            })
            .collect();
        let publishing = store.clone();
        let published =
            tokio::task::spawn_blocking(move || publishing.publish(UPDATES_CHANNEL, &payloads))
                .await;
        if let Ok(Err(error)) = published {
            tracing::warn!(%error, "cannot tell the other replicas about run updates");
        }
    }
}

fn cut(mut line: String) -> String {
    if line.len() > LINE_LIMIT {
        let mut end = LINE_LIMIT;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}
