//! Filling a version directory that is not live yet: every file of the manifest, each taken the
//! cheapest way that keeps versions immutable. A file a recycled directory (a version pruning
//! would remove anyway) already holds with the same sha256 stays where it is; one the live
//! version holds is hard-linked from it; anything else is copied from the source and flushed.
//! Whatever the recycled directory holds beyond the manifest (other files, `__pycache__`) is
//! removed first. No file that another version links to is ever written in place. Knows files
//! only: nothing of symlink switches, pruning or Airflow.

use super::folder::{FolderDeploy, FolderError, Manifest, io_error};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A complete version other files can be taken from.
pub(super) struct Version<'a> {
    pub manifest: &'a Manifest,
    pub path: &'a Path,
}

/// Makes `directory` hold exactly the files of `manifest` (the manifest file itself is the
/// caller's to write last). `recycled` describes what `directory` holds already (None: it is
/// empty); `live` is where unchanged files are linked from.
pub(super) fn assemble(
    directory: &Path,
    source: &Path,
    manifest: &Manifest,
    recycled: Option<&Manifest>,
    live: Option<Version<'_>>,
    outcome: &mut FolderDeploy,
) -> Result<(), FolderError> {
    let kept: HashSet<&str> = match recycled {
        Some(recycled) => manifest
            .iter()
            .filter(|(path, digest)| recycled.get(*path) == Some(digest))
            .map(|(path, _)| path.as_str())
            .collect(),
        None => HashSet::new(),
    };
    let mut folders: HashSet<PathBuf> = HashSet::new();
    if recycled.is_some() {
        let mut wanted_folders: HashSet<&str> = HashSet::new();
        for path in manifest.keys() {
            let mut rest = path.as_str();
            while let Some((parent, _)) = rest.rsplit_once('/') {
                if !wanted_folders.insert(parent) {
                    break;
                }
                rest = parent;
            }
        }
        remove_unwanted(directory, "", &kept, &wanted_folders)?;
        folders.extend(
            wanted_folders
                .iter()
                .map(|folder| directory.join(folder))
                .filter(|folder| folder.is_dir()),
        );
    }
    for (relative, digest) in manifest {
        if kept.contains(relative.as_str()) {
            outcome.files_linked += 1;
            continue;
        }
        let destination = directory.join(relative);
        if let Some(parent) = destination.parent()
            && parent != directory
            && !folders.contains(parent)
        {
            std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
            folders.insert(parent.to_path_buf());
        }
        if let Some(live) = &live
            && live.manifest.get(relative) == Some(digest)
            && std::fs::hard_link(live.path.join(relative), &destination).is_ok()
        {
            outcome.files_linked += 1;
            continue;
        }
        let origin = source.join(relative);
        let bytes = std::fs::read(&origin).map_err(io_error("read", &origin))?;
        let mut file =
            std::fs::File::create(&destination).map_err(io_error("write", &destination))?;
        file.write_all(&bytes)
            .map_err(io_error("write", &destination))?;
        file.sync_data().map_err(io_error("flush", &destination))?;
        outcome.files_copied += 1;
        outcome.bytes_copied += bytes.len() as u64;
    }
    Ok(())
}

/// Removes every entry under `directory` that is neither a kept file nor a folder on the way to
/// one of the manifest's files. `relative` is `directory`'s path inside the version.
fn remove_unwanted(
    directory: &Path,
    relative: &str,
    kept: &HashSet<&str>,
    wanted_folders: &HashSet<&str>,
) -> Result<(), FolderError> {
    let entries = std::fs::read_dir(directory).map_err(io_error("read the folder", directory))?;
    for entry in entries {
        let entry = entry.map_err(io_error("read the folder", directory))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let entry_relative = if relative.is_empty() {
            name.to_string()
        } else {
            format!("{relative}/{name}")
        };
        let path = entry.path();
        let is_folder = entry.file_type().map_err(io_error("read", &path))?.is_dir();
        if is_folder && wanted_folders.contains(entry_relative.as_str()) {
            remove_unwanted(&path, &entry_relative, kept, wanted_folders)?;
        } else if is_folder {
            std::fs::remove_dir_all(&path).map_err(io_error("remove", &path))?;
        } else if !kept.contains(entry_relative.as_str()) {
            std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
        }
    }
    Ok(())
}
