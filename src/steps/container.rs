//! `run` steps in a container through the Docker engine (`DOCKER_HOST` or the default socket):
//! the commit's tree mounted at `/workspace` and the step's script read-only at
//! `/sluice-scratch`, nothing else of the host; the step's declared environment only; a non-root
//! user with no capabilities and no privilege escalation; CPU, memory and process limits.

use super::{CommandSpec, StepOutcome, shell_command};
use crate::sandbox::{LogSink, confined_host_config, connect, engine_address};
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, LogsOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

const WORKSPACE_IN_CONTAINER: &str = "/workspace";
const SCRATCH_IN_CONTAINER: &str = "/sluice-scratch";

#[derive(Default)]
pub struct ContainerRunner {}

impl ContainerRunner {
    pub async fn run(
        &self,
        spec: &CommandSpec,
        image: &str,
        log: LogSink,
        cancel: CancellationToken,
    ) -> StepOutcome {
        let docker = match connect().await {
            Ok(docker) => docker,
            Err(message) => return StepOutcome::NotStarted(message),
        };
        let script_name = format!("step-{}.sh", rand::random::<u64>());
        let script_path = spec.scratch.join(&script_name);
        if let Err(error) = std::fs::create_dir_all(&spec.scratch)
            .and_then(|_| std::fs::write(&script_path, &spec.script))
        {
            return StepOutcome::NotStarted(format!(
                "cannot write the step script to {}: {error}",
                script_path.display()
            ));
        }
        let user = spec.isolation.step_user();
        if let Err(error) = super::isolation::hand_over(&spec.workspace, user)
            .and_then(|_| super::isolation::hand_over(&spec.scratch, user))
        {
            let _ = std::fs::remove_file(&script_path);
            return StepOutcome::NotStarted(format!(
                "cannot give the workspace {} to uid {}: {error}",
                spec.workspace.display(),
                user.0
            ));
        }
        let outcome = run_container(
            &docker,
            spec,
            image,
            user,
            &format!("{SCRATCH_IN_CONTAINER}/{script_name}"),
            log,
            cancel,
        )
        .await;
        let _ = std::fs::remove_file(&script_path);
        outcome
    }
}

/// Processes one container step may start: enough for builds and test runners, not for a fork bomb.
const PIDS_LIMIT: i64 = 4096;

async fn run_container(
    docker: &Docker,
    spec: &CommandSpec,
    image: &str,
    user: (u32, u32),
    script: &str,
    log: LogSink,
    cancel: CancellationToken,
) -> StepOutcome {
    let image = image.to_owned();
    let argv = match shell_command(spec.shell.as_deref(), script, true) {
        Ok(argv) => argv,
        Err(message) => return StepOutcome::NotStarted(message),
    };
    let working_dir = match &spec.working_directory {
        Some(relative) => format!(
            "{WORKSPACE_IN_CONTAINER}/{}",
            relative.trim_start_matches("./")
        ),
        None => WORKSPACE_IN_CONTAINER.to_owned(),
    };
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        cmd: Some(argv),
        working_dir: Some(working_dir),
        env: Some(container_env(spec)),
        user: Some(format!("{}:{}", user.0, user.1)),
        labels: Some(
            [("dev.sluice.step".to_owned(), "true".to_owned())]
                .into_iter()
                .collect(),
        ),
        host_config: Some(confined_host_config(
            vec![
                format!("{}:{WORKSPACE_IN_CONTAINER}", spec.workspace.display()),
                format!("{}:{SCRATCH_IN_CONTAINER}:ro", spec.scratch.display()),
            ],
            PIDS_LIMIT,
            spec.isolation.cpus,
            spec.isolation.memory_bytes,
        )),
        ..Default::default()
    };
    let created = match docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
    {
        Ok(created) => created,
        Err(error) => {
            return StepOutcome::NotStarted(format!(
                "cannot create a container from image `{image}`: {error}; build or pull the image on the engine at {}",
                engine_address()
            ));
        }
    };
    let id = created.id;
    let outcome = supervise(docker, &id, spec, log, cancel).await;
    let _ = docker
        .remove_container(
            &id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    outcome
}

/// The step's declared variables, plus a writable `HOME` for an unprivileged user unless the step
/// sets one. Nothing of the server's own environment.
fn container_env(spec: &CommandSpec) -> Vec<String> {
    let mut env: Vec<String> = spec
        .env
        .iter()
        .filter(|(name, _)| name.as_str() != "GITHUB_WORKSPACE")
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    env.push(format!("GITHUB_WORKSPACE={WORKSPACE_IN_CONTAINER}"));
    if !spec.env.contains_key("HOME") {
        env.push("HOME=/tmp".to_owned());
    }
    env
}

async fn supervise(
    docker: &Docker,
    id: &str,
    spec: &CommandSpec,
    log: LogSink,
    cancel: CancellationToken,
) -> StepOutcome {
    if let Err(error) = docker.start_container(id, None).await {
        return StepOutcome::NotStarted(format!("cannot start the container: {error}"));
    }
    let logs_docker = docker.clone();
    let logs_id = id.to_owned();
    let pump = tokio::spawn(async move {
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut stream = logs_docker.logs(&logs_id, Some(options));
        // Bytes, not text, until a line is whole: a chunk may end inside a character, and a
        // secret with such a character must reach the redactor intact.
        let mut pending: Vec<u8> = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            pending.extend_from_slice(&chunk.into_bytes());
            while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let _ = log.send(String::from_utf8_lossy(&line).into_owned());
            }
        }
        if !pending.is_empty() {
            pending.push(b'\n');
            let _ = log.send(String::from_utf8_lossy(&pending).into_owned());
        }
    });
    let timeout = spec
        .timeout
        .unwrap_or(std::time::Duration::from_secs(365 * 24 * 3600));
    let mut wait = docker.wait_container(id, None::<WaitContainerOptions>);
    let outcome = tokio::select! {
        result = wait.next() => match result {
            Some(Ok(response)) => StepOutcome::Exited(response.status_code as i32),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => StepOutcome::Exited(code as i32),
            Some(Err(error)) => StepOutcome::NotStarted(format!("waiting for the container failed: {error}")),
            None => StepOutcome::NotStarted("the engine closed the wait stream".to_owned()),
        },
        _ = tokio::time::sleep(timeout) => StepOutcome::TimedOut(timeout),
        _ = cancel.cancelled() => StepOutcome::Cancelled,
    };
    if !matches!(outcome, StepOutcome::Exited(_)) {
        let _ = docker
            .kill_container(id, None::<KillContainerOptions>)
            .await;
    }
    let _ = pump.await;
    outcome
}
