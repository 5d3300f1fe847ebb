//! Terraform in a container through the Docker engine, for pipeline steps whose code is under
//! review: an image with `terraform`, an unprivileged user, only the checkout and the run's scratch
//! directory writable, the plugin cache and the state read-only unless the run is trusted, the
//! declared environment only, no Docker socket. Paths are mounted at the same place as on the host,
//! so the arguments a host run would get work unchanged. `docs/security.md` states the model.

use crate::sandbox::LogSink;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, LogsOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a pipeline's Terraform runs in a container.
#[derive(Clone, Debug, PartialEq)]
pub struct TerraformContainer {
    /// An image with `terraform` on its `PATH`.
    pub image: String,
    /// uid and gid Terraform runs as.
    pub user: (u32, u32),
    /// A trusted run may write the state and the plugin cache; a member's plan only reads them
    /// (and plans with `-lock=false`, since it cannot write the state's lock).
    pub writable_state: bool,
    pub cpus: Option<f64>,
    pub memory_bytes: Option<i64>,
}

/// One `terraform` command in a container.
pub struct Invocation<'a> {
    /// Everything after `terraform`.
    pub arguments: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Host paths mounted at the same path; `true` = writable.
    pub mounts: Vec<(PathBuf, bool)>,
    pub log: Option<&'a LogSink>,
    /// Return stdout instead of logging it.
    pub capture: bool,
    pub timeout: Duration,
    pub cancel: &'a CancellationToken,
}

pub enum Ending {
    Exited { code: i64, stdout: Vec<u8> },
    TimedOut,
    Cancelled,
    NotStarted(String),
}

/// Processes one Terraform container may start.
const PIDS_LIMIT: i64 = 1024;

pub async fn run(container: &TerraformContainer, invocation: Invocation<'_>) -> Ending {
    let docker = match crate::sandbox::connect().await {
        Ok(docker) => docker,
        Err(message) => return Ending::NotStarted(message),
    };
    let mut command = vec!["terraform".to_owned()];
    command.extend(invocation.arguments.iter().cloned());
    let binds = invocation
        .mounts
        .iter()
        .map(|(path, writable)| {
            let path = path.display();
            if *writable {
                format!("{path}:{path}")
            } else {
                format!("{path}:{path}:ro")
            }
        })
        .collect();
    let body = ContainerCreateBody {
        image: Some(container.image.clone()),
        cmd: Some(command),
        env: Some(
            invocation
                .env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        ),
        user: Some(format!("{}:{}", container.user.0, container.user.1)),
        labels: Some([("dev.sluice.terraform".to_owned(), "true".to_owned())].into()),
        host_config: Some(crate::sandbox::confined_host_config(
            binds,
            PIDS_LIMIT,
            container.cpus,
            container.memory_bytes,
        )),
        ..Default::default()
    };
    let created = match docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
    {
        Ok(created) => created,
        Err(error) => {
            return Ending::NotStarted(format!(
                "cannot create a Terraform container from image `{}`: {error}; build an image with terraform (scripts/setup-step-image.sh) and name it in `steps.image`",
                container.image
            ));
        }
    };
    let ending = supervise(&docker, &created.id, &invocation).await;
    let _ = docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    ending
}

async fn supervise(docker: &Docker, id: &str, invocation: &Invocation<'_>) -> Ending {
    if let Err(error) = docker.start_container(id, None).await {
        return Ending::NotStarted(format!("cannot start the Terraform container: {error}"));
    }
    let logs = {
        let (docker, id) = (docker.clone(), id.to_owned());
        let log = invocation.log.cloned();
        let capture = invocation.capture;
        tokio::spawn(async move {
            let options = LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            let mut stream = docker.logs(&id, Some(options));
            let mut stdout = Vec::new();
            let mut pending = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                match chunk {
                    LogOutput::StdOut { message } if capture => stdout.extend_from_slice(&message),
                    other => pending.extend_from_slice(&other.into_bytes()),
                }
                while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    if let Some(log) = &log {
                        super::runner::send_line(log, String::from_utf8_lossy(&line));
                    }
                }
            }
            if !pending.is_empty()
                && let Some(log) = &log
            {
                super::runner::send_line(log, String::from_utf8_lossy(&pending));
            }
            stdout
        })
    };
    let mut wait = docker.wait_container(id, None::<WaitContainerOptions>);
    let code = tokio::select! {
        result = wait.next() => match result {
            Some(Ok(response)) => Ok(response.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(error)) => Err(Ending::NotStarted(format!("waiting for the Terraform container failed: {error}"))),
            None => Err(Ending::NotStarted("the engine closed the wait stream".to_owned())),
        },
        _ = tokio::time::sleep(invocation.timeout) => Err(Ending::TimedOut),
        _ = invocation.cancel.cancelled() => Err(Ending::Cancelled),
    };
    if code.is_err() {
        let _ = docker
            .kill_container(id, None::<KillContainerOptions>)
            .await;
    }
    let stdout = logs.await.unwrap_or_default();
    match code {
        Ok(code) => Ending::Exited { code, stdout },
        Err(ending) => ending,
    }
}
