//! Driving the `terraform` CLI: one `TerraformRun` per plan or apply, with `TF_DATA_DIR` and the
//! plan file in a temporary directory removed when the run is dropped (the checkout stays clean
//! and no plaintext plan outlives it), a plugin cache shared under the data directory, the
//! environment's var files, workspace and variables, a timeout, cancellation, and every line of
//! output streamed to the log (except `show -json` and `output -json`, which are captured, not
//! logged). Knows nothing of stores, keys, policies or pull requests.

use super::settings::TerraformSettings;
use crate::sandbox::LogSink;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio_util::sync::CancellationToken;

/// Set to the path of a `terraform` binary to use it instead of the one on `PATH`.
pub const BINARY_VARIABLE: &str = "SLUICE_TERRAFORM";

/// Variables of the server's environment every `terraform` process gets; everything else it gets
/// is declared (the environment's `terraform.env`, the step's `env:`) or, for the operator's own
/// commands and promotion, `operator_environment()`.
const PASSED_THROUGH: &[&str] = &["PATH", "HOME", "LANG", "TMPDIR", "SSL_CERT_FILE"];

/// The server's environment without anything of sluice's own (`SLUICE_*`: the plan key, the
/// webhook secret, tokens, every `SLUICE_SECRET_*`): the cloud credentials an operator gives the
/// server for applying. Handed to Terraform by promotion and `sluice plan`, never by a pipeline's
/// step, whose code is under review.
pub fn operator_environment() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(name, _)| !name.starts_with("SLUICE_"))
        .collect()
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TerraformError {
    #[error(
        "`terraform` was not found on PATH; install Terraform 1.5 or newer (https://developer.hashicorp.com/terraform/install) or set {BINARY_VARIABLE} to its path"
    )]
    NotInstalled,
    #[error("cannot start `{binary}`: {message}; check that it is an executable Terraform")]
    Spawn { binary: String, message: String },
    #[error("`terraform {command}` in {dir} exited with code {code}; read the log above")]
    Failed {
        command: String,
        dir: String,
        code: i32,
    },
    #[error(
        "`terraform {command}` in {dir} timed out after {seconds}s and was killed; raise `terraform.timeout` in the environment file"
    )]
    TimedOut {
        command: String,
        dir: String,
        seconds: u64,
    },
    #[error("`terraform {command}` in {dir} was cancelled")]
    Cancelled { command: String, dir: String },
    #[error("terraform working files: {0}")]
    Io(String),
}

/// Finds `terraform`: `SLUICE_TERRAFORM`, else the first `terraform` on `PATH`.
pub fn locate_terraform() -> Result<PathBuf, TerraformError> {
    if let Some(path) = std::env::var_os(BINARY_VARIABLE).filter(|path| !path.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let path_variable = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_variable)
        .map(|directory| directory.join("terraform"))
        .find(|candidate| candidate.is_file())
        .ok_or(TerraformError::NotInstalled)
}

/// Where a run's durable files go: the plugin cache and, for a local backend, the state.
#[derive(Clone, Debug)]
pub struct TerraformPaths {
    pub plugin_cache: PathBuf,
    /// The local backend's state directory for this repository, environment and directory.
    pub state_dir: PathBuf,
}

impl TerraformPaths {
    pub fn under(data_dir: &Path, repository: &str, environment: &str, dir: &str) -> Self {
        let safe = |text: &str| text.replace(['/', '\\'], "__");
        TerraformPaths {
            plugin_cache: data_dir.join("terraform").join("plugin-cache"),
            state_dir: data_dir
                .join("terraform")
                .join("state")
                .join(safe(repository))
                .join(safe(environment))
                .join(safe(dir)),
        }
    }
}

/// One plan or apply in one directory of a checkout.
pub struct TerraformRun {
    binary: PathBuf,
    /// The checkout's root (mounted whole in a container: modules may live beside the directory).
    checkout: PathBuf,
    /// In a container for pipeline steps; `None` runs the host's `terraform` (promotion,
    /// `sluice plan`, opted-in host steps).
    container: Option<super::container::TerraformContainer>,
    /// The directory Terraform runs in (`-chdir`).
    dir: PathBuf,
    dir_label: String,
    settings: TerraformSettings,
    paths: TerraformPaths,
    extra_env: BTreeMap<String, String>,
    scratch: tempfile::TempDir,
    log: Option<LogSink>,
    cancel: CancellationToken,
}

impl TerraformRun {
    /// Prepares a run in `checkout/settings.dir`; nothing runs yet.
    pub fn new(
        checkout: &Path,
        settings: &TerraformSettings,
        paths: TerraformPaths,
        extra_env: BTreeMap<String, String>,
        log: Option<LogSink>,
        cancel: CancellationToken,
    ) -> Result<TerraformRun, TerraformError> {
        // In a container the image brings `terraform`; the host's is not needed.
        let binary = locate_terraform().unwrap_or_else(|_| PathBuf::from("terraform"));
        let dir = checkout.join(&settings.dir);
        if !dir.is_dir() {
            return Err(TerraformError::Io(format!(
                "the directory {} of environment {} does not exist in the checkout; fix `terraform.dir` in environments/{}.yaml",
                settings.dir, settings.environment, settings.environment
            )));
        }
        let scratch = tempfile::Builder::new()
            .prefix("sluice-terraform-")
            .tempdir()
            .map_err(|error| {
                TerraformError::Io(format!("cannot create a temporary directory: {error}"))
            })?;
        for directory in [&paths.plugin_cache, &paths.state_dir] {
            std::fs::create_dir_all(directory).map_err(|error| {
                TerraformError::Io(format!("cannot create {}: {error}", directory.display()))
            })?;
        }
        Ok(TerraformRun {
            binary,
            checkout: checkout.to_owned(),
            container: None,
            dir,
            dir_label: settings.dir.clone(),
            settings: settings.clone(),
            paths,
            extra_env,
            scratch,
            log,
            cancel,
        })
    }

    /// Runs every command of this run in a container instead of on the host, handing the
    /// checkout and the scratch directory (and, for a trusted run, the state and the plugin cache)
    /// to the container's user.
    pub fn in_container(
        mut self,
        container: super::container::TerraformContainer,
    ) -> Result<TerraformRun, TerraformError> {
        let give = |path: &Path| {
            crate::ownership::hand_over(path, container.user).map_err(|error| {
                TerraformError::Io(format!(
                    "cannot give {} to uid {}: {error}",
                    path.display(),
                    container.user.0
                ))
            })
        };
        give(&self.checkout)?;
        give(self.scratch.path())?;
        if container.writable_state {
            give(&self.paths.state_dir)?;
            give(&self.paths.plugin_cache)?;
        }
        self.container = Some(container);
        Ok(self)
    }

    /// The temporary file the plan is written to (inside the run's temporary directory).
    pub fn plan_file(&self) -> PathBuf {
        self.scratch.path().join("plan.tfplan")
    }

    fn say(&self, line: String) {
        if let Some(log) = &self.log {
            send_line(log, line);
        }
    }

    /// `init`, then `workspace select -or-create` for a workspace other than `default`. A
    /// `.terraform.lock.hcl` that init creates is removed again so the checkout stays clean.
    pub async fn init(&self) -> Result<(), TerraformError> {
        let lock_file = self.dir.join(".terraform.lock.hcl");
        let lock_file_existed = lock_file.exists();
        let mut arguments = words(&["init", "-input=false", "-no-color"]);
        for (key, value) in &self.settings.backend_config {
            arguments.push(format!("-backend-config={key}={value}"));
        }
        if declares_local_backend(&self.dir) && !self.settings.backend_config.contains_key("path") {
            let state = self.paths.state_dir.join("terraform.tfstate");
            arguments.push(format!("-backend-config=path={}", state.display()));
            arguments.push(format!(
                "-backend-config=workspace_dir={}",
                self.paths.state_dir.join("workspaces").display()
            ));
        }
        let outcome = self.run(&arguments, false).await;
        if !lock_file_existed {
            let _ = std::fs::remove_file(&lock_file);
        }
        outcome?;
        if self.settings.workspace != "default" {
            let workspace = self.settings.workspace.clone();
            let mut arguments = words(&["workspace", "select", "-or-create=true"]);
            arguments.push(workspace);
            self.run(&arguments, false).await?;
        }
        Ok(())
    }

    pub async fn validate(&self) -> Result<(), TerraformError> {
        self.run(&words(&["validate", "-no-color"]), false)
            .await
            .map(drop)
    }

    /// `plan -out`; returns the plan file's bytes.
    pub async fn plan(&self) -> Result<Vec<u8>, TerraformError> {
        self.run(&self.plan_arguments(&[]), false).await?;
        self.read_plan_file()
    }

    /// `plan -detailed-exitcode -out` (with `-refresh-only`: only what changed outside
    /// Terraform): the plan file's bytes when there are changes, `None` when there are none.
    pub async fn plan_changes(
        &self,
        refresh_only: bool,
    ) -> Result<Option<Vec<u8>>, TerraformError> {
        let extra: &[&str] = if refresh_only {
            &["-detailed-exitcode", "-refresh-only"]
        } else {
            &["-detailed-exitcode"]
        };
        match self.run(&self.plan_arguments(extra), false).await {
            Ok(_) => Ok(None),
            // -detailed-exitcode: 2 means the plan has changes.
            Err(TerraformError::Failed { code: 2, .. }) => self.read_plan_file().map(Some),
            Err(error) => Err(error),
        }
    }

    /// `plan -input=false -no-color EXTRA -out=FILE -var-file=…`, and `-lock=false` where the
    /// state is mounted read-only.
    fn plan_arguments(&self, extra: &[&str]) -> Vec<String> {
        let mut arguments = words(&["plan", "-input=false", "-no-color"]);
        arguments.extend(words(extra));
        arguments.push(format!("-out={}", self.plan_file().display()));
        for var_file in &self.settings.var_files {
            arguments.push(format!("-var-file={var_file}"));
        }
        if self
            .container
            .as_ref()
            .is_some_and(|container| !container.writable_state)
        {
            // The state is mounted read-only: a member's plan reads it but cannot lock it.
            arguments.push("-lock=false".to_owned());
        }
        arguments
    }

    fn read_plan_file(&self) -> Result<Vec<u8>, TerraformError> {
        std::fs::read(self.plan_file())
            .map_err(|error| TerraformError::Io(format!("cannot read the plan file: {error}")))
    }

    /// `show -json` of the plan file, captured and not logged.
    pub async fn show_json(&self) -> Result<serde_json::Value, TerraformError> {
        let plan_file = self.plan_file().display().to_string();
        let mut arguments = words(&["show", "-json"]);
        arguments.push(plan_file);
        let stdout = self.run(&arguments, true).await?;
        serde_json::from_slice(&stdout).map_err(|error| {
            TerraformError::Io(format!(
                "`terraform show -json` printed something that is not JSON: {error}"
            ))
        })
    }

    /// Writes `plan` to the temporary plan file and applies exactly it.
    pub async fn apply(&self, plan: &[u8]) -> Result<(), TerraformError> {
        std::fs::write(self.plan_file(), plan)
            .map_err(|error| TerraformError::Io(format!("cannot write the plan file: {error}")))?;
        let plan_file = self.plan_file().display().to_string();
        let mut arguments = words(&["apply", "-input=false", "-no-color", "-auto-approve"]);
        arguments.push(plan_file);
        let outcome = self.run(&arguments, false).await;
        let _ = std::fs::remove_file(self.plan_file());
        outcome.map(drop)
    }

    /// `output -json` with sensitive values replaced by `(sensitive value)`.
    pub async fn outputs(&self) -> Result<serde_json::Value, TerraformError> {
        let stdout = self.run(&words(&["output", "-json"]), true).await?;
        let outputs: serde_json::Value = serde_json::from_slice(&stdout).map_err(|error| {
            TerraformError::Io(format!(
                "`terraform output -json` printed something that is not JSON: {error}"
            ))
        })?;
        Ok(mask_sensitive_outputs(outputs))
    }

    /// Runs `terraform -chdir=DIR ARGUMENTS`; returns stdout when `capture` (and logs only stderr).
    async fn run(&self, arguments: &[String], capture: bool) -> Result<Vec<u8>, TerraformError> {
        let command_name = arguments.first().cloned().unwrap_or_default();
        self.say(format!("$ terraform {}", arguments.join(" ")));
        if let Some(container) = &self.container {
            return self
                .run_in_container(container, &command_name, arguments, capture)
                .await;
        }
        if self.binary == Path::new("terraform") {
            return Err(TerraformError::NotInstalled);
        }
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .arg(format!("-chdir={}", self.dir.display()))
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command.env_clear();
        for name in PASSED_THROUGH {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(self.declared_env());
        let mut child = command.spawn().map_err(|error| TerraformError::Spawn {
            binary: self.binary.display().to_string(),
            message: error.to_string(),
        })?;
        let stderr_pump = tokio::spawn(pump_lines(child.stderr.take(), self.log.clone()));
        let stdout_task = if capture {
            let stdout = child.stdout.take();
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                if let Some(mut stdout) = stdout {
                    let _ = tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut bytes).await;
                }
                bytes
            })
        } else {
            let pump = pump_lines(child.stdout.take(), self.log.clone());
            tokio::spawn(async move {
                pump.await;
                Vec::new()
            })
        };
        let timeout: Duration = self.settings.timeout;
        let dir = self.dir_label.clone();
        enum Ending {
            Exited(std::io::Result<std::process::ExitStatus>),
            TimedOut,
            Cancelled,
        }
        let ending = tokio::select! {
            status = child.wait() => Ending::Exited(status),
            _ = tokio::time::sleep(timeout) => Ending::TimedOut,
            _ = self.cancel.cancelled() => Ending::Cancelled,
        };
        let status = match ending {
            Ending::Exited(status) => {
                status.map_err(|error| TerraformError::Io(error.to_string()))?
            }
            Ending::TimedOut => {
                let _ = child.kill().await;
                return Err(TerraformError::TimedOut {
                    command: command_name,
                    dir,
                    seconds: timeout.as_secs(),
                });
            }
            Ending::Cancelled => {
                let _ = child.kill().await;
                return Err(TerraformError::Cancelled {
                    command: command_name,
                    dir,
                });
            }
        };
        let _ = stderr_pump.await;
        let stdout = stdout_task.await.unwrap_or_default();
        if !status.success() {
            return Err(TerraformError::Failed {
                command: command_name,
                dir,
                code: status.code().unwrap_or(-1),
            });
        }
        Ok(stdout)
    }
}

impl TerraformRun {
    /// The variables a Terraform process gets: declared ones and Terraform's own settings.
    fn declared_env(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = self.extra_env.clone();
        env.extend(self.settings.env.clone());
        for (name, value) in [
            ("TF_IN_AUTOMATION", "1".to_owned()),
            ("TF_INPUT", "0".to_owned()),
            (
                "TF_DATA_DIR",
                self.scratch.path().join("data").display().to_string(),
            ),
            (
                "TF_PLUGIN_CACHE_DIR",
                self.paths.plugin_cache.display().to_string(),
            ),
            ("CHECKPOINT_DISABLE", "1".to_owned()),
        ] {
            env.insert(name.to_owned(), value);
        }
        env
    }

    async fn run_in_container(
        &self,
        container: &super::container::TerraformContainer,
        command_name: &str,
        arguments: &[String],
        capture: bool,
    ) -> Result<Vec<u8>, TerraformError> {
        let mut full_arguments = vec![format!("-chdir={}", self.dir.display())];
        full_arguments.extend(arguments.iter().cloned());
        let mut env = self.declared_env();
        env.entry("HOME".to_owned())
            .or_insert_with(|| "/tmp".to_owned());
        let writable = container.writable_state;
        let invocation = super::container::Invocation {
            arguments: full_arguments,
            env,
            mounts: vec![
                (self.checkout.clone(), true),
                (self.scratch.path().to_owned(), true),
                (self.paths.plugin_cache.clone(), writable),
                (self.paths.state_dir.clone(), writable),
            ],
            log: self.log.as_ref(),
            capture,
            timeout: self.settings.timeout,
            cancel: &self.cancel,
        };
        let dir = self.dir_label.clone();
        match super::container::run(container, invocation).await {
            super::container::Ending::Exited { code: 0, stdout } => Ok(stdout),
            super::container::Ending::Exited { code, .. } => Err(TerraformError::Failed {
                command: command_name.to_owned(),
                dir,
                code: code as i32,
            }),
            super::container::Ending::TimedOut => Err(TerraformError::TimedOut {
                command: command_name.to_owned(),
                dir,
                seconds: self.settings.timeout.as_secs(),
            }),
            super::container::Ending::Cancelled => Err(TerraformError::Cancelled {
                command: command_name.to_owned(),
                dir,
            }),
            super::container::Ending::NotStarted(message) => Err(TerraformError::Spawn {
                binary: format!("terraform in {}", container.image),
                message,
            }),
        }
    }
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|word| (*word).to_owned()).collect()
}

/// Sends one line to the job's log with its line break. The log is one stream of text, like a
/// terminal's: a line sent without `\n` runs into the next one.
pub(crate) fn send_line(log: &LogSink, line: impl Into<String>) {
    let mut line = line.into();
    if !line.ends_with('\n') {
        line.push('\n');
    }
    let _ = log.send(line);
}

/// Every line of `stream` to the log; bytes that are not UTF-8 are replaced, not a reason to stop.
async fn pump_lines(stream: Option<impl AsyncRead + Unpin>, log: Option<LogSink>) {
    let Some(stream) = stream else { return };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Some(log) = &log {
                    send_line(log, String::from_utf8_lossy(&line));
                }
            }
        }
    }
}

/// Whether a `.tf` file in `dir` declares `backend "local"`.
fn declares_local_backend(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        entry
            .path()
            .extension()
            .is_some_and(|extension| extension == "tf")
            && std::fs::read_to_string(entry.path()).is_ok_and(|text| {
                text.lines().any(|line| {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    words.first() == Some(&"backend") && words.get(1) == Some(&"\"local\"")
                })
            })
    })
}

/// `terraform output -json` with every sensitive output's value replaced.
pub fn mask_sensitive_outputs(outputs: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(entries) = outputs else {
        return outputs;
    };
    let masked = entries
        .into_iter()
        .map(|(name, output)| {
            let sensitive =
                output.get("sensitive").and_then(serde_json::Value::as_bool) == Some(true);
            let value = if sensitive {
                serde_json::Value::String("(sensitive value)".into())
            } else {
                output.get("value").cloned().unwrap_or_default()
            };
            (name, value)
        })
        .collect();
    serde_json::Value::Object(masked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sensitive_outputs_are_masked_and_others_kept() {
        let outputs = json!({
            "endpoint": {"sensitive": false, "type": "string", "value": "https://x"},
            "password": {"sensitive": true, "type": "string", "value": "hunter2"},
        });
        assert_eq!(
            mask_sensitive_outputs(outputs),
            json!({"endpoint": "https://x", "password": "(sensitive value)"})
        );
    }

    #[test]
    fn a_local_backend_is_recognised() {
        let directory = tempfile::tempdir().unwrap();
        assert!(!declares_local_backend(directory.path()));
        std::fs::write(
            directory.path().join("main.tf"),
            "terraform {\n  backend \"local\" {}\n}\n",
        )
        .unwrap();
        assert!(declares_local_backend(directory.path()));
    }
}
