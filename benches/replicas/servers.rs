//! The system under test: a git repository with a three-job pipeline, and `sluice serve`
//! replicas started as separate processes on it, on SQLite in their own data directory or on one
//! PostgreSQL database, each with its stderr kept in a log file in its data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const REPOSITORY: &str = "acme/ml-platform";

/// Three jobs chained by `needs`, each one host step that exits at once.
pub const PIPELINE: &str = "name: ci\non: { push: { branches: [main] } }\njobs:\n  build:\n    steps:\n      - run: 'true'\n  test:\n    needs: build\n    steps:\n      - run: 'true'\n  package:\n    needs: test\n    steps:\n      - run: 'true'\n";

/// Makes a git repository in `directory` whose `main` holds the pipeline; returns the commit.
pub fn pipeline_repository(directory: &Path) -> anyhow::Result<String> {
    let git = |arguments: &[&str]| -> anyhow::Result<String> {
        let output = Command::new("git")
            .args(arguments)
            .current_dir(directory)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()?;
        if !output.status.success() {
            anyhow::bail!(
                "git {arguments:?} failed in {}: {}",
                directory.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    git(&["init", "-q", "-b", "main"])?;
    git(&["config", "user.email", "bench@example.com"])?;
    git(&["config", "user.name", "Bench"])?;
    std::fs::create_dir_all(directory.join("workflows"))?;
    std::fs::write(directory.join("workflows/ci.yaml"), PIPELINE)?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "ci"])?;
    git(&["rev-parse", "HEAD"])
}

/// How every replica of a configuration is started.
pub struct ReplicaSettings<'a> {
    pub repository_path: &'a Path,
    pub config_file: &'a Path,
    pub secret: &'a str,
    pub max_parallel_jobs: usize,
    /// `None` for SQLite's file in the data directory.
    pub database_url: Option<&'a str>,
}

/// One `sluice serve` process; killed when dropped.
pub struct Replica {
    pub child: Child,
    pub base_url: String,
    pub stderr_log: PathBuf,
}

impl Replica {
    pub fn start(data_dir: &Path, settings: &ReplicaSettings) -> anyhow::Result<Replica> {
        std::fs::create_dir_all(data_dir)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--repo")
            .arg(format!(
                "{REPOSITORY}={}",
                settings.repository_path.display()
            ))
            .args(["--host-steps", REPOSITORY])
            .arg("--config")
            .arg(settings.config_file)
            .args([
                "--max-parallel-jobs",
                &settings.max_parallel_jobs.to_string(),
            ]);
        // Steps run as this process's user, as in the tests: as root, sluice would otherwise
        // switch them to nobody, so the figures would depend on who runs the benchmark.
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        command.args(["--step-user", &format!("{uid}:{gid}")]);
        if let Some(url) = settings.database_url {
            command.args(["--database", url]);
        }
        let mut child = command
            .env_remove("SLUICE_DATABASE_URL")
            .env_remove("SLUICE_LOG")
            .env("SLUICE_WEBHOOK_SECRET", settings.secret)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_log = data_dir.join(format!("serve-{}.log", child.id()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let log_path = stderr_log.clone();
        std::thread::spawn(move || {
            let Ok(mut log) = std::fs::File::create(log_path) else {
                return;
            };
            let mut announced = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(log, "{line}");
                if !announced && let Some(address) = line.split("listening on ").nth(1) {
                    let url = address.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = sender.send(url);
                    announced = true;
                }
            }
        });
        let mut replica = Replica {
            child,
            base_url: String::new(),
            stderr_log,
        };
        match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => replica.base_url = url,
            Err(_) => anyhow::bail!(
                "sluice serve did not announce its address within 60 s; its log:\n{}",
                std::fs::read_to_string(&replica.stderr_log).unwrap_or_default()
            ),
        }
        Ok(replica)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines of the replica's log at WARN or ERROR level.
    pub fn warnings(&self) -> Vec<String> {
        std::fs::read_to_string(&self.stderr_log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
