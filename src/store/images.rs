//! What sluice built: one row in `built_images` each time a `build` step ends with an image
//! (built, or reused and tagged or pushed), saying for which repository, from which content
//! digest, which image (engine id, pushed digest), at which trust level and in which run. These
//! rows, not the labels an image carries, are what a later build may reuse an image on. Knows
//! nothing of Docker, registries or how the records are judged.

use super::error::{FailureResult, StoreResult};
use super::sql::{Connection, params};
use super::sql_store::{Backend, SqlStore};
use crate::model::{RunId, TrustLevel};
use chrono::{DateTime, Utc};

/// An image a build step ended with, about to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewImageRecord {
    /// The repository whose code it was built from (`acme/ml-platform`).
    pub repository: String,
    /// `sha256:...` over the context, Dockerfile, arguments, target and labels.
    pub context_digest: String,
    /// The image name it was tagged (and pushed) under, registry included
    /// (`127.0.0.1:5000/trainer`).
    pub image: String,
    /// The engine's image id, when the image is in the engine.
    pub image_id: Option<String>,
    /// The manifest digest in the registry under `image`, when pushed.
    pub pushed_digest: Option<String>,
    /// The trust level of the run that built or pushed it.
    pub trust: TrustLevel,
    /// Whether this step built it (false: it reused an image an earlier record vouched for).
    pub built: bool,
    pub run_id: RunId,
}

impl NewImageRecord {
    /// `name@sha256:...`, when pushed.
    pub fn pushed_reference(&self) -> Option<String> {
        self.pushed_digest
            .as_ref()
            .map(|digest| format!("{}@{digest}", self.image))
    }
}

/// A recorded image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: i64,
    pub recorded: NewImageRecord,
    pub recorded_at: DateTime<Utc>,
}

/// The built-image part of the store. Methods may block on IO.
pub trait ImageRecords: Send + Sync {
    /// Durable when it returns; returns the new row's id.
    fn record_image(&self, record: &NewImageRecord) -> StoreResult<i64>;

    /// Every record of the repository with this content digest, newest first.
    fn image_records(
        &self,
        repository: &str,
        context_digest: &str,
    ) -> StoreResult<Vec<ImageRecord>>;
}

impl<B: Backend> ImageRecords for SqlStore<B> {
    fn record_image(&self, record: &NewImageRecord) -> StoreResult<i64> {
        let record = record.clone();
        self.backend
            .write("recording a built image", move |connection| {
                insert_image(connection, &record, Utc::now())
            })
    }

    fn image_records(
        &self,
        repository: &str,
        context_digest: &str,
    ) -> StoreResult<Vec<ImageRecord>> {
        self.backend
            .read("reading the records of built images", |connection| {
                select_images(connection, repository, context_digest)
            })
    }
}

fn insert_image(
    connection: &Connection,
    record: &NewImageRecord,
    recorded_at: DateTime<Utc>,
) -> FailureResult<i64> {
    let id = connection
        .prepare_cached(
            "INSERT INTO built_images
             (repository, context_digest, image, image_id, pushed_digest, trust, built, run_id,
              recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        )?
        .query_row(
            params![
                record.repository,
                record.context_digest,
                record.image,
                record.image_id,
                record.pushed_digest,
                record.trust.as_str(),
                record.built,
                record.run_id,
                recorded_at.to_rfc3339(),
            ],
            |row| row.get(0),
        )?;
    Ok(id)
}

fn select_images(
    connection: &Connection,
    repository: &str,
    context_digest: &str,
) -> FailureResult<Vec<ImageRecord>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, repository, context_digest, image, image_id, pushed_digest, trust, built,
                run_id, recorded_at
         FROM built_images
         WHERE repository = ?1 AND context_digest = ?2
         ORDER BY id DESC",
    )?;
    let rows = statement
        .query_map(params![repository, context_digest], |row| {
            let trust: String = row.get(6)?;
            let recorded_at: String = row.get(9)?;
            Ok(ImageRecord {
                id: row.get(0)?,
                recorded: NewImageRecord {
                    repository: row.get(1)?,
                    context_digest: row.get(2)?,
                    image: row.get(3)?,
                    image_id: row.get(4)?,
                    pushed_digest: row.get(5)?,
                    // A level this sluice does not know vouches for nothing.
                    trust: TrustLevel::parse(&trust).unwrap_or(TrustLevel::Untrusted),
                    built: row.get(7)?,
                    run_id: row.get(8)?,
                },
                recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
                    .map(|time| time.with_timezone(&Utc))
                    .unwrap_or_default(),
            })
        })?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(repository: &str, digest: &str, trust: TrustLevel, run_id: RunId) -> NewImageRecord {
        NewImageRecord {
            repository: repository.to_owned(),
            context_digest: digest.to_owned(),
            image: "127.0.0.1:5000/trainer".to_owned(),
            image_id: Some(format!("sha256:{run_id:064}")),
            pushed_digest: (trust == TrustLevel::Trusted)
                .then(|| format!("sha256:{:064}", run_id + 1)),
            trust,
            built: true,
            run_id,
        }
    }

    #[test]
    fn records_come_back_newest_first_for_their_repository_and_digest_after_reopening() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("sluice.db");
        {
            let store = super::super::SqliteStore::open(&path).unwrap();
            store
                .record_image(&record(
                    "acme/ml-platform",
                    "sha256:aa",
                    TrustLevel::Trusted,
                    1,
                ))
                .unwrap();
            store
                .record_image(&record(
                    "acme/ml-platform",
                    "sha256:aa",
                    TrustLevel::Member,
                    2,
                ))
                .unwrap();
            store
                .record_image(&record(
                    "acme/ml-platform",
                    "sha256:bb",
                    TrustLevel::Trusted,
                    3,
                ))
                .unwrap();
            store
                .record_image(&record("other/repo", "sha256:aa", TrustLevel::Trusted, 4))
                .unwrap();
        }
        let store = super::super::SqliteStore::open(&path).unwrap();
        let found = store
            .image_records("acme/ml-platform", "sha256:aa")
            .unwrap();
        let runs_and_levels: Vec<_> = found
            .iter()
            .map(|found| (found.recorded.run_id, found.recorded.trust))
            .collect();
        assert_eq!(
            runs_and_levels,
            vec![(2, TrustLevel::Member), (1, TrustLevel::Trusted)]
        );
        assert_eq!(
            found[1].recorded,
            record("acme/ml-platform", "sha256:aa", TrustLevel::Trusted, 1)
        );
        assert_eq!(
            found[1].recorded.pushed_reference().as_deref(),
            Some(format!("127.0.0.1:5000/trainer@sha256:{:064}", 2).as_str())
        );
        assert!(
            store
                .image_records("acme/ml-platform", "sha256:cc")
                .unwrap()
                .is_empty()
        );
    }
}
