//! What running code under review needs, below both `steps` and `terraform`: the sink its output
//! lines travel in to the job log, the Docker engine connection, and the confinement every
//! container running such code gets. Knows nothing of jobs, runs or Terraform.

use bollard::Docker;
use bollard::models::HostConfig;
use tokio::sync::mpsc;

/// Lines of output on their way to the job log (already redacted by the receiver).
pub type LogSink = mpsc::UnboundedSender<String>;

/// Where the engine was looked for, for error messages.
pub fn engine_address() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned())
}

/// Connects and pings the engine; the error names the address tried and how to start an engine.
pub async fn connect() -> Result<Docker, String> {
    let unreachable = |error: &dyn std::fmt::Display| {
        format!(
            "cannot reach the Docker engine at {} ({error}); start one (`dockerd &`, or scripts/setup-docker.sh) or set DOCKER_HOST",
            engine_address()
        )
    };
    let docker = Docker::connect_with_defaults().map_err(|error| unreachable(&error))?;
    docker.ping().await.map_err(|error| unreachable(&error))?;
    Ok(docker)
}

/// How a container running code under review is confined: only `binds` of the host, no
/// capabilities, no privilege escalation, and process, CPU and memory limits. Shared by `run:`
/// steps and a pipeline's Terraform.
pub fn confined_host_config(
    binds: Vec<String>,
    pids_limit: i64,
    cpus: Option<f64>,
    memory_bytes: Option<i64>,
) -> HostConfig {
    HostConfig {
        binds: Some(binds),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        privileged: Some(false),
        pids_limit: Some(pids_limit),
        memory: memory_bytes,
        nano_cpus: cpus.map(|cpus| (cpus * 1_000_000_000.0) as i64),
        ..Default::default()
    }
}
