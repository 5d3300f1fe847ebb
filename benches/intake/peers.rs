//! The servers the intake benchmark compares sluice with: the ceiling (an axum handler that reads
//! the body and answers 202, hosted exactly like sluice) and adnanh/webhook, Debian's `webhook`,
//! checking the same HMAC and running `/bin/true`. Each is torn down when its handle is dropped.

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Server worker threads: the machine's two cores, as `sluice serve` would use.
pub const SERVER_WORKER_THREADS: usize = 2;

/// An axum application served on loopback from its own runtime.
pub struct InProcessServer {
    pub address: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcessServer {
    pub fn start(application: Router) -> anyhow::Result<InProcessServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(SERVER_WORKER_THREADS)
            .thread_name("server")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        runtime.spawn(async move {
            axum::serve(listener, application)
                .await
                .expect("serve the benchmark application");
        });
        Ok(InProcessServer {
            address,
            runtime: Some(runtime),
        })
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// The most any handler on this stack can do: read the body, answer 202.
pub fn ceiling() -> anyhow::Result<InProcessServer> {
    let application = Router::new().route(
        "/webhooks/github",
        post(|_body: Bytes| async { StatusCode::ACCEPTED }),
    );
    InProcessServer::start(application)
}

/// adnanh/webhook as a child process; killed on drop.
pub struct WebhookPeer {
    pub address: SocketAddr,
    child: Child,
}

pub const WEBHOOK_URL_PATH: &str = "/hooks/github";

pub fn webhook_installed() -> Option<String> {
    let output = Command::new("webhook").arg("-version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    text.starts_with("webhook version").then_some(text)
}

/// Starts `webhook` with one hook that answers 202 only when `X-Hub-Signature-256` is the
/// HMAC-SHA256 of the body under `secret`, and then runs `/bin/true`.
pub fn webhook(scratch_dir: &Path, secret: &str) -> anyhow::Result<WebhookPeer> {
    webhook_installed().context("the `webhook` program is not installed")?;
    let hooks = serde_json::json!([{
        "id": "github",
        "execute-command": "/bin/true",
        "success-http-response-code": 202,
        "response-message": "accepted",
        "trigger-rule": {
            "match": {
                "type": "payload-hash-sha256",
                "secret": secret,
                "parameter": { "source": "header", "name": "X-Hub-Signature-256" }
            }
        }
    }]);
    let hooks_path = scratch_dir.join("hooks.json");
    std::fs::write(&hooks_path, serde_json::to_vec_pretty(&hooks)?)?;
    let port = free_port()?;
    let child = Command::new("webhook")
        .arg("-hooks")
        .arg(&hooks_path)
        .arg("-ip")
        .arg("127.0.0.1")
        .arg("-port")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start `webhook`")?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let peer = WebhookPeer { address, child };
    wait_until_listening(address)?;
    Ok(peer)
}

impl Drop for WebhookPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn wait_until_listening(address: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(address).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "nothing listens on {address} after 10 s; run `webhook -verbose` by hand"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
