//! The `build` step kind: a container image from a directory of the commit, through the Docker
//! engine, addressed by content. The context digest finds candidates (the label in the engine,
//! the content tag in the registry), and sluice's own records of what it built decide: a candidate
//! is tagged and pushed instead of built again only when the records say sluice made that very
//! image from the same content for the same repository at the run's trust level or higher
//! (`provenance.rs`), so a re-run with an unchanged context builds nothing and a planted image is
//! never shipped. What a run may push depends on its trust level (`trust.rs`): untrusted runs
//! build nothing. Every image a step ends with is recorded. The pushed digest becomes the job's
//! outputs `digest` and `image` (`name@sha256:...`), which later jobs use instead of tags. This
//! file turns the step's settings into a `BuildRequest` and records the outcome; the parts live
//! beside it (context walk, digest, tar stream, engine, registry, names, reuse). It knows nothing
//! of runs or scheduling beyond the `StepContext` it is handed.

mod context;
mod digest;
mod dockerfile;
mod engine;
mod ignore;
mod provenance;
mod reference;
mod registry;
mod request;
mod reuse;
mod stream;
mod tar;
mod trust;

pub use context::{ContextError, ContextPlan, plan_context};
pub use digest::{BuildInputs, context_digest};
pub use engine::{BuildFailure, CONTEXT_DIGEST_LABEL, build_calls};
pub use ignore::IgnoreRules;
pub use provenance::Provenance;
pub use reference::{ImageName, content_tag, render_tags, sanitise_tag};
pub use registry::{Credentials, Registry};

use super::{StepContext, StepOutcome};
use crate::config::build::BuildStep;
use crate::model::TrustLevel;
use crate::sandbox::LogSink;
use crate::store::NewImageRecord;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Builds at once in this process when `SLUICE_MAX_PARALLEL_BUILDS` is not set.
pub const DEFAULT_PARALLEL_BUILDS: usize = 2;

/// Everything a build needs, resolved and rendered.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// The checkout the paths are relative to.
    pub workspace: PathBuf,
    pub context: String,
    pub dockerfile: String,
    pub image: ImageName,
    /// Rendered, valid tags; at least one.
    pub tags: Vec<String>,
    pub inputs: BuildInputs,
    pub push: bool,
    pub credentials: Option<Credentials>,
    /// For the OCI labels.
    pub revision: String,
    pub source: String,
}

/// What a build did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildReport {
    pub context_digest: String,
    /// Whether the engine was asked to build (false: an image the records vouch for was reused).
    pub built: bool,
    /// The local image id, when the image is in the engine.
    pub image_id: Option<String>,
    /// The digest in the registry, when pushed.
    pub digest: Option<String>,
    /// `name:tag` for each tag.
    pub references: Vec<String>,
    /// Bytes of the tar stream sent to the engine (0 when nothing was built).
    pub context_bytes: u64,
}

impl BuildReport {
    /// The job outputs: `digest`, `image` (`name@digest`), `image-id`, `context-digest`,
    /// `built`, `tags`.
    pub fn outputs(&self, image: &ImageName) -> BTreeMap<String, String> {
        let mut outputs = BTreeMap::new();
        if let Some(digest) = &self.digest {
            outputs.insert("digest".to_owned(), digest.clone());
            outputs.insert("image".to_owned(), image.pinned(digest));
        }
        if let Some(image_id) = &self.image_id {
            outputs.insert("image-id".to_owned(), image_id.clone());
        }
        outputs.insert("context-digest".to_owned(), self.context_digest.clone());
        outputs.insert("built".to_owned(), self.built.to_string());
        outputs.insert("tags".to_owned(), self.references.join(","));
        outputs
    }
}

/// The size of the tar stream that a build of this context would send, by producing it.
pub async fn context_bytes(
    workspace: &std::path::Path,
    context: &str,
    dockerfile: &str,
) -> Result<u64, String> {
    let plan = plan_blocking(
        workspace.to_owned(),
        context.to_owned(),
        dockerfile.to_owned(),
    )
    .await?;
    stream::measure(plan)
        .await
        .map_err(|error| format!("cannot read the build context `{context}`: {error}"))
}

/// The `build` step: render its settings, wait for a build slot, build or reuse, push, and
/// record the outputs on the job.
pub async fn execute(step: &BuildStep, step_context: &StepContext) -> StepOutcome {
    if step_context.trust < TrustLevel::Member {
        return StepOutcome::NotStarted(trust::untrusted_refusal(&step_context.event));
    }
    let request = match request::request_from_step(step, step_context) {
        Ok(request) => request,
        Err(problems) => {
            return StepOutcome::NotStarted(format!("build step: {}", problems.join("; ")));
        }
    };
    let log = &step_context.log;
    if step_context.trust < TrustLevel::Trusted {
        let _ = log.send(format!(
            "sluice: build: a {} run tags its image only as {} (`tags:` are for trusted runs: pushes to a deploy branch)\n",
            step_context.trust,
            request.image.tagged(&request.tags[0])
        ));
    }
    let slots = build_slots();
    let permit = match slots.try_acquire() {
        Ok(permit) => permit,
        Err(_) => {
            let _ = log.send(format!(
                "sluice: build: waiting for a build slot ({} builds at once; SLUICE_MAX_PARALLEL_BUILDS changes it)\n",
                parallel_builds()
            ));
            tokio::select! {
                permit = slots.acquire() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return StepOutcome::Failed("the build slots were closed".to_owned()),
                },
                _ = step_context.cancel.cancelled() => return StepOutcome::Cancelled,
            }
        }
    };
    let provenance = Provenance {
        store: step_context.store.clone(),
        repository: step_context.event.repository.clone(),
        run_id: step_context.run_id,
        trust: step_context.trust,
    };
    let outcome = build_and_push(&request, &provenance, log, &step_context.cancel).await;
    drop(permit);
    match outcome {
        Ok(report) => {
            let outputs = report.outputs(&request.image);
            for (name, value) in &outputs {
                let _ = log.send(format!("sluice: build: output {name}={value}\n"));
            }
            let store = step_context.store.clone();
            let (run, job) = (step_context.run_id, step_context.job.clone());
            let recorded =
                tokio::task::spawn_blocking(move || store.set_job_outputs(run, &job, &outputs))
                    .await;
            match recorded {
                Ok(Ok(())) => StepOutcome::Exited(0),
                Ok(Err(error)) => {
                    StepOutcome::Failed(format!("cannot record the build outputs: {error}"))
                }
                Err(error) => {
                    StepOutcome::Failed(format!("cannot record the build outputs: {error}"))
                }
            }
        }
        Err(BuildError::Cancelled) => StepOutcome::Cancelled,
        Err(BuildError::Failed(message)) => {
            let _ = log.send(format!("sluice: build: {message}\n"));
            StepOutcome::Failed(message)
        }
    }
}

/// How a build ended without an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    Cancelled,
    Failed(String),
}

impl From<String> for BuildError {
    fn from(message: String) -> BuildError {
        BuildError::Failed(message)
    }
}

/// Plans the context, computes its digest, then reuses what the records vouch for or builds the
/// image, tags and pushes it, and records the image it ends with.
pub async fn build_and_push(
    request: &BuildRequest,
    provenance: &Provenance,
    log: &LogSink,
    cancel: &CancellationToken,
) -> Result<BuildReport, BuildError> {
    let report = reuse_or_build(request, provenance, log, cancel).await?;
    provenance
        .record(NewImageRecord {
            repository: provenance.repository.clone(),
            context_digest: report.context_digest.clone(),
            image: request.image.full.clone(),
            image_id: report.image_id.clone(),
            pushed_digest: report.digest.clone(),
            trust: provenance.trust,
            built: report.built,
            run_id: provenance.run_id,
        })
        .await?;
    Ok(report)
}

async fn reuse_or_build(
    request: &BuildRequest,
    provenance: &Provenance,
    log: &LogSink,
    cancel: &CancellationToken,
) -> Result<BuildReport, BuildError> {
    let plan = plan_blocking(
        request.workspace.clone(),
        request.context.clone(),
        request.dockerfile.clone(),
    )
    .await?;
    let digest_plan = plan.clone();
    let inputs = request.inputs.clone();
    let context_digest = tokio::task::spawn_blocking(move || context_digest(&digest_plan, &inputs))
        .await
        .map_err(|error| format!("computing the context digest failed: {error}"))?
        .map_err(|error| {
            format!(
                "cannot read the build context `{}`: {error}",
                request.context
            )
        })?;
    let _ = log.send(format!(
        "sluice: build: context `{}`: {} files, {} bytes after .dockerignore; Dockerfile {}; context digest {context_digest}\n",
        request.context,
        plan.file_count(),
        plan.content_bytes(),
        request.dockerfile
    ));
    let docker = crate::sandbox::connect().await?;
    let content_tag = content_tag(&context_digest);
    let registry = request
        .push
        .then(|| Registry::new(&request.image, request.credentials.clone()));
    let mut report = BuildReport {
        context_digest: context_digest.clone(),
        built: false,
        image_id: None,
        digest: None,
        references: request
            .tags
            .iter()
            .map(|tag| request.image.tagged(tag))
            .collect(),
        context_bytes: 0,
    };
    let records = provenance.records(&context_digest).await?;
    let search = reuse::Search {
        request,
        registry: registry.as_ref(),
        docker: &docker,
        context_digest: &context_digest,
        records: &records,
        judge: provenance.judge(),
        log,
    };
    match reuse::find(&search).await? {
        reuse::Reuse::Engine(image_id) => report.image_id = Some(image_id),
        reuse::Reuse::Registry(digest) => {
            report.digest = Some(digest);
            return Ok(report);
        }
        reuse::Reuse::Build(passed_over) => {
            for reason in passed_over {
                let _ = log.send(format!("sluice: build: {reason}\n"));
            }
        }
    }
    let image_id = match report.image_id.clone() {
        Some(image_id) => image_id,
        None => {
            let built = build_image(request, plan, &context_digest, &docker, log, cancel).await?;
            report.built = true;
            report.context_bytes = built.1;
            report.image_id = Some(built.0.clone());
            built.0
        }
    };
    let mut all_tags = request.tags.clone();
    if request.push && trust::pushes_content_tag(provenance.trust) {
        all_tags.push(content_tag.clone());
    }
    for tag in &all_tags {
        engine::tag(&docker, &image_id, &request.image, tag).await?;
    }
    let Some(registry) = registry else {
        let _ = log.send(format!(
            "sluice: build: tagged {} (not pushed: `push: false`)\n",
            report.references.join(", ")
        ));
        return Ok(report);
    };
    let mut pushed_digest = None;
    for tag in &all_tags {
        let _ = log.send(format!(
            "sluice: build: pushing {}\n",
            request.image.tagged(tag)
        ));
        let digest = engine::push(
            &docker,
            &request.image,
            tag,
            request.credentials.as_ref(),
            log,
            cancel,
        )
        .await?;
        pushed_digest = pushed_digest.or(digest);
    }
    // The registry's own answer is what downstream jobs will pull by. The digest the engine
    // reported for this push comes first: another run may move a tag between the push and the
    // read, and the outputs and the record must name this image.
    let first_tag = &request.tags[0];
    report.digest = match pushed_digest {
        Some(digest) => registry.manifest_digest(&digest).await?,
        None => registry.manifest_digest(first_tag).await?,
    };
    if report.digest.is_none() {
        return Err(BuildError::Failed(format!(
            "registry {} does not show {} after the push; check the registry's storage and logs",
            request.image.registry,
            request.image.tagged(first_tag)
        )));
    }
    Ok(report)
}

/// Sends the context and builds; returns the image id and the bytes sent.
async fn build_image(
    request: &BuildRequest,
    plan: ContextPlan,
    context_digest: &str,
    docker: &bollard::Docker,
    log: &LogSink,
    cancel: &CancellationToken,
) -> Result<(String, u64), BuildError> {
    let mut labels: HashMap<String, String> = request.inputs.labels.clone().into_iter().collect();
    labels.insert(CONTEXT_DIGEST_LABEL.to_owned(), context_digest.to_owned());
    labels.insert(
        "org.opencontainers.image.revision".to_owned(),
        request.revision.clone(),
    );
    labels.insert(
        "org.opencontainers.image.source".to_owned(),
        request.source.clone(),
    );
    labels.insert(
        "org.opencontainers.image.created".to_owned(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let dockerfile_in_archive = plan.dockerfile_name().to_owned();
    let dockerfile_text = plan.dockerfile_text.clone();
    let call = engine::BuildCall {
        dockerfile_in_archive: &dockerfile_in_archive,
        dockerfile_shown: &request.dockerfile,
        dockerfile_text: &dockerfile_text,
        tag: request.image.tagged(&request.tags[0]),
        args: request.inputs.args.clone().into_iter().collect(),
        target: request.inputs.target.clone(),
        labels,
        registry_credentials: request
            .credentials
            .clone()
            .map(|credentials| (request.image.registry.clone(), credentials)),
    };
    let _ = log.send(format!(
        "sluice: build: building {} from `{}`\n",
        call.tag, request.context
    ));
    let context_stream = stream::tar_stream(plan);
    let bytes_sent = context_stream.bytes_sent.clone();
    let outcome = engine::build(docker, call, context_stream, log, cancel).await;
    let sent = bytes_sent.load(std::sync::atomic::Ordering::Relaxed);
    let _ = log.send(format!(
        "sluice: build: sent {sent} bytes of build context\n"
    ));
    match outcome {
        Ok(image_id) => Ok((image_id, sent)),
        Err(BuildFailure::Cancelled) => Err(BuildError::Cancelled),
        Err(failure) => Err(BuildError::Failed(failure.to_string())),
    }
}

async fn plan_blocking(
    workspace: PathBuf,
    context: String,
    dockerfile: String,
) -> Result<ContextPlan, String> {
    tokio::task::spawn_blocking(move || plan_context(&workspace, &context, &dockerfile))
        .await
        .map_err(|error| format!("reading the build context failed: {error}"))?
        .map_err(|error| error.to_string())
}

/// `SLUICE_MAX_PARALLEL_BUILDS`, or the default; at least one.
pub fn parallel_builds() -> usize {
    std::env::var("SLUICE_MAX_PARALLEL_BUILDS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|limit| *limit > 0)
        .unwrap_or(DEFAULT_PARALLEL_BUILDS)
}

fn build_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(parallel_builds()))
}
