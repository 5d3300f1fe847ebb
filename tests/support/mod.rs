//! Shared test helpers: throwaway git repositories (real git), the `sluice` command line, a real
//! `sluice serve` process on a loopback port, signed deliveries built from GitHub's own payloads,
//! bounded waiting, and the repository's own files and free ports.
#![allow(dead_code, unused_imports)]

mod cli;
mod files;
pub mod recording;
mod repository;

pub use cli::{printed, sluice, sluice_command, sluice_ok};
pub use files::{always_503, copy_tree, free_port, repository_root, write_tree};
pub use repository::TestRepo;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-webhook-secret";
pub const REPOSITORY: &str = "acme/ml-platform";

/// A `sluice serve` process on a free loopback port.
pub struct Server {
    pub child: Child,
    pub base_url: String,
    pub data_dir: PathBuf,
    pub stderr_log: PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path, repo: &Path) -> Server {
        Server::start_with(data_dir, &[format!("{REPOSITORY}={}", repo.display())], &[])
    }

    pub fn start_with(data_dir: &Path, repos: &[String], extra_args: &[&str]) -> Server {
        Server::start_with_env(data_dir, repos, extra_args, &[])
    }

    /// A server whose repositories run `run:` steps without `image:` as host processes (the tests
    /// of scheduling, intake and promotion need no containers).
    pub fn start_with_env(
        data_dir: &Path,
        repos: &[String],
        extra_args: &[&str],
        environment: &[(&str, &Path)],
    ) -> Server {
        Server::start_full(data_dir, repos, extra_args, environment, true)
    }

    /// A server with the defaults a user gets: every step in a container, host steps for no
    /// repository.
    pub fn start_isolated(
        data_dir: &Path,
        repos: &[String],
        extra_args: &[&str],
        environment: &[(&str, &Path)],
    ) -> Server {
        Server::start_full(data_dir, repos, extra_args, environment, false)
    }

    fn start_full(
        data_dir: &Path,
        repos: &[String],
        extra_args: &[&str],
        environment: &[(&str, &Path)],
        host_steps: bool,
    ) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir);
        for repo in repos {
            command.args(["--repo", repo]);
            if host_steps {
                let name = repo.split('=').next().unwrap_or(repo);
                command.args(["--host-steps", name]);
            }
        }
        if host_steps {
            // As the test's own user, so steps can write the markers tests look for.
            command.args(["--step-user", "0:0"]);
        }
        command.args(extra_args);
        for (name, value) in environment {
            command.env(name, value);
        }
        let mut child = command
            .env("SLUICE_WEBHOOK_SECRET", SECRET)
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sluice serve starts");
        let stderr = child.stderr.take().unwrap();
        let stderr_log = data_dir.join(format!("serve-{}.log", child.id()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let log_path = stderr_log.clone();
        std::thread::spawn(move || {
            let mut log = std::fs::File::create(log_path).unwrap();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(log, "{line}");
                if !sent {
                    if let Some(address) = line.split("listening on ").nth(1) {
                        let url = address.split_whitespace().next().unwrap().to_owned();
                        let _ = sender.send(url);
                        sent = true;
                    }
                }
            }
        });
        let base_url = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the server announces its address");
        Server {
            child,
            base_url,
            data_dir: data_dir.to_owned(),
            stderr_log,
        }
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn runs(&self, query: &str) -> Vec<serde_json::Value> {
        let response = http()
            .get(self.url(&format!("/api/runs{query}")))
            .send()
            .expect("GET /api/runs");
        assert!(response.status().is_success());
        response.json().expect("runs are JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A real GitHub payload from `tests/fixtures/github-webhooks/`.
pub fn fixture(relative: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github-webhooks")
        .join(relative);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// GitHub's push payload pointed at our repository and commits.
pub fn push_payload(branch: &str, before: &str, after: &str) -> Vec<u8> {
    let mut payload = fixture("push/with-new-branch.payload.json");
    payload["ref"] = format!("refs/heads/{branch}").into();
    payload["before"] = before.into();
    payload["after"] = after.into();
    payload["created"] = (before.chars().all(|c| c == '0')).into();
    payload["deleted"] = false.into();
    payload["repository"]["full_name"] = REPOSITORY.into();
    serde_json::to_vec(&payload).unwrap()
}

pub fn sign(body: &[u8]) -> String {
    sluice::server::webhook::sign(SECRET.as_bytes(), body)
}

/// Posts a signed delivery; returns the status and body text.
pub fn deliver(server: &Server, event: &str, delivery: &str, body: &[u8]) -> (u16, String) {
    let response = http()
        .post(server.url("/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(body))
        .body(body.to_vec())
        .send()
        .expect("POST /webhooks/github");
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// Polls `check` until it returns Some, failing after `limit` with `what` in the message.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every run of the commit, once all of them are finished.
pub fn finished_runs(
    server: &Server,
    commit: &str,
    expected_runs: usize,
) -> Vec<serde_json::Value> {
    wait_for(
        &format!("{expected_runs} finished run(s) for {commit}"),
        Duration::from_secs(120),
        || {
            let runs = server.runs(&format!("?commit={commit}"));
            let done = runs.len() >= expected_runs
                && runs
                    .iter()
                    .all(|run| !matches!(run["status"].as_str(), Some("queued") | Some("running")));
            done.then_some(runs)
        },
    )
}

pub fn job_statuses(run: &serde_json::Value) -> Vec<(String, String)> {
    run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["name"].as_str().unwrap().to_owned(),
                job["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The named cookie (`name=value`) an answer sets.
pub fn set_cookie(answer: &reqwest::blocking::Response, name: &str) -> String {
    answer
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .and_then(|value| value.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// Signs in to the web UI through its form, as a browser does; the session cookie
/// (`sluice_session=…`). The client must not follow redirects.
pub fn sign_in(client: &reqwest::blocking::Client, server: &Server, token: &str) -> String {
    let form = client.get(server.url("/signin")).send().unwrap();
    let check = set_cookie(&form, "sluice_signin");
    let value = check.split_once('=').unwrap().1.to_owned();
    let answer = client
        .post(server.url("/signin"))
        .header(reqwest::header::COOKIE, &check)
        .form(&[("token", token), ("csrf", &value), ("next", "/")])
        .send()
        .unwrap();
    assert_eq!(answer.status(), 303, "{:?}", answer.text());
    set_cookie(&answer, "sluice_session")
}

/// The CSRF token in a page's forms.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}
