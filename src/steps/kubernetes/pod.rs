//! The Kubernetes objects of one job, built without IO: a Job (created suspended) whose pod checks
//! the commit out in an init container, runs each step in an init container of its own, in
//! order, through a small `sh` wrapper, and ends with a container that does nothing; and the
//! Secret of the job's secrets. The wrapper decides whether its step runs (`run-when`, which the
//! scheduler evaluated from the step's `if:` for both outcomes of the steps before it), enforces
//! the step's timeout, and reports how the step ended in its termination message, so that a
//! failed step does not stop the pod and later `if: always()` or `failure()` steps still run.

use super::{PodJob, PodStep, RunnerSettings};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, Secret, SecretKeySelector, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

/// The container that checks the commit out.
pub const CHECKOUT_CONTAINER: &str = "checkout";
/// The container that runs after the steps, so that the pod has one.
pub const DONE_CONTAINER: &str = "done";
/// Where the commit is checked out in every container.
pub const WORKSPACE: &str = "/workspace";
/// The label every object of one job carries, with the Job's name.
pub const JOB_LABEL: &str = "sluice.dev/runner-job";

/// The container of step `index` (0-based).
pub fn step_container(index: usize) -> String {
    format!("step-{}", index + 1)
}

/// The Secret's name for a Job: its secrets, and the checkout credential.
pub fn secret_name(job_name: &str) -> String {
    format!("{job_name}-secrets")
}

const CHECKOUT_SCRIPT: &str = r#"set -eu
export HOME=/tmp
git init -q .
git fetch -q --depth 1 "$SLUICE_REPOSITORY_URL" "$SLUICE_COMMIT"
git checkout -q --detach FETCH_HEAD
echo "checked out $SLUICE_COMMIT"
"#;

/// Runs one step: `"$@"` is the shell command for the script file.
const STEP_WRAPPER: &str = r#"mkdir -p "$SLUICE_STATE_DIR"
if [ -e "$SLUICE_STATE_DIR/failed" ]; then before=failed; else before=ok; fi
case "$SLUICE_STEP_RUN_WHEN:$before" in
  always:*|success:ok|failure:failed) ;;
  *) printf 'skipped' > "$SLUICE_REPORT"; exit 0 ;;
esac
continue_on_error="$SLUICE_STEP_CONTINUE_ON_ERROR"
fail() { [ "$continue_on_error" = true ] || : > "$SLUICE_STATE_DIR/failed"; }
if [ -n "${SLUICE_STEP_NOT_STARTED:-}" ]; then
  printf 'not-started' > "$SLUICE_REPORT"; fail; exit 0
fi
printf '%s\n' "$SLUICE_STEP_SCRIPT" > "$SLUICE_STEP_FILE"
unset SLUICE_STEP_SCRIPT SLUICE_STEP_RUN_WHEN SLUICE_STEP_CONTINUE_ON_ERROR
marker="$SLUICE_STEP_FILE.timed-out"
if [ -n "${SLUICE_STEP_TIMEOUT:-}" ]; then
  # The wrapper is the container's first process: when it exits, whatever the step left
  # running ends with the container.
  "$@" &
  child=$!
  (sleep "$SLUICE_STEP_TIMEOUT"; : > "$marker"; kill -KILL "$child") 2>/dev/null &
  watchdog=$!
  wait "$child"; code=$?
  kill "$watchdog" 2>/dev/null
else
  "$@"; code=$?
fi
if [ -e "$marker" ]; then printf 'timed-out' > "$SLUICE_REPORT"; fail; exit 0; fi
printf 'exited %d' "$code" > "$SLUICE_REPORT"
[ "$code" -eq 0 ] || fail
exit 0
"#;

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

fn resources(settings: &RunnerSettings) -> Option<ResourceRequirements> {
    let mut limits = BTreeMap::new();
    if let Some(cpu) = &settings.cpu {
        limits.insert("cpu".to_owned(), Quantity(cpu.clone()));
    }
    if let Some(memory) = &settings.memory {
        limits.insert("memory".to_owned(), Quantity(memory.clone()));
    }
    (!limits.is_empty()).then(|| ResourceRequirements {
        // Requests equal to the limits: the scheduler places the pod where they fit.
        requests: Some(limits.clone()),
        limits: Some(limits),
        ..ResourceRequirements::default()
    })
}

/// The Secret's data: every step variable whose value holds a secret, keyed by step and name,
/// and the checkout credential. Empty when the job has neither.
pub fn secret_data(job: &PodJob) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    for (index, step) in job.steps.iter().enumerate() {
        for (name, value) in step_variables(step) {
            if holds_secret(job, &value) {
                data.insert(secret_key(index, &name), value);
            }
        }
    }
    if let Some(credential) = &job.checkout_credential {
        data.insert("checkout-authorization".to_owned(), credential.clone());
    }
    data
}

fn secret_key(index: usize, name: &str) -> String {
    format!("step-{}.{name}", index + 1)
}

fn holds_secret(job: &PodJob, value: &str) -> bool {
    job.secrets
        .iter()
        .any(|secret| !secret.is_empty() && value.contains(secret.as_str()))
}

/// A step's variables as its container gets them: the step's environment, then the wrapper's.
fn step_variables(step: &PodStep) -> Vec<(String, String)> {
    let mut variables: Vec<(String, String)> = step
        .env
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let run_when = match (step.run_if_ok, step.run_if_failed) {
        (true, true) => "always",
        (true, false) => "success",
        (false, true) => "failure",
        (false, false) => "never",
    };
    variables.push(("SLUICE_STEP_RUN_WHEN".to_owned(), run_when.to_owned()));
    variables.push((
        "SLUICE_STEP_CONTINUE_ON_ERROR".to_owned(),
        step.continue_on_error.to_string(),
    ));
    match &step.script {
        Ok(script) => variables.push(("SLUICE_STEP_SCRIPT".to_owned(), script.clone())),
        Err(_) => variables.push(("SLUICE_STEP_NOT_STARTED".to_owned(), "1".to_owned())),
    }
    if let Some(timeout) = step.timeout {
        variables.push((
            "SLUICE_STEP_TIMEOUT".to_owned(),
            timeout.as_secs().max(1).to_string(),
        ));
    }
    variables
}

fn step_container_spec(
    job: &PodJob,
    settings: &RunnerSettings,
    index: usize,
    step: &PodStep,
) -> Result<Container, String> {
    let name = step_container(index);
    let script_file = format!("/sluice/{name}.sh");
    let shell = crate::steps::shell_command(step.shell.as_deref(), &script_file, true)?;
    let image = step
        .image
        .clone()
        .or_else(|| settings.image.clone())
        .ok_or_else(|| {
            "this step names no `image:` and the Kubernetes runner has no default; set `image:` on the step or the job, or `runner.image` in the server configuration".to_owned()
        })?;
    let secret = secret_name(&job.name);
    let mut variables: Vec<EnvVar> = step_variables(step)
        .into_iter()
        .map(|(variable, value)| {
            if holds_secret(job, &value) {
                secret_env(&variable, &secret, &secret_key(index, &variable))
            } else {
                env(&variable, value)
            }
        })
        .collect();
    variables.push(env("SLUICE_STEP_FILE", script_file));
    // A failed step (without `continue-on-error`) leaves a file here for the steps after it.
    variables.push(env("SLUICE_STATE_DIR", "/sluice/state"));
    variables.push(env("SLUICE_REPORT", "/dev/termination-log"));
    let working_directory = match &step.working_directory {
        Some(relative) => format!("{WORKSPACE}/{}", relative.trim_start_matches('/')),
        None => WORKSPACE.to_owned(),
    };
    let mut command = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        STEP_WRAPPER.to_owned(),
        "sluice-step".to_owned(),
    ];
    command.extend(shell);
    Ok(Container {
        name,
        image: Some(image),
        command: Some(command),
        env: Some(variables),
        working_dir: Some(working_directory),
        volume_mounts: Some(vec![
            mount("workspace", WORKSPACE),
            mount("sluice", "/sluice"),
        ]),
        resources: resources(settings),
        termination_message_path: Some("/dev/termination-log".to_owned()),
        termination_message_policy: Some("File".to_owned()),
        ..Container::default()
    })
}

fn checkout_container(job: &PodJob, settings: &RunnerSettings) -> Container {
    let mut variables = vec![
        env("SLUICE_REPOSITORY_URL", job.repository_url.clone()),
        env("SLUICE_COMMIT", job.commit.clone()),
    ];
    if job.checkout_credential.is_some() {
        // Given to git as configuration from the environment, never on its command line.
        variables.push(env("GIT_CONFIG_COUNT", "1"));
        variables.push(env("GIT_CONFIG_KEY_0", "http.extraHeader"));
        variables.push(secret_env(
            "GIT_CONFIG_VALUE_0",
            &secret_name(&job.name),
            "checkout-authorization",
        ));
    }
    Container {
        name: CHECKOUT_CONTAINER.to_owned(),
        image: Some(settings.checkout_image.clone()),
        command: Some(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            CHECKOUT_SCRIPT.to_owned(),
        ]),
        env: Some(variables),
        working_dir: Some(WORKSPACE.to_owned()),
        volume_mounts: Some(vec![
            mount("workspace", WORKSPACE),
            mount("sluice", "/sluice"),
        ]),
        resources: resources(settings),
        ..Container::default()
    }
}

/// The Job, suspended until its Secret exists. A step that cannot become a container (no image,
/// an unknown shell) is the error, naming the step.
pub fn job_object(job: &PodJob, settings: &RunnerSettings) -> Result<Job, String> {
    let mut labels = job.labels.clone();
    labels.insert(JOB_LABEL.to_owned(), job.name.clone());
    labels.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        "sluice".to_owned(),
    );
    let mut init_containers = vec![checkout_container(job, settings)];
    for (index, step) in job.steps.iter().enumerate() {
        init_containers.push(
            step_container_spec(job, settings, index, step)
                .map_err(|problem| format!("step `{}`: {problem}", step.name))?,
        );
    }
    let done = Container {
        name: DONE_CONTAINER.to_owned(),
        image: Some(settings.checkout_image.clone()),
        command: Some(vec!["sh".to_owned(), "-c".to_owned(), "true".to_owned()]),
        resources: resources(settings),
        ..Container::default()
    };
    let empty_dir = |name: &str| Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let (user, group) = settings.user;
    let pod = PodSpec {
        restart_policy: Some("Never".to_owned()),
        service_account_name: settings.service_account.clone(),
        // Steps reach no API: the pod carries no token of its service account.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_user: Some(i64::from(user)),
            run_as_group: Some(i64::from(group)),
            fs_group: Some(i64::from(group)),
            run_as_non_root: Some(user != 0),
            ..PodSecurityContext::default()
        }),
        init_containers: Some(init_containers),
        containers: vec![done],
        volumes: Some(vec![empty_dir("workspace"), empty_dir("sluice")]),
        ..PodSpec::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job.name.clone()),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            suspend: Some(true),
            backoff_limit: Some(0),
            active_deadline_seconds: job.deadline.map(|deadline| deadline.as_secs() as i64),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

/// The Secret of a created Job, owned by it so that deleting the Job deletes it.
pub fn secret_object(
    job: &PodJob,
    settings: &RunnerSettings,
    job_uid: &str,
    data: BTreeMap<String, String>,
) -> Secret {
    let mut labels = job.labels.clone();
    labels.insert(JOB_LABEL.to_owned(), job.name.clone());
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&job.name)),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".to_owned(),
                kind: "Job".to_owned(),
                name: job.name.clone(),
                uid: job_uid.to_owned(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        string_data: Some(data),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    }
}

/// How a step's container says its step ended (its termination message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reported {
    Skipped,
    Exited(i32),
    TimedOut,
    NotStarted,
}

pub fn parse_report(message: &str) -> Option<Reported> {
    match message.trim() {
        "skipped" => Some(Reported::Skipped),
        "timed-out" => Some(Reported::TimedOut),
        "not-started" => Some(Reported::NotStarted),
        other => other
            .strip_prefix("exited ")
            .and_then(|code| code.trim().parse().ok())
            .map(Reported::Exited),
    }
}

/// The termination message a step's container leaves, as the wrapper writes it (for fakes).
pub fn report_message(reported: &Reported) -> String {
    match reported {
        Reported::Skipped => "skipped".to_owned(),
        Reported::Exited(code) => format!("exited {code}"),
        Reported::TimedOut => "timed-out".to_owned(),
        Reported::NotStarted => "not-started".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_back_as_written_and_nothing_else_reads_as_a_report() {
        for reported in [
            Reported::Skipped,
            Reported::Exited(0),
            Reported::Exited(137),
            Reported::TimedOut,
            Reported::NotStarted,
        ] {
            assert_eq!(parse_report(&report_message(&reported)), Some(reported));
        }
        assert_eq!(parse_report(""), None);
        assert_eq!(parse_report("exited"), None);
        assert_eq!(parse_report("OOMKilled"), None);
    }

    /// Runs the wrapper with `sh` on this machine as a step container would, in `directory`.
    fn wrap(
        directory: &std::path::Path,
        script: &str,
        run_when: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let report = directory.join("report");
        let _ = std::fs::remove_file(&report);
        let file = directory.join("step.sh");
        let output = std::process::Command::new("sh")
            .args(["-c", STEP_WRAPPER, "sluice-step", "sh", "-e"])
            .arg(&file)
            .env("SLUICE_STATE_DIR", directory.join("state"))
            .env("SLUICE_REPORT", &report)
            .env("SLUICE_STEP_FILE", &file)
            .env("SLUICE_STEP_SCRIPT", script)
            .env("SLUICE_STEP_RUN_WHEN", run_when)
            .env("SLUICE_STEP_CONTINUE_ON_ERROR", "false")
            .envs(extra.iter().copied())
            // Not a pipe: a process a timed-out step leaves behind would hold it open (in a
            // container it ends with the wrapper).
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(output.success(), "the wrapper itself exits 0: {output:?}");
        std::fs::read_to_string(report).unwrap()
    }

    #[test]
    fn the_wrapper_runs_skips_and_times_out_steps_as_the_job_runs_them() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path();
        assert_eq!(wrap(path, "exit 0", "success", &[]), "exited 0");
        assert_eq!(
            wrap(
                path,
                "exit 3",
                "success",
                &[("SLUICE_STEP_CONTINUE_ON_ERROR", "true")]
            ),
            "exited 3"
        );
        assert_eq!(
            wrap(path, "true", "failure", &[]),
            "skipped",
            "continue-on-error failed nothing"
        );
        assert_eq!(wrap(path, "exit 2", "success", &[]), "exited 2");
        assert_eq!(
            wrap(path, "true", "success", &[]),
            "skipped",
            "a failed step stops success() steps"
        );
        assert_eq!(wrap(path, "echo cleanup", "failure", &[]), "exited 0");
        assert_eq!(wrap(path, "true", "never", &[]), "skipped");
        assert_eq!(
            wrap(path, "true", "always", &[("SLUICE_STEP_NOT_STARTED", "1")]),
            "not-started"
        );
        let started = std::time::Instant::now();
        assert_eq!(
            wrap(path, "sleep 30", "always", &[("SLUICE_STEP_TIMEOUT", "1")]),
            "timed-out"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
