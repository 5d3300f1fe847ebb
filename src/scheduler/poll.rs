//! Watching repositories without webhooks: fetch every `poll-interval`, and for each branch whose
//! tip moved, store a synthesised `push` delivery. From there the path is the webhook's: durable,
//! planned exactly once (the delivery id is derived from the branch and both tips).

use super::Mirrors;
use crate::model::Delivery;
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub struct Poller {
    pub store: Arc<dyn Store>,
    pub mirrors: Arc<Mirrors>,
    pub repository: String,
    pub interval: Duration,
    pub intake_wakeup: Arc<Notify>,
}

impl Poller {
    pub async fn run(self) {
        // The first look only learns where the branches are; nothing is started for history.
        let mut known_tips: Option<BTreeMap<String, String>> = None;
        loop {
            let mirrors = self.mirrors.clone();
            let repository = self.repository.clone();
            let tips =
                tokio::task::spawn_blocking(move || -> anyhow::Result<BTreeMap<String, String>> {
                    let mirror = mirrors.get(&repository)?;
                    mirror.fetch()?;
                    Ok(mirror.branch_tips()?.into_iter().collect())
                })
                .await;
            match tips {
                Ok(Ok(tips)) => {
                    if known_tips.is_none() {
                        tracing::info!(repository = %self.repository, branches = tips.len(), "polled: watching for new commits");
                    }
                    if let Some(previous) = &known_tips {
                        self.store_pushes(previous, &tips).await;
                    }
                    known_tips = Some(tips);
                }
                Ok(Err(error)) => {
                    tracing::warn!(repository = %self.repository, error = %format!("{error:#}"), "poll failed; trying again next interval")
                }
                Err(error) => tracing::error!(%error, "poll task failed"),
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    async fn store_pushes(
        &self,
        previous: &BTreeMap<String, String>,
        current: &BTreeMap<String, String>,
    ) {
        for (branch, tip) in current {
            let before = previous.get(branch);
            if before == Some(tip) {
                continue;
            }
            let before_sha = before.cloned().unwrap_or_else(|| "0".repeat(40));
            let payload = serde_json::json!({
                "ref": format!("refs/heads/{branch}"),
                "before": before_sha,
                "after": tip,
                "created": before.is_none(),
                "deleted": false,
                "repository": { "full_name": self.repository },
                "pusher": { "name": "sluice-poll" },
            });
            let delivery = Delivery {
                id: format!(
                    "poll:{}:{branch}:{}..{}",
                    self.repository,
                    crate::model::short_commit(&before_sha),
                    crate::model::short_commit(tip)
                ),
                event: "push".to_owned(),
                repository: Some(self.repository.clone()),
                payload: payload.to_string().into_bytes(),
                received_at: chrono::Utc::now(),
            };
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || store.insert_delivery(&delivery)).await {
                Ok(Ok(_)) => self.intake_wakeup.notify_one(),
                _ => {
                    tracing::error!(repository = %self.repository, %branch, "cannot store the polled push")
                }
            }
        }
    }
}
