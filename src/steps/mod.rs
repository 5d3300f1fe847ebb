//! Step kinds: how one step of a job is carried out. Each kind is one file. The scheduler hands a
//! step a prepared `CommandSpec` (templated, with its environment) and a log sink; steps know
//! nothing of runs, the store or HTTP. `kubernetes` carries a whole job out as a Kubernetes Job.

pub mod build;
pub mod container;
pub mod host;
pub mod isolation;
pub mod kubernetes;
pub mod preview;
pub mod proposed;
mod redact;
pub mod terraform;

pub use isolation::Isolation;
pub use redact::Redactor;

use crate::sandbox::LogSink;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A `run` step, ready to execute.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    pub script: String,
    /// `bash`, `sh`, `python`, or a custom command line containing `{0}` for the script file.
    pub shell: Option<String>,
    /// Run in this container image instead of as a host process.
    pub image: Option<String>,
    /// The clean working tree of the commit.
    pub workspace: PathBuf,
    /// Relative to the workspace.
    pub working_directory: Option<String>,
    pub env: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    /// Where the script file may be written (outside the workspace, so the tree stays clean).
    pub scratch: PathBuf,
    /// Container or host, as whom, with which limits: the server's decision, never the step's.
    pub isolation: Isolation,
}

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Exited(i32),
    TimedOut(Duration),
    Cancelled,
    /// It could not be started at all; the message says why and what to do.
    NotStarted(String),
    /// It ran and failed; the message says what failed and what to do (step kinds other than
    /// `run`, which have no exit code of their own).
    Failed(String),
}

impl StepOutcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, StepOutcome::Exited(0))
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            StepOutcome::Exited(code) => Some(*code),
            _ => None,
        }
    }

    /// One line for the job log and the API.
    pub fn describe(&self) -> String {
        match self {
            StepOutcome::Exited(0) => "exited with code 0".to_owned(),
            StepOutcome::Exited(code) => format!("exited with code {code}"),
            StepOutcome::TimedOut(limit) => {
                format!("timed out after {}s and was killed", limit.as_secs())
            }
            StepOutcome::Cancelled => "cancelled".to_owned(),
            StepOutcome::NotStarted(message) | StepOutcome::Failed(message) => message.clone(),
        }
    }
}

pub type StepFuture<'a> = Pin<Box<dyn Future<Output = StepOutcome> + Send + 'a>>;

/// Carries out command steps. The default runs host processes and, for steps with `image:`,
/// containers through the Docker engine.
pub trait StepRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        spec: &'a CommandSpec,
        log: LogSink,
        cancel: CancellationToken,
    ) -> StepFuture<'a>;

    /// The Kubernetes runner, which runs whole jobs of `run:` steps as Kubernetes Jobs; `None`
    /// for runners that run one step at a time.
    fn kubernetes(&self) -> Option<&kubernetes::KubernetesRunner> {
        None
    }
}

/// Docker containers by default; host processes only where the spec's isolation allows them and
/// the step names no image.
#[derive(Default)]
pub struct LocalRunner {
    containers: container::ContainerRunner,
}

impl StepRunner for LocalRunner {
    fn run<'a>(
        &'a self,
        spec: &'a CommandSpec,
        log: LogSink,
        cancel: CancellationToken,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            if spec.image.is_none() && spec.isolation.host {
                return host::run(spec, log, cancel).await;
            }
            let image = spec
                .image
                .clone()
                .or_else(|| spec.isolation.default_image.clone());
            match image {
                Some(image) => self.containers.run(spec, &image, log, cancel).await,
                None => StepOutcome::NotStarted(
                    "this step names no `image:` and the server runs steps in containers; set `image:` on the step or the job, or `steps.image` in the server configuration (host steps need `host-steps: true` on the repository)"
                        .to_owned(),
                ),
            }
        })
    }
}

/// The script file and argument vector for a shell, as GitHub Actions spells shells.
pub(crate) fn shell_command(
    shell: Option<&str>,
    script_path: &str,
    in_container: bool,
) -> Result<Vec<String>, String> {
    let words = |text: &str| {
        text.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let command = match shell {
        None if in_container => words("sh -e {0}"),
        None | Some("bash") => words("bash --noprofile --norc -eo pipefail {0}"),
        Some("sh") => words("sh -e {0}"),
        Some("python") => words("python3 {0}"),
        Some(custom) if custom.contains("{0}") => words(custom),
        Some(other) => {
            return Err(format!(
                "unknown shell `{other}`; use bash, sh, python, or a command with `{{0}}` for the script file"
            ));
        }
    };
    Ok(command
        .into_iter()
        .map(|word| word.replace("{0}", script_path))
        .collect())
}

/// What a step kind other than `run` can reach while it runs.
pub struct StepContext {
    /// The clean working tree of the commit.
    pub workspace: PathBuf,
    /// A directory outside the workspace for temporary files; removed with the job.
    pub scratch: PathBuf,
    /// sluice's variables plus the job's and the step's, already templated.
    pub env: BTreeMap<String, String>,
    /// The expression context (`git`, `github`, `event`, `env`, `needs`, `secrets`...) for
    /// templating the kind's own settings with `config::expr::render`.
    pub template_values: serde_json::Value,
    pub event: crate::model::Event,
    /// What the run's code may reach (`docs/security.md`): untrusted runs build and plan
    /// nothing, member runs push pull-request tags only and never apply.
    pub trust: crate::model::TrustLevel,
    /// A checkout of the default branch's head the run was planned against (jobs with a
    /// `terraform:` step): whose `environments/` and `policies/` decide. `None` for local runs,
    /// which use the workspace's own.
    pub authority_tree: Option<PathBuf>,
    /// Where code under review runs: a `terraform:` step runs Terraform in a container from the
    /// default image unless the run may use the host.
    pub isolation: Isolation,
    pub run_id: crate::model::RunId,
    pub job: String,
    pub pipeline: String,
    pub data_dir: PathBuf,
    pub store: std::sync::Arc<dyn crate::store::Store>,
    /// The server's deploy targets (`preview` steps ask them what a release would change);
    /// `None` for local runs.
    pub targets: Option<std::sync::Arc<dyn crate::deploy::reconcile::TargetFactory>>,
    pub log: LogSink,
    pub cancel: CancellationToken,
}

/// Runs a step of any kind but `run` (which goes through a `StepRunner`). Each kind adds its arm.
pub async fn execute_kind(
    step: &crate::config::workflow::Step,
    context: &StepContext,
) -> StepOutcome {
    if let Some(build_step) = &step.build {
        return build::execute(build_step, context).await;
    }
    if let Some(terraform_step) = &step.terraform {
        return terraform::execute(terraform_step, context).await;
    }
    if let Some(preview_step) = &step.preview {
        return preview::execute(preview_step, context).await;
    }
    StepOutcome::NotStarted(format!(
        "this step sets no step kind it can run (kinds set: {:?}); write `run:`",
        step.kinds()
    ))
}
