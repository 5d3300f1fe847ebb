//! Throwaway git repositories driven by the real `git` command, isolated from the machine's and
//! the user's git configuration, for tests that need commits: a pushed platform, a mirror's remote.

use std::path::Path;
use std::process::Command;

/// A git repository in a temporary directory.
pub struct TestRepo {
    pub dir: tempfile::TempDir,
}

impl TestRepo {
    /// A repository whose first branch is `main`.
    pub fn new() -> TestRepo {
        TestRepo::with_branch("main")
    }

    pub fn with_branch(initial_branch: &str) -> TestRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = TestRepo { dir };
        repo.git(&["init", "-q", "-b", initial_branch]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "user.name", "Test"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What a mirror fetches from.
    pub fn url(&self) -> String {
        self.path().to_str().unwrap().to_string()
    }

    /// Runs `git ARGS` in the repository, asserting it succeeded; its output, trimmed.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_untrimmed(args).trim().to_owned()
    }

    /// Like `git`, keeping the output as git printed it (NUL-separated lists).
    pub fn git_untrimmed(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Writes one file of the working tree, creating directories on the way.
    pub fn write(&self, path: &str, contents: &str) {
        super::write_tree(self.path(), &[(path, contents)]);
    }

    /// Removes a file or directory from the working tree and the index.
    pub fn remove(&self, path: &str) {
        self.git(&["rm", "-r", "--quiet", path]);
    }

    /// Commits the working tree as it is; returns the new commit's sha.
    pub fn commit_all(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.sha("HEAD")
    }

    /// Writes the files (path, contents) and commits them; returns the new commit's sha.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        super::write_tree(self.path(), files);
        self.commit_all(message)
    }

    /// The commit `revision` names.
    pub fn sha(&self, revision: &str) -> String {
        self.git(&["rev-parse", "--verify", &format!("{revision}^{{commit}}")])
    }
}
