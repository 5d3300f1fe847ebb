//! Throughput at saturation with `wrk`: writes a Lua script that signs nothing itself (the body
//! never changes, so neither does its signature) but gives every request its own
//! `X-GitHub-Delivery`, runs `wrk`, and reads the summary the script prints.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub struct WrkSettings {
    pub threads: usize,
    pub connections: usize,
    pub duration: Duration,
}

pub struct WrkSummary {
    pub requests: u64,
    pub elapsed: Duration,
    /// Answers outside 2xx and 3xx.
    pub bad_statuses: u64,
    pub socket_errors: u64,
    pub latency_p99: Duration,
}

impl WrkSummary {
    pub fn requests_per_second(&self) -> f64 {
        self.requests.saturating_sub(self.bad_statuses) as f64 / self.elapsed.as_secs_f64()
    }
}

pub fn installed() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).contains("wrk"))
        .unwrap_or(false)
}

const SCRIPT: &str = r#"
local body_file = assert(io.open(BODY_PATH, "rb"))
wrk.method = "POST"
wrk.path = URL_PATH
wrk.body = body_file:read("*a")
body_file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
wrk.headers["X-GitHub-Event"] = "push"
wrk.headers["X-Hub-Signature-256"] = SIGNATURE

local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end

local counter = 0
function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = DELIVERY_PREFIX .. "-" .. thread_number .. "-" .. counter
  return wrk.format()
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH-SUMMARY requests=%d duration_us=%d status_errors=%d socket_errors=%d p99_us=%d\n",
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(99)))
end
"#;

/// Runs `wrk` against `http://address/url_path`, posting the file at `body_path`.
pub fn run(
    scratch_dir: &Path,
    address: SocketAddr,
    url_path: &str,
    body_path: &Path,
    signature: &str,
    delivery_prefix: &str,
    settings: &WrkSettings,
) -> anyhow::Result<WrkSummary> {
    let script = format!(
        "local BODY_PATH = {body}\nlocal URL_PATH = {url_path}\nlocal SIGNATURE = {signature}\n\
         local DELIVERY_PREFIX = {delivery_prefix}\n{SCRIPT}",
        body = lua_string(&body_path.to_string_lossy()),
        url_path = lua_string(url_path),
        signature = lua_string(signature),
        delivery_prefix = lua_string(delivery_prefix),
    );
    let script_path = scratch_dir.join(format!("{delivery_prefix}.lua"));
    std::fs::write(&script_path, script)?;
    let output = Command::new("wrk")
        .arg(format!("--threads={}", settings.threads))
        .arg(format!("--connections={}", settings.connections))
        .arg(format!(
            "--duration={}s",
            settings.duration.as_secs().max(1)
        ))
        .arg("--timeout=10s")
        .arg(format!("--script={}", script_path.display()))
        .arg(format!("http://{address}{url_path}"))
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!(
            "wrk exited with {}: {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_summary(&stdout).ok_or_else(|| {
        anyhow::anyhow!("wrk printed no BENCH-SUMMARY line; its output was:\n{stdout}")
    })
}

fn lua_string(text: &str) -> String {
    format!("{text:?}")
}

fn parse_summary(stdout: &str) -> Option<WrkSummary> {
    let line = stdout
        .lines()
        .find(|line| line.starts_with("BENCH-SUMMARY "))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
    };
    Some(WrkSummary {
        requests: field("requests")?,
        elapsed: Duration::from_micros(field("duration_us")?),
        bad_statuses: field("status_errors")?,
        socket_errors: field("socket_errors")?,
        latency_p99: Duration::from_micros(field("p99_us")?),
    })
}
