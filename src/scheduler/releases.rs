//! Cutting releases: when every run of a merge (a push to a deploy branch) has finished and none
//! failed, the commit becomes a release carrying what was built and reviewed for it: image digests
//! from the build jobs' outputs, the DAG folder's tree id, the model pins, and the reviewed plan of
//! each environment. Looks at recently finished runs on every run update and after a restart, so
//! a release is never missed; recording is idempotent (one release per commit).

use super::{Mirrors, RunUpdate, StoredPlan};
use crate::deploy::Release;
use crate::model::{EventKind, Run, Status};
use crate::store::DeployStore;
use crate::store::{RunFilter, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{Notify, broadcast};

/// How many recent runs each look covers.
const RECENT_RUNS: usize = 200;

pub struct ReleaseCutter {
    pub store: Arc<dyn Store>,
    pub deploy_store: Arc<dyn DeployStore>,
    pub mirrors: Arc<Mirrors>,
    pub updates: broadcast::Receiver<RunUpdate>,
    /// Woken when a release is recorded (the promotion reconciler waits on it).
    pub promotion_wakeup: Arc<Notify>,
}

impl ReleaseCutter {
    pub async fn run(mut self) {
        loop {
            let cutter = (
                self.store.clone(),
                self.deploy_store.clone(),
                self.mirrors.clone(),
            );
            let recorded = tokio::task::spawn_blocking(move || {
                cut_finished_merges(cutter.0.as_ref(), cutter.1.as_ref(), &cutter.2)
            })
            .await
            .unwrap_or(0);
            if recorded > 0 {
                self.promotion_wakeup.notify_one();
            }
            // Any run update may finish a merge; a lagged receiver simply looks again.
            loop {
                match self.updates.recv().await {
                    Ok(RunUpdate::RunStatus { status, .. }) if status.is_terminal() => break,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }
}

/// A pipeline run again (a re-run from the web UI) counts by its newest run: a flaky failure
/// re-run to success does not hold the release back.
fn newest_per_pipeline(runs: Vec<&Run>) -> Vec<&Run> {
    let mut newest: BTreeMap<&str, &Run> = BTreeMap::new();
    for run in runs {
        let kept = newest.entry(run.pipeline.as_str()).or_insert(run);
        if run.id > kept.id {
            *kept = run;
        }
    }
    newest.into_values().collect()
}

/// Records a release for each merge commit whose runs all finished without failure. Returns how
/// many were new.
pub fn cut_finished_merges(
    store: &dyn Store,
    deploy_store: &dyn DeployStore,
    mirrors: &Mirrors,
) -> usize {
    let runs = match store.list_runs(&RunFilter {
        limit: Some(RECENT_RUNS),
        ..RunFilter::default()
    }) {
        Ok(runs) => runs,
        Err(error) => {
            tracing::error!(%error, "cannot list runs to cut releases");
            return 0;
        }
    };
    let mut merges: BTreeMap<(String, String), Vec<&Run>> = BTreeMap::new();
    for run in runs.iter().filter(|run| run.event == EventKind::Merge) {
        merges
            .entry((run.repository.clone(), run.commit.clone()))
            .or_default()
            .push(run);
    }
    let mut recorded = 0;
    for ((repository, commit), runs) in merges {
        let runs = newest_per_pipeline(runs);
        let finished = runs.iter().all(|run| run.status.is_terminal());
        let clean = runs
            .iter()
            .all(|run| matches!(run.status, Status::Succeeded | Status::Skipped));
        let any_ran = runs.iter().any(|run| run.status == Status::Succeeded);
        if !(finished && clean && any_ran) {
            continue;
        }
        let known = deploy_store
            .releases(&repository)
            .map(|releases| releases.iter().any(|release| release.commit == commit))
            .unwrap_or(true);
        if known {
            continue;
        }
        match cut_release(store, mirrors, &repository, &commit, &runs) {
            Ok(release) => match deploy_store.insert_release(&release) {
                Ok(true) => {
                    if let Ok(mirror) = mirrors.get(&repository) {
                        super::commands::carry_pull_request_approvals(
                            store,
                            deploy_store,
                            mirror.path(),
                            &release,
                        );
                    }
                    tracing::info!(repository, release = %release.id, "release recorded");
                    recorded += 1;
                }
                Ok(false) => {}
                Err(error) => tracing::error!(%error, "cannot record a release"),
            },
            Err(error) => tracing::error!(repository, commit, %error, "cannot cut a release"),
        }
    }
    recorded
}

fn cut_release(
    store: &dyn Store,
    mirrors: &Mirrors,
    repository: &str,
    commit: &str,
    runs: &[&Run],
) -> anyhow::Result<Release> {
    let mirror = mirrors.get(repository)?;
    let sequence = mirror.first_parent_depth(commit)? as i64;
    let first = runs[0];
    let plan: Option<StoredPlan> = store
        .run_plan(first.id)?
        .and_then(|text| serde_json::from_str(&text).ok());
    let author = plan.as_ref().and_then(|plan| plan.event.actor.clone());
    let mut contributors = BTreeSet::new();
    for run in runs {
        let Some(delivery) = run.delivery.as_deref() else {
            continue;
        };
        if let Some(delivery) = store.delivery(delivery)?
            && let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&delivery.payload)
        {
            contributors.extend(contributors_of(&payload));
        }
    }
    contributors.extend(author.clone());
    let branch = first
        .git_ref
        .strip_prefix("refs/heads/")
        .unwrap_or(&first.git_ref)
        .to_owned();
    let mut images = BTreeMap::new();
    for run in runs {
        let Some(full) = store.get_run(run.id)? else {
            continue;
        };
        for job in &full.jobs {
            if let Some(image) = job.outputs.get("image")
                && let Some(key) = Release::image_key(image)
            {
                images.insert(key.to_owned(), image.clone());
            }
        }
    }
    // Which environments exist and where their DAGs, pins and plans live is the default branch's
    // word, not the release commit's.
    let authority = super::authority::read_authority(&mirror)?.ok_or_else(|| {
        anyhow::anyhow!("the mirror of {repository} has no default branch; fetch it")
    })?;
    let mut release = Release {
        id: Release::new_id(sequence, commit),
        repository: repository.to_owned(),
        commit: commit.to_owned(),
        branch,
        author,
        created_at: chrono::Utc::now().timestamp(),
        sequence,
        images,
        plans: BTreeMap::new(),
        dag_tree: None,
        models: BTreeMap::new(),
        config_commit: Some(authority.commit),
        contributors,
    };
    let source = crate::targets::registry::ReleaseSource {
        store,
        mirror: &mirror,
        repository,
        commit,
    };
    for environment in &authority.environments {
        crate::targets::add_to_release(environment, &source, &mut release)?;
    }
    Ok(release)
}

/// Everyone a push payload names as having written, committed or pushed its commits: each
/// commit's author and committer username, the head commit's, the pusher and the sender. GitHub
/// leaves `username` out for an address it cannot tie to an account; such a commit names nobody.
pub fn contributors_of(payload: &serde_json::Value) -> BTreeSet<String> {
    let mut logins = BTreeSet::new();
    let commits = payload
        .get("commits")
        .and_then(|commits| commits.as_array())
        .into_iter()
        .flatten()
        .chain(payload.get("head_commit"));
    for commit in commits {
        for role in ["author", "committer"] {
            if let Some(login) = commit.pointer(&format!("/{role}/username")) {
                logins.extend(login.as_str().map(str::to_owned));
            }
        }
    }
    for pointer in ["/pusher/name", "/sender/login"] {
        if let Some(login) = payload.pointer(pointer).and_then(|login| login.as_str()) {
            logins.insert(login.to_owned());
        }
    }
    logins.retain(|login| !login.is_empty());
    logins
}

#[cfg(test)]
mod contributor_tests {
    use super::contributors_of;

    #[test]
    fn contributors_are_the_commit_authors_committers_pusher_and_sender_named_by_login() {
        let payload = serde_json::json!({
            "commits": [
                {"author": {"name": "Alice", "username": "alice"}, "committer": {"username": "web-flow"}},
                {"author": {"name": "No Account", "email": "x@example.com"}, "committer": {"username": "bob"}}
            ],
            "head_commit": {"author": {"username": "carol"}, "committer": {"username": "carol"}},
            "pusher": {"name": "dave", "email": "d@example.com"},
            "sender": {"login": "erin"}
        });
        let found: Vec<String> = contributors_of(&payload).into_iter().collect();
        assert_eq!(found, ["alice", "bob", "carol", "dave", "erin", "web-flow"]);
        assert!(contributors_of(&serde_json::json!({})).is_empty());
    }
}
