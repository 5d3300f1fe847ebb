//! Whether an image found by its content digest may stand in for a build. Labels and content tags
//! only point at candidates: anyone who reaches the engine or the registry can put them on any
//! image. A candidate is reused only when sluice's own records (`store::ImageRecords`) say that
//! sluice built or pushed that very image (the same engine id, or the same manifest digest under
//! the same name) from the same content digest for the same repository, in a run trusted at least
//! as much as the current one: a member run may reuse what a trusted run built, a trusted run
//! never reuses what a member run built. This file holds the judgement (pure) and the calls that
//! read and write the records; it knows nothing of the engine or the registry.

use crate::model::{RunId, TrustLevel};
use crate::store::{ImageRecord, NewImageRecord, Store};
use std::sync::Arc;

/// Who is building, which records count for it, and where what it builds is recorded.
#[derive(Clone)]
pub struct Provenance {
    pub store: Arc<dyn Store>,
    /// The repository the build's code comes from (`acme/ml-platform`).
    pub repository: String,
    pub run_id: RunId,
    pub trust: TrustLevel,
}

impl Provenance {
    /// Every record of this repository with the content digest, newest first.
    pub async fn records(&self, context_digest: &str) -> Result<Vec<ImageRecord>, String> {
        let store = self.store.clone();
        let (repository, digest) = (self.repository.clone(), context_digest.to_owned());
        tokio::task::spawn_blocking(move || store.image_records(&repository, &digest))
            .await
            .map_err(|error| format!("reading the records of built images failed: {error}"))?
            .map_err(|error| format!("cannot read the records of built images: {error}"))
    }

    /// Records an image this run built or pushed, at this run's trust level.
    pub async fn record(&self, record: NewImageRecord) -> Result<(), String> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.record_image(&record))
            .await
            .map_err(|error| format!("recording the built image failed: {error}"))?
            .map(|_| ())
            .map_err(|error| format!("cannot record the built image: {error}"))
    }

    /// Whose records count for this build.
    pub fn judge(&self) -> Judge<'_> {
        Judge {
            repository: &self.repository,
            trust: self.trust,
        }
    }
}

/// Whose records count: the repository's, at the run's trust level or higher.
#[derive(Clone, Copy, Debug)]
pub struct Judge<'a> {
    pub repository: &'a str,
    pub trust: TrustLevel,
}

impl Judge<'_> {
    /// `trusted`, or `member or higher`.
    fn levels_that_count(&self) -> String {
        if self.trust == TrustLevel::Trusted {
            self.trust.to_string()
        } else {
            format!("{} or higher", self.trust)
        }
    }
}

/// The record that vouches for an engine image carrying the content digest, or why none does.
pub fn judge_engine_image<'a>(
    judge: Judge<'_>,
    image_id: &str,
    records: &'a [ImageRecord],
) -> Result<&'a ImageRecord, String> {
    let of_this_image: Vec<&ImageRecord> = records
        .iter()
        .filter(|record| record.recorded.image_id.as_deref() == Some(image_id))
        .collect();
    verdict(
        judge,
        &format!("image {image_id} in the engine"),
        "building",
        &of_this_image,
    )
}

/// The record that vouches for a manifest under `image` in the registry, or why none does.
pub fn judge_registry_manifest<'a>(
    judge: Judge<'_>,
    image: &str,
    digest: &str,
    records: &'a [ImageRecord],
) -> Result<&'a ImageRecord, String> {
    let of_this_manifest: Vec<&ImageRecord> = records
        .iter()
        .filter(|record| {
            record.recorded.image == image
                && record.recorded.pushed_digest.as_deref() == Some(digest)
        })
        .collect();
    verdict(
        judge,
        &format!("{image}@{digest} in the registry"),
        "pushing",
        &of_this_manifest,
    )
}

/// The manifest digests pushed under `image` that records at this run's level vouch for, newest
/// first, each once.
pub fn vouched_manifests(judge: Judge<'_>, image: &str, records: &[ImageRecord]) -> Vec<String> {
    let mut digests: Vec<String> = Vec::new();
    for record in records {
        if record.recorded.image != image || record.recorded.trust < judge.trust {
            continue;
        }
        if let Some(digest) = &record.recorded.pushed_digest
            && !digests.contains(digest)
        {
            digests.push(digest.clone());
        }
    }
    digests
}

/// One line for the log: why the candidate is reused.
pub fn reuse_reason(record: &ImageRecord) -> String {
    format!(
        "sluice {} it for {} at trust level {} in run {}",
        if record.recorded.built {
            "built"
        } else {
            "reused"
        },
        record.recorded.repository,
        record.recorded.trust,
        record.recorded.run_id
    )
}

fn verdict<'a>(
    judge: Judge<'_>,
    candidate: &str,
    doing: &str,
    records_of_candidate: &[&'a ImageRecord],
) -> Result<&'a ImageRecord, String> {
    if let Some(record) = records_of_candidate
        .iter()
        .find(|record| record.recorded.trust >= judge.trust)
    {
        return Ok(record);
    }
    match records_of_candidate.first() {
        None => Err(format!(
            "{candidate} has this content digest but sluice has no record of {doing} it for {} at trust level {}; building",
            judge.repository,
            judge.levels_that_count()
        )),
        Some(lower) => Err(format!(
            "{candidate} has this content digest but sluice made it for {} at trust level {} only (run {}), and a {} build reuses only what a {} run made; building",
            judge.repository,
            lower.recorded.trust,
            lower.recorded.run_id,
            judge.trust,
            judge.levels_that_count()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(trust: TrustLevel) -> Judge<'static> {
        Judge {
            repository: "acme/ml-platform",
            trust,
        }
    }

    fn record(
        image_id: &str,
        digest: Option<&str>,
        trust: TrustLevel,
        run_id: RunId,
    ) -> ImageRecord {
        ImageRecord {
            id: run_id,
            recorded: NewImageRecord {
                repository: "acme/ml-platform".to_owned(),
                context_digest: "sha256:cc".to_owned(),
                image: "127.0.0.1:5000/trainer".to_owned(),
                image_id: Some(image_id.to_owned()),
                pushed_digest: digest.map(str::to_owned),
                trust,
                built: true,
                run_id,
            },
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn an_engine_image_without_a_record_is_not_reused() {
        let trusted = judge(TrustLevel::Trusted);
        let records = vec![record("sha256:main", None, TrustLevel::Trusted, 1)];
        let reason = judge_engine_image(trusted, "sha256:planted", &records).unwrap_err();
        assert_eq!(
            reason,
            "image sha256:planted in the engine has this content digest but sluice has no record of building it for acme/ml-platform at trust level trusted; building"
        );
        assert_eq!(
            judge_engine_image(trusted, "sha256:main", &records)
                .unwrap()
                .recorded
                .run_id,
            1
        );
    }

    #[test]
    fn trust_order_decides_whose_records_count() {
        let trusted = judge(TrustLevel::Trusted);
        let member = judge(TrustLevel::Member);
        let member_built = vec![record("sha256:pr", None, TrustLevel::Member, 4)];
        let reason = judge_engine_image(trusted, "sha256:pr", &member_built).unwrap_err();
        assert!(
            reason.contains("at trust level member only (run 4), and a trusted build reuses only what a trusted run made"),
            "{reason}"
        );
        assert!(judge_engine_image(member, "sha256:pr", &member_built).is_ok());
        let trusted_built = vec![record("sha256:main", None, TrustLevel::Trusted, 5)];
        assert!(judge_engine_image(member, "sha256:main", &trusted_built).is_ok());
        let reason = judge_engine_image(member, "sha256:other", &trusted_built).unwrap_err();
        assert!(
            reason.contains("at trust level member or higher"),
            "{reason}"
        );
    }

    #[test]
    fn registry_manifests_count_only_under_the_name_they_were_pushed_to() {
        let trusted = judge(TrustLevel::Trusted);
        let records = vec![
            record(
                "sha256:b",
                Some("sha256:pushed-by-member"),
                TrustLevel::Member,
                3,
            ),
            record("sha256:a", Some("sha256:pushed"), TrustLevel::Trusted, 2),
            record("sha256:a", Some("sha256:pushed"), TrustLevel::Trusted, 1),
        ];
        assert_eq!(
            vouched_manifests(trusted, "127.0.0.1:5000/trainer", &records),
            vec!["sha256:pushed"]
        );
        assert!(vouched_manifests(trusted, "127.0.0.1:5000/other", &records).is_empty());
        assert!(
            judge_registry_manifest(trusted, "127.0.0.1:5000/trainer", "sha256:pushed", &records)
                .is_ok()
        );
        let reason =
            judge_registry_manifest(trusted, "127.0.0.1:5000/other", "sha256:pushed", &records)
                .unwrap_err();
        assert!(reason.contains("no record of pushing it"), "{reason}");
    }
}
