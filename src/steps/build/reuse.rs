//! Looking for an image that makes a build unnecessary: the engine's images labelled with the
//! content digest, then the registry's manifest under the content tag and those the records say
//! were pushed under the image's name. `provenance` decides each candidate; the label and the
//! content tag only find them. A manifest reused in the registry gets the request's tags there
//! without pulling anything. Every candidate passed over comes back with the reason, for the log.

use super::engine;
use super::provenance::{self, Judge};
use super::reference::content_tag;
use super::registry::Registry;
use super::trust::pushes_content_tag;
use super::{BuildError, BuildRequest};
use crate::sandbox::LogSink;
use crate::store::ImageRecord;

/// What the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reuse {
    /// An engine image a record vouches for, by id: tag and push it instead of building.
    Engine(String),
    /// A manifest a record vouches for, by digest: the request's tags already point at it.
    Registry(String),
    /// Nothing to reuse; why each candidate was passed over.
    Build(Vec<String>),
}

/// Where to look and whose records count.
pub struct Search<'a> {
    pub request: &'a BuildRequest,
    pub registry: Option<&'a Registry>,
    pub docker: &'a bollard::Docker,
    pub context_digest: &'a str,
    pub records: &'a [ImageRecord],
    pub judge: Judge<'a>,
    pub log: &'a LogSink,
}

/// The engine first (nothing moves over the network), then the registry.
pub async fn find(search: &Search<'_>) -> Result<Reuse, BuildError> {
    let mut passed_over = Vec::new();
    let context_digest = search.context_digest;
    let images = engine::images_with_context_digest(search.docker, context_digest).await?;
    let judged = images.into_iter().map(|image_id| {
        let verdict = provenance::judge_engine_image(search.judge, &image_id, search.records);
        (image_id, verdict)
    });
    if let Some((image_id, record)) = most_trusted(judged, &mut passed_over) {
        let _ = search.log.send(format!(
            "sluice: build: image {image_id} in the engine already has context digest {context_digest}; {}; not building\n",
            provenance::reuse_reason(record)
        ));
        return Ok(Reuse::Engine(image_id));
    }
    let Some(registry) = search.registry else {
        return Ok(Reuse::Build(passed_over));
    };
    if let Some(digest) = from_registry(search, registry, &mut passed_over).await? {
        return Ok(Reuse::Registry(digest));
    }
    Ok(Reuse::Build(passed_over))
}

/// Of the engine's images (newest first) a record vouches for, the one made at the highest
/// trust level, the newest among equals. Two builds in the same second carry the same creation
/// time, so the engine's order alone could pick a member's image over a trusted one.
fn most_trusted<'a>(
    judged: impl Iterator<Item = (String, Result<&'a ImageRecord, String>)>,
    passed_over: &mut Vec<String>,
) -> Option<(String, &'a ImageRecord)> {
    let mut chosen: Option<(String, &ImageRecord)> = None;
    for (image_id, verdict) in judged {
        match verdict {
            Ok(record) => {
                let better = chosen
                    .as_ref()
                    .is_none_or(|(_, best)| record.recorded.trust > best.recorded.trust);
                if better {
                    chosen = Some((image_id, record));
                }
            }
            Err(reason) => passed_over.push(reason),
        }
    }
    chosen
}

async fn from_registry(
    search: &Search<'_>,
    registry: &Registry,
    passed_over: &mut Vec<String>,
) -> Result<Option<String>, BuildError> {
    let request = search.request;
    let image = &request.image.full;
    let content_tag = content_tag(search.context_digest);
    let under_content_tag = registry.manifest_digest(&content_tag).await?;
    let mut candidates: Vec<String> = under_content_tag.iter().cloned().collect();
    for digest in provenance::vouched_manifests(search.judge, image, search.records) {
        if !candidates.contains(&digest) {
            candidates.push(digest);
        }
    }
    for digest in candidates {
        let record =
            match provenance::judge_registry_manifest(search.judge, image, &digest, search.records)
            {
                Ok(record) => record,
                Err(reason) => {
                    passed_over.push(reason);
                    continue;
                }
            };
        let under_the_tag = under_content_tag.as_deref() == Some(digest.as_str());
        // A recorded manifest may have been deleted from the registry since.
        if !under_the_tag && registry.manifest_digest(&digest).await?.is_none() {
            continue;
        }
        let _ = search.log.send(format!(
            "sluice: build: {} in the registry already has context digest {}; {}; not building, tagging it in the registry\n",
            request.image.pinned(&digest),
            search.context_digest,
            provenance::reuse_reason(record)
        ));
        let mut tags = request.tags.clone();
        if pushes_content_tag(search.judge.trust) && !under_the_tag {
            tags.push(content_tag.clone());
        }
        for tag in &tags {
            registry.copy_tag(&digest, tag).await?;
            let _ = search.log.send(format!(
                "sluice: build: tagged {}\n",
                request.image.tagged(tag)
            ));
        }
        return Ok(Some(digest));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrustLevel;
    use crate::store::NewImageRecord;

    fn record(image_id: &str, trust: TrustLevel) -> ImageRecord {
        ImageRecord {
            id: 1,
            recorded: NewImageRecord {
                repository: "acme/ml".into(),
                context_digest: "sha256:c".into(),
                image: "127.0.0.1:5000/app".into(),
                image_id: Some(image_id.into()),
                pushed_digest: None,
                trust,
                built: true,
                run_id: 1,
            },
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_trusted_image_wins_over_a_newer_member_image_and_the_newest_wins_among_equals() {
        let member = record("sha256:member", TrustLevel::Member);
        let trusted = record("sha256:trusted", TrustLevel::Trusted);
        let older_trusted = record("sha256:older", TrustLevel::Trusted);
        let judged = vec![
            ("sha256:planted".to_owned(), Err("no record".to_owned())),
            ("sha256:member".to_owned(), Ok(&member)),
            ("sha256:trusted".to_owned(), Ok(&trusted)),
            ("sha256:older".to_owned(), Ok(&older_trusted)),
        ];
        let mut passed_over = Vec::new();
        let (image_id, _) = most_trusted(judged.into_iter(), &mut passed_over).unwrap();
        assert_eq!(image_id, "sha256:trusted");
        assert_eq!(passed_over, ["no record"]);
    }
}
