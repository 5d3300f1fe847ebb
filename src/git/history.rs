//! Facts about a commit's place in history that releases need: its depth along first parents
//! (git order on a branch: a merge landing later is deeper) and the tree id of a directory at it
//! (what identifies a DAG folder's contents).

use super::read::resolve_commit;
use super::{GitError, Mirror};
use git2::{ObjectType, Repository};
use std::path::Path;

/// Number of commits reachable from `commit` along first parents, the commit included.
pub(crate) fn first_parent_depth(
    mirror: &Mirror,
    handle: &Repository,
    commit: &str,
) -> Result<u64, GitError> {
    let start = resolve_commit(mirror, handle, commit)?.id();
    let walk_error = |error| mirror.repository_error("walk the first-parent history", error);
    let mut walk = handle.revwalk().map_err(walk_error)?;
    walk.push(start).map_err(walk_error)?;
    walk.simplify_first_parent().map_err(walk_error)?;
    let mut depth = 0;
    for step in walk {
        step.map_err(walk_error)?;
        depth += 1;
    }
    Ok(depth)
}

/// The tree id of `dir` at `commit`; `None` when the directory is absent.
pub(crate) fn tree_id(
    mirror: &Mirror,
    handle: &Repository,
    commit: &str,
    dir: &str,
) -> Result<Option<String>, GitError> {
    let tree = resolve_commit(mirror, handle, commit)?
        .tree()
        .map_err(|error| mirror.repository_error("read a commit's tree", error))?;
    let trimmed = dir.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Some(tree.id().to_string()));
    }
    match tree.get_path(Path::new(trimmed)) {
        Ok(entry) if entry.kind() == Some(ObjectType::Tree) => Ok(Some(entry.id().to_string())),
        Ok(_) => Ok(None),
        Err(error) if error.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(error) => Err(mirror.repository_error(&format!("find `{trimmed}`"), error)),
    }
}

/// A commit's first message line, its author's name and its committer time (Unix seconds).
pub(crate) fn commit_summary(
    mirror: &Mirror,
    handle: &Repository,
    commit: &str,
) -> Result<(String, String, i64), GitError> {
    let commit = resolve_commit(mirror, handle, commit)?;
    let title = commit
        .summary_bytes()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default();
    let author = String::from_utf8_lossy(commit.author().name_bytes()).into_owned();
    let committed_at = commit.committer().when().seconds();
    Ok((title, author, committed_at))
}
