//! Drift of an Airflow environment from the release it runs, and its heal. Three kinds:
//!
//! - **files** of the live DAG folder (what the symlink points at now) against the release's
//!   DAG tree (the manifest of the version the release's apply published, or else the release's
//!   folder hashed): `dags/<path>`, expected `absent` or `sha256:<first 12 hex>`, actual
//!   `present (sha256:<12>)`, `sha256:<12>` or `absent`. A symlink someone put in the folder
//!   that does not lead to a file reads `present (symlink to <target>)`.
//! - **import errors** Airflow reports now: `import error: <file relative to the folder>`,
//!   expected `none`, actual the error's line (the last line of a traceback, which names the
//!   exception; otherwise the first line).
//! - **paused DAGs** the environment unpauses: `dag <dag_id>`, expected `unpaused`, actual
//!   `paused`, or `absent` when Airflow does not list the DAG.
//!
//! Comparing files is exact: every live file's sha256 is known, read from the file or, when the
//! file's inode, size, mtime and ctime are those it had when this process last hashed it, from
//! that hash. Any write to a file moves its ctime, which no one but the clock's owner can set
//! back; a file whose ctime was within two seconds of that reading is hashed again (a write in
//! the same clock tick would not show), as git does with racy index entries. Hashing runs on
//! every core. The folder needs no Airflow; import errors and pauses need its API, and a check
//! that cannot ask it is `Unavailable`, never clean.
//!
//! Heal re-publishes the release's folder as a new directory and switches to it with the
//! symlink rename a deploy uses (`VersionedFolder::republish`), so added files vanish and
//! changed ones are restored, waits for the DAG processor as a deploy does, unpauses what the
//! environment unpauses, and waits until Airflow has dropped the import errors.

use super::api::{AirflowApi, ApiDag, ApiImportError};
use super::folder::{FolderError, MANIFEST, Manifest, io_error, version_name};
use super::source::{hash_files, scan};
use super::target::{AirflowTarget, expectation, unavailable};
use super::verify::{relative_file, wait_until_parsed};
use crate::deploy::{Applied, DeployContext, Drift, DriftReport, Target, TargetError};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// What the live folder holds at one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveEntry {
    /// A file (or a symlink to one), with its sha256 hex.
    File(String),
    /// Something Airflow may read that is not a file: `symlink to ../x`.
    Other(String),
}

/// The live folder, path (with `/`) → entry, and what reading it cost.
#[derive(Clone, Debug, Default)]
pub struct LiveFolder {
    pub entries: BTreeMap<String, LiveEntry>,
    /// Files whose content was read and hashed.
    pub hashed: u64,
    /// Files only looked at: unchanged since this process last hashed them.
    pub unchanged: u64,
}

impl LiveFolder {
    /// The files that hold what `manifest` says, path → sha256.
    pub fn matching(&self, manifest: &Manifest) -> Manifest {
        manifest
            .iter()
            .filter(|(path, digest)| {
                matches!(self.entries.get(*path), Some(LiveEntry::File(live)) if live == *digest)
            })
            .map(|(path, digest)| (path.clone(), digest.clone()))
            .collect()
    }

    /// The live files as a manifest (other entries left out).
    pub fn manifest(&self) -> Manifest {
        self.entries
            .iter()
            .filter_map(|(path, entry)| match entry {
                LiveEntry::File(digest) => Some((path.clone(), digest.clone())),
                LiveEntry::Other(_) => None,
            })
            .collect()
    }
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> String {
    format!("sha256:{}", &digest[..digest.len().min(12)])
}

/// Files added, changed and removed in the live folder against the release's manifest, by path.
pub fn file_drifts(expected: &Manifest, live: &BTreeMap<String, LiveEntry>) -> Vec<Drift> {
    let describe = |entry: &LiveEntry| match entry {
        LiveEntry::File(digest) => short_digest(digest),
        LiveEntry::Other(what) => what.clone(),
    };
    let mut drifts = Vec::new();
    for (path, entry) in live {
        match expected.get(path) {
            None => drifts.push(Drift {
                object: format!("dags/{path}"),
                expected: "absent".to_owned(),
                actual: format!("present ({})", describe(entry)),
            }),
            Some(digest) if *entry != LiveEntry::File(digest.clone()) => drifts.push(Drift {
                object: format!("dags/{path}"),
                expected: short_digest(digest),
                actual: describe(entry),
            }),
            Some(_) => {}
        }
    }
    for (path, digest) in expected {
        if !live.contains_key(path) {
            drifts.push(Drift {
                object: format!("dags/{path}"),
                expected: short_digest(digest),
                actual: "absent".to_owned(),
            });
        }
    }
    drifts.sort_by(|left, right| left.object.cmp(&right.object));
    drifts
}

/// The line of an import error a person reads first: the exception line at the end of a
/// traceback, else the first line.
pub fn error_line(trace: &str) -> String {
    let lines: Vec<&str> = trace
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let line = match lines.first() {
        Some(first) if first.starts_with("Traceback") => lines.last().copied(),
        first => first.copied(),
    };
    line.unwrap_or("(no message)").to_owned()
}

/// Every import error Airflow reports for a file of the folder (Airflow 2's absolute names of
/// files elsewhere are left out), by file.
pub fn import_error_drifts(errors: &[ApiImportError], folder: &str, versions: &str) -> Vec<Drift> {
    let mut drifts: Vec<Drift> = errors
        .iter()
        .map(|error| (relative_file(&error.filename, folder, versions), error))
        .filter(|(file, _)| !file.starts_with('/'))
        .map(|(file, error)| Drift {
            object: format!("import error: {file}"),
            expected: "none".to_owned(),
            actual: error_line(&error.stack_trace),
        })
        .collect();
    drifts.sort_by(|left, right| left.object.cmp(&right.object));
    drifts.dedup();
    drifts
}

/// The DAGs the environment unpauses that Airflow shows paused, or does not list.
pub fn paused_drifts(unpause: &[String], dags: &[ApiDag]) -> Vec<Drift> {
    unpause
        .iter()
        .filter_map(|dag_id| {
            let actual = match dags.iter().find(|dag| &dag.dag_id == dag_id) {
                None => "absent",
                Some(dag) if dag.is_paused == Some(true) => "paused",
                Some(_) => return None,
            };
            Some(Drift {
                object: format!("dag {dag_id}"),
                expected: "unpaused".to_owned(),
                actual: actual.to_owned(),
            })
        })
        .collect()
}

/// A file's identity and times: equal fingerprints mean no write since (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Fingerprint {
    fn of(metadata: &std::fs::Metadata) -> Fingerprint {
        use std::os::unix::fs::MetadataExt;
        Fingerprint {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    /// Whether a write after `looked_at` would surely move the ctime: it is older by more than
    /// the coarsest timestamp granularity (and some clock skew).
    fn settled(&self, looked_at: SystemTime) -> bool {
        let looked_at = looked_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        self.changed.0 + 2 < looked_at
    }
}

/// Real path → (fingerprint when hashed, sha256). Kept by the process, never on disk.
type DigestCache = HashMap<PathBuf, (Fingerprint, String)>;

fn digest_cache() -> &'static Mutex<DigestCache> {
    static CACHE: OnceLock<Mutex<DigestCache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Forgets every hash this process remembers, so the next check reads every file: what the
/// first check after a start costs (for the benchmark).
pub fn forget_hashes() {
    digest_cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clear();
}

/// Everything under `folder` (through its symlink) as Airflow would read it, skipping
/// `__pycache__`, `.git`, `*.pyc` and sluice's manifest, as a deploy does. An absent folder is
/// empty.
pub fn read_live(folder: &Path) -> Result<LiveFolder, FolderError> {
    let root = match std::fs::canonicalize(folder) {
        Ok(root) => root,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LiveFolder::default());
        }
        Err(error) => return Err(io_error("resolve", folder)(error)),
    };
    let looked_at = SystemTime::now();
    let mut files: Vec<(String, PathBuf, Fingerprint)> = Vec::new();
    let mut live = LiveFolder::default();
    let mut pending = vec![(root, String::new())];
    while let Some((directory, relative)) = pending.pop() {
        let entries =
            std::fs::read_dir(&directory).map_err(io_error("read the folder", &directory))?;
        for entry in entries {
            let entry = entry.map_err(io_error("read the folder", &directory))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let entry_relative = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            let file_type = entry.file_type().map_err(io_error("read", &path))?;
            if file_type.is_dir() {
                if name != "__pycache__" && name != ".git" {
                    pending.push((path, entry_relative));
                }
                continue;
            }
            if name.ends_with(".pyc") || name == MANIFEST {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_file() => {
                    files.push((entry_relative, path, Fingerprint::of(&metadata)));
                }
                _ => {
                    let target = std::fs::read_link(&path).unwrap_or_default();
                    live.entries.insert(
                        entry_relative,
                        LiveEntry::Other(format!("symlink to {}", target.display())),
                    );
                }
            }
        }
    }
    let mut to_hash = Vec::new();
    {
        let cache = digest_cache()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (relative, path, fingerprint) in &files {
            match cache.get(path) {
                Some((known, digest)) if known == fingerprint => {
                    live.unchanged += 1;
                    live.entries
                        .insert(relative.clone(), LiveEntry::File(digest.clone()));
                }
                _ => to_hash.push((relative.clone(), path.clone())),
            }
        }
    }
    let digests = hash_files(&to_hash)?;
    live.hashed = to_hash.len() as u64;
    let fingerprints: HashMap<&PathBuf, Fingerprint> = files
        .iter()
        .map(|(_, path, fingerprint)| (path, *fingerprint))
        .collect();
    let mut cache = digest_cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if cache.len() > 500_000 {
        cache.clear();
    }
    for ((relative, path), digest) in to_hash.into_iter().zip(digests) {
        let fingerprint = fingerprints[&path];
        if fingerprint.settled(looked_at) {
            cache.insert(path, (fingerprint, digest.clone()));
        }
        live.entries.insert(relative, LiveEntry::File(digest));
    }
    Ok(live)
}

impl AirflowTarget {
    /// The release's DAG tree as its apply published it: the manifest of the version named in
    /// `context.applied`, when that version is still there and its manifest is its name's;
    /// else the release's folder, hashed.
    async fn published_manifest(&self, context: &DeployContext) -> Result<Manifest, TargetError> {
        let folder = self.folder();
        let version = context
            .applied
            .get(self.kind().as_str())
            .and_then(|outputs| outputs.get("version"))
            .and_then(|version| version.as_str())
            .map(str::to_owned);
        let stored = Self::blocking(move || {
            Ok(version.and_then(|version| {
                folder
                    .read_manifest(&version)
                    .filter(|manifest| version_name(manifest) == version)
            }))
        })
        .await?;
        if let Some(manifest) = stored {
            return Ok(manifest);
        }
        let source = self.source(context).await?;
        Self::blocking(move || scan(&source)).await
    }

    async fn api_drifts(
        &self,
        api: &AirflowApi,
        calls: &mut BTreeMap<String, u64>,
    ) -> Result<Vec<Drift>, super::api::ApiError> {
        let folder = self.folder();
        let before = api.requests();
        let errors = api.import_errors().await?;
        let listed = api.requests();
        *calls.entry("list import errors".to_owned()).or_default() += listed - before;
        let mut drifts = import_error_drifts(
            &errors,
            &folder.folder.to_string_lossy(),
            &folder.versions.to_string_lossy(),
        );
        if !self.config().unpause.is_empty() {
            let dags = api.dags().await?;
            *calls.entry("list dags".to_owned()).or_default() += api.requests() - listed;
            drifts.extend(paused_drifts(&self.config().unpause, &dags));
        }
        Ok(drifts)
    }

    pub(super) async fn drift_of(
        &self,
        context: &DeployContext,
    ) -> Result<DriftReport, TargetError> {
        let files = async {
            let expected = self.published_manifest(context).await?;
            let folder = self.folder().folder;
            Self::blocking(move || {
                let live = read_live(&folder)?;
                Ok((file_drifts(&expected, &live.entries), live))
            })
            .await
        };
        let mut calls = BTreeMap::new();
        let asked = async {
            match self.api() {
                Some(api) => self.api_drifts(api, &mut calls).await.map(Some),
                None => Ok(None),
            }
        };
        let (files, asked) = tokio::join!(files, asked);
        let (mut drifts, live) = files?;
        calls.insert("hash file".to_owned(), live.hashed);
        calls.insert("stat file".to_owned(), live.unchanged + live.hashed);
        match asked {
            Ok(Some(found)) => drifts.extend(found),
            Ok(None) => {}
            Err(error) => {
                return Err(TargetError::Unavailable(format!(
                    "environment `{}`: {error}; import errors and paused DAGs are unknown (the DAG folder itself shows {} drifted file(s))",
                    self.environment_name(),
                    drifts.len()
                )));
            }
        }
        Ok(DriftReport {
            drifts,
            review: None,
            calls,
        })
    }

    pub(super) async fn heal_drift(&self, context: &DeployContext) -> Result<Applied, TargetError> {
        let source = self.source(context).await?;
        let folder = self.folder();
        let (manifest, live) = {
            let source = source.clone();
            let folder = folder.folder.clone();
            Self::blocking(move || Ok((scan(&source)?, read_live(&folder)?))).await?
        };
        let mut done = Vec::new();
        let mut outputs = serde_json::json!({"version": version_name(&manifest)});
        let files_drifted = !file_drifts(&manifest, &live.entries).is_empty();
        if files_drifted {
            let switched_at = chrono::Utc::now();
            let outcome = {
                let (folder, source, manifest) = (folder.clone(), source.clone(), manifest.clone());
                let trusted = live.matching(&manifest);
                Self::blocking(move || folder.republish(&source, &manifest, &trusted)).await?
            };
            done.push(format!(
                "DAG version {} re-published ({} file(s) copied, {} linked)",
                outcome.version, outcome.files_copied, outcome.files_linked
            ));
            outputs["files_copied"] = outcome.files_copied.into();
            outputs["files_linked"] = outcome.files_linked.into();
            outputs["pruned"] = serde_json::json!(outcome.pruned);
            if let Some(api) = self.api() {
                let expectation =
                    expectation(&source, &live.manifest(), &manifest, None, switched_at);
                wait_until_parsed(
                    api,
                    &expectation,
                    &folder.folder.to_string_lossy(),
                    &folder.versions.to_string_lossy(),
                    self.config().parse_timeout(),
                )
                .await
                .map_err(|message| {
                    TargetError::Unavailable(format!(
                        "environment `{}`: the DAG folder was re-published, but {message}",
                        self.environment_name()
                    ))
                })?;
            }
        }
        if let Some(api) = self.api() {
            let dags = api.dags().await.map_err(unavailable)?;
            let mut unpaused = Vec::new();
            for drift in paused_drifts(&self.config().unpause, &dags) {
                let dag_id = drift.object.trim_start_matches("dag ");
                api.set_paused(dag_id, false).await.map_err(unavailable)?;
                unpaused.push(dag_id.to_owned());
            }
            if !unpaused.is_empty() {
                done.push(format!("unpaused {}", unpaused.join(", ")));
            }
            outputs["unpaused"] = serde_json::json!(unpaused);
            self.wait_for_no_import_errors(api, files_drifted).await?;
        }
        Ok(Applied {
            summary: if done.is_empty() {
                "nothing to heal".to_owned()
            } else {
                done.join("; ")
            },
            rollback: serde_json::Value::Null,
            outputs,
        })
    }

    /// Waits until Airflow reports no import error for the folder: the processor drops those of
    /// files that are gone on its next look at the folder. Without a re-publish there is nothing
    /// to wait for: errors left are not the files' doing.
    async fn wait_for_no_import_errors(
        &self,
        api: &AirflowApi,
        republished: bool,
    ) -> Result<(), TargetError> {
        let folder = self.folder();
        let started = Instant::now();
        let timeout = self.config().parse_timeout();
        loop {
            let errors = api.import_errors().await.map_err(unavailable)?;
            let left = import_error_drifts(
                &errors,
                &folder.folder.to_string_lossy(),
                &folder.versions.to_string_lossy(),
            );
            if left.is_empty() {
                return Ok(());
            }
            let files: Vec<&str> = left
                .iter()
                .map(|drift| drift.object.trim_start_matches("import error: "))
                .collect();
            if !republished {
                return Err(TargetError::Rejected(format!(
                    "environment `{}`: airflow reports import errors for {} although the DAG folder {} holds exactly the release's files; re-publishing cannot fix them, look at Airflow's own environment",
                    self.environment_name(),
                    files.join(", "),
                    folder.folder.display(),
                )));
            }
            if started.elapsed() >= timeout {
                return Err(TargetError::Unavailable(format!(
                    "environment `{}`: the DAG folder was re-published, but airflow still reports import errors for {} after {timeout:?}; check that the dag-processor runs",
                    self.environment_name(),
                    files.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
