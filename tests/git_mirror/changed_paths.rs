//! Changed paths between two commits, as the mirror computes them tree-to-tree, checked against
//! `git diff --name-only --no-renames`: additions, modifications, deletions, renames, nested
//! directories, mode and type changes, a new branch without a base, and history rewritten by a
//! force push.

use super::support::{TestRepo, write_tree};
use super::{all_paths_by_git, changed_by_git, fetched_mirror, strings};
use std::os::unix::fs::PermissionsExt;

/// Starts from the same tree, applies `change` in one commit, and expects these changed paths;
/// git's own `diff --name-only --no-renames` must agree.
fn check_changes(change: impl FnOnce(&TestRepo), expected: &[&str]) {
    let source = TestRepo::new();
    write_tree(
        source.path(),
        &[
            ("README.md", "readme\n"),
            ("src/app.py", "print('app')\n"),
            ("src/lib/util.py", "def util(): pass\n"),
            ("docs/guide.md", "guide\n"),
            ("docs/api/index.md", "api\n"),
            ("a/b/c/d/deep.txt", "deep\n"),
            ("a/b/sibling.txt", "sibling\n"),
            ("scripts/run.sh", "#!/bin/sh\n"),
            ("config", "a file for now\n"),
            ("config.yaml", "key: value\n"),
        ],
    );
    let before = source.commit_all("before");
    change(&source);
    let after = source.commit_all("after");
    let (_mirrors_directory, mirror) = fetched_mirror(&source);

    let changed = mirror.changed_paths(Some(&before), &after).unwrap();

    assert_eq!(changed, strings(expected));
    assert_eq!(
        changed,
        changed_by_git(&source, &before, &after),
        "git disagrees"
    );
}

#[test]
fn changed_paths_list_additions_modifications_deletions_and_renames() {
    check_changes(|_| {}, &[]);
    check_changes(
        |source| source.write("src/new.py", "new\n"),
        &["src/new.py"],
    );
    check_changes(
        |source| source.write("src/app.py", "print('changed')\n"),
        &["src/app.py"],
    );
    check_changes(|source| source.remove("docs/guide.md"), &["docs/guide.md"]);
    check_changes(
        |source| {
            source.git(&["mv", "src/app.py", "src/main.py"]);
        },
        &["src/app.py", "src/main.py"],
    );
    check_changes(
        |source| {
            source.git(&["mv", "docs", "documentation"]);
        },
        &[
            "docs/api/index.md",
            "docs/guide.md",
            "documentation/api/index.md",
            "documentation/guide.md",
        ],
    );
}

#[test]
fn changed_paths_handle_nested_directories_modes_and_type_changes() {
    check_changes(
        |source| source.write("a/b/c/d/deep.txt", "deeper\n"),
        &["a/b/c/d/deep.txt"],
    );
    check_changes(
        |source| source.write("a/b/c/new/leaf.txt", "leaf\n"),
        &["a/b/c/new/leaf.txt"],
    );
    check_changes(
        |source| source.remove("docs"),
        &["docs/api/index.md", "docs/guide.md"],
    );
    check_changes(
        |source| {
            let script = source.path().join("scripts/run.sh");
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        },
        &["scripts/run.sh"],
    );
    check_changes(
        |source| {
            source.remove("config");
            source.write("config/base.yaml", "base\n");
        },
        &["config", "config/base.yaml"],
    );
    check_changes(
        |source| {
            std::os::unix::fs::symlink("README.md", source.path().join("link")).unwrap();
        },
        &["link"],
    );
    check_changes(
        |source| {
            source.write("README.md", "readme 2\n");
            source.write("src/lib/util.py", "def util(): return 1\n");
            source.remove("a/b/sibling.txt");
        },
        &["README.md", "a/b/sibling.txt", "src/lib/util.py"],
    );
}

#[test]
fn changed_paths_of_a_new_branch_without_base_list_every_path() {
    let source = TestRepo::new();
    write_tree(
        source.path(),
        &[
            ("README.md", "readme\n"),
            ("workflows/ci.yaml", "ci\n"),
            ("platform/dags/train.py", "dag\n"),
        ],
    );
    let commit = source.commit_all("first");
    let (_mirrors_directory, mirror) = fetched_mirror(&source);

    let changed = mirror.changed_paths(None, &commit).unwrap();

    assert_eq!(
        changed,
        strings(&["README.md", "platform/dags/train.py", "workflows/ci.yaml"])
    );
    assert_eq!(changed, all_paths_by_git(&source, &commit));
}

#[test]
fn force_push_then_fetch_keeps_old_commits_readable_and_changed_paths_correct() {
    let source = TestRepo::new();
    write_tree(
        source.path(),
        &[("shared.txt", "base\n"), ("keep.txt", "keep\n")],
    );
    let base_commit = source.commit_all("base");
    source.write("shared.txt", "old history\n");
    source.write("old-only.txt", "old\n");
    let old_tip = source.commit_all("old work");
    let (_mirrors_directory, mirror) = fetched_mirror(&source);
    assert_eq!(mirror.resolve("main").unwrap(), old_tip);

    source.git(&["reset", "--quiet", "--hard", &base_commit]);
    source.write("shared.txt", "new history\n");
    source.write("new-only.txt", "new\n");
    let new_tip = source.commit_all("rewritten work");
    mirror.fetch().unwrap();

    assert_eq!(mirror.resolve("main").unwrap(), new_tip);
    assert!(mirror.has_commit(&old_tip), "the old tip stays readable");
    let changed = mirror.changed_paths(Some(&old_tip), &new_tip).unwrap();
    assert_eq!(
        changed,
        strings(&["new-only.txt", "old-only.txt", "shared.txt"])
    );
    assert_eq!(changed, changed_by_git(&source, &old_tip, &new_tip));
    assert_eq!(
        mirror.merge_base(&old_tip, &new_tip).unwrap(),
        Some(base_commit)
    );
    assert_eq!(
        mirror.read_file(&old_tip, "shared.txt").unwrap().unwrap(),
        b"old history\n"
    );
}
