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
    for image_id in engine::images_with_context_digest(search.docker, context_digest).await? {
        match provenance::judge_engine_image(search.judge, &image_id, search.records) {
            Ok(record) => {
                let _ = search.log.send(format!(
                    "sluice: build: image {image_id} in the engine already has context digest {context_digest}; {}; not building\n",
                    provenance::reuse_reason(record)
                ));
                return Ok(Reuse::Engine(image_id));
            }
            Err(reason) => passed_over.push(reason),
        }
    }
    let Some(registry) = search.registry else {
        return Ok(Reuse::Build(passed_over));
    };
    if let Some(digest) = from_registry(search, registry, &mut passed_over).await? {
        return Ok(Reuse::Registry(digest));
    }
    Ok(Reuse::Build(passed_over))
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
