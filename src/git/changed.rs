//! Paths changed between two commits, by walking both trees side by side and skipping every
//! subtree whose object id is the same on both sides. No rename detection and no content diff:
//! a rename is a deletion plus an addition, which is what path filters want. Knows nothing of
//! the filters themselves.

use super::read::resolve_commit;
use super::{GitError, Mirror};
use git2::{Repository, Tree, TreeEntry};
use std::cmp::Ordering;

const FILE_MODE_TREE: i32 = 0o040000;

pub(crate) fn changed_paths(
    mirror: &Mirror,
    handle: &Repository,
    from: Option<&str>,
    to: &str,
) -> Result<Vec<String>, GitError> {
    let new_commit = resolve_commit(mirror, handle, to)?;
    let old_commit = from
        .map(|revision| resolve_commit(mirror, handle, revision))
        .transpose()?;
    let diff_error = |error| {
        let old_description = old_commit
            .as_ref()
            .map_or("nothing".to_string(), |commit| commit.id().to_string());
        mirror.repository_error(
            &format!(
                "compare the trees of {old_description} and {}",
                new_commit.id()
            ),
            error,
        )
    };
    let new_tree = new_commit.tree().map_err(diff_error)?;
    let old_tree = old_commit
        .as_ref()
        .map(|commit| commit.tree())
        .transpose()
        .map_err(diff_error)?;
    let mut walk = TreeWalk {
        handle,
        path_prefix: Vec::new(),
        changed_paths: Vec::new(),
    };
    walk.compare(old_tree.as_ref(), Some(&new_tree))
        .map_err(diff_error)?;
    let mut paths: Vec<String> = walk
        .changed_paths
        .into_iter()
        .map(|path| String::from_utf8_lossy(&path).into_owned())
        .collect();
    paths.sort_unstable();
    paths.dedup();
    Ok(paths)
}

struct TreeWalk<'repository> {
    handle: &'repository Repository,
    /// The directory being compared, with a trailing slash (empty at the root).
    path_prefix: Vec<u8>,
    changed_paths: Vec<Vec<u8>>,
}

impl TreeWalk<'_> {
    /// Records every path that differs between two versions of the same directory; a missing
    /// side means the directory is absent there.
    fn compare(
        &mut self,
        old: Option<&Tree<'_>>,
        new: Option<&Tree<'_>>,
    ) -> Result<(), git2::Error> {
        let mut old_entries = old.map(|tree| tree.iter()).into_iter().flatten().peekable();
        let mut new_entries = new.map(|tree| tree.iter()).into_iter().flatten().peekable();
        loop {
            let order = match (old_entries.peek(), new_entries.peek()) {
                (None, None) => return Ok(()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(old_entry), Some(new_entry)) => tree_order(old_entry, new_entry),
            };
            match order {
                Ordering::Less => {
                    let old_entry = old_entries.next().expect("peeked");
                    self.record_whole(&old_entry)?;
                }
                Ordering::Greater => {
                    let new_entry = new_entries.next().expect("peeked");
                    self.record_whole(&new_entry)?;
                }
                Ordering::Equal => {
                    let old_entry = old_entries.next().expect("peeked");
                    let new_entry = new_entries.next().expect("peeked");
                    let is_unchanged = old_entry.id() == new_entry.id()
                        && old_entry.filemode() == new_entry.filemode();
                    if is_unchanged {
                        continue;
                    }
                    if is_tree(&old_entry) {
                        let old_subtree = self.handle.find_tree(old_entry.id())?;
                        let new_subtree = self.handle.find_tree(new_entry.id())?;
                        self.descend(
                            old_entry.name_bytes(),
                            Some(&old_subtree),
                            Some(&new_subtree),
                        )?;
                    } else {
                        self.record(new_entry.name_bytes());
                    }
                }
            }
        }
    }

    /// An entry present on one side only: the path itself, or every path under a directory.
    fn record_whole(&mut self, entry: &TreeEntry<'_>) -> Result<(), git2::Error> {
        if is_tree(entry) {
            let subtree = self.handle.find_tree(entry.id())?;
            self.descend(entry.name_bytes(), None, Some(&subtree))
        } else {
            self.record(entry.name_bytes());
            Ok(())
        }
    }

    fn descend(
        &mut self,
        name: &[u8],
        old: Option<&Tree<'_>>,
        new: Option<&Tree<'_>>,
    ) -> Result<(), git2::Error> {
        let prefix_length = self.path_prefix.len();
        self.path_prefix.extend_from_slice(name);
        self.path_prefix.push(b'/');
        let result = self.compare(old, new);
        self.path_prefix.truncate(prefix_length);
        result
    }

    fn record(&mut self, name: &[u8]) {
        let mut path = Vec::with_capacity(self.path_prefix.len() + name.len());
        path.extend_from_slice(&self.path_prefix);
        path.extend_from_slice(name);
        self.changed_paths.push(path);
    }
}

fn is_tree(entry: &TreeEntry<'_>) -> bool {
    entry.filemode() == FILE_MODE_TREE
}

/// Git's order of tree entries: by name, a directory compared as if its name ended in `/`. So a
/// file and a directory of the same name are different entries, as git diff treats them.
fn tree_order(first: &TreeEntry<'_>, second: &TreeEntry<'_>) -> Ordering {
    compare_entry_names(
        first.name_bytes(),
        is_tree(first),
        second.name_bytes(),
        is_tree(second),
    )
}

fn compare_entry_names(
    first_name: &[u8],
    first_is_tree: bool,
    second_name: &[u8],
    second_is_tree: bool,
) -> Ordering {
    let common_length = first_name.len().min(second_name.len());
    let common_order = first_name[..common_length].cmp(&second_name[..common_length]);
    if common_order != Ordering::Equal {
        return common_order;
    }
    let next_byte =
        |name: &[u8], is_tree: bool| name.get(common_length).copied().or(is_tree.then_some(b'/'));
    next_byte(first_name, first_is_tree).cmp(&next_byte(second_name, second_is_tree))
}

#[cfg(test)]
mod tests {
    use super::compare_entry_names;
    use std::cmp::Ordering::{self, *};

    fn check(first: (&str, bool), second: (&str, bool), expected: Ordering) {
        let order = compare_entry_names(first.0.as_bytes(), first.1, second.0.as_bytes(), second.1);
        assert_eq!(order, expected, "{first:?} against {second:?}");
    }

    #[test]
    fn entries_sort_as_git_sorts_them() {
        let file = false;
        let directory = true;
        check(("a", file), ("b", file), Less);
        check(("a", file), ("a", file), Equal);
        check(("a", directory), ("a", directory), Equal);
        check(("a", file), ("a", directory), Less);
        check(("a", directory), ("a.txt", file), Greater);
        check(("a", file), ("a.txt", file), Less);
        check(("a", directory), ("a0", file), Less);
        check(("a-b", file), ("a", directory), Less);
        check(("ab", file), ("a", directory), Greater);
    }
}
