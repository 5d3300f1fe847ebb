//! The promotion part of `sluice demo`: each merge becomes a release that walks dev → staging
//! (after its soak) → production (after an approval by someone other than its author); then
//! production is rolled back to the first release. The demo drives the reconciler pass by pass on a simulated
//! clock that starts on a Wednesday morning in Amsterdam, so a ten-minute soak takes no time and
//! the weekend freeze does not apply; every jump of the clock is printed.

use super::promotion::{render_history, render_releases, render_status};
use crate::config::environment::Environment;
use crate::deploy::execute::HealthSettings;
use crate::deploy::gates::StaticTeams;
use crate::deploy::reconcile::{Reconciler, TargetFactory};
use crate::deploy::{Target, TargetError, actions};
use crate::model::access::Principal;
use crate::policy::Clock;
use crate::scheduler::Mirrors;
use crate::scheduler::promotion::{MirrorTrees, read_environments};
use crate::store::Store;
use crate::store::{DeployStore, RequestAction};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
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
    pub targets: Arc<DemoTargets>,
    pub work_dir: PathBuf,
    pub clock: Arc<DemoClock>,
}

impl DemoPromotion {
    /// A clock at 09:00 UTC (10:00 or 11:00 in Amsterdam) on the latest Wednesday at least a day
    /// ago: outside production's weekend freeze, and far enough in the past that the demo's few
    /// simulated hours end before now, so the delivery metrics count its deployments.
    pub fn wednesday_clock() -> Arc<DemoClock> {
        Arc::new(DemoClock(Mutex::new(wednesday_before(Utc::now()))))
    }

    pub(super) async fn reconciler(&self) -> anyhow::Result<Option<Reconciler>> {
        let (store, deploy_store, mirrors) = (
            self.store.clone(),
            self.deploy_store.clone(),
            self.mirrors.clone(),
        );
        tokio::task::spawn_blocking(move || {
            crate::scheduler::releases::cut_finished_merges(
                store.as_ref(),
                deploy_store.as_ref(),
                &mirrors,
            )
        })
        .await?;
        let releases = self.deploy_store.releases(&self.repository)?;
        let Some(newest) = releases.first().cloned() else {
            println!(
                "    no release was cut (a merge's runs did not all succeed); nothing to promote"
            );
            return Ok(None);
        };
        let mirror = self.mirrors.get(&self.repository)?;
        let commit = newest.commit.clone();
        let environments: Vec<Environment> =
            tokio::task::spawn_blocking(move || read_environments(&mirror, &commit)).await??;
        let teams = StaticTeams(
            [(
                "example/ml-platform-leads".to_owned(),
                vec![LEAD.to_owned()],
            )]
            .into_iter()
            .collect(),
        );
        Ok(Some(Reconciler {
            store: self.deploy_store.clone(),
            repository: self.repository.clone(),
            environments,
            targets: self.targets.clone() as Arc<dyn TargetFactory>,
            trees: Arc::new(MirrorTrees {
                mirrors: self.mirrors.clone(),
                directory: self.work_dir.join("data/releases"),
            }),
            clock: self.clock.clone(),
            teams: Arc::new(teams),
            health: HealthSettings {
                poll: std::time::Duration::from_millis(200),
                timeout: std::time::Duration::from_secs(120),
                ..Default::default()
            },
        }))
    }

    /// The newest release walks dev → staging → production. With `show_author_refusal`, the
    /// release's author first tries to approve production and is not counted.
    pub async fn promote_newest(&self, show_author_refusal: bool) -> anyhow::Result<bool> {
        let Some(reconciler) = self.reconciler().await? else {
            return Ok(false);
        };
        println!("==> the merge's runs finished cleanly, so it is a release: `sluice releases`");
        indent(&render_releases(
            self.deploy_store.as_ref(),
            &self.repository,
        )?);
        let newest = self.deploy_store.releases(&self.repository)?.remove(0);
        let mut all_good = true;
        all_good &= self
            .pass(
                &reconciler,
                &format!("{}: dev takes the release", self.time()),
            )
            .await?;
        self.clock.advance(Duration::minutes(10));
        all_good &= self
            .pass(
                &reconciler,
                &format!("{}: staging's 10-minute soak is over", self.time()),
            )
            .await?;
        self.clock.advance(Duration::minutes(30));
        self.pass(
            &reconciler,
            &format!(
                "{}: production's 30-minute soak is over; it needs an approval",
                self.time()
            ),
        )
        .await?;
        if show_author_refusal {
            let author = newest
                .author
                .clone()
                .unwrap_or_else(|| "the author".to_owned());
            let own = match actions::approve(
                self.deploy_store.as_ref(),
                &self.repository,
                "production",
                None,
                &Principal::local(&author),
                self.clock.now().timestamp(),
            ) {
                Ok(message) => message,
                Err(refusal) => format!("refused: {refusal}"),
            };
            println!("==> sluice approve production --as {author}\n    {own}");
        }
        let lead = actions::approve(
            self.deploy_store.as_ref(),
            &self.repository,
            "production",
            None,
            &Principal::local(LEAD),
            self.clock.now().timestamp(),
        )
        .map_err(|error| anyhow::anyhow!("{error}"))?;
        println!(
            "==> sluice approve production --as {LEAD}   ({LEAD} is in @example/ml-platform-leads)\n    {lead}"
        );
        all_good &= self.pass(&reconciler, "production deploys").await?;
        self.clock.advance(Duration::hours(2));
        Ok(all_good)
    }

    /// Production goes back to the release before, which rejects the current one.
    pub async fn roll_back_production(&self) -> anyhow::Result<bool> {
        let Some(reconciler) = self.reconciler().await? else {
            return Ok(false);
        };
        let requested = actions::request(
            self.deploy_store.as_ref(),
            &self.repository,
            "production",
            RequestAction::Rollback,
            None,
            &Principal::local(LEAD),
            actions::Force::default(),
            self.clock.now().timestamp(),
        )
        .map_err(|error| anyhow::anyhow!("{error}"))?;
        println!("==> sluice rollback production --as {LEAD}\n    {requested}");
        let all_good = self
            .pass(&reconciler, "the rollback redeploys the earlier release through the same targets (not Terraform: an old release has no plan reviewed against today's state)")
            .await?;
        println!(
            "==> `sluice releases` now marks the rolled-back release rejected; automatic promotion will not pick it again"
        );
        indent(&render_releases(
            self.deploy_store.as_ref(),
            &self.repository,
        )?);
        println!("==> sluice history production");
        indent(&render_history(
            self.deploy_store.as_ref(),
            &self.repository,
            Some("production"),
        )?);
        println!(
            "==> sluice history production --models   (every move of a model alias, which MLflow itself does not keep)"
        );
        super::history::run(super::history::HistoryArgs {
            environment: "production".to_owned(),
            models: true,
            model: None,
            limit: 20,
            json: false,
            data_dir: Some(self.work_dir.join("data")),
        })?;
        Ok(all_good)
    }

    fn time(&self) -> String {
        let zone: chrono_tz::Tz = "Europe/Amsterdam".parse().expect("a known zone");
        self.clock
            .now()
            .with_timezone(&zone)
            .format("%A %H:%M %Z (simulated)")
            .to_string()
    }

    async fn pass(&self, reconciler: &Reconciler, title: &str) -> anyhow::Result<bool> {
        println!("==> {title}");
        let report = reconciler.pass().await?;
        let mut all_good = true;
        for (environment, release, outcome) in &report.deployments {
            println!("    deployed {release} to {environment}: {outcome}");
            all_good &= outcome == "succeeded";
            self.targets.show_airflow(environment).await;
        }
        for (environment, release, reasons) in &report.blocked {
            println!("    {environment} holds {release}: {}", reasons.join("; "));
        }
        println!("    `sluice status`:");
        indent(&render_status(
            self.deploy_store.as_ref(),
            &self.repository,
        )?);
        Ok(all_good)
    }
}

fn indent(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

/// Real targets where the demo machine has what they need, recorded calls for the rest: Terraform
/// applies the plans reviewed on the pull requests; Airflow and MLflow need their servers
/// (scripts/setup-demo-airflow.sh, scripts/setup-demo-mlflow.sh); Kubernetes needs `kubectl` to
/// render the overlays and talks to an in-process fake API server, since no cluster runs here.
pub struct DemoTargets {
    pub real: crate::targets::EnvironmentTargets,
    pub recording: PathBuf,
    pub explained: Mutex<std::collections::BTreeSet<String>>,
    /// The demo's Airflow (scripts/setup-demo-airflow.sh).
    pub airflow: super::demo_airflow::DemoAirflow,
    /// Environments whose Airflow target is real, as the target sees them: their reports are shown.
    pub real_airflow: Mutex<std::collections::BTreeMap<String, Environment>>,
}

impl DemoTargets {
    /// Prints what the environment's Airflow reports, when its Airflow target is real.
    pub async fn show_airflow(&self, environment: &str) {
        let prepared = self
            .real_airflow
            .lock()
            .expect("airflow lock")
            .get(environment)
            .cloned();
        if let Some(prepared) = prepared {
            for line in self.airflow.report(&prepared).await {
                println!("    {line}");
            }
        }
    }
}

impl TargetFactory for DemoTargets {
    fn targets(
        &self,
        repository: &str,
        environment: &Environment,
    ) -> Result<Vec<Arc<dyn Target>>, TargetError> {
        // The environment file leaves the interpreter and the login to the machine; the demo's
        // Airflow provides them.
        let (environment, airflow_problem) = match self.airflow.prepare(environment) {
            Ok(prepared) => (prepared, None),
            Err(problem) => (environment.clone(), Some(problem)),
        };
        let environment = &environment;
        let mut chosen = Vec::new();
        let unreachable = crate::targets::unreachable(environment);
        for (kind, built) in self.real.real_targets(repository, environment)? {
            let unavailable = unreachable
                .iter()
                .find(|(unreachable_kind, _)| *unreachable_kind == kind)
                .map(|(_, reason)| reason.clone());
            let reason = match (&built, unavailable) {
                (Err(error), _) => Some(error.to_string()),
                (Ok(_), _) if kind.as_str() == "airflow" && airflow_problem.is_some() => {
                    airflow_problem.clone()
                }
                (Ok(_), reason) => reason,
            };
            match (built, reason) {
                (Ok(target), None) => {
                    let detail = match kind.as_str() {
                        "kubernetes" => {
                            " (overlays rendered with kubectl kustomize, applied to the in-process fake API server)"
                        }
                        "airflow" => {
                            self.real_airflow
                                .lock()
                                .expect("airflow lock")
                                .insert(environment.name.clone(), environment.clone());
                            " (validated with DagBag, deployed, verified and unpaused through the REST API)"
                        }
                        _ => "",
                    };
                    self.explain(format!(
                        "{} in {}: real{detail}",
                        kind.as_str(),
                        environment.name
                    ));
                    chosen.push(target);
                }
                (_, reason) => {
                    let reason = reason.unwrap_or_default();
                    self.explain(format!(
                        "{} in {}: calls recorded in {} ({reason})",
                        kind.as_str(),
                        environment.name,
                        self.recording.display()
                    ));
                    chosen.extend(crate::targets::recording_targets(
                        &self.recording,
                        environment,
                        Some(&[kind]),
                    )?);
                }
            }
        }
        Ok(chosen)
    }
}

impl DemoTargets {
    fn explain(&self, line: String) {
        if self
            .explained
            .lock()
            .expect("explained lock")
            .insert(line.clone())
        {
            println!("    target {line}");
        }
    }
}

/// 09:00 UTC on the latest Wednesday at least a day before `now`.
fn wednesday_before(now: DateTime<Utc>) -> DateTime<Utc> {
    let mut day = (now - Duration::days(1)).date_naive();
    while day.weekday() != chrono::Weekday::Wed {
        day = day.pred_opt().expect("a day before");
    }
    Utc.from_utc_datetime(&day.and_hms_opt(9, 0, 0).expect("09:00 exists"))
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn the_demo_starts_on_a_wednesday_morning_at_least_a_day_ago() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        // A Sunday: the Wednesday four days before.
        assert_eq!(
            wednesday_before(at("2026-12-06T07:00:00Z")),
            at("2026-12-02T09:00:00Z")
        );
        // A Thursday morning: yesterday, 20 hours before.
        assert_eq!(
            wednesday_before(at("2026-12-03T05:00:00Z")),
            at("2026-12-02T09:00:00Z")
        );
        // A Wednesday: the week before.
        assert_eq!(
            wednesday_before(at("2026-12-02T12:00:00Z")),
            at("2026-11-25T09:00:00Z")
        );
    }
}
