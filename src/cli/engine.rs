//! Wiring shared by `serve`, `run` and `demo`: the store, the mirrors, and the background tasks.

use crate::scheduler::{Dispatcher, EngineSettings, IntakeWorker, Mirrors, RunUpdate};
use crate::steps::{LocalRunner, StepRunner};
use crate::store::{SqliteStore, Store};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{Notify, broadcast};

pub struct Engine {
    pub store: Arc<dyn Store>,
    pub mirrors: Arc<Mirrors>,
    pub settings: EngineSettings,
    pub intake_wakeup: Arc<Notify>,
    pub dispatcher_wakeup: Arc<Notify>,
    pub updates: broadcast::Sender<RunUpdate>,
}

impl Engine {
    pub fn open(
        data_dir: &Path,
        repositories: BTreeMap<String, String>,
        max_parallel_jobs: usize,
    ) -> anyhow::Result<Engine> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            anyhow::anyhow!(
                "cannot create the data directory {}: {error}",
                data_dir.display()
            )
        })?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data_dir.join("sluice.db"))?);
        let mut settings = EngineSettings::new(data_dir.to_owned());
        settings.max_parallel_jobs = max_parallel_jobs;
        let mirrors = Arc::new(Mirrors::new(settings.mirrors_dir(), repositories));
        let (updates, _) = broadcast::channel(4096);
        Ok(Engine {
            store,
            mirrors,
            settings,
            intake_wakeup: Arc::new(Notify::new()),
            dispatcher_wakeup: Arc::new(Notify::new()),
            updates,
        })
    }

    /// Starts the intake worker and the dispatcher in the background.
    pub fn start(&self) {
        let runner: Arc<dyn StepRunner> = Arc::new(LocalRunner::default());
        tokio::spawn(
            IntakeWorker {
                store: self.store.clone(),
                mirrors: self.mirrors.clone(),
                wakeup: self.intake_wakeup.clone(),
                dispatcher_wakeup: self.dispatcher_wakeup.clone(),
            }
            .run(),
        );
        self.start_dispatcher(runner);
    }

    pub fn start_dispatcher(&self, runner: Arc<dyn StepRunner>) {
        tokio::spawn(
            Dispatcher {
                store: self.store.clone(),
                mirrors: self.mirrors.clone(),
                runner,
                settings: self.settings.clone(),
                wakeup: self.dispatcher_wakeup.clone(),
                updates: self.updates.clone(),
            }
            .run(),
        );
    }
}
