//! Plan and apply as whole operations: run Terraform in a checkout, summarise the plan, check it
//! against the policies, seal and store it under its lock; on a merge, find the reviewed plan,
//! verify its hash, apply exactly it and record the outputs. Shared by the `terraform` step, the
//! Terraform target and `sluice plan`. Knows nothing of runs, jobs or HTTP.

use super::locks;
use super::review::{self, Decision, MergedCommit, Refusal};
use super::runner::{TerraformError, TerraformPaths, TerraformRun};
use super::seal::{PlanKey, SealError, sha256_hex};
use super::settings::{ApplyMode, LockMode, TerraformSettings};
use super::summary::{self, PlanSummary};
use crate::policy::{self, Evaluation, PolicyContext, PolicySet};
use crate::sandbox::LogSink;
use crate::store::{NewTerraformPlan, PlanInsert, Store, TerraformPlanRecord, TerraformTarget};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Everything an operation runs with.
#[derive(Clone)]
pub struct TerraformJob {
    pub settings: TerraformSettings,
    pub repository: String,
    /// A checkout of the commit being planned or applied.
    pub checkout: PathBuf,
    pub data_dir: PathBuf,
    /// Extra environment variables for `terraform` (the job's).
    pub env: BTreeMap<String, String>,
    pub log: Option<LogSink>,
    pub cancel: CancellationToken,
    /// Run Terraform in this container (pipeline steps); `None` runs the host's.
    pub container: Option<super::container::TerraformContainer>,
}

impl TerraformJob {
    pub fn target(&self) -> TerraformTarget {
        TerraformTarget {
            repository: self.repository.clone(),
            environment: self.settings.environment.clone(),
            dir: self.settings.dir.clone(),
        }
    }

    fn say(&self, line: impl Into<String>) {
        if let Some(log) = &self.log {
            super::runner::send_line(log, line);
        }
    }

    pub(super) fn start(&self) -> Result<TerraformRun, TerraformError> {
        TerraformRun::new(
            &self.checkout,
            &self.settings,
            TerraformPaths::under(
                &self.data_dir,
                &self.repository,
                &self.settings.environment,
                &self.settings.dir,
            ),
            self.env.clone(),
            self.log.clone(),
            self.cancel.clone(),
        )
        .and_then(|run| match &self.container {
            Some(container) => run.in_container(container.clone()),
            None => Ok(run),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    #[error(transparent)]
    Terraform(#[from] TerraformError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Summary(#[from] summary::SummaryError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A plan made and checked.
#[derive(Clone, Debug)]
pub struct PlannedChange {
    pub sha256: String,
    pub plan_json: serde_json::Value,
    pub summary: PlanSummary,
    pub summary_text: String,
    pub evaluation: Evaluation,
}

impl PlannedChange {
    /// Job outputs: `plan_sha256`, `summary`, `counts`, `denials`, `warnings`, `findings` (JSON).
    pub fn outputs(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("plan_sha256".to_owned(), self.sha256.clone()),
            ("summary".to_owned(), self.summary_text.clone()),
            ("counts".to_owned(), self.summary.counts.symbols()),
            (
                "denials".to_owned(),
                self.evaluation.denials().count().to_string(),
            ),
            (
                "warnings".to_owned(),
                self.evaluation.warnings().count().to_string(),
            ),
            // Every finding with its rule, for the pull-request comment.
            (
                "findings".to_owned(),
                serde_json::to_string(&self.evaluation.findings).unwrap_or_default(),
            ),
        ])
    }

    /// The policy result as lines for the log.
    pub fn policy_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .evaluation
            .findings
            .iter()
            .map(|finding| {
                let label = match finding.severity {
                    policy::Severity::Deny => "DENY",
                    policy::Severity::Warn => "WARN",
                };
                format!("{label:<5} {}: {}", finding.rule, finding.message)
            })
            .collect();
        lines.extend(
            self.evaluation
                .errors
                .iter()
                .map(|error| format!("ERROR {error}")),
        );
        lines.push(format!(
            "policies: {} denied, {} warning(s), {} error(s), {} rule(s) evaluated: {}",
            self.evaluation.denials().count(),
            self.evaluation.warnings().count(),
            self.evaluation.errors.len(),
            self.evaluation.rules_evaluated,
            if self.evaluation.passed() {
                "passed"
            } else {
                "FAILED"
            }
        ));
        lines
    }
}

/// Evaluates the policies in `policies_dir` (none: nothing to check) against a plan, as the
/// policy input `{"terraform": plan}`: only the Terraform domain, so the policies of other
/// domains have nothing to say.
pub fn check_policies(
    policies_dir: &Path,
    plan_json: &serde_json::Value,
    context: &PolicyContext,
) -> Evaluation {
    if !policies_dir.is_dir() {
        return Evaluation::default();
    }
    match policy::load_sources(policies_dir).and_then(|sources| PolicySet::compile(&sources)) {
        Ok(policy_set) => policy_set.evaluate(&policy::terraform_input(plan_json), context),
        Err(errors) => Evaluation {
            errors: errors.0,
            ..Evaluation::default()
        },
    }
}

/// init, validate, plan, show, summary and policies; returns the plan file's bytes too. The plan
/// file exists only in the run's temporary directory, removed when this returns.
pub async fn plan_only(
    job: &TerraformJob,
    policies_dir: &Path,
    context: &PolicyContext,
) -> Result<(Vec<u8>, PlannedChange), OperationError> {
    let run = job.start()?;
    run.init().await?;
    run.validate().await?;
    let plan_bytes = run.plan().await?;
    let plan_json = run.show_json().await?;
    drop(run);
    let plan_summary = summary::summarize(&plan_json)?;
    let summary_text = summary::render_text(&plan_summary);
    let evaluation = check_policies(policies_dir, &plan_json, context);
    let planned = PlannedChange {
        sha256: sha256_hex(&plan_bytes),
        plan_json,
        summary: plan_summary,
        summary_text,
        evaluation,
    };
    job.say(format!(
        "plan {} for {}:",
        planned.sha256, job.settings.environment
    ));
    for line in planned.summary_text.lines() {
        job.say(line.to_owned());
    }
    for line in planned.policy_lines() {
        job.say(line);
    }
    Ok((plan_bytes, planned))
}

/// Where a stored plan comes from.
#[derive(Clone, Debug, Default)]
pub struct PlanOrigin {
    pub commit: String,
    pub tree: Option<String>,
    pub base_commit: Option<String>,
    pub pull_request: Option<u64>,
    /// Who holds the lock when there is no pull request (`merge of abc123`).
    pub holder_label: String,
}

/// How a stored plan ended.
#[derive(Clone, Debug)]
pub enum PlanOutcome {
    /// Stored (when the policies passed) with this id; `None` when a deny kept it out.
    Planned {
        change: PlannedChange,
        stored_id: Option<i64>,
    },
    /// Someone else holds the lock: the message says who and what to do.
    Locked(String),
    /// The lock was released while planning (the pull request closed): nothing was stored.
    LockLost(String),
}

/// Takes the lock, plans, checks, and stores the sealed plan when the policies pass.
pub async fn plan_and_store(
    job: &TerraformJob,
    store: &dyn Store,
    key: &PlanKey,
    origin: &PlanOrigin,
    policies_dir: &Path,
    context: &PolicyContext,
) -> Result<PlanOutcome, OperationError> {
    let target = job.target();
    let lock_outcome = locks::acquire(
        store,
        &target,
        locks::holder(origin.pull_request, &origin.holder_label),
        job.settings.lock == LockMode::Queue,
        chrono::Utc::now(),
    )?;
    let generation = match lock_outcome {
        crate::store::LockOutcome::Acquired { generation } => generation,
        contended => {
            let message = locks::contention_message(&contended).unwrap_or_default();
            job.say(message.clone());
            return Ok(PlanOutcome::Locked(message));
        }
    };
    let (plan_bytes, change) = plan_only(job, policies_dir, context).await?;
    if !change.evaluation.passed() {
        return Ok(PlanOutcome::Planned {
            change,
            stored_id: None,
        });
    }
    let plan_json_bytes = serde_json::to_vec(&change.plan_json).unwrap_or_default();
    let json_sha256 = sha256_hex(&plan_json_bytes);
    let new_plan = NewTerraformPlan {
        target,
        workspace: job.settings.workspace.clone(),
        sha256: change.sha256.clone(),
        commit: origin.commit.clone(),
        tree: origin.tree.clone(),
        base_commit: origin.base_commit.clone(),
        pull_request: origin.pull_request,
        created_at: chrono::Utc::now(),
        summary: change.summary_text.clone(),
        counts: change.summary.counts.symbols(),
        sealed_plan: key.seal(&plan_bytes, &change.sha256),
        json_sha256: json_sha256.clone(),
        sealed_json: key.seal(&plan_json_bytes, &json_sha256),
        lock_generation: Some(generation),
    };
    match store.insert_terraform_plan(&new_plan)? {
        PlanInsert::Stored { id } => {
            job.say(format!("stored plan {} (encrypted)", change.sha256));
            Ok(PlanOutcome::Planned {
                change,
                stored_id: Some(id),
            })
        }
        PlanInsert::LockLost => {
            let message = format!(
                "the lock on {} ({}) was released while planning (the pull request closed or someone unlocked it); the plan was discarded",
                job.settings.environment, job.settings.dir
            );
            job.say(message.clone());
            Ok(PlanOutcome::LockLost(message))
        }
    }
}

/// How an apply after a merge ended.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyOutcome {
    Applied {
        sha256: String,
        summary: String,
        outputs: serde_json::Value,
    },
    /// The plan for this merge was applied before; nothing was done.
    AlreadyApplied {
        sha256: String,
    },
    Refused(String),
}

/// The stored plan's content, decrypted and checked against its sha256.
pub fn open_plan(key: &PlanKey, plan: &TerraformPlanRecord) -> Result<Vec<u8>, SealError> {
    key.open(&plan.sealed_plan, &plan.sha256)
}

/// The stored plan's JSON, decrypted and checked.
pub fn open_plan_json(
    key: &PlanKey,
    plan: &TerraformPlanRecord,
) -> Result<serde_json::Value, SealError> {
    let bytes = key.open(&plan.sealed_json, &plan.json_sha256)?;
    Ok(serde_json::from_slice(&bytes).unwrap_or_default())
}

/// Applies exactly the stored plan `plan`: decrypt, check the hash, apply, record the outputs,
/// release the lock of the plan's pull request.
pub async fn apply_stored(
    job: &TerraformJob,
    store: &dyn Store,
    key: &PlanKey,
    plan: &TerraformPlanRecord,
) -> Result<ApplyOutcome, OperationError> {
    let plan_bytes = match open_plan(key, plan) {
        Ok(bytes) => bytes,
        Err(error) => return Ok(ApplyOutcome::Refused(error.to_string())),
    };
    job.say(format!(
        "applying reviewed plan {} made at {} for commit {}",
        plan.sha256,
        plan.created_at.to_rfc3339(),
        plan.commit
    ));
    let run = job.start()?;
    run.init().await?;
    let applied = run.apply(&plan_bytes).await;
    drop(plan_bytes);
    if let Err(error) = applied {
        store.record_terraform_apply(plan.id, "failed", "{}")?;
        return Err(error.into());
    }
    let outputs = run.outputs().await.unwrap_or_default();
    store.record_terraform_apply(plan.id, "applied", &outputs.to_string())?;
    store.release_terraform_lock(&plan.target, plan.pull_request)?;
    Ok(ApplyOutcome::Applied {
        sha256: plan.sha256.clone(),
        summary: plan.counts.clone(),
        outputs,
    })
}

/// On a merge: find the reviewed plan for the merged commit and apply exactly it, or refuse with
/// the reason. With `apply: auto` a refusal leads to a fresh plan of the merged commit, checked
/// against the policies, which is applied when they pass.
pub async fn apply_after_merge(
    job: &TerraformJob,
    store: &dyn Store,
    key: &PlanKey,
    merged: &MergedCommit,
    policies_dir: &Path,
    context: &PolicyContext,
) -> Result<ApplyOutcome, OperationError> {
    let plans = store.terraform_plans(&job.target(), &job.settings.workspace)?;
    let refusal: Refusal = match review::decide(&plans, merged, &job.settings.environment) {
        Decision::Apply(plan) => {
            if let Some(lock) = store.terraform_lock(&job.target())?
                && lock.holder.pull_request.is_some()
                && lock.holder.pull_request != plan.pull_request
            {
                let message =
                    locks::contention_message(&crate::store::LockOutcome::Held { by: lock })
                        .unwrap_or_default();
                return Ok(ApplyOutcome::Refused(message));
            }
            return apply_stored(job, store, key, plan).await;
        }
        Decision::AlreadyApplied(plan) => {
            job.say(format!(
                "plan {} was applied already; nothing to do",
                plan.sha256
            ));
            return Ok(ApplyOutcome::AlreadyApplied {
                sha256: plan.sha256.clone(),
            });
        }
        Decision::Refuse(refusal) => refusal,
    };
    if job.settings.apply != ApplyMode::Auto {
        job.say(refusal.to_string());
        return Ok(ApplyOutcome::Refused(refusal.to_string()));
    }
    job.say(format!(
        "{refusal}\n`apply: auto`: planning the merged commit {} again",
        merged.commit
    ));
    // The merged pull request is closed now: the lock it held for its plan is no longer its.
    let merged_heads: Vec<&String> = merged
        .parents
        .iter()
        .skip(1)
        .chain([&merged.commit])
        .collect();
    if let Some(lock) = store.terraform_lock(&job.target())?
        && let Some(holder) = lock.holder.pull_request
        && plans
            .iter()
            .any(|plan| plan.pull_request == Some(holder) && merged_heads.contains(&&plan.commit))
    {
        job.say(format!(
            "releasing the lock of pull request #{holder}, which this merge closed"
        ));
        store.release_terraform_lock(&job.target(), Some(holder))?;
    }
    let origin = PlanOrigin {
        commit: merged.commit.clone(),
        tree: merged.tree.clone(),
        base_commit: merged.parents.first().cloned(),
        pull_request: None,
        holder_label: format!(
            "the merge of {}",
            crate::model::short_commit(&merged.commit)
        ),
    };
    match plan_and_store(job, store, key, &origin, policies_dir, context).await? {
        PlanOutcome::Planned {
            stored_id: Some(_),
            change,
        } => {
            let Some(plan) = store.terraform_plan_by_sha256(&change.sha256)? else {
                return Ok(ApplyOutcome::Refused("the fresh plan was not stored".into()));
            };
            let outcome = apply_stored(job, store, key, &plan).await;
            store.release_terraform_lock(&job.target(), None).ok();
            outcome
        }
        PlanOutcome::Planned { .. } => Ok(ApplyOutcome::Refused(
            "the fresh plan of the merged commit was denied by the policies; see the findings above"
                .into(),
        )),
        PlanOutcome::Locked(message) | PlanOutcome::LockLost(message) => {
            Ok(ApplyOutcome::Refused(message))
        }
    }
}

/// The merged commit's parents and tree from a git repository (the mirror, or a checkout).
pub fn merged_commit_facts(repository_path: &Path, commit: &str) -> Option<MergedCommit> {
    let repository = git2::Repository::open(repository_path).ok()?;
    let object = repository.revparse_single(commit).ok()?;
    let git_commit = object.peel_to_commit().ok()?;
    Some(MergedCommit {
        commit: git_commit.id().to_string(),
        parents: git_commit.parent_ids().map(|id| id.to_string()).collect(),
        tree: Some(git_commit.tree_id().to_string()),
    })
}
