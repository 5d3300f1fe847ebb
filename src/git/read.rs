//! Reading a mirror without changing it: resolving revisions, files and directories at a commit,
//! merge bases, branch tips and the default branch. Knows nothing of fetching or of what the
//! files mean.

use super::{GitError, Mirror};
use git2::{Commit, ErrorCode, ObjectType, Oid, Repository, Tree, TreeEntry};
use std::path::Path;

const FILE_MODE_BLOB: i32 = 0o100644;
const FILE_MODE_BLOB_EXECUTABLE: i32 = 0o100755;

pub(crate) fn resolve_commit<'repository>(
    mirror: &Mirror,
    handle: &'repository Repository,
    revision: &str,
) -> Result<Commit<'repository>, GitError> {
    let object = handle
        .revparse_single(revision)
        .map_err(|error| GitError::RevisionNotFound {
            repository: mirror.repository().to_string(),
            revision: revision.to_string(),
            reason: revision_failure_reason(&error),
        })?;
    let kind = object.kind();
    object.peel_to_commit().map_err(|_| GitError::NotACommit {
        repository: mirror.repository().to_string(),
        revision: revision.to_string(),
        kind: kind.map_or("object", |kind| kind.str()).to_string(),
    })
}

fn revision_failure_reason(error: &git2::Error) -> String {
    match error.code() {
        ErrorCode::NotFound => "no branch, tag or commit has that name".to_string(),
        ErrorCode::Ambiguous => "the short sha matches several objects; give more digits".into(),
        ErrorCode::InvalidSpec => "not a valid revision".to_string(),
        ErrorCode::UnbornBranch => "it names a branch with no commit yet".to_string(),
        _ => error.message().to_string(),
    }
}

pub(crate) fn has_commit(handle: &Repository, sha: &str) -> bool {
    let looks_like_sha =
        (4..=40).contains(&sha.len()) && sha.bytes().all(|character| character.is_ascii_hexdigit());
    if !looks_like_sha {
        return false;
    }
    let Ok(object) = handle.revparse_single(sha) else {
        return false;
    };
    object.kind() == Some(ObjectType::Commit)
        && object
            .id()
            .to_string()
            .starts_with(&sha.to_ascii_lowercase())
}

/// `dir/sub/`, `/dir/sub`, `./dir/sub` all become `dir/sub`; the root is the empty string.
fn normalize_tree_path(path: &str) -> String {
    path.split('/')
        .filter(|component| !component.is_empty() && *component != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The entry at `path` in the tree; None if any component is missing or not a directory.
fn find_entry(tree: &Tree<'_>, path: &str) -> Result<Option<TreeEntry<'static>>, git2::Error> {
    match tree.get_path(Path::new(path)) {
        Ok(entry) => Ok(Some(entry)),
        Err(error) if error.code() == ErrorCode::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

fn entry_kind_name(entry: &TreeEntry<'_>) -> &'static str {
    match entry.kind() {
        Some(ObjectType::Tree) => "directory",
        Some(ObjectType::Commit) => "submodule",
        _ => "object",
    }
}

pub(crate) fn read_file(
    mirror: &Mirror,
    handle: &Repository,
    revision: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, GitError> {
    let commit = resolve_commit(mirror, handle, revision)?;
    let tree_path = normalize_tree_path(path);
    let not_a_file = |kind: &str| GitError::NotAFile {
        repository: mirror.repository().to_string(),
        commit: commit.id().to_string(),
        path: path.to_string(),
        kind: kind.to_string(),
    };
    if tree_path.is_empty() {
        return Err(not_a_file("directory"));
    }
    let read_error = |error| mirror.repository_error(&format!("read {tree_path:?}"), error);
    let tree = commit.tree().map_err(read_error)?;
    let Some(entry) = find_entry(&tree, &tree_path).map_err(read_error)? else {
        return Ok(None);
    };
    if entry.kind() != Some(ObjectType::Blob) {
        return Err(not_a_file(entry_kind_name(&entry)));
    }
    let blob = handle.find_blob(entry.id()).map_err(read_error)?;
    Ok(Some(blob.content().to_vec()))
}

pub(crate) fn read_dir(
    mirror: &Mirror,
    handle: &Repository,
    revision: &str,
    dir: &str,
) -> Result<Vec<(String, Vec<u8>)>, GitError> {
    let commit = resolve_commit(mirror, handle, revision)?;
    let tree_path = normalize_tree_path(dir);
    let read_error = |error| mirror.repository_error(&format!("list {tree_path:?}"), error);
    let root_tree = commit.tree().map_err(read_error)?;
    let directory_tree = if tree_path.is_empty() {
        root_tree
    } else {
        match find_entry(&root_tree, &tree_path).map_err(read_error)? {
            Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                handle.find_tree(entry.id()).map_err(read_error)?
            }
            _ => return Ok(Vec::new()),
        }
    };
    let mut files = Vec::new();
    for entry in directory_tree.iter() {
        if !matches!(entry.filemode(), FILE_MODE_BLOB | FILE_MODE_BLOB_EXECUTABLE) {
            continue;
        }
        let name = String::from_utf8_lossy(entry.name_bytes());
        let file_path = if tree_path.is_empty() {
            name.into_owned()
        } else {
            format!("{tree_path}/{name}")
        };
        let blob = handle.find_blob(entry.id()).map_err(read_error)?;
        files.push((file_path, blob.content().to_vec()));
    }
    files.sort_by(|first, second| first.0.cmp(&second.0));
    Ok(files)
}

pub(crate) fn merge_base(
    mirror: &Mirror,
    handle: &Repository,
    one: &str,
    two: &str,
) -> Result<Option<String>, GitError> {
    let first_commit = resolve_commit(mirror, handle, one)?.id();
    let second_commit = resolve_commit(mirror, handle, two)?.id();
    match handle.merge_base(first_commit, second_commit) {
        Ok(base) => Ok(Some(base.to_string())),
        Err(error) if error.code() == ErrorCode::NotFound => Ok(None),
        Err(error) => Err(mirror.repository_error(
            &format!("find the merge base of {first_commit} and {second_commit}"),
            error,
        )),
    }
}

pub(crate) fn branch_tips(
    mirror: &Mirror,
    handle: &Repository,
) -> Result<Vec<(String, String)>, GitError> {
    let list_error = |error| mirror.repository_error("list branches", error);
    let mut tips = Vec::new();
    for branch in handle
        .branches(Some(git2::BranchType::Local))
        .map_err(list_error)?
    {
        let (branch, _) = branch.map_err(list_error)?;
        let reference = branch.get();
        let Ok(name) = reference.shorthand() else {
            continue;
        };
        let tip: Oid = reference.peel_to_commit().map_err(list_error)?.id();
        tips.push((name.to_string(), tip.to_string()));
    }
    tips.sort();
    Ok(tips)
}

pub(crate) fn default_branch(
    mirror: &Mirror,
    handle: &Repository,
) -> Result<Option<String>, GitError> {
    let branch_exists = |name: &str| handle.find_reference(&format!("refs/heads/{name}")).is_ok();
    for candidate in ["main", "master"] {
        if branch_exists(candidate) {
            return Ok(Some(candidate.to_string()));
        }
    }
    let head = handle
        .find_reference("HEAD")
        .map_err(|error| mirror.repository_error("read HEAD", error))?;
    let head_branch = head
        .symbolic_target()
        .ok()
        .flatten()
        .and_then(|target| target.strip_prefix("refs/heads/"))
        .filter(|name| branch_exists(name))
        .map(str::to_string);
    Ok(head_branch)
}

#[cfg(test)]
mod tests {
    use super::normalize_tree_path;

    #[test]
    fn tree_paths_are_normalized() {
        let check = |path: &str, expected: &str| assert_eq!(normalize_tree_path(path), expected);
        check("workflows", "workflows");
        check("workflows/", "workflows");
        check("/workflows", "workflows");
        check("./workflows//ci.yaml", "workflows/ci.yaml");
        check("", "");
        check("/", "");
        check(".", "");
    }
}
