//! `sluice run --repo PATH_OR_URL --commit REV`: plans and runs one commit's pipelines in this
//! process, through the same planner, store and dispatcher as the server, with live progress.

use super::Engine;
use super::serve::absolute_if_local;
use crate::model::{Event, EventKind, RunId, Status};
use crate::scheduler::{self, RunUpdate};
use crate::store::RunFilter;
use clap::Args;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The repository: a local path, file://, https or ssh URL.
    #[arg(long)]
    pub repo: String,
    /// The commit to run (a sha, a branch, a tag, `HEAD~1`...).
    #[arg(long, default_value = "HEAD")]
    pub commit: String,
    /// The event to simulate; by default a push, which becomes a merge on a deploy branch, as on the server.
    #[arg(long, value_parser = ["push", "pull_request", "merge"])]
    pub event: Option<String>,
    /// The branch the commit is on (default: a branch whose tip it is, else `main`).
    #[arg(long)]
    pub branch: Option<String>,
    /// For pull requests: the base branch.
    #[arg(long, default_value = "main")]
    pub base: String,
    /// Print the runs as JSON (the shape of GET /api/runs) instead of progress.
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 4)]
    pub max_parallel_jobs: usize,
}

pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let url = absolute_if_local(&args.repo);
    let repository = repository_name(&url);
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(super::default_data_dir);
    let mut engine = Engine::open(
        &data_dir,
        BTreeMap::from([(repository.clone(), url.clone())]),
        args.max_parallel_jobs,
    )?;
    // A local run is the operator running a commit on their own machine: steps without `image:`
    // run as host processes, as a developer would run them by hand.
    engine.settings.host_steps = crate::scheduler::HostSteps::Everywhere;
    // SAFETY: getuid and getgid cannot fail.
    engine.settings.isolation.user = Some(unsafe { (libc::getuid(), libc::getgid()) });
    let mirrors = engine.mirrors.clone();
    let request = args_to_request(&args, &repository);
    let (event, files) = tokio::task::spawn_blocking(
        move || -> anyhow::Result<(Event, Vec<crate::config::SourceFile>)> {
            let mirror = mirrors.get(&repository)?;
            mirror.fetch()?;
            let commit = mirror.resolve(&request.commit)?;
            let mut event = build_event(&mirror, &request, &commit)?;
            let files = scheduler::event::read_configuration(&mirror, &commit)?;
            if request.event.is_none() {
                let authority = scheduler::authority::read_authority(&mirror)?;
                scheduler::event::classify(&mut event, authority.as_ref());
            }
            Ok((event, files))
        },
    )
    .await??;
    let runs = scheduler::plan_runs(&files, &event);
    if runs.is_empty() {
        if !args.json {
            println!(
                "no pipeline is triggered by a {} of {} at {}",
                event.kind,
                event.git_ref,
                crate::model::short_commit(&event.commit)
            );
        } else {
            println!("[]");
        }
        return Ok(true);
    }
    let mut updates = engine.updates.subscribe();
    let store = engine.store.clone();
    let run_ids = tokio::task::spawn_blocking(move || store.insert_runs(&runs)).await??;
    if !args.json {
        println!(
            "{} of {} at {}: {} run(s)",
            event.kind,
            event.git_ref,
            crate::model::short_commit(&event.commit),
            run_ids.len()
        );
    }
    let mut unfinished: BTreeSet<RunId> = BTreeSet::new();
    for run_id in &run_ids {
        let store = engine.store.clone();
        let run_id = *run_id;
        if let Some(run) = tokio::task::spawn_blocking(move || store.get_run(run_id)).await?? {
            if !args.json {
                println!(
                    "run {} {}: {}",
                    run.id,
                    run.pipeline,
                    run.reason.clone().unwrap_or_else(|| run.status.to_string())
                );
            }
            if !run.status.is_terminal() {
                unfinished.insert(run.id);
            }
        }
    }
    engine.start_dispatcher(std::sync::Arc::new(crate::steps::LocalRunner::default()));
    engine.dispatcher_wakeup.notify_one();
    while !unfinished.is_empty() {
        match updates.recv().await {
            Ok(update) => {
                if !args.json {
                    print_update(&update, &run_ids);
                }
                if let RunUpdate::RunStatus { run, status, .. } = update {
                    if status.is_terminal() {
                        unfinished.remove(&run);
                    }
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => break,
        }
    }
    let store = engine.store.clone();
    let commit = event.commit.clone();
    let mut runs = tokio::task::spawn_blocking(move || {
        store.list_runs(&RunFilter {
            commit: Some(commit),
            ..Default::default()
        })
    })
    .await??;
    runs.retain(|run| run_ids.contains(&run.id));
    let all_good = runs
        .iter()
        .all(|run| matches!(run.status, Status::Succeeded | Status::Skipped));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        for run in &runs {
            println!("run {} {}: {}", run.id, run.pipeline, run.status);
            for job in &run.jobs {
                let reason = job
                    .reason
                    .as_deref()
                    .map(|reason| format!(" ({})", first_line(reason)))
                    .unwrap_or_default();
                println!("  {:<24} {}{reason}", job.name, job.status);
            }
        }
    }
    Ok(all_good)
}

fn print_update(update: &RunUpdate, runs: &[RunId]) {
    match update {
        RunUpdate::JobStatus {
            run,
            job,
            status,
            reason,
        } if runs.contains(run) => {
            let reason = reason
                .as_deref()
                .map(|reason| format!(" ({})", first_line(reason)))
                .unwrap_or_default();
            println!("[run {run}] {job}: {status}{reason}");
        }
        RunUpdate::LogLine { run, job, line } if runs.contains(run) => {
            println!("[run {run}] {job} | {line}")
        }
        _ => {}
    }
}

struct Request {
    commit: String,
    event: Option<EventKind>,
    branch: Option<String>,
    base: String,
    repository: String,
}

fn args_to_request(args: &RunArgs, repository: &str) -> Request {
    Request {
        commit: args.commit.clone(),
        event: args.event.as_deref().and_then(EventKind::parse),
        branch: args.branch.clone(),
        base: args.base.clone(),
        repository: repository.to_owned(),
    }
}

fn build_event(
    mirror: &crate::git::Mirror,
    request: &Request,
    commit: &str,
) -> anyhow::Result<Event> {
    let branch = match &request.branch {
        Some(branch) => branch.clone(),
        None => mirror
            .branch_tips()?
            .into_iter()
            .find(|(_, tip)| tip == commit)
            .map(|(branch, _)| branch)
            .unwrap_or_else(|| "main".to_owned()),
    };
    let kind = request.event.unwrap_or(EventKind::Push);
    let (before, base_branch, action, pull_request) = if kind == EventKind::PullRequest {
        let base_tip = mirror.resolve(&format!("refs/heads/{}", request.base)).ok();
        let merge_base = match base_tip {
            Some(tip) => mirror.merge_base(&tip, commit)?,
            None => None,
        };
        (
            merge_base,
            Some(request.base.clone()),
            Some("synchronize".to_owned()),
            Some(0),
        )
    } else {
        (mirror.resolve(&format!("{commit}^")).ok(), None, None, None)
    };
    let changed_paths = mirror.changed_paths(before.as_deref(), commit)?;
    Ok(Event {
        kind,
        repository: request.repository.clone(),
        git_ref: format!("refs/heads/{branch}"),
        commit: commit.to_owned(),
        before,
        base_branch,
        action,
        pull_request,
        actor: std::env::var("USER").ok(),
        changed_paths: Some(changed_paths),
    })
}

/// `owner/name` from a URL's last two path segments; `local/<dir>` for a local path. Each part is
/// reduced to the characters a mirror name allows.
pub fn repository_name(url: &str) -> String {
    let trimmed = url.trim_end_matches('/').trim_end_matches(".git");
    let segments: Vec<&str> = trimmed
        .split(['/', ':'])
        .filter(|segment| !segment.is_empty())
        .collect();
    let is_remote = url.contains("://") && !url.starts_with("file://");
    let (owner, name) = match segments.as_slice() {
        [.., owner, name] if is_remote || url.contains('@') => (*owner, *name),
        [.., name] => ("local", *name),
        [] => ("local", "repository"),
    };
    format!("{}/{}", plain_segment(owner), plain_segment(name))
}

fn plain_segment(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.') {
                character
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.is_empty() {
        "repository".to_owned()
    } else {
        cleaned.to_owned()
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
