//! `run` steps as host processes, for repositories the server configuration opts in
//! (`host-steps: true`) and never for untrusted events: an unprivileged user when sluice runs as
//! root (so the step can read neither the server's environment in `/proc` nor its data
//! directory), a clean environment without the Docker engine's address, the script in a file,
//! output streamed line by line, and the whole process group killed on timeout, cancellation or
//! server death.

use super::{CommandSpec, StepOutcome, shell_command};
use crate::sandbox::LogSink;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Variables passed through from the server's environment; everything else is withheld so that
/// the server's own secrets (and the Docker engine's address) never reach a step.
const PASSED_THROUGH: [&str; 4] = ["PATH", "LANG", "TMPDIR", "SSL_CERT_FILE"];

pub async fn run(spec: &CommandSpec, log: LogSink, cancel: CancellationToken) -> StepOutcome {
    let script_path = spec.scratch.join(format!(
        "step-{}.sh",
        std::process::id() ^ rand::random::<u32>()
    ));
    let user = spec.isolation.step_user();
    if let Err(error) = std::fs::create_dir_all(&spec.scratch)
        .and_then(|_| std::fs::write(&script_path, &spec.script))
        .and_then(|_| super::isolation::hand_over(&spec.workspace, user))
        .and_then(|_| super::isolation::hand_over(&spec.scratch, user))
    {
        return StepOutcome::NotStarted(format!(
            "cannot write the step script to {}: {error}",
            script_path.display()
        ));
    }
    let outcome = run_script(spec, &script_path.to_string_lossy(), log, cancel).await;
    let _ = std::fs::remove_file(&script_path);
    outcome
}

async fn run_script(
    spec: &CommandSpec,
    script_path: &str,
    log: LogSink,
    cancel: CancellationToken,
) -> StepOutcome {
    let argv = match shell_command(spec.shell.as_deref(), script_path, false) {
        Ok(argv) => argv,
        Err(message) => return StepOutcome::NotStarted(message),
    };
    let directory = match &spec.working_directory {
        Some(relative) => spec.workspace.join(relative),
        None => spec.workspace.clone(),
    };
    if !directory.is_dir() {
        return StepOutcome::NotStarted(format!(
            "working-directory `{}` does not exist in the commit's tree",
            spec.working_directory.as_deref().unwrap_or(".")
        ));
    }
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(&directory)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in PASSED_THROUGH {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    // HOME is the job's scratch directory: writable by the step, removed with the job.
    command.env("HOME", &spec.scratch);
    command.envs(&spec.env);
    if super::isolation::running_as_root() {
        let (uid, gid) = spec.isolation.step_user();
        // std drops supplementary groups before setuid when the parent is root.
        command.uid(uid).gid(gid);
    }
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the child if the
    // server dies, so no step outlives a crashed server and runs unobserved.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return StepOutcome::NotStarted(format!(
                "cannot start `{}`: {error}; install it or choose another `shell:`",
                argv[0]
            ));
        }
    };
    let process_group = child.id().map(|pid| pid as i32);
    let stdout_pump = tokio::spawn(pump_lines(child.stdout.take(), log.clone()));
    let stderr_pump = tokio::spawn(pump_lines(child.stderr.take(), log.clone()));
    let timeout = spec
        .timeout
        .unwrap_or(std::time::Duration::from_secs(365 * 24 * 3600));
    let outcome = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => StepOutcome::Exited(status.code().unwrap_or_else(|| 128 + signal_of(&status))),
            Err(error) => StepOutcome::NotStarted(format!("waiting for the step failed: {error}")),
        },
        _ = tokio::time::sleep(timeout) => StepOutcome::TimedOut(timeout),
        _ = cancel.cancelled() => StepOutcome::Cancelled,
    };
    if !matches!(outcome, StepOutcome::Exited(_)) {
        if let Some(group) = process_group {
            // SAFETY: plain kill(2) on the step's own process group.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = child.wait().await;
    }
    let _ = stdout_pump.await;
    let _ = stderr_pump.await;
    outcome
}

fn signal_of(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.signal().unwrap_or(0)
}

async fn pump_lines(stream: Option<impl AsyncRead + Unpin>, log: LogSink) {
    let Some(stream) = stream else { return };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let mut text = String::from_utf8_lossy(&line).into_owned();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                if log.send(text).is_err() {
                    break;
                }
            }
        }
    }
}
