//! The DAG folder as git-sync keeps it: `folder` is a symlink to one immutable version directory
//! under `versions/`, named by the hash of its content. A deploy builds the new version in a
//! temporary directory, renames it into place and then switches the symlink with one `rename`, so
//! the scheduler sees either the old tree or the new one, never a half-written one. The temporary
//! directory starts as the version that pruning would remove next, when there is one (renamed
//! away, so it is no version any more), and only the files that differ are replaced in it;
//! otherwise it starts empty and unchanged files are hard links into the live version
//! (`assemble.rs`). Knows files only: nothing of Airflow, its API or releases.
//!
//! Each version directory holds `.sluice-manifest.json` (path → sha256), written last; a version
//! without it is incomplete and never used. Deploys to one folder must not run concurrently (the
//! reconciler holds the environment's lock): a deploy removes leftovers of killed ones. What a
//! source publishes, symlinks included, is `source.rs`'s to say.

use super::assemble::{Version, assemble};
use super::source::scan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = ".sluice-manifest.json";
const TEMPORARY_PREFIX: &str = ".incoming-";

/// Relative path (with `/`) → sha256 hex of the file's bytes.
pub type Manifest = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{0}")]
    Layout(String),
    /// A symlink in the DAG source that must not be followed.
    #[error(
        "symlink `{link}` in the DAG folder `{}` points to `{}`, {problem}; replace the link by the file it stands for",
        folder.display(),
        target.display()
    )]
    Link {
        /// The link's path inside the DAG folder, with `/`.
        link: String,
        folder: PathBuf,
        /// The target as the link spells it.
        target: PathBuf,
        /// Why it is refused: `which is outside it (/etc/passwd)`.
        problem: String,
    },
    #[error("{action} `{path}`: {source}; check the path and its permissions")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub(super) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> FolderError {
    let path = path.to_path_buf();
    move |source| FolderError::Io {
        action,
        path,
        source,
    }
}

/// What one deploy did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderDeploy {
    /// The version directory's name now live.
    pub version: String,
    /// The version live before, if any.
    pub previous: Option<String>,
    pub files_copied: usize,
    pub bytes_copied: u64,
    /// Files taken unchanged from an earlier version: hard links into the live version, or
    /// files a recycled version directory already held.
    pub files_linked: usize,
    /// Whether the symlink moved (false when the version was already live).
    pub switched: bool,
    pub pruned: Vec<String>,
}

/// Where a folder's versions live and how many to keep.
#[derive(Clone, Debug)]
pub struct VersionedFolder {
    pub folder: PathBuf,
    pub versions: PathBuf,
    pub keep: usize,
}

/// The version name of a manifest: 20 hex of the sha256 over its sorted `path\0sha256\n` lines.
pub fn version_name(manifest: &Manifest) -> String {
    let mut hasher = Sha256::new();
    for (path, digest) in manifest {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(digest.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())[..20].to_owned()
}

impl VersionedFolder {
    /// The version the symlink points at now, if the folder is one of ours.
    pub fn live_version(&self) -> Result<Option<String>, FolderError> {
        match std::fs::symlink_metadata(&self.folder) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("inspect", &self.folder)(error)),
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = std::fs::read_link(&self.folder)
                    .map_err(io_error("read the symlink", &self.folder))?;
                Ok(target
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned()))
            }
            Ok(metadata) if metadata.is_dir() && is_empty_directory(&self.folder) => Ok(None),
            Ok(_) => Err(FolderError::Layout(format!(
                "airflow folder `{}` exists and is not a symlink sluice made; move its files away (sluice will own this path) and deploy again",
                self.folder.display()
            ))),
        }
    }

    pub fn version_path(&self, version: &str) -> PathBuf {
        self.versions.join(version)
    }

    /// The manifest of a complete version, or None when it is missing or incomplete.
    pub fn read_manifest(&self, version: &str) -> Option<Manifest> {
        let text = std::fs::read(self.version_path(version).join(MANIFEST)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Builds the version for `source` and makes it live. Copies only files whose sha256 differs
    /// from the live version's; writes nothing when the version is already live.
    pub fn deploy(&self, source: &Path) -> Result<FolderDeploy, FolderError> {
        let manifest = scan(source)?;
        let version = version_name(&manifest);
        let previous = self.live_version()?;
        let mut outcome = FolderDeploy {
            version: version.clone(),
            previous: previous.clone(),
            ..FolderDeploy::default()
        };
        if previous.as_deref() == Some(version.as_str()) && self.read_manifest(&version).is_some() {
            return Ok(outcome);
        }
        std::fs::create_dir_all(&self.versions).map_err(io_error("create", &self.versions))?;
        self.remove_leftovers()?;
        let protected = [version.as_str(), previous.as_deref().unwrap_or("")];
        let mut recycled = None;
        if self.read_manifest(&version).is_none() {
            let previous_manifest = previous
                .as_deref()
                .and_then(|name| self.read_manifest(name))
                .unwrap_or_default();
            let previous_path = previous.as_deref().map(|name| self.version_path(name));
            // The newest of the versions pruning will remove once this one is live: the most
            // like the new one among them, so the fewest files change.
            recycled = self
                .versions()
                .into_iter()
                .skip(self.keep.saturating_sub(1))
                .find(|name| !protected.contains(&name.as_str()));
            self.build(
                source,
                &manifest,
                &version,
                previous_path.as_deref().map(|path| Version {
                    manifest: &previous_manifest,
                    path,
                }),
                recycled.as_deref(),
                &mut outcome,
            )?;
        }
        self.switch_unchecked(&version)?;
        outcome.switched = true;
        outcome.pruned = recycled.into_iter().collect();
        outcome.pruned.extend(self.prune(&protected)?);
        Ok(outcome)
    }

    /// Publishes `source` again as a new directory for its version, when the live folder no
    /// longer holds what its manifest says (files changed or added in place). Only the files in
    /// `trusted` (path → sha256 just read from the live folder) are hard-linked from it; the rest
    /// are copied from `source`. The new directory goes live under a passing name with the same
    /// symlink rename a deploy uses, the tampered directory is removed, the version is rebuilt
    /// under its own name from links to the new one, and the symlink switched to it: Airflow sees
    /// the tampered tree or a correct one, never a half-written one. A file changed in place
    /// that older versions share (a hard link) is replaced in them too, so a rollback does not
    /// bring the change back.
    pub fn republish(
        &self,
        source: &Path,
        manifest: &Manifest,
        trusted: &Manifest,
    ) -> Result<FolderDeploy, FolderError> {
        let version = version_name(manifest);
        let previous = self.live_version()?;
        let mut outcome = FolderDeploy {
            version: version.clone(),
            previous: previous.clone(),
            switched: true,
            ..FolderDeploy::default()
        };
        std::fs::create_dir_all(&self.versions).map_err(io_error("create", &self.versions))?;
        self.remove_leftovers()?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let passing = format!("{version}.healed-{stamp}");
        let live_path = previous.as_deref().map(|name| self.version_path(name));
        self.build(
            source,
            manifest,
            &passing,
            live_path.as_deref().map(|path| Version {
                manifest: trusted,
                path,
            }),
            None,
            &mut outcome,
        )?;
        self.switch_unchecked(&passing)?;
        let passing_path = self.version_path(&passing);
        if let Some(live_path) = &live_path {
            self.replace_shared(live_path, &passing_path, manifest, trusted, &passing);
        }
        let final_path = self.version_path(&version);
        if final_path.exists() {
            std::fs::remove_dir_all(&final_path).map_err(io_error("remove", &final_path))?;
        }
        let mut relinked = FolderDeploy::default();
        self.build(
            source,
            manifest,
            &version,
            Some(Version {
                manifest,
                path: &passing_path,
            }),
            None,
            &mut relinked,
        )?;
        self.switch_unchecked(&version)?;
        std::fs::remove_dir_all(&passing_path).map_err(io_error("remove", &passing_path))?;
        outcome.pruned = self.prune(&[version.as_str()])?;
        Ok(outcome)
    }

    /// For each file of `live` whose content is not its manifest's (not in `trusted`), replaces
    /// the same file (the same inode) in other versions that record the manifest's sha256 for it
    /// by a link to the republished file in `fresh`. Best effort: a file left is only a stale
    /// rollback target.
    fn replace_shared(
        &self,
        live: &Path,
        fresh: &Path,
        manifest: &Manifest,
        trusted: &Manifest,
        skip: &str,
    ) {
        use std::os::unix::fs::MetadataExt;
        let tampered: Vec<(&String, &String, u64, u64)> = manifest
            .iter()
            .filter(|(path, _)| !trusted.contains_key(*path))
            .filter_map(|(path, digest)| {
                let metadata = std::fs::symlink_metadata(live.join(path)).ok()?;
                (metadata.is_file() && metadata.nlink() > 1)
                    .then(|| (path, digest, metadata.dev(), metadata.ino()))
            })
            .collect();
        if tampered.is_empty() {
            return;
        }
        let live_name = live
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        for other in self.versions() {
            if other == skip || Some(&other) == live_name.as_ref() {
                continue;
            }
            let Some(other_manifest) = self.read_manifest(&other) else {
                continue;
            };
            let other_path = self.version_path(&other);
            for (path, digest, device, inode) in &tampered {
                let file = other_path.join(path);
                let shared = std::fs::symlink_metadata(&file)
                    .is_ok_and(|metadata| metadata.dev() == *device && metadata.ino() == *inode);
                if shared && other_manifest.get(*path) == Some(*digest) {
                    let temporary = file.with_file_name(format!("{TEMPORARY_PREFIX}relink"));
                    let _ = std::fs::remove_file(&temporary);
                    if std::fs::hard_link(fresh.join(path), &temporary).is_ok() {
                        let _ = std::fs::rename(&temporary, &file);
                    }
                }
            }
        }
    }

    /// Builds `version` in a temporary directory (the recycled version's, renamed, or a new one)
    /// and renames it into place; the manifest is written last.
    fn build(
        &self,
        source: &Path,
        manifest: &Manifest,
        version: &str,
        live: Option<Version<'_>>,
        recycled: Option<&str>,
        outcome: &mut FolderDeploy,
    ) -> Result<(), FolderError> {
        let temporary = self.versions.join(format!(
            "{TEMPORARY_PREFIX}{version}-{}",
            std::process::id()
        ));
        // Renamed away first, the recycled version is no version any more: a crash from here on
        // leaves a leftover the next deploy removes, never a version with the wrong files.
        let recycled_manifest = match recycled {
            Some(name) => {
                let recycled_manifest = self.read_manifest(name);
                let path = self.version_path(name);
                std::fs::rename(&path, &temporary).map_err(io_error("rename for reuse", &path))?;
                let _ = std::fs::remove_file(temporary.join(MANIFEST));
                Some(recycled_manifest.unwrap_or_default())
            }
            None => {
                std::fs::create_dir_all(&temporary).map_err(io_error("create", &temporary))?;
                None
            }
        };
        assemble(
            &temporary,
            source,
            manifest,
            recycled_manifest.as_ref(),
            live,
            outcome,
        )?;
        // The manifest is written last: its presence marks the version complete.
        let manifest_path = temporary.join(MANIFEST);
        let manifest_text =
            serde_json::to_vec_pretty(manifest).expect("a map of strings serialises");
        let mut file =
            std::fs::File::create(&manifest_path).map_err(io_error("write", &manifest_path))?;
        file.write_all(&manifest_text)
            .map_err(io_error("write", &manifest_path))?;
        file.sync_all().map_err(io_error("flush", &manifest_path))?;
        let final_path = self.version_path(version);
        if final_path.exists() {
            // An incomplete version of the same name from an older crash: replace it.
            std::fs::remove_dir_all(&final_path).map_err(io_error("remove", &final_path))?;
        }
        std::fs::rename(&temporary, &final_path)
            .map_err(io_error("rename into place", &final_path))?;
        sync_directory(&self.versions);
        Ok(())
    }

    /// Points the folder at `version` with one rename. The version must be complete.
    pub fn switch_to(&self, version: &str) -> Result<(), FolderError> {
        if self.read_manifest(version).is_none() {
            return Err(FolderError::Layout(format!(
                "airflow version `{version}` under `{}` is missing or incomplete; deploy the release again",
                self.versions.display()
            )));
        }
        self.switch_unchecked(version)
    }

    /// `switch_to` for a version known to be complete (just built, or its manifest just read).
    fn switch_unchecked(&self, version: &str) -> Result<(), FolderError> {
        let parent = self.folder.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
        let target = relative_target(&self.folder, &self.version_path(version));
        let mut temporary_name = self.folder.file_name().unwrap_or_default().to_os_string();
        temporary_name.push(format!("{TEMPORARY_PREFIX}{}", std::process::id()));
        let temporary_link = self.folder.with_file_name(temporary_name);
        let _ = std::fs::remove_file(&temporary_link);
        std::os::unix::fs::symlink(&target, &temporary_link)
            .map_err(io_error("create the symlink", &temporary_link))?;
        if std::fs::symlink_metadata(&self.folder).is_ok_and(|metadata| metadata.is_dir()) {
            // An empty directory Airflow or an installer made before the first deploy.
            std::fs::remove_dir(&self.folder)
                .map_err(io_error("remove the empty folder", &self.folder))?;
        }
        std::fs::rename(&temporary_link, &self.folder)
            .map_err(io_error("switch the symlink", &self.folder))?;
        sync_directory(parent);
        // Mark when the version was last live, so pruning keeps the most recent ones.
        let _ = std::fs::File::open(self.version_path(version).join(MANIFEST))
            .and_then(|file| file.set_modified(std::time::SystemTime::now()));
        Ok(())
    }

    /// Removes temporary directories and links of deploys that were killed.
    fn remove_leftovers(&self) -> Result<(), FolderError> {
        for entry in std::fs::read_dir(&self.versions)
            .map_err(io_error("read", &self.versions))?
            .flatten()
        {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(TEMPORARY_PREFIX)
            {
                std::fs::remove_dir_all(entry.path()).map_err(io_error("remove", &entry.path()))?;
            }
        }
        Ok(())
    }

    /// Versions newest first (by when they were last made live).
    pub fn versions(&self) -> Vec<String> {
        let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&self.versions)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(TEMPORARY_PREFIX) {
                    return None;
                }
                let modified = std::fs::metadata(entry.path().join(MANIFEST))
                    .and_then(|metadata| metadata.modified())
                    .ok()?;
                Some((modified, name))
            })
            .collect();
        found.sort_by(|left, right| right.cmp(left));
        found.into_iter().map(|(_, name)| name).collect()
    }

    /// Removes all but the newest `keep` versions; never one named in `protected`.
    fn prune(&self, protected: &[&str]) -> Result<Vec<String>, FolderError> {
        let mut pruned = Vec::new();
        for name in self.versions().into_iter().skip(self.keep) {
            if protected.contains(&name.as_str()) {
                continue;
            }
            let path = self.version_path(&name);
            std::fs::remove_dir_all(&path).map_err(io_error("remove", &path))?;
            pruned.push(name);
        }
        Ok(pruned)
    }
}

fn is_empty_directory(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// The symlink's target relative to the folder's parent when the versions sit below it, so the
/// tree survives being mounted elsewhere; absolute otherwise.
fn relative_target(folder: &Path, version_path: &Path) -> PathBuf {
    folder
        .parent()
        .and_then(|parent| version_path.strip_prefix(parent).ok())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| version_path.to_path_buf())
}

fn sync_directory(path: &Path) {
    if let Ok(directory) = std::fs::File::open(path) {
        let _ = directory.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
    }

    fn folder_in(root: &Path, keep: usize) -> VersionedFolder {
        VersionedFolder {
            folder: root.join("dags"),
            versions: root.join("dags.versions"),
            keep,
        }
    }

    #[test]
    fn a_second_deploy_copies_only_the_changed_file_and_an_unchanged_one_nothing() {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("source");
        write(&source, &[("a.py", "a"), ("lib/b.py", "b"), ("c.py", "c")]);
        let folder = folder_in(scratch.path(), 3);
        let first = folder.deploy(&source).unwrap();
        assert_eq!(
            (first.files_copied, first.files_linked, first.previous),
            (3, 0, None)
        );
        write(&source, &[("c.py", "changed")]);
        let second = folder.deploy(&source).unwrap();
        assert_eq!(
            (
                second.files_copied,
                second.bytes_copied,
                second.files_linked
            ),
            (1, 7, 2)
        );
        assert_eq!(second.previous.as_deref(), Some(first.version.as_str()));
        assert_eq!(
            std::fs::read_to_string(folder.folder.join("c.py")).unwrap(),
            "changed"
        );
        assert_eq!(
            std::fs::read_to_string(folder.folder.join("lib/b.py")).unwrap(),
            "b"
        );
        let third = folder.deploy(&source).unwrap();
        assert_eq!(
            (third.files_copied, third.files_linked, third.switched),
            (0, 0, false)
        );
    }

    #[test]
    fn old_versions_are_pruned_and_a_kept_one_can_be_switched_back_to() {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("source");
        let folder = folder_in(scratch.path(), 2);
        let mut names = Vec::new();
        for round in 0..4 {
            write(&source, &[("a.py", &format!("round {round}"))]);
            names.push(folder.deploy(&source).unwrap().version);
        }
        assert_eq!(folder.versions(), vec![names[3].clone(), names[2].clone()]);
        folder.switch_to(&names[2]).unwrap();
        assert_eq!(
            std::fs::read_to_string(folder.folder.join("a.py")).unwrap(),
            "round 2"
        );
        assert!(folder.switch_to(&names[0]).is_err());
    }

    fn files_in(directory: &Path) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let mut pending = vec![directory.to_path_buf()];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder).unwrap().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    pending.push(entry.path());
                } else if entry.file_name() != MANIFEST {
                    let relative = entry.path().strip_prefix(directory).unwrap().to_owned();
                    let text = std::fs::read_to_string(entry.path()).unwrap();
                    found.push((relative.to_string_lossy().into_owned(), text));
                }
            }
        }
        found.sort();
        found
    }

    fn pairs(files: &[(&str, &str)]) -> Vec<(String, String)> {
        files
            .iter()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect()
    }

    #[test]
    fn a_recycled_version_holds_exactly_the_new_files_and_the_kept_versions_stay_as_they_were() {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("source");
        let folder = folder_in(scratch.path(), 2);
        write(&source, &[("a.py", "1"), ("b.py", "b"), ("lib/c.py", "c")]);
        let first = folder.deploy(&source).unwrap();
        write(&source, &[("a.py", "2")]);
        let second = folder.deploy(&source).unwrap();
        // What Airflow and people leave in a version: bytecode, a stray file, a stray folder.
        write(
            &folder.version_path(&first.version),
            &[
                ("__pycache__/a.cpython-311.pyc", "bytecode"),
                ("stray.txt", "x"),
                ("lib/__pycache__/c.cpython-311.pyc", "bytecode"),
            ],
        );
        std::fs::remove_dir_all(source.join("lib")).unwrap();
        write(&source, &[("a.py", "3"), ("d.py", "d")]);
        let third = folder.deploy(&source).unwrap();

        // The first version's directory became the third: it was pruned, nothing was left of it.
        assert_eq!(third.pruned, vec![first.version.clone()]);
        assert_eq!(
            folder.versions(),
            vec![third.version.clone(), second.version.clone()]
        );
        assert_eq!(
            files_in(&folder.folder),
            pairs(&[("a.py", "3"), ("b.py", "b"), ("d.py", "d")])
        );
        assert_eq!(
            (third.files_copied, third.files_linked),
            (2, 1),
            "a.py and d.py are new; b.py was already there"
        );
        assert_eq!(
            folder.read_manifest(&third.version).unwrap(),
            scan(&source).unwrap()
        );
        // Nothing was written through a link: the kept version is intact and can go live again.
        assert_eq!(
            files_in(&folder.version_path(&second.version)),
            pairs(&[("a.py", "2"), ("b.py", "b"), ("lib/c.py", "c")])
        );
        folder.switch_to(&second.version).unwrap();
        assert_eq!(
            std::fs::read_to_string(folder.folder.join("lib/c.py")).unwrap(),
            "c"
        );
    }

    #[test]
    fn a_folder_with_foreign_files_is_refused_and_an_empty_one_taken_over() {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("source");
        write(&source, &[("a.py", "a")]);
        let folder = folder_in(scratch.path(), 2);
        std::fs::create_dir_all(&folder.folder).unwrap();
        folder.deploy(&source).unwrap();
        assert!(
            std::fs::symlink_metadata(&folder.folder)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let other = folder_in(&scratch.path().join("other"), 2);
        write(&other.folder, &[("mine.py", "x")]);
        let message = other.deploy(&source).unwrap_err().to_string();
        assert!(
            message.contains("is not a symlink sluice made"),
            "{message}"
        );
    }

    #[test]
    fn leftovers_of_a_killed_deploy_are_removed_and_an_incomplete_version_rebuilt() {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("source");
        write(&source, &[("a.py", "a")]);
        let folder = folder_in(scratch.path(), 2);
        let version = version_name(&scan(&source).unwrap());
        write(
            &folder.versions,
            &[
                (".incoming-x-1/half.py", "x"),
                (&format!("{version}/a.py"), "torn"),
            ],
        );
        let outcome = folder.deploy(&source).unwrap();
        assert_eq!(outcome.files_copied, 1);
        assert_eq!(
            std::fs::read_to_string(folder.folder.join("a.py")).unwrap(),
            "a"
        );
        assert!(!folder.versions.join(".incoming-x-1").exists());
    }
}
