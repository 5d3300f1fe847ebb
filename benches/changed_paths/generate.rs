//! Builds the changed-paths benchmark's repository once and caches it: a bare repository of
//! `FILES` files in nested directories and `COMMITS` commits on `main`, streamed through
//! `git fast-import`. Every commit after the first modifies a few files and now and then adds,
//! deletes or renames one. The contents are deterministic, so every machine builds the same tree
//! shapes. It knows nothing about sluice.

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const FILES: usize = 50_000;
pub const COMMITS: usize = 2_000;

pub struct BenchRepository {
    pub path: PathBuf,
    /// Full commit ids, oldest first.
    pub commits: Vec<String>,
}

/// Returns the cached repository under `cache_dir`, building it first if it is missing or
/// incomplete.
pub fn ensure(cache_dir: &Path) -> anyhow::Result<BenchRepository> {
    let name = format!("monorepo-{FILES}-files-{COMMITS}-commits");
    let path = cache_dir.join(format!("{name}.git"));
    let commits_path = cache_dir.join(format!("{name}.commits"));
    if let Ok(listed) = std::fs::read_to_string(&commits_path) {
        let commits: Vec<String> = listed.lines().map(str::to_owned).collect();
        if commits.len() == COMMITS && path.is_dir() {
            return Ok(BenchRepository { path, commits });
        }
    }
    std::fs::create_dir_all(cache_dir)?;
    let partial = cache_dir.join(format!("{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    if path.exists() {
        std::fs::remove_dir_all(&path)?;
    }
    git(
        &["init", "--quiet", "--bare", "--initial-branch=main"],
        Some(&partial),
        None,
    )?;
    git(
        &["fast-import", "--quiet"],
        Some(&partial),
        Some(&import_stream()),
    )?;
    let listed = git(
        &["rev-list", "--reverse", "refs/heads/main"],
        Some(&partial),
        None,
    )?;
    let commits: Vec<String> = listed.lines().map(str::to_owned).collect();
    anyhow::ensure!(
        commits.len() == COMMITS,
        "fast-import made {} commits instead of {COMMITS}; remove {} and run again",
        commits.len(),
        partial.display()
    );
    std::fs::rename(&partial, &path)?;
    std::fs::write(&commits_path, commits.join("\n") + "\n")?;
    Ok(BenchRepository { path, commits })
}

/// `areaNN/moduleNN/pkgN/fNNNNN.py`: 20 x 25 x 10 directories of 10 files each at 50,000 files.
fn initial_path(index: usize) -> String {
    format!(
        "area{:02}/module{:02}/pkg{}/f{index:05}.py",
        index % 20,
        (index / 20) % 25,
        (index / 500) % 10
    )
}

/// xorshift64*: deterministic and dependency-free.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound
    }
}

fn import_stream() -> Vec<u8> {
    let mut stream = Vec::with_capacity(16 << 20);
    let mut random = Random(0x5EED_1234_ABCD_0001);
    let mut live_paths: Vec<String> = (0..FILES).map(initial_path).collect();
    let mut added = 0usize;
    for commit_number in 1..=COMMITS {
        let message = format!("commit {commit_number}\n");
        let timestamp = 1_700_000_000 + commit_number * 60;
        write!(
            stream,
            "commit refs/heads/main\nmark :{commit_number}\n\
             committer Bench <bench@example.com> {timestamp} +0000\ndata {}\n{message}",
            message.len()
        )
        .expect("write to memory");
        if commit_number == 1 {
            for path in &live_paths {
                modify(&mut stream, path, &format!("# {path}\nrevision = 0\n"));
            }
            continue;
        }
        writeln!(stream, "from :{}", commit_number - 1).expect("write to memory");
        for _ in 0..1 + random.below(5) {
            let path = &live_paths[random.below(live_paths.len())];
            modify(
                &mut stream,
                path,
                &format!("# {path}\nrevision = {commit_number}\n"),
            );
        }
        match random.below(20) {
            0 | 1 => {
                added += 1;
                let path = format!("added/batch{:02}/new{added:05}.py", added % 40);
                modify(&mut stream, &path, &format!("# {path}\n"));
                live_paths.push(path);
            }
            2 => {
                let index = random.below(live_paths.len());
                let path = live_paths.swap_remove(index);
                writeln!(stream, "D {path}").expect("write to memory");
            }
            3 => {
                let index = random.below(live_paths.len());
                let old_path = live_paths[index].clone();
                let new_path = format!("moved/m{commit_number:04}/{}", file_name(&old_path));
                writeln!(stream, "R {old_path} {new_path}").expect("write to memory");
                live_paths[index] = new_path;
            }
            _ => {}
        }
        stream.push(b'\n');
    }
    stream
}

fn modify(stream: &mut Vec<u8>, path: &str, contents: &str) {
    write!(
        stream,
        "M 100644 inline {path}\ndata {}\n{contents}\n",
        contents.len()
    )
    .expect("write to memory");
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Runs git in `git_dir` (a bare repository), feeding `input`; returns stdout.
fn git(arguments: &[&str], git_dir: Option<&Path>, input: Option<&[u8]>) -> anyhow::Result<String> {
    let mut command = Command::new("git");
    match (arguments.first(), git_dir) {
        (Some(&"init"), Some(directory)) => {
            command.args(arguments).arg(directory);
        }
        (_, Some(directory)) => {
            command.arg("--git-dir").arg(directory).args(arguments);
        }
        (_, None) => {
            command.args(arguments);
        }
    }
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("start `git {}`; is git installed?", arguments.join(" ")))?;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(input)?;
    }
    let output = child.wait_with_output()?;
    anyhow::ensure!(
        output.status.success(),
        "`git {}` failed: {}",
        arguments.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8(output.stdout)?)
}
