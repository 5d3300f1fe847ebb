//! The git mirror: one bare repository per watched repository under a data directory, fetched
//! incrementally, from which sluice reads files at a commit, lists changed paths, finds merge bases
//! and writes clean checkouts for `run` steps. It knows git and the filesystem, and nothing of
//! pipelines, webhooks, runs or the store. The API is synchronous: async callers wrap it in
//! `spawn_blocking`.

mod changed;
mod checkout;
mod error;
mod fetch;
mod history;
mod pool;
mod read;
mod remote_url;

pub use error::GitError;

use git2::{Repository, RepositoryInitOptions};
use pool::{HandlePool, PooledHandle};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The refs a mirror keeps: every branch, every tag and the head of every pull request.
pub(crate) const FETCH_REFSPECS: [&str; 3] = [
    "+refs/heads/*:refs/heads/*",
    "+refs/tags/*:refs/tags/*",
    "+refs/pull/*/head:refs/pull/*/head",
];

const REMOTE_NAME: &str = "origin";

/// A bare mirror of one repository. `Send + Sync`: reads share a small pool of libgit2 handles,
/// and fetches of the same mirror are serialised.
pub struct Mirror {
    repository: String,
    url: String,
    path: PathBuf,
    handles: HandlePool,
    fetch_lock: Mutex<()>,
}

impl fmt::Debug for Mirror {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Mirror")
            .field("repository", &self.repository)
            .field("url", &remote_url::redact_credentials(&self.url))
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    /// Opens `<mirrors_dir>/<owner>/<name>.git`, creating a bare repository with remote `origin`
    /// = url if missing (url: local path, file://, https://, ssh://; a relative local path is made
    /// absolute). If the stored url differs, the remote is updated. Does not touch the network.
    pub fn open(mirrors_dir: &Path, repository: &str, url: &str) -> Result<Mirror, GitError> {
        // Every object in a mirror arrived through a fetch, whose pack indexing already computed
        // and checked its id; hashing it again on every read cost about a fifth of a cold diff.
        static SKIP_REHASHING: std::sync::Once = std::sync::Once::new();
        SKIP_REHASHING.call_once(|| git2::opts::strict_hash_verification(false));
        let (owner, name) = split_repository_name(repository)?;
        let url = remote_url::normalize(url).map_err(|reason| GitError::InvalidUrl {
            repository: repository.to_string(),
            url: remote_url::redact_credentials(url),
            reason,
        })?;
        let path = mirrors_dir.join(owner).join(format!("{name}.git"));
        let mirror_error = |message: String| GitError::Mirror {
            repository: repository.to_string(),
            path: path.clone(),
            message,
        };
        let handle = open_or_create_bare(&path).map_err(mirror_error)?;
        configure_origin(&handle, &url).map_err(|error| mirror_error(error.message().into()))?;
        Ok(Mirror {
            repository: repository.to_string(),
            url,
            handles: HandlePool::new(path.clone(), handle),
            path,
            fetch_lock: Mutex::new(()),
        })
    }

    /// `OWNER/NAME` of the mirrored repository.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The remote url as stored (absolute for local paths). May hold credentials: redact it
    /// before logging.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bare repository on disk.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fetches all branches, tags and pull-request heads with prune, incrementally. A force push
    /// moves the ref; the old commits stay readable. Credentials: the ssh agent or default keys for
    /// ssh, the token in `SLUICE_GIT_TOKEN` (never logged) for https.
    pub fn fetch(&self) -> Result<(), GitError> {
        let _only_fetch = self
            .fetch_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        fetch::fetch(self)
    }

    /// Full sha of a revision (`main`, `refs/heads/main`, a sha or a prefix, `HEAD~1`, a tag).
    pub fn resolve(&self, revision: &str) -> Result<String, GitError> {
        let handle = self.handle()?;
        let commit = read::resolve_commit(self, &handle, revision)?;
        Ok(commit.id().to_string())
    }

    /// Whether the commit (a full sha or an unambiguous prefix) is in the mirror.
    pub fn has_commit(&self, sha: &str) -> bool {
        self.handle()
            .map(|handle| read::has_commit(&handle, sha))
            .unwrap_or(false)
    }

    /// The contents of one file at a commit; None if absent. A symlink reads as its target path,
    /// as `git show` prints it.
    pub fn read_file(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let handle = self.handle()?;
        read::read_file(self, &handle, commit, path)
    }

    /// Regular files directly under `dir` at a commit, as (path relative to the repository root,
    /// contents), sorted by path; empty if the directory is absent. Subdirectories, symlinks and
    /// submodules are left out. Used to read `workflows/*.yaml`.
    pub fn read_dir(&self, commit: &str, dir: &str) -> Result<Vec<(String, Vec<u8>)>, GitError> {
        let handle = self.handle()?;
        read::read_dir(self, &handle, commit, dir)
    }

    /// Paths changed between two commits, sorted and deduplicated: both sides of a rename, mode
    /// changes, files replaced by directories. `from` None (a new branch with no base): every path
    /// in `to`'s tree.
    pub fn changed_paths(&self, from: Option<&str>, to: &str) -> Result<Vec<String>, GitError> {
        let handle = self.handle()?;
        changed::changed_paths(self, &handle, from, to)
    }

    /// The best common ancestor of two revisions; None if their histories never meet.
    pub fn merge_base(&self, one: &str, two: &str) -> Result<Option<String>, GitError> {
        let handle = self.handle()?;
        read::merge_base(self, &handle, one, two)
    }

    /// Writes a clean working tree of `commit` into `destination` (which must not exist or be
    /// empty): regular files with their modes, symlinks as symlinks, submodules as empty
    /// directories, no `.git`.
    pub fn checkout(&self, commit: &str, destination: &Path) -> Result<(), GitError> {
        let handle = self.handle()?;
        checkout::checkout(self, &handle, commit, destination)
    }

    /// Every branch and the sha of its tip, sorted by branch name. Polling compares these with the
    /// last tips seen to synthesise pushes.
    pub fn branch_tips(&self) -> Result<Vec<(String, String)>, GitError> {
        let handle = self.handle()?;
        read::branch_tips(self, &handle)
    }

    /// The branch a new branch is compared with: `main`, else `master`, else the branch `HEAD`
    /// names (after a fetch, the remote's default branch); None in an empty mirror.
    pub fn default_branch(&self) -> Result<Option<String>, GitError> {
        let handle = self.handle()?;
        read::default_branch(self, &handle)
    }

    /// How many commits lead to `commit` along first parents: git order on a branch.
    pub fn first_parent_depth(&self, commit: &str) -> Result<u64, GitError> {
        let handle = self.handle()?;
        history::first_parent_depth(self, &handle, commit)
    }

    /// A commit's first message line, author name and committer time (Unix seconds).
    pub fn commit_summary(&self, commit: &str) -> Result<(String, String, i64), GitError> {
        let handle = self.handle()?;
        history::commit_summary(self, &handle, commit)
    }

    /// The tree id of a directory at a commit; `None` when it is absent.
    pub fn tree_id(&self, commit: &str, dir: &str) -> Result<Option<String>, GitError> {
        let handle = self.handle()?;
        history::tree_id(self, &handle, commit, dir)
    }

    fn handle(&self) -> Result<PooledHandle<'_>, GitError> {
        self.handles
            .acquire()
            .map_err(|error| self.repository_error("open the repository", error))
    }

    /// Wraps an unexpected libgit2 error: the action names what sluice was doing.
    pub(crate) fn repository_error(&self, action: &str, error: git2::Error) -> GitError {
        GitError::Repository {
            repository: self.repository.clone(),
            action: action.to_string(),
            path: self.path.clone(),
            message: remote_url::redact_credentials(error.message()),
        }
    }
}

/// `OWNER/NAME` with plain segments only, so that a name from a webhook can never escape the
/// mirrors directory.
fn split_repository_name(repository: &str) -> Result<(&str, &str), GitError> {
    let is_plain_segment = |segment: &str| {
        !segment.is_empty()
            && !segment.starts_with('.')
            && segment.chars().all(|character| {
                character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.')
            })
    };
    match repository.split_once('/') {
        Some((owner, name)) if is_plain_segment(owner) && is_plain_segment(name) => {
            Ok((owner, name))
        }
        _ => Err(GitError::InvalidRepositoryName {
            repository: repository.to_string(),
        }),
    }
}

fn open_or_create_bare(path: &Path) -> Result<Repository, String> {
    let is_missing_or_empty = match std::fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_none(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
        Err(error) => return Err(error.to_string()),
    };
    if !is_missing_or_empty {
        return Repository::open_bare(path).map_err(|error| error.message().to_string());
    }
    let mut options = RepositoryInitOptions::new();
    options.bare(true).mkpath(true).no_reinit(false);
    Repository::init_opts(path, &options).map_err(|error| error.message().to_string())
}

/// Makes `origin` point at `url` with exactly the mirror's refspecs, whatever was there before.
fn configure_origin(handle: &Repository, url: &str) -> Result<(), git2::Error> {
    let existing_remote = match handle.find_remote(REMOTE_NAME) {
        Ok(remote) => Some(remote),
        Err(error) if error.code() == git2::ErrorCode::NotFound => None,
        Err(error) => return Err(error),
    };
    let Some(remote) = existing_remote else {
        handle.remote_with_fetch(REMOTE_NAME, url, FETCH_REFSPECS[0])?;
        for refspec in &FETCH_REFSPECS[1..] {
            handle.remote_add_fetch(REMOTE_NAME, refspec)?;
        }
        return Ok(());
    };
    if remote.url_bytes() != url.as_bytes() {
        handle.remote_set_url(REMOTE_NAME, url)?;
    }
    let stored_refspecs: Vec<String> = remote
        .fetch_refspecs()?
        .iter_bytes()
        .map(|refspec| String::from_utf8_lossy(refspec).into_owned())
        .collect();
    if stored_refspecs != FETCH_REFSPECS {
        let key = format!("remote.{REMOTE_NAME}.fetch");
        let mut config = handle.config()?.open_level(git2::ConfigLevel::Local)?;
        match config.remove_multivar(&key, ".*") {
            Ok(()) => {}
            Err(error) if error.code() == git2::ErrorCode::NotFound => {}
            Err(error) => return Err(error),
        }
        for refspec in FETCH_REFSPECS {
            handle.remote_add_fetch(REMOTE_NAME, refspec)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_must_be_owner_slash_name() {
        let check = |name: &str, valid: bool| {
            assert_eq!(split_repository_name(name).is_ok(), valid, "name {name:?}")
        };
        check("acme/platform", true);
        check("acme-corp/ml_platform.v2", true);
        check("acme", false);
        check("acme/", false);
        check("/platform", false);
        check("acme/platform/extra", false);
        check("../platform", false);
        check("acme/..", false);
        check("acme/.git", false);
        check("acme/plat form", false);
    }

    #[test]
    fn mirror_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Mirror>();
    }
}
