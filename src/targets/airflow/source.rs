//! What a release's DAG folder publishes: every file under it with its sha256, skipping
//! `__pycache__`, `.git` and `*.pyc`. Symlinks are followed only when they resolve inside the
//! folder, and count as the content they point at, so a version holds plain files. A link that
//! leaves the folder (an absolute target, a `..` escape, a chain of links), dangles, or leads
//! back into a folder that contains it is refused with its path and target: the release's code
//! must not publish, or have Airflow parse, files from elsewhere on the machine. Knows files
//! only.

use super::folder::{FolderError, MANIFEST, Manifest, io_error};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Reads every file under `directory` (skipping `__pycache__` and `*.pyc`) with its sha256.
/// Symlinks count as what they point at, and only when that lies inside `directory`. The folder
/// is listed first; the files are then read and hashed on every core.
pub fn scan(directory: &Path) -> Result<Manifest, FolderError> {
    let mut files = Vec::new();
    walk(directory, &mut |relative, path| {
        files.push((relative, path.to_path_buf()));
        Ok(())
    })?;
    let digests = hash_files(&files)?;
    Ok(files
        .into_iter()
        .map(|(relative, _)| relative)
        .zip(digests)
        .collect())
}

/// The sha256 (hex) of each file, in order; the list split between up to one thread per core.
pub(super) fn hash_files(files: &[(String, PathBuf)]) -> Result<Vec<String>, FolderError> {
    // Below a few hundred files a thread costs more than it saves.
    const FILES_PER_THREAD: usize = 256;
    let threads = std::thread::available_parallelism()
        .map_or(1, |count| count.get())
        .min(files.len() / FILES_PER_THREAD)
        .max(1);
    if threads == 1 {
        return hash_part(files);
    }
    let part_size = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = files
            .chunks(part_size)
            .map(|part| scope.spawn(move || hash_part(part)))
            .collect();
        let mut digests = Vec::with_capacity(files.len());
        for part in parts {
            digests.extend(part.join().expect("hashing a file does not panic")?);
        }
        Ok(digests)
    })
}

fn hash_part(files: &[(String, PathBuf)]) -> Result<Vec<String>, FolderError> {
    // One buffer for every file, hashed as it is read: no allocation and no size query per file.
    let mut buffer = vec![0u8; 64 * 1024];
    files
        .iter()
        .map(|(_, path)| {
            let mut hasher = Sha256::new();
            let mut file = std::fs::File::open(path).map_err(io_error("read", path))?;
            loop {
                match file.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(count) => hasher.update(&buffer[..count]),
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(io_error("read", path)(error)),
                }
            }
            Ok(hex::encode(hasher.finalize()))
        })
        .collect()
}

/// Refuses the folder when one of its symlinks leaves it, dangles or loops; reads no file.
/// For callers that hand the folder to something else (Airflow's `DagBag`) before scanning it.
pub fn check_links(directory: &Path) -> Result<(), FolderError> {
    walk(directory, &mut |_, _| Ok(()))
}

/// Calls `visit` with the relative path (with `/`) and the path of every file to publish.
/// Entries' types come from the folder listing; only symlinks cost a look at what they point at.
fn walk(
    directory: &Path,
    visit: &mut dyn FnMut(String, &Path) -> Result<(), FolderError>,
) -> Result<(), FolderError> {
    let root = std::fs::canonicalize(directory).map_err(io_error("resolve", directory))?;
    // Each folder still to read, its path relative to `directory`, and the real folders it was
    // reached through: a link to one of them, or to a folder above them, would make the walk
    // endless.
    let mut pending = vec![(directory.to_path_buf(), String::new(), vec![root.clone()])];
    while let Some((current, current_relative, chain)) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(io_error("read the folder", &current))?;
        for entry in entries {
            let entry = entry.map_err(io_error("read the folder", &current))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let relative = if current_relative.is_empty() {
                name.to_string()
            } else {
                format!("{current_relative}/{name}")
            };
            let entry_type = entry.file_type().map_err(io_error("read", &path))?;
            let is_link = entry_type.is_symlink();
            let (real, file_type) = if is_link {
                let real = resolve_link(directory, &root, &relative, &path)?;
                let file_type = std::fs::metadata(&path)
                    .map_err(io_error("read", &path))?
                    .file_type();
                (Some(real), file_type)
            } else {
                (None, entry_type)
            };
            if file_type.is_dir() {
                if name == "__pycache__" || name == ".git" {
                    continue;
                }
                let real = match real {
                    Some(real) => real,
                    None => chain.last().unwrap_or(&root).join(entry.file_name()),
                };
                if is_link && chain.iter().any(|reached| reached.starts_with(&real)) {
                    return Err(link_error(
                        directory,
                        &relative,
                        &path,
                        "a folder that contains it, so the folder would never end".to_owned(),
                    ));
                }
                let mut next_chain = chain.clone();
                next_chain.push(real);
                pending.push((path, relative, next_chain));
            } else if file_type.is_file() && !name.ends_with(".pyc") && name != MANIFEST {
                visit(relative, &path)?;
            }
        }
    }
    Ok(())
}

/// Where the link at `path` ends after every link on the way; refused unless inside `root`.
fn resolve_link(
    directory: &Path,
    root: &Path,
    relative: &str,
    path: &Path,
) -> Result<PathBuf, FolderError> {
    match std::fs::canonicalize(path) {
        Ok(real) if real.starts_with(root) => Ok(real),
        Ok(real) => Err(link_error(
            directory,
            relative,
            path,
            format!("which is outside it (`{}`)", real.display()),
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(link_error(
            directory,
            relative,
            path,
            "which does not exist".to_owned(),
        )),
        Err(error) => Err(link_error(
            directory,
            relative,
            path,
            format!("which cannot be followed ({error})"),
        )),
    }
}

fn link_error(directory: &Path, relative: &str, path: &Path, problem: String) -> FolderError {
    FolderError::Link {
        link: relative.to_owned(),
        folder: directory.to_path_buf(),
        target: std::fs::read_link(path).unwrap_or_default(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::airflow::VersionedFolder;
    use std::os::unix::fs::symlink;

    /// A DAG source `dags/` with one ordinary file, and `elsewhere/` beside it.
    fn source_tree() -> (tempfile::TempDir, PathBuf) {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("dags");
        std::fs::create_dir_all(source.join("lib")).unwrap();
        std::fs::create_dir_all(scratch.path().join("elsewhere")).unwrap();
        std::fs::write(source.join("etl.py"), "dag = 1\n").unwrap();
        std::fs::write(source.join("lib/helpers.py"), "X = 1\n").unwrap();
        std::fs::write(scratch.path().join("elsewhere/secret.txt"), "s3cr3t\n").unwrap();
        (scratch, source)
    }

    #[test]
    fn a_symlink_that_leaves_the_dag_folder_is_refused_with_its_path_and_target() {
        let cases: &[(&str, &str, &str)] = &[
            // link in dags/, its target, what the message says about it
            (
                "x.py",
                "/etc/passwd",
                "points to `/etc/passwd`, which is outside it (`/",
            ),
            (
                "lib/up.py",
                "../../elsewhere/secret.txt",
                "points to `../../elsewhere/secret.txt`, which is outside it",
            ),
            // A chain: the first link stays in the folder's parent, the second leaves for good.
            (
                "chain.py",
                "../elsewhere/hop.py",
                "points to `../elsewhere/hop.py`, which is outside it (`/",
            ),
            (
                "gone.py",
                "missing.py",
                "points to `missing.py`, which does not exist",
            ),
            (
                "lib/loop",
                "..",
                "points to `..`, a folder that contains it, so the folder would never end",
            ),
        ];
        for (link, target, problem) in cases {
            let (scratch, source) = source_tree();
            symlink("/etc/passwd", scratch.path().join("elsewhere/hop.py")).unwrap();
            symlink(target, source.join(link)).unwrap();
            let expected = format!(
                "symlink `{link}` in the DAG folder `{}` {problem}",
                source.display()
            );
            for refused in [
                scan(&source).unwrap_err().to_string(),
                check_links(&source).unwrap_err().to_string(),
            ] {
                assert!(
                    refused.starts_with(&expected),
                    "{refused}\nwant: {expected}"
                );
                assert!(
                    refused.ends_with("; replace the link by the file it stands for"),
                    "{refused}"
                );
            }
            let folder = VersionedFolder {
                folder: scratch.path().join("live/dags"),
                versions: scratch.path().join("live/dags.versions"),
                keep: 2,
            };
            assert!(
                folder.deploy(&source).is_err(),
                "`{link}` -> `{target}` deployed"
            );
            assert_eq!(folder.live_version().unwrap(), None);
        }
    }

    #[test]
    fn links_that_stay_inside_are_published_as_the_files_they_point_at() {
        let (scratch, source) = source_tree();
        symlink("etl.py", source.join("alias.py")).unwrap();
        symlink("lib", source.join("shared")).unwrap();
        symlink(source.join("lib/helpers.py"), source.join("absolute.py")).unwrap();
        let manifest = scan(&source).unwrap();
        assert_eq!(
            manifest.keys().collect::<Vec<_>>(),
            [
                "absolute.py",
                "alias.py",
                "etl.py",
                "lib/helpers.py",
                "shared/helpers.py"
            ]
        );
        assert_eq!(manifest["alias.py"], manifest["etl.py"]);
        let folder = VersionedFolder {
            folder: scratch.path().join("live/dags"),
            versions: scratch.path().join("live/dags.versions"),
            keep: 2,
        };
        folder.deploy(&source).unwrap();
        let published = folder.folder.join("shared/helpers.py");
        assert!(
            !std::fs::symlink_metadata(&published)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            !std::fs::symlink_metadata(folder.folder.join("shared"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(published).unwrap(), "X = 1\n");
    }
}
