//! The git mirror against real repositories made with the `git` command in temporary
//! directories: fetching, reading at older commits, changed paths (checked against
//! `git diff --name-only --no-renames`), force pushes, merge bases, checkouts and errors.

#[path = "git_mirror/changed_paths.rs"]
mod changed_paths;
mod support;

use sluice::git::{GitError, Mirror};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::{TestRepo, write_tree};
use tempfile::TempDir;

/// What git itself reports as changed, without rename detection.
fn changed_by_git(source: &TestRepo, from: &str, to: &str) -> Vec<String> {
    split_nul(&source.git_untrimmed(&["diff", "--name-only", "--no-renames", "-z", from, to]))
}

fn all_paths_by_git(source: &TestRepo, commit: &str) -> Vec<String> {
    split_nul(&source.git_untrimmed(&["ls-tree", "-r", "-z", "--name-only", commit]))
}

fn split_nul(text: &str) -> Vec<String> {
    let mut paths: Vec<String> = text
        .split('\0')
        .filter(|path| !path.is_empty())
        .map(str::to_string)
        .collect();
    paths.sort();
    paths
}

/// A mirror of `source` under a fresh mirrors directory, fetched once.
fn fetched_mirror(source: &TestRepo) -> (TempDir, Mirror) {
    let mirrors_directory = TempDir::new().unwrap();
    let mirror = Mirror::open(mirrors_directory.path(), "acme/platform", &source.url()).unwrap();
    mirror.fetch().unwrap();
    (mirrors_directory, mirror)
}

fn strings(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|path| path.to_string()).collect()
}

#[test]
fn open_and_fetch_mirror_branches_tags_and_pull_request_heads() {
    let source = TestRepo::new();
    source.write("README.md", "hello\n");
    let first_commit = source.commit_all("first");
    source.git(&["branch", "feature"]);
    source.git(&["tag", "-a", "v1.0.0", "-m", "release"]);
    source.write("README.md", "hello again\n");
    let second_commit = source.commit_all("second");
    source.git(&["update-ref", "refs/pull/7/head", &first_commit]);

    let (mirrors_directory, mirror) = fetched_mirror(&source);

    assert_eq!(
        mirror.path(),
        mirrors_directory.path().join("acme").join("platform.git")
    );
    assert!(mirror.path().join("HEAD").is_file(), "a bare repository");
    assert!(!mirror.path().join(".git").exists());
    assert_eq!(mirror.resolve("main").unwrap(), second_commit);
    assert_eq!(mirror.resolve("v1.0.0").unwrap(), first_commit);
    assert_eq!(mirror.resolve("refs/pull/7/head").unwrap(), first_commit);
    assert_eq!(
        mirror.branch_tips().unwrap(),
        vec![
            ("feature".to_string(), first_commit),
            ("main".to_string(), second_commit)
        ]
    );
}

#[test]
fn incremental_fetch_sees_new_commits_and_prunes_deleted_branches() {
    let source = TestRepo::new();
    source.write("README.md", "one\n");
    source.commit_all("first");
    source.git(&["branch", "short-lived"]);
    let (_mirrors_directory, mirror) = fetched_mirror(&source);

    source.write("README.md", "two\n");
    let new_commit = source.commit_all("second");
    source.git(&["branch", "-D", "short-lived"]);
    assert!(!mirror.has_commit(&new_commit), "not fetched yet");

    mirror.fetch().unwrap();

    assert!(mirror.has_commit(&new_commit));
    assert_eq!(mirror.resolve("main").unwrap(), new_commit);
    assert_eq!(
        mirror.read_file(&new_commit, "README.md").unwrap().unwrap(),
        b"two\n"
    );
    let branch_names: Vec<String> = mirror
        .branch_tips()
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(branch_names, ["main"]);
}

#[test]
fn read_file_and_read_dir_see_the_content_of_older_commits() {
    let source = TestRepo::new();
    write_tree(
        source.path(),
        &[
            ("workflows/ci.yaml", "version: 1\n"),
            ("workflows/deploy.yaml", "deploy\n"),
            ("workflows/nested/ignored.yaml", "nested\n"),
            ("README.md", "readme\n"),
        ],
    );
    let old_commit = source.commit_all("first");
    source.write("workflows/ci.yaml", "version: 2\n");
    source.write("workflows/lint.yaml", "lint\n");
    source.remove("workflows/deploy.yaml");
    let new_commit = source.commit_all("second");
    let (_mirrors_directory, mirror) = fetched_mirror(&source);

    let read = |commit: &str, path: &str| mirror.read_file(commit, path).unwrap();
    assert_eq!(
        read(&old_commit, "workflows/ci.yaml").unwrap(),
        b"version: 1\n"
    );
    assert_eq!(
        read(&new_commit, "workflows/ci.yaml").unwrap(),
        b"version: 2\n"
    );
    assert_eq!(
        read(&old_commit, "/workflows/deploy.yaml").unwrap(),
        b"deploy\n"
    );
    assert_eq!(read(&new_commit, "workflows/deploy.yaml"), None);
    assert_eq!(read(&old_commit, "no/such/file.yaml"), None);
    assert_eq!(read(&old_commit, "README.md/below-a-file"), None);
    let directory_error = mirror.read_file(&old_commit, "workflows").unwrap_err();
    assert!(matches!(directory_error, GitError::NotAFile { .. }));
    assert!(directory_error.to_string().contains("\"workflows\""));

    let contents = |files: Vec<(String, Vec<u8>)>| -> Vec<(String, String)> {
        files
            .into_iter()
            .map(|(path, bytes)| (path, String::from_utf8(bytes).unwrap()))
            .collect()
    };
    let pair = |path: &str, text: &str| (path.to_string(), text.to_string());
    assert_eq!(
        contents(mirror.read_dir(&old_commit, "workflows").unwrap()),
        vec![
            pair("workflows/ci.yaml", "version: 1\n"),
            pair("workflows/deploy.yaml", "deploy\n")
        ]
    );
    assert_eq!(
        contents(mirror.read_dir("main", "workflows/").unwrap()),
        vec![
            pair("workflows/ci.yaml", "version: 2\n"),
            pair("workflows/lint.yaml", "lint\n")
        ]
    );
    assert_eq!(
        contents(mirror.read_dir(&old_commit, "").unwrap()),
        vec![pair("README.md", "readme\n")]
    );
    assert!(mirror.read_dir(&old_commit, "absent").unwrap().is_empty());
    assert!(
        mirror
            .read_dir(&old_commit, "README.md")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn merge_base_finds_the_fork_point_and_none_for_unrelated_histories() {
    let source = TestRepo::new();
    source.write("README.md", "one\n");
    source.commit_all("one");
    source.write("README.md", "two\n");
    let fork_point = source.commit_all("two");
    source.git(&["checkout", "--quiet", "-b", "feature"]);
    source.write("feature.txt", "feature\n");
    source.commit_all("feature work");
    source.git(&["checkout", "--quiet", "main"]);
    source.write("main.txt", "main\n");
    source.commit_all("main work");
    source.git(&["checkout", "--quiet", "--orphan", "pages"]);
    source.write("index.html", "pages\n");
    source.commit_all("unrelated");
    let (_mirrors_directory, mirror) = fetched_mirror(&source);

    assert_eq!(
        mirror.merge_base("main", "feature").unwrap(),
        Some(fork_point.clone())
    );
    assert_eq!(
        mirror
            .merge_base("refs/heads/feature", &fork_point)
            .unwrap(),
        Some(fork_point)
    );
    assert_eq!(mirror.merge_base("main", "pages").unwrap(), None);
    let error = mirror.merge_base("main", "no-such-branch").unwrap_err();
    assert!(error.to_string().contains("no-such-branch"), "{error}");
}

#[test]
fn checkout_writes_files_with_exec_bits_and_symlinks_and_no_git_directory() {
    let source = TestRepo::new();
    write_tree(
        source.path(),
        &[
            ("README.md", "readme\n"),
            ("scripts/train.sh", "#!/bin/sh\necho train\n"),
            ("platform/dags/daily.py", "dag\n"),
        ],
    );
    let script = source.path().join("scripts/train.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("README.md", source.path().join("readme-link")).unwrap();
    std::os::unix::fs::symlink("platform/dags", source.path().join("dags")).unwrap();
    let commit = source.commit_all("first");
    let (_mirrors_directory, mirror) = fetched_mirror(&source);
    let workspace = TempDir::new().unwrap();
    let destination = workspace.path().join("checkout");

    mirror.checkout(&commit, &destination).unwrap();

    let read = |path: &str| std::fs::read_to_string(destination.join(path)).unwrap();
    let mode = |path: &str| {
        std::fs::symlink_metadata(destination.join(path))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(read("README.md"), "readme\n");
    assert_eq!(read("platform/dags/daily.py"), "dag\n");
    assert_eq!(read("scripts/train.sh"), "#!/bin/sh\necho train\n");
    assert_ne!(mode("scripts/train.sh") & 0o111, 0, "executable");
    assert_eq!(mode("README.md") & 0o111, 0, "not executable");
    assert_eq!(
        std::fs::read_link(destination.join("readme-link")).unwrap(),
        PathBuf::from("README.md")
    );
    assert_eq!(
        std::fs::read_link(destination.join("dags")).unwrap(),
        PathBuf::from("platform/dags")
    );
    assert_eq!(read("readme-link"), "readme\n");
    assert!(!destination.join(".git").exists());
    let mut top_level: Vec<String> = std::fs::read_dir(&destination)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    top_level.sort();
    assert_eq!(
        top_level,
        ["README.md", "dags", "platform", "readme-link", "scripts"]
    );

    let empty_destination = workspace.path().join("empty");
    std::fs::create_dir(&empty_destination).unwrap();
    mirror.checkout("main", &empty_destination).unwrap();
    assert_eq!(
        std::fs::read_to_string(empty_destination.join("README.md")).unwrap(),
        "readme\n"
    );

    let error = mirror.checkout(&commit, &destination).unwrap_err();
    assert!(
        matches!(error, GitError::DestinationNotEmpty { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("checkout"), "{error}");
}

#[test]
fn resolve_accepts_names_shas_prefixes_and_ancestry() {
    let source = TestRepo::new();
    source.write("README.md", "one\n");
    let first_commit = source.commit_all("one");
    source.git(&["tag", "v1"]);
    source.write("README.md", "two\n");
    let second_commit = source.commit_all("two");
    let (_mirrors_directory, mirror) = fetched_mirror(&source);

    let check = |revision: &str, expected: &str| {
        assert_eq!(
            mirror.resolve(revision).unwrap(),
            expected,
            "revision {revision:?}"
        )
    };
    check("main", &second_commit);
    check("refs/heads/main", &second_commit);
    check(&second_commit, &second_commit);
    check(&second_commit[..10], &second_commit);
    check("HEAD", &second_commit);
    check("HEAD~1", &first_commit);
    check("main^", &first_commit);
    check("v1", &first_commit);

    assert!(mirror.has_commit(&first_commit));
    assert!(mirror.has_commit(&first_commit[..8]));
    assert!(!mirror.has_commit("0123456789abcdef0123456789abcdef01234567"));
    assert!(!mirror.has_commit("main"), "a name is not a sha");
}

#[test]
fn resolve_errors_name_the_revision_and_say_what_to_do() {
    let source = TestRepo::new();
    source.write("README.md", "one\n");
    source.commit_all("one");
    let (_mirrors_directory, mirror) = fetched_mirror(&source);

    let missing = mirror.resolve("no-such-branch").unwrap_err();
    assert!(
        matches!(missing, GitError::RevisionNotFound { .. }),
        "{missing}"
    );
    let message = missing.to_string();
    assert!(message.contains("\"no-such-branch\""), "{message}");
    assert!(message.contains("acme/platform"), "{message}");
    assert!(message.contains("fetch"), "{message}");

    let unknown_sha = mirror
        .resolve("0123456789abcdef0123456789abcdef01234567")
        .unwrap_err();
    assert!(
        matches!(unknown_sha, GitError::RevisionNotFound { .. }),
        "{unknown_sha}"
    );

    let blob = mirror.resolve("main:README.md").unwrap_err();
    assert!(matches!(blob, GitError::NotACommit { .. }), "{blob}");
    assert!(blob.to_string().contains("\"main:README.md\""), "{blob}");

    let read_error = mirror.read_file("gone", "README.md").unwrap_err();
    assert!(read_error.to_string().contains("\"gone\""), "{read_error}");
}

#[test]
fn fetching_a_url_that_does_not_exist_gives_a_clear_error() {
    let mirrors_directory = TempDir::new().unwrap();
    let missing_path = mirrors_directory.path().join("no-such-repository");
    let missing_url = missing_path.to_str().unwrap();
    let mirror = Mirror::open(mirrors_directory.path(), "acme/missing", missing_url).unwrap();

    let error = mirror.fetch().unwrap_err();

    assert!(matches!(error, GitError::Fetch { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("acme/missing"), "{message}");
    assert!(message.contains(missing_url), "{message}");
    assert!(message.contains("check that the url exists"), "{message}");
}

/// https goes through the git command here; nothing listens on port 9 of the loopback address.
#[test]
fn fetching_an_unreachable_https_url_gives_a_clear_error_without_credentials() {
    let mirrors_directory = TempDir::new().unwrap();
    let url = "https://sluice:hunter2@127.0.0.1:9/acme/platform.git";
    let mirror = Mirror::open(mirrors_directory.path(), "acme/platform", url).unwrap();

    let error = mirror.fetch().unwrap_err();

    assert!(matches!(error, GitError::Fetch { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("127.0.0.1:9/acme/platform.git"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{mirror:?}").contains("hunter2"));
}

#[test]
fn open_updates_the_remote_when_the_url_changes() {
    let first_source = TestRepo::new();
    first_source.write("README.md", "first\n");
    first_source.commit_all("first");
    let second_source = TestRepo::new();
    second_source.write("README.md", "second\n");
    let second_commit = second_source.commit_all("second");
    let (mirrors_directory, _) = fetched_mirror(&first_source);

    let mirror = Mirror::open(
        mirrors_directory.path(),
        "acme/platform",
        &second_source.url(),
    )
    .unwrap();
    mirror.fetch().unwrap();

    assert_eq!(mirror.url(), second_source.url());
    assert_eq!(mirror.resolve("main").unwrap(), second_commit);
    assert_eq!(
        mirror.read_file("main", "README.md").unwrap().unwrap(),
        b"second\n"
    );
}

#[test]
fn a_relative_local_path_is_made_absolute() {
    let source = TestRepo::new();
    source.write("README.md", "relative\n");
    let commit = source.commit_all("first");
    let current_directory = std::env::current_dir().unwrap();
    let climb_to_root = "../".repeat(current_directory.components().count() - 1);
    let relative_url = format!(
        "{climb_to_root}{}",
        source.path().strip_prefix("/").unwrap().display()
    );
    assert!(!Path::new(&relative_url).is_absolute());
    let mirrors_directory = TempDir::new().unwrap();

    let mirror = Mirror::open(mirrors_directory.path(), "acme/platform", &relative_url).unwrap();
    mirror.fetch().unwrap();

    assert!(Path::new(mirror.url()).is_absolute(), "{}", mirror.url());
    assert_eq!(mirror.resolve("main").unwrap(), commit);
}

#[test]
fn default_branch_prefers_main_then_master_then_the_remote_head() {
    let source = TestRepo::with_branch("trunk");
    source.write("README.md", "trunk\n");
    source.commit_all("first");
    let mirrors_directory = TempDir::new().unwrap();
    let mirror = Mirror::open(mirrors_directory.path(), "acme/platform", &source.url()).unwrap();
    assert_eq!(
        mirror.default_branch().unwrap(),
        None,
        "nothing fetched yet"
    );

    mirror.fetch().unwrap();
    assert_eq!(mirror.default_branch().unwrap().as_deref(), Some("trunk"));

    source.git(&["branch", "master"]);
    mirror.fetch().unwrap();
    assert_eq!(mirror.default_branch().unwrap().as_deref(), Some("master"));

    source.git(&["branch", "main"]);
    mirror.fetch().unwrap();
    assert_eq!(mirror.default_branch().unwrap().as_deref(), Some("main"));
}

#[test]
fn invalid_repository_names_are_refused_before_touching_the_disk() {
    let mirrors_directory = TempDir::new().unwrap();
    for name in ["../etc", "acme", "acme/platform/extra", "acme/.."] {
        let error = Mirror::open(mirrors_directory.path(), name, "/srv/git/platform").unwrap_err();
        assert!(
            matches!(error, GitError::InvalidRepositoryName { .. }),
            "{name}: {error}"
        );
        assert!(error.to_string().contains(name), "{error}");
    }
    assert_eq!(
        std::fs::read_dir(mirrors_directory.path()).unwrap().count(),
        0
    );
}

#[test]
fn concurrent_reads_share_one_mirror() {
    let source = TestRepo::new();
    source.write("workflows/ci.yaml", "ci\n");
    let commit = source.commit_all("first");
    let (_mirrors_directory, mirror) = fetched_mirror(&source);

    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let files = mirror.read_dir(&commit, "workflows").unwrap();
                        assert_eq!(files.len(), 1);
                        assert_eq!(mirror.changed_paths(None, &commit).unwrap().len(), 1);
                    }
                })
            })
            .collect();
        for reader in readers {
            reader.join().unwrap();
        }
    });
}

#[test]
fn file_urls_are_fetched_like_local_paths() {
    let source = TestRepo::new();
    source.write("README.md", "file url\n");
    let commit = source.commit_all("first");
    let mirrors_directory = TempDir::new().unwrap();
    let url = format!("file://{}", source.url());

    let mirror = Mirror::open(mirrors_directory.path(), "acme/platform", &url).unwrap();
    mirror.fetch().unwrap();

    assert_eq!(mirror.resolve("main").unwrap(), commit);
}
