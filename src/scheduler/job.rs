//! One job: a clean working tree of the commit, its steps in order with templating, step `if`,
//! timeouts and `continue-on-error`, and a log written to the store with secrets redacted. With
//! the Kubernetes runner, a job of `run:` steps runs as one Kubernetes Job instead (`job_pod`).

use super::dispatch::RunUpdate;
use super::{EngineSettings, Mirrors, StoredPlan};
use crate::config::expr;
use crate::model::{RunId, Status, StepRecord};
use crate::planner::PlannedJob;
use crate::steps::{CommandSpec, Redactor, StepOutcome, StepRunner};
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Without a `timeout:`, a job may run this long.
pub(super) const DEFAULT_JOB_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(6 * 3600);

pub struct JobContext {
    pub store: Arc<dyn Store>,
    pub mirrors: Arc<Mirrors>,
    pub runner: Arc<dyn StepRunner>,
    pub settings: EngineSettings,
    pub updates: broadcast::Sender<RunUpdate>,
    pub run_id: RunId,
    pub plan: StoredPlan,
    pub job: PlannedJob,
    /// How the jobs this one needs ended, for `${{ needs.<id>.result }}`.
    pub needs: BTreeMap<String, Status>,
    pub cancel: CancellationToken,
}

impl JobContext {
    pub async fn record(&self, status: Status, reason: Option<String>) {
        super::dispatch::record_job_status(
            &self.store,
            &self.updates,
            self.run_id,
            &self.job.id,
            status,
            reason,
        )
        .await;
    }

    pub(super) async fn record_step(&self, step: StepRecord) {
        let store = self.store.clone();
        let (run, job) = (self.run_id, self.job.id.clone());
        let _ = tokio::task::spawn_blocking(move || store.upsert_step(run, &job, &step)).await;
    }
}

/// Runs the job to its end and returns its final status (already recorded).
pub async fn execute_job(context: JobContext) -> Status {
    context.record(Status::Running, None).await;
    let redactor = Redactor::new(context.settings.redacted.iter().cloned());
    let (log_sender, log_receiver) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(write_log(
        context.store.clone(),
        context.updates.clone(),
        context.run_id,
        context.job.id.clone(),
        redactor,
        log_receiver,
    ));
    let limit = context.job.timeout.unwrap_or(DEFAULT_JOB_TIMEOUT);
    // The timeout cancels the job's token so that its processes are killed and its workspace is
    // cleaned like any cancellation; the flag tells a timeout from a cancel.
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let timer = {
        let (timed_out, cancel) = (timed_out.clone(), context.cancel.clone());
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
            cancel.cancel();
        })
    };
    let (mut status, mut reason) = run_steps(&context, &log_sender).await;
    timer.abort();
    if timed_out.load(std::sync::atomic::Ordering::SeqCst) {
        status = Status::Failed;
        reason = Some(format!("job timed out after {}s", limit.as_secs()));
    }
    if let Some(reason) = &reason {
        let _ = log_sender.send(format!("sluice: job {}: {reason}\n", status));
    }
    drop(log_sender);
    let _ = writer.await;
    context.record(status, reason).await;
    status
}

async fn run_steps(
    context: &JobContext,
    log: &mpsc::UnboundedSender<String>,
) -> (Status, Option<String>) {
    // A job of `run:` steps only runs as one Kubernetes Job where the server says so; other
    // step kinds are sluice's own code and run here.
    if let Some(runner) = context.runner.kubernetes()
        && context.job.steps.iter().all(|step| step.run.is_some())
    {
        return super::job_pod::run_in_pod(context, runner, log).await;
    }
    let workspace = context.settings.workspaces_dir().join(format!(
        "run-{}-{}",
        context.run_id,
        sanitize(&context.job.id)
    ));
    let scratch = context.settings.workspaces_dir().join(format!(
        "run-{}-{}.scratch",
        context.run_id,
        sanitize(&context.job.id)
    ));
    let authority_tree = context.settings.workspaces_dir().join(format!(
        "run-{}-{}.authority",
        context.run_id,
        sanitize(&context.job.id)
    ));
    if let Err(error) = prepare_workspace(context, &workspace).await {
        return (
            Status::Failed,
            Some(format!(
                "cannot check out {}: {error:#}",
                context.plan.event.commit
            )),
        );
    }
    let authority_tree = match prepare_authority_tree(context, &authority_tree).await {
        Ok(tree) => tree,
        Err(error) => {
            let _ = tokio::fs::remove_dir_all(&workspace).await;
            return (
                Status::Failed,
                Some(format!(
                    "cannot check out the default branch's configuration: {error:#}"
                )),
            );
        }
    };
    let mut template_context = template_context(context).await;
    // Decided once for the job: where its code runs is the server's word, not a step's.
    let isolation = context.settings.isolation_for_job(
        &context.plan.event.repository,
        context.plan.trust,
        context.job.image.as_deref(),
    );
    let mut job_failed = false;
    let mut failure_reason = None;
    for (index, step) in context.job.steps.iter().enumerate() {
        let name = step.display_name(index);
        if context.cancel.is_cancelled() {
            context
                .record_step(step_record(index, &name, Status::Cancelled, None, None))
                .await;
            continue;
        }
        template_context.job_status.any_failed = job_failed;
        let should_run = match &step.condition {
            Some(condition) => {
                expr::evaluate_condition(condition, &template_context).unwrap_or(false)
            }
            None => !job_failed,
        };
        if !should_run {
            context
                .record_step(step_record(index, &name, Status::Skipped, None, None))
                .await;
            continue;
        }
        context
            .record_step(step_record(index, &name, Status::Running, None, None))
            .await;
        let _ = log.send(format!("sluice: step {}: {name}\n", index + 1));
        let outcome = if step.run.is_some() {
            match build_spec(
                context,
                step,
                &workspace,
                &scratch,
                &template_context,
                &isolation,
            ) {
                Ok(spec) => {
                    context
                        .runner
                        .run(&spec, log.clone(), context.cancel.clone())
                        .await
                }
                Err(message) => StepOutcome::NotStarted(message),
            }
        } else {
            match step_env(context, step, &workspace, &template_context) {
                Ok(env) => {
                    let step_context = crate::steps::StepContext {
                        workspace: workspace.clone(),
                        scratch: scratch.clone(),
                        env,
                        template_values: template_context.values.clone(),
                        event: context.plan.event.clone(),
                        trust: context.plan.trust,
                        authority_tree: authority_tree.clone(),
                        isolation: isolation.clone(),
                        run_id: context.run_id,
                        job: context.job.id.clone(),
                        pipeline: context.plan.run.pipeline.clone(),
                        data_dir: context.settings.data_dir.clone(),
                        store: context.store.clone(),
                        targets: context
                            .settings
                            .deploy_targets
                            .as_ref()
                            .map(|targets| targets.0.clone()),
                        log: log.clone(),
                        cancel: context.cancel.clone(),
                    };
                    crate::steps::execute_kind(step, &step_context).await
                }
                Err(message) => StepOutcome::NotStarted(message),
            }
        };
        let _ = log.send(format!(
            "sluice: step {}: {}\n",
            index + 1,
            outcome.describe()
        ));
        let status = match &outcome {
            _ if outcome.succeeded() => Status::Succeeded,
            StepOutcome::Cancelled => Status::Cancelled,
            _ => Status::Failed,
        };
        let reason = (!outcome.succeeded()).then(|| outcome.describe());
        context
            .record_step(step_record(
                index,
                &name,
                status,
                outcome.exit_code(),
                reason.clone(),
            ))
            .await;
        if status == Status::Cancelled {
            failure_reason = Some("cancelled".to_owned());
        } else if status == Status::Failed && !step.continue_on_error {
            job_failed = true;
            failure_reason.get_or_insert(format!("step `{name}` {}", outcome.describe()));
        }
    }
    let _ = tokio::fs::remove_dir_all(&workspace).await;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    if let Some(tree) = &authority_tree {
        let _ = tokio::fs::remove_dir_all(tree).await;
    }
    if context.cancel.is_cancelled() {
        (
            Status::Cancelled,
            failure_reason.or(Some("cancelled".to_owned())),
        )
    } else if job_failed {
        (Status::Failed, failure_reason)
    } else {
        (Status::Succeeded, None)
    }
}

/// The expression context of the job's steps: the event, the pipeline, the job's `env`, its
/// secrets and the results and outputs of the jobs it needs.
pub(super) async fn template_context(context: &JobContext) -> expr::Context {
    let mut template_context = expr::Context {
        values: crate::planner::expression_context(
            &context.plan.event,
            &context.plan.run.pipeline,
            &context.job.env,
        ),
        job_status: expr::JobStatusView {
            any_failed: false,
            any_cancelled: false,
        },
    };
    let needed_outputs = needs_outputs(context).await;
    if let Some(values) = template_context.values.as_object_mut() {
        values.insert(
            "secrets".to_owned(),
            serde_json::to_value(&context.settings.secrets).unwrap_or_default(),
        );
        let needs: serde_json::Map<String, serde_json::Value> = context
            .needs
            .iter()
            .map(|(id, status)| {
                let outputs = needed_outputs.get(id).cloned().unwrap_or_default();
                (
                    id.clone(),
                    serde_json::json!({ "result": github_result(*status), "outputs": outputs }),
                )
            })
            .collect();
        values.insert("needs".to_owned(), serde_json::Value::Object(needs));
    }
    template_context
}

/// The outputs each needed job recorded, for `${{ needs.<id>.outputs.<name> }}`.
async fn needs_outputs(context: &JobContext) -> BTreeMap<String, BTreeMap<String, String>> {
    let store = context.store.clone();
    let run = context.run_id;
    let needed: Vec<String> = context.needs.keys().cloned().collect();
    tokio::task::spawn_blocking(move || {
        needed
            .into_iter()
            .filter_map(|job| {
                let outputs = store.job_outputs(run, &job).ok().flatten()?;
                Some((job, outputs))
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

async fn prepare_workspace(
    context: &JobContext,
    workspace: &std::path::Path,
) -> anyhow::Result<()> {
    let mirrors = context.mirrors.clone();
    let repository = context.plan.event.repository.clone();
    let commit = context.plan.event.commit.clone();
    let workspace = workspace.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        if workspace.exists() {
            std::fs::remove_dir_all(&workspace)?;
        }
        let mirror = mirrors.get(&repository)?;
        mirror.checkout(&commit, &workspace)?;
        Ok(())
    })
    .await?
}

/// For a job with a `terraform:` step: a checkout of the default branch's head the run was
/// planned against, kept outside anything a step can write to. Its `environments/` and
/// `policies/` judge the job's plans instead of the commit's own.
async fn prepare_authority_tree(
    context: &JobContext,
    destination: &std::path::Path,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let needs_tree = context
        .job
        .steps
        .iter()
        .any(|step| step.terraform.is_some() || step.preview.is_some());
    let Some(commit) = context.plan.authority_commit.clone().filter(|_| needs_tree) else {
        return Ok(None);
    };
    let mirrors = context.mirrors.clone();
    let repository = context.plan.event.repository.clone();
    let destination = destination.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Option<std::path::PathBuf>> {
        if destination.exists() {
            std::fs::remove_dir_all(&destination)?;
        }
        mirrors.get(&repository)?.checkout(&commit, &destination)?;
        Ok(Some(destination))
    })
    .await?
}

/// The variables every step sees: sluice's own, then the job's and the step's (templated).
pub(super) fn step_env(
    context: &JobContext,
    step: &crate::config::workflow::Step,
    workspace: &std::path::Path,
    template_context: &expr::Context,
) -> Result<BTreeMap<String, String>, String> {
    let render = |text: &str| render_expressions(text, template_context);
    let event = &context.plan.event;
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let builtin = [
        ("CI", "true".to_owned()),
        ("SLUICE", "true".to_owned()),
        ("SLUICE_RUN_ID", context.run_id.to_string()),
        ("SLUICE_JOB", context.job.id.clone()),
        ("SLUICE_PIPELINE", context.plan.run.pipeline.clone()),
        ("SLUICE_REPOSITORY", event.repository.clone()),
        ("SLUICE_SHA", event.commit.clone()),
        ("SLUICE_REF", event.git_ref.clone()),
        ("SLUICE_EVENT", event.kind.to_string()),
        ("GITHUB_SHA", event.commit.clone()),
        ("GITHUB_REF", event.git_ref.clone()),
        ("GITHUB_REPOSITORY", event.repository.clone()),
        ("GITHUB_WORKSPACE", workspace.display().to_string()),
    ];
    for (name, value) in builtin {
        env.insert(name.to_owned(), value);
    }
    for (name, value) in context.job.env.iter().chain(step.env.iter()) {
        env.insert(name.clone(), render(value)?);
    }
    Ok(env)
}

fn build_spec(
    context: &JobContext,
    step: &crate::config::workflow::Step,
    workspace: &std::path::Path,
    scratch: &std::path::Path,
    template_context: &expr::Context,
    isolation: &crate::steps::Isolation,
) -> Result<CommandSpec, String> {
    let script = step
        .run
        .as_deref()
        .ok_or("this step has no `run` command")?;
    let render = |text: &str| render_expressions(text, template_context);
    let env = step_env(context, step, workspace, template_context)?;
    let timeout = match &step.timeout {
        Some(spec) => Some(spec.to_duration()?),
        None => None,
    };
    Ok(CommandSpec {
        script: render(script)?,
        shell: step.shell.clone(),
        image: step.image.as_deref().map(render).transpose()?,
        workspace: workspace.to_owned(),
        working_directory: step.working_directory.as_deref().map(render).transpose()?,
        env,
        timeout,
        scratch: scratch.to_owned(),
        isolation: isolation.clone(),
    })
}

/// Replaces `${{ expression }}` only; shell text such as `{{.ID}}` is left alone. A value is
/// pasted once and never read again for placeholders, so a branch named `${{ secrets.X }}`
/// stays that text. The loader keeps values outsiders choose out of `run:` scripts
/// (`config::untrusted`); in `env:` they arrive as data.
pub(crate) fn render_expressions(text: &str, context: &expr::Context) -> Result<String, String> {
    let mut rendered = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    for placeholder in expr::placeholders(text)? {
        rendered.push_str(&text[copied_up_to..placeholder.start]);
        match expr::evaluate(placeholder.expression.trim(), context)? {
            serde_json::Value::String(value) => rendered.push_str(&value),
            serde_json::Value::Null => {}
            other => rendered.push_str(&other.to_string()),
        }
        copied_up_to = placeholder.end;
    }
    rendered.push_str(&text[copied_up_to..]);
    Ok(rendered)
}

pub(super) fn step_record(
    index: usize,
    name: &str,
    status: Status,
    exit_code: Option<i32>,
    reason: Option<String>,
) -> StepRecord {
    StepRecord {
        index,
        name: name.to_owned(),
        status,
        exit_code,
        reason,
        started_at: None,
        finished_at: None,
    }
}

/// GitHub's words for a finished job: success, failure, cancelled, skipped.
pub(super) fn github_result(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "success",
        Status::Failed => "failure",
        Status::Cancelled => "cancelled",
        Status::Skipped => "skipped",
        Status::Queued | Status::Running => "",
    }
}

pub(super) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Batches log lines into the store and forwards them to watchers, redacting first. The
/// redactor sees the pieces as one stream, so a secret split across two of them is still
/// found; what it holds back is written when the job's log ends.
async fn write_log(
    store: Arc<dyn Store>,
    updates: broadcast::Sender<RunUpdate>,
    run: RunId,
    job: String,
    mut redactor: Redactor,
    mut lines: mpsc::UnboundedReceiver<String>,
) {
    let mut finished = false;
    while !finished {
        let mut batch = match lines.recv().await {
            Some(first) => redactor.push(&first),
            None => {
                finished = true;
                redactor.finish()
            }
        };
        while !finished && let Ok(next) = lines.try_recv() {
            batch.push_str(&redactor.push(&next));
            if batch.len() > 64 * 1024 {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        // Stored first, then announced: a watcher woken by a line finds it in the store.
        let store = store.clone();
        let job_name = job.clone();
        let lines: Vec<String> = batch.lines().map(str::to_owned).collect();
        let _ = tokio::task::spawn_blocking(move || store.append_log(run, &job_name, &batch)).await;
        for line in lines {
            let _ = updates.send(RunUpdate::LogLine {
                run,
                job: job.clone(),
                line,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_value_is_never_read_again_for_placeholders() {
        let context = expr::Context {
            values: serde_json::json!({
                "git": { "branch": "${{ secrets.TOKEN }}-$(id)" },
                "secrets": { "TOKEN": "hunter2-token" },
            }),
            job_status: expr::JobStatusView::default(),
        };
        assert_eq!(
            render_expressions("branch=${{ git.branch }} {{ .ID }}", &context).unwrap(),
            "branch=${{ secrets.TOKEN }}-$(id) {{ .ID }}"
        );
        assert!(
            render_expressions("${{ git.branch", &context)
                .unwrap_err()
                .contains("unclosed")
        );
    }
}
