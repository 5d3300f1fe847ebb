//! The one error type of the git mirror. Every message names the repository and the value that
//! failed (url, revision, commit, path) and says what to do next. Urls are redacted before they
//! get here: no message carries a password or a token.

use std::path::PathBuf;

/// What went wrong in a mirror. Callers branch on the variant: a `RevisionNotFound` after a
/// webhook usually means "fetch again", a `Fetch` means the remote is unreachable.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "repository name {repository:?} is not OWNER/NAME; use the name as GitHub spells it, such as \"acme/platform\""
    )]
    InvalidRepositoryName { repository: String },

    #[error("url {url:?} of repository {repository} is not usable: {reason}")]
    InvalidUrl {
        repository: String,
        url: String,
        reason: String,
    },

    #[error(
        "cannot open or create the mirror of {repository} at {path}: {message}; check the directory's permissions, or remove it to let sluice create it again"
    )]
    Mirror {
        repository: String,
        path: PathBuf,
        message: String,
    },

    #[error(
        "cannot fetch {repository} from {url}: {message}; check that the url exists and that sluice may read it (ssh agent or key for ssh, SLUICE_GIT_TOKEN for https)"
    )]
    Fetch {
        repository: String,
        url: String,
        message: String,
    },

    #[error(
        "revision {revision:?} is not in the mirror of {repository} ({reason}); fetch the repository first, or check the branch name or sha"
    )]
    RevisionNotFound {
        repository: String,
        revision: String,
        reason: String,
    },

    #[error(
        "revision {revision:?} of {repository} names a {kind}, not a commit; pass a branch, a tag or a commit sha"
    )]
    NotACommit {
        repository: String,
        revision: String,
        kind: String,
    },

    #[error(
        "path {path:?} at commit {commit} of {repository} is a {kind}, not a file; pass the path of a file"
    )]
    NotAFile {
        repository: String,
        commit: String,
        path: String,
        kind: String,
    },

    #[error(
        "commit {commit} of {repository} holds the path {path:?}, which would be written outside the checkout or into .git; remove it from the repository"
    )]
    UnsafePath {
        repository: String,
        commit: String,
        path: String,
    },

    #[error("checkout destination {destination} is not empty; pass a new or an empty directory")]
    DestinationNotEmpty { destination: PathBuf },

    #[error(
        "cannot write {path} while checking out commit {commit} of {repository}: {source}; check free space and permissions"
    )]
    Write {
        repository: String,
        commit: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot {action} in the mirror of {repository}: {message}; if this persists, the mirror may be damaged: remove {path} to let sluice fetch it again"
    )]
    Repository {
        repository: String,
        action: String,
        path: PathBuf,
        message: String,
    },
}
