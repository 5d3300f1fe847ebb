//! Writing a clean working tree of one commit into a fresh directory for `run` steps: regular
//! files with their modes, symlinks as symlinks, submodules as empty directories, no `.git`.
//! Every name from the tree is checked before it touches the filesystem, so a hostile commit
//! cannot write outside the destination. Knows nothing of steps or containers.

use super::read::resolve_commit;
use super::{GitError, Mirror};
use git2::{ObjectType, Repository, Tree};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

const FILE_MODE_BLOB_EXECUTABLE: i32 = 0o100755;
const FILE_MODE_LINK: i32 = 0o120000;

pub(crate) fn checkout(
    mirror: &Mirror,
    handle: &Repository,
    revision: &str,
    destination: &Path,
) -> Result<(), GitError> {
    let commit = resolve_commit(mirror, handle, revision)?;
    let commit_sha = commit.id().to_string();
    let write_error = |path: &Path, source: std::io::Error| GitError::Write {
        repository: mirror.repository().to_string(),
        commit: commit_sha.clone(),
        path: path.to_path_buf(),
        source,
    };
    match fs::read_dir(destination) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(GitError::DestinationNotEmpty {
                    destination: destination.to_path_buf(),
                });
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(destination).map_err(|error| write_error(destination, error))?;
        }
        Err(error) => return Err(write_error(destination, error)),
    }
    let tree = commit.tree().map_err(|error| {
        mirror.repository_error(&format!("read the tree of {commit_sha}"), error)
    })?;
    let mut writer = TreeWriter {
        mirror,
        handle,
        commit_sha: &commit_sha,
    };
    writer.write_tree(&tree, destination, "")
}

struct TreeWriter<'context> {
    mirror: &'context Mirror,
    handle: &'context Repository,
    commit_sha: &'context str,
}

impl TreeWriter<'_> {
    fn write_tree(
        &mut self,
        tree: &Tree<'_>,
        directory: &Path,
        tree_path: &str,
    ) -> Result<(), GitError> {
        for entry in tree.iter() {
            let name = entry.name_bytes();
            let entry_tree_path = format!("{tree_path}{}", String::from_utf8_lossy(name));
            if !is_safe_name(name) {
                return Err(GitError::UnsafePath {
                    repository: self.mirror.repository().to_string(),
                    commit: self.commit_sha.to_string(),
                    path: entry_tree_path,
                });
            }
            let target_path = directory.join(OsStr::from_bytes(name));
            let read_error = |error| {
                self.mirror.repository_error(
                    &format!("read {entry_tree_path:?} at {}", self.commit_sha),
                    error,
                )
            };
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    let subtree = self.handle.find_tree(entry.id()).map_err(read_error)?;
                    fs::create_dir(&target_path)
                        .map_err(|error| self.write_error(&target_path, error))?;
                    self.write_tree(&subtree, &target_path, &format!("{entry_tree_path}/"))?;
                }
                Some(ObjectType::Blob) => {
                    let blob = self.handle.find_blob(entry.id()).map_err(read_error)?;
                    if entry.filemode() == FILE_MODE_LINK {
                        symlink(OsStr::from_bytes(blob.content()), &target_path)
                            .map_err(|error| self.write_error(&target_path, error))?;
                    } else {
                        let mode = if entry.filemode() == FILE_MODE_BLOB_EXECUTABLE {
                            0o755
                        } else {
                            0o644
                        };
                        write_new_file(&target_path, blob.content(), mode)
                            .map_err(|error| self.write_error(&target_path, error))?;
                    }
                }
                // A submodule: like git without `--recurse-submodules`, an empty directory.
                _ => fs::create_dir(&target_path)
                    .map_err(|error| self.write_error(&target_path, error))?,
            }
        }
        Ok(())
    }

    fn write_error(&self, path: &Path, source: std::io::Error) -> GitError {
        GitError::Write {
            repository: self.mirror.repository().to_string(),
            commit: self.commit_sha.to_string(),
            path: PathBuf::from(path),
            source,
        }
    }
}

/// `create_new` so that nothing already there (a symlink planted by an earlier entry) is
/// followed; the mode is applied through the process umask, as git does.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(contents)
}

/// One plain path component that is not `.git` in any case: git itself refuses the others.
fn is_safe_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name != b"."
        && name != b".."
        && !name.eq_ignore_ascii_case(b".git")
        && !name.contains(&b'/')
        && !name.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::is_safe_name;

    #[test]
    fn only_plain_names_are_written() {
        let check = |name: &[u8], safe: bool| assert_eq!(is_safe_name(name), safe, "{name:?}");
        check(b"main.py", true);
        check(b".github", true);
        check(b"..data", true);
        check(b"", false);
        check(b".", false);
        check(b"..", false);
        check(b".git", false);
        check(b".GIT", false);
        check(b"a/b", false);
        check(b"a\0b", false);
    }
}
