//! The promotion part of `sluice demo`: the merges became releases; the newest walks dev →
//! staging (after its soak) → production (after an approval by someone other than its author),
//! then production is rolled back. The demo drives the reconciler pass by pass on a simulated
//! clock that starts on a Wednesday morning in Amsterdam, so a ten-minute soak takes no time and
//! the weekend freeze does not apply; every jump of the clock is printed.

use super::promotion::{render_history, render_releases, render_status};
use crate::config::environment::Environment;
use crate::deploy::execute::HealthSettings;
use crate::deploy::gates::StaticTeams;
use crate::deploy::reconcile::{Reconciler, TargetFactory};
use crate::deploy::state::{DeployStore, RequestAction};
use crate::deploy::{actions, Target, TargetError};
use crate::policy::Clock;
use crate::scheduler::Mirrors;
use crate::scheduler::promotion::{MirrorTrees, read_environments};
use crate::store::Store;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The approver the demo's production gate accepts (a member of `@example/ml-platform-leads`).
const LEAD: &str = "dana";

pub struct DemoClock(Mutex<DateTime<Utc>>);

impl Clock for DemoClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

impl DemoClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

pub struct DemoPromotion {
    pub store: Arc<dyn Store>,
    pub deploy_store: Arc<dyn DeployStore>,
    pub mirrors: Arc<Mirrors>,
    pub repository: String,
    pub targets: Arc<dyn TargetFactory>,
    pub work_dir: PathBuf,
}

impl DemoPromotion {
    pub async fn run(self) -> anyhow::Result<bool> {
        let (store, deploy_store, mirrors) = (self.store.clone(), self.deploy_store.clone(), self.mirrors.clone());
        tokio::task::spawn_blocking(move || {
            crate::scheduler::releases::cut_finished_merges(store.as_ref(), deploy_store.as_ref(), &mirrors)
        })
        .await?;
        println!("==> every run of the merges finished cleanly, so each merge is a release: `sluice releases`");
        indent(&render_releases(self.deploy_store.as_ref(), &self.repository)?);
        let releases = self.deploy_store.releases(&self.repository)?;
        let Some(newest) = releases.first().cloned() else {
            println!("    no release was cut (a merge's runs did not all succeed); nothing to promote");
            return Ok(false);
        };
        let mirror = self.mirrors.get(&self.repository)?;
        let commit = newest.commit.clone();
        let environments: Vec<Environment> =
            tokio::task::spawn_blocking(move || read_environments(&mirror, &commit)).await??;
        // Wednesday 2026-11-25 10:00 in Amsterdam.
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).single().expect("a valid time");
        let clock = Arc::new(DemoClock(Mutex::new(start)));
        let teams = StaticTeams([("example/ml-platform-leads".to_owned(), vec![LEAD.to_owned()])].into_iter().collect());
        let reconciler = Reconciler {
            store: self.deploy_store.clone(),
            repository: self.repository.clone(),
            environments,
            targets: self.targets.clone(),
            trees: Arc::new(MirrorTrees { mirrors: self.mirrors.clone(), directory: self.work_dir.join("data/releases") }),
            clock: clock.clone(),
            teams: Arc::new(teams),
            health: HealthSettings { poll: std::time::Duration::from_millis(200), timeout: std::time::Duration::from_secs(120) },
        };
        println!("==> promotion runs on a simulated clock from Wednesday 10:00 Europe/Amsterdam (outside production's weekend freeze)");
        let mut all_good = true;
        all_good &= self.pass(&reconciler, "first pass: dev takes the newest release; the older one is superseded").await?;
        clock.advance(Duration::minutes(10));
        all_good &= self.pass(&reconciler, "10 minutes later: staging's soak is over").await?;
        clock.advance(Duration::minutes(30));
        self.pass(&reconciler, "30 minutes later: production's soak is over, but it needs an approval").await?;
        let author = newest.author.clone().unwrap_or_else(|| "the author".to_owned());
        let own = actions::approve(self.deploy_store.as_ref(), &self.repository, "production", None, &author, clock.now().timestamp())
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        println!("==> sluice approve production --as {author}\n    {own}");
        self.pass(&reconciler, "the author's own approval does not open the gate").await?;
        let lead = actions::approve(self.deploy_store.as_ref(), &self.repository, "production", None, LEAD, clock.now().timestamp())
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        println!("==> sluice approve production --as {LEAD}   ({LEAD} is in @example/ml-platform-leads)\n    {lead}");
        all_good &= self.pass(&reconciler, "production deploys").await?;
        if releases.len() > 1 {
            let requested = actions::request(self.deploy_store.as_ref(), &self.repository, "production", RequestAction::Rollback, None, LEAD, clock.now().timestamp())
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            println!("==> sluice rollback production --as {LEAD}\n    {requested}");
            clock.advance(Duration::minutes(5));
            all_good &= self.pass(&reconciler, "the rollback is carried out through the same targets (Terraform excluded: no reviewed plan for the old release)").await?;
        }
        println!("==> sluice history production");
        indent(&render_history(self.deploy_store.as_ref(), &self.repository, Some("production"))?);
        Ok(all_good)
    }

    async fn pass(&self, reconciler: &Reconciler, title: &str) -> anyhow::Result<bool> {
        println!("==> {title}");
        let report = reconciler.pass().await?;
        let mut all_good = true;
        for (environment, release, outcome) in &report.deployments {
            println!("    deployed {release} to {environment}: {outcome}");
            all_good &= outcome == "succeeded";
        }
        for (environment, release, reasons) in &report.blocked {
            println!("    {environment} holds {release}: {}", reasons.join("; "));
        }
        println!("    `sluice status`:");
        indent(&render_status(self.deploy_store.as_ref(), &self.repository)?.replace('\n', "\n    "));
        Ok(all_good)
    }
}

fn indent(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

/// Falls back to recording the calls for targets the demo machine cannot reach.
pub struct DemoTargets {
    pub real: crate::targets::EnvironmentTargets,
    pub recording: PathBuf,
}

impl TargetFactory for DemoTargets {
    fn targets(&self, environment: &Environment) -> Result<Vec<Arc<dyn Target>>, TargetError> {
        let fallback = crate::targets::EnvironmentTargets {
            data_dir: self.real.data_dir.clone(),
            recording: Some(self.recording.clone()),
        };
        match self.real.targets(environment) {
            Ok(targets) if !targets.is_empty() => Ok(targets),
            _ => fallback.targets(environment),
        }
    }
}
