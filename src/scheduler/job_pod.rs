//! A job of `run:` steps run by the Kubernetes runner as one Kubernetes Job: the steps templated
//! here as for the Docker runner (with the job's scoped secrets), each step's `if:` evaluated
//! for both outcomes of the steps before it (the pod decides which applies), then the steps'
//! starts and ends recorded as the pod reports them, and the job's status decided by the same
//! rules: a failed step without `continue-on-error` fails the job, cancellation cancels it.

use super::job::{JobContext, sanitize, step_env, step_record, template_context};
use crate::config::expr;
use crate::model::Status;
use crate::steps::StepOutcome;
use crate::steps::kubernetes::{KubernetesRunner, PodJob, PodJobEnd, PodStep, StepEnd, StepEvent};
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// Kubernetes stops a Job this long after the job's own timeout, should sluice not be there to.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(120);

pub(super) async fn run_in_pod(
    context: &JobContext,
    runner: &KubernetesRunner,
    log: &mpsc::UnboundedSender<String>,
) -> (Status, Option<String>) {
    let job = pod_job(context, runner).await;
    let (events, mut reported) = mpsc::unbounded_channel();
    let running = runner.run_job(&job, log.clone(), events, context.cancel.clone());
    let mut ends: BTreeMap<usize, StepEnd> = BTreeMap::new();
    let recording = async {
        while let Some(event) = reported.recv().await {
            match event {
                StepEvent::Started(index) => {
                    let name = &job.steps[index].name;
                    context
                        .record_step(step_record(index, name, Status::Running, None, None))
                        .await;
                }
                StepEvent::Ended(index, end) => {
                    record_end(context, index, &job.steps[index].name, &end).await;
                    ends.insert(index, end);
                }
            }
        }
    };
    let (end, ()) = tokio::join!(running, recording);
    let mut job_failed = false;
    let mut failure_reason = None;
    for (index, step) in job.steps.iter().enumerate() {
        match ends.get(&index) {
            Some(StepEnd::Ran(outcome)) if !outcome.succeeded() => {
                if *outcome == StepOutcome::Cancelled {
                    failure_reason = Some("cancelled".to_owned());
                } else if !step.continue_on_error {
                    job_failed = true;
                    failure_reason.get_or_insert(format!(
                        "step `{}` {}",
                        step.name,
                        outcome.describe()
                    ));
                }
            }
            Some(_) => {}
            None => {
                // The pod stopped before the step: cancelled with the job, or never reached.
                let status = if end == PodJobEnd::Cancelled {
                    Status::Cancelled
                } else {
                    Status::Skipped
                };
                context
                    .record_step(step_record(index, &step.name, status, None, None))
                    .await;
            }
        }
    }
    match end {
        PodJobEnd::Cancelled => (
            Status::Cancelled,
            failure_reason.or(Some("cancelled".to_owned())),
        ),
        PodJobEnd::Problem(problem) => (Status::Failed, Some(failure_reason.unwrap_or(problem))),
        PodJobEnd::Finished if job_failed => (Status::Failed, failure_reason),
        PodJobEnd::Finished => (Status::Succeeded, None),
    }
}

async fn record_end(context: &JobContext, index: usize, name: &str, end: &StepEnd) {
    let record = match end {
        StepEnd::Skipped => step_record(index, name, Status::Skipped, None, None),
        StepEnd::Ran(outcome) => {
            let status = match outcome {
                _ if outcome.succeeded() => Status::Succeeded,
                StepOutcome::Cancelled => Status::Cancelled,
                _ => Status::Failed,
            };
            let reason = (!outcome.succeeded()).then(|| outcome.describe());
            step_record(index, name, status, outcome.exit_code(), reason)
        }
    };
    context.record_step(record).await;
}

/// A step templated for the pod (its `if:` is filled in by the caller); the error says why it
/// cannot be, and the step then fails without starting, as with the Docker runner.
fn prepare_step(
    context: &JobContext,
    step: &crate::config::workflow::Step,
    index: usize,
    template: &expr::Context,
) -> Result<PodStep, String> {
    let render = |text: &str| super::job::render_expressions(text, template);
    let workspace = std::path::Path::new(crate::steps::kubernetes::pod::WORKSPACE);
    Ok(PodStep {
        name: step.display_name(index),
        script: Ok(render(step.run.as_deref().unwrap_or_default())?),
        shell: step.shell.clone(),
        image: step.image.as_deref().map(render).transpose()?,
        working_directory: step.working_directory.as_deref().map(render).transpose()?,
        env: step_env(context, step, workspace, template)?,
        timeout: step
            .timeout
            .as_ref()
            .map(|spec| spec.to_duration())
            .transpose()?,
        continue_on_error: step.continue_on_error,
        run_if_ok: false,
        run_if_failed: false,
    })
}

/// The job as the runner takes it: templated steps, its secrets' values, where to check out.
async fn pod_job(context: &JobContext, runner: &KubernetesRunner) -> PodJob {
    let template = template_context(context).await;
    let evaluate = |condition: &Option<String>, any_failed: bool| match condition {
        Some(condition) => {
            let mut view = template.clone();
            view.job_status = expr::JobStatusView {
                any_failed,
                any_cancelled: false,
            };
            expr::evaluate_condition(condition, &view).unwrap_or(false)
        }
        None => !any_failed,
    };
    let steps = context
        .job
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let (run_if_ok, run_if_failed) = (
                evaluate(&step.condition, false),
                evaluate(&step.condition, true),
            );
            let mut prepared =
                prepare_step(context, step, index, &template).unwrap_or_else(|problem| PodStep {
                    name: step.display_name(index),
                    script: Err(problem),
                    shell: step.shell.clone(),
                    image: None,
                    working_directory: None,
                    env: BTreeMap::new(),
                    timeout: None,
                    continue_on_error: step.continue_on_error,
                    run_if_ok: false,
                    run_if_failed: false,
                });
            prepared.image = prepared.image.or_else(|| context.job.image.clone());
            prepared.run_if_ok = run_if_ok;
            prepared.run_if_failed = run_if_failed;
            prepared
        })
        .collect();
    let event = &context.plan.event;
    let suffix: u32 = rand::random::<u32>() & 0xfffff;
    let mut job_label = sanitize(&context.job.id)
        .to_ascii_lowercase()
        .replace('_', "-");
    job_label.truncate(24);
    let name = format!(
        "sluice-{}-{}-{suffix:05x}",
        context.run_id,
        job_label.trim_matches('-')
    );
    let limit = context
        .job
        .timeout
        .unwrap_or(super::job::DEFAULT_JOB_TIMEOUT);
    let repository_url = context
        .mirrors
        .urls()
        .get(&event.repository)
        .cloned()
        .unwrap_or_default();
    PodJob {
        name,
        labels: BTreeMap::from([
            ("sluice.dev/run".to_owned(), context.run_id.to_string()),
            (
                "sluice.dev/job".to_owned(),
                job_label.trim_matches('-').to_owned(),
            ),
        ]),
        checkout_credential: runner.checkout_credential(&repository_url),
        repository_url,
        commit: event.commit.clone(),
        steps,
        secrets: context.settings.secrets.values().cloned().collect(),
        deadline: Some(limit + DEADLINE_MARGIN),
    }
}
