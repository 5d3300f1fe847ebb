//! Delivering a job's check run: create it once, then update it. The check run GitHub made for
//! a job is remembered in the store (so a restart updates it), and when the store does not know
//! it, GitHub's list of the commit's check runs with that name is searched for the job's
//! `external_id` first, so a create whose answer was lost is not made twice. Annotations go 50
//! per request; GitHub appends each request's, so the store also counts those sent and a retry
//! sends only the rest.

use super::check_run::{ANNOTATIONS_PER_REQUEST, CheckRun};
use super::client::Method;
use super::error::ForgeError;
use super::publish::Forge;
use crate::store::CheckRunRecord;
use serde_json::{Value, json};

impl Forge {
    /// Creates or updates the check run `check` describes on `commit`; `key` is its outbox key.
    pub async fn publish_check_run(
        &self,
        repository: &str,
        commit: &str,
        key: &str,
        check: &CheckRun,
    ) -> Result<(), ForgeError> {
        let known = match self.outbox.check_run(key) {
            Ok(known) => known,
            Err(error) => {
                tracing::error!(%error, key, "cannot read the recorded check run; asking github");
                None
            }
        };
        let known = match known {
            Some(known) => Some(known),
            None => self.find_check_run(repository, commit, check).await?,
        };
        let sent = known.map_or(0, |known| known.annotations_sent);
        let pending = check.annotations.get(sent..).unwrap_or_default();
        let mut batches = pending.chunks(ANNOTATIONS_PER_REQUEST);
        let first = batches.next().unwrap_or_default();
        let mut body = json!({
            "name": check.name,
            "external_id": check.external_id,
            "status": check.status,
            "output": output(check, first),
        });
        if let Some(url) = &check.details_url {
            body["details_url"] = json!(url);
        }
        if let Some(conclusion) = &check.conclusion {
            body["conclusion"] = json!(conclusion);
        }
        let mut record = match known {
            Some(known) => {
                self.client
                    .request(
                        repository,
                        Method::Patch,
                        &format!("/repos/{repository}/check-runs/{}", known.id),
                        Some(&body),
                    )
                    .await?;
                known
            }
            None => {
                body["head_sha"] = json!(commit);
                let path = format!("/repos/{repository}/check-runs");
                let answer = self
                    .client
                    .request(repository, Method::Post, &path, Some(&body))
                    .await?;
                let id = answer
                    .body
                    .get("id")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| ForgeError::Body {
                        method: "POST",
                        path,
                        message: "the created check run has no `id`".to_owned(),
                    })?;
                CheckRunRecord {
                    id,
                    annotations_sent: sent,
                }
            }
        };
        record.annotations_sent += first.len();
        self.remember(key, record);
        for batch in batches {
            self.client
                .request(
                    repository,
                    Method::Patch,
                    &format!("/repos/{repository}/check-runs/{}", record.id),
                    Some(&json!({ "output": output(check, batch) })),
                )
                .await?;
            record.annotations_sent += batch.len();
            self.remember(key, record);
        }
        Ok(())
    }

    /// The job's check run among the commit's check runs with its name, if GitHub has one.
    async fn find_check_run(
        &self,
        repository: &str,
        commit: &str,
        check: &CheckRun,
    ) -> Result<Option<CheckRunRecord>, ForgeError> {
        let answer = self
            .client
            .request(
                repository,
                Method::Get,
                &format!(
                    "/repos/{repository}/commits/{commit}/check-runs?check_name={}&filter=all&per_page=100",
                    query_value(&check.name)
                ),
                None,
            )
            .await?;
        let found = answer
            .body
            .get("check_runs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|run| run.get("external_id").and_then(Value::as_str) == Some(&check.external_id))
            .and_then(|run| {
                Some(CheckRunRecord {
                    id: run.get("id")?.as_u64()?,
                    annotations_sent: run
                        .pointer("/output/annotations_count")
                        .and_then(Value::as_u64)
                        .unwrap_or(0) as usize,
                })
            });
        Ok(found)
    }

    fn remember(&self, key: &str, record: CheckRunRecord) {
        if let Err(error) = self.outbox.record_check_run(key, record) {
            tracing::error!(%error, key, "cannot record the check run; the next update looks it up on github");
        }
    }
}

fn output(check: &CheckRun, annotations: &[super::check_run::Annotation]) -> Value {
    let mut output = json!({ "title": check.title, "summary": check.summary });
    if !annotations.is_empty() {
        output["annotations"] = json!(annotations);
    }
    output
}

/// `text` percent-encoded for a query string (everything but unreserved characters).
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            super::query_value("sluice/platform/plan dev"),
            "sluice%2Fplatform%2Fplan%20dev"
        );
    }
}
