//! Helpers for tests that act as a hostile or broken client: a server configuration file, raw
//! TCP requests that stop half way, forged signatures, and the peak memory of a process.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes `sluice.yaml` with these contents into `directory`; pass `["--config", path]` to serve.
pub fn server_config(directory: &Path, yaml: &str) -> PathBuf {
    std::fs::create_dir_all(directory).unwrap();
    let path = directory.join("sluice.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `host:port` of a base URL such as `http://127.0.0.1:4321`.
pub fn socket_address(base_url: &str) -> String {
    base_url.trim_start_matches("http://").to_owned()
}

/// The peak resident memory (`VmHWM`) of a process so far, in bytes.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status:\n{status}"));
    kib * 1024
}

/// A well-formed signature that does not match any body.
pub fn forged_signature() -> String {
    format!("sha256={}", "0".repeat(64))
}

/// What became of a connection that sent `start` and then nothing more.
pub struct Stalled {
    /// Everything the server sent before closing (empty when it closed without a word).
    pub answer: String,
    /// From the last byte sent to the connection being closed.
    pub closed_after: Duration,
}

/// Connects, sends `start`, then waits (up to `limit`) for the server to close the connection.
/// Panics if the server keeps it open longer.
pub fn send_and_stall(address: &str, start: &[u8], limit: Duration) -> Stalled {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(start).unwrap();
    stream.flush().unwrap();
    let sent = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!(
                "the server kept the connection open for {:?} ({error}); it answered so far: {}",
                sent.elapsed(),
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    Stalled {
        answer: String::from_utf8_lossy(&answer).into_owned(),
        closed_after: sent.elapsed(),
    }
}
