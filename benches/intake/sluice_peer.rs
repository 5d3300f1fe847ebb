//! sluice's own webhook endpoint for the benchmark: the real `router` over a `SqliteStore` in a
//! fresh directory on disk, with the real secret check; the only thing missing is the intake
//! worker, so accepted deliveries stay pending and can be counted afterwards.

use crate::peers::InProcessServer;
use sluice::server::{AppState, Metrics, router};
use sluice::store::{SqliteStore, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;

pub const URL_PATH: &str = "/webhooks/github";

pub struct SluicePeer {
    pub server: InProcessServer,
    pub store: Arc<SqliteStore>,
    pub database_path: PathBuf,
}

/// `repository` must be the payload's `repository.full_name`, or every delivery is refused.
pub fn start(data_dir: &Path, secret: &str, repository: &str) -> anyhow::Result<SluicePeer> {
    let database_path = data_dir.join("sluice.db");
    let store = Arc::new(SqliteStore::open(&database_path)?);
    let repositories = BTreeMap::from([(
        repository.to_owned(),
        format!("https://github.com/{repository}.git"),
    )]);
    let state = AppState {
        store: store.clone(),
        deploy_store: store.clone(),
        promotion_wakeup: Arc::new(Notify::new()),
        api_token: None,
        webhook_secret: Arc::new(secret.as_bytes().to_vec()),
        repositories: Arc::new(repositories),
        metrics: Arc::new(Metrics::default()),
        intake_wakeup: Arc::new(Notify::new()),
        body_limits: Default::default(),
        run_updates: tokio::sync::broadcast::channel(16).0,
        dispatcher_wakeup: Arc::new(Notify::new()),
        ui: Default::default(),
        drift_asks: None,
    };
    let server = InProcessServer::start(router(state))?;
    Ok(SluicePeer {
        server,
        store,
        database_path,
    })
}

impl SluicePeer {
    /// Deliveries durably accepted so far (nothing plans them here).
    pub fn stored_deliveries(&self) -> anyhow::Result<u64> {
        Ok(self.store.stats()?.pending_deliveries)
    }

    /// Transactions committed and deliveries written in them so far.
    pub fn commits_and_writes(&self) -> (u64, u64) {
        let counts = self.store.write_counts();
        (counts.batches, counts.writes)
    }

    /// The journal mode written in the database file, read over a separate connection.
    pub fn journal_mode(&self) -> anyhow::Result<String> {
        let connection = rusqlite::Connection::open(&self.database_path)?;
        Ok(connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?)
    }
}
