//! `sluice demo`: the whole flow on the bundled example platform, on embedded defaults. It writes
//! the example into a throwaway git repository, starts a server on loopback, opens pull requests
//! and merges them by sending GitHub's payloads signed with a demo secret, shows the runs and the
//! pull-request comment as they happen, and promotes each merge through the environments.

use super::Engine;
use crate::model::Status;
use crate::scheduler::RunUpdate;
use crate::server::{AppState, Metrics, router};
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// GitHub's own push payload; the demo points it at the throwaway repository.
const PUSH_PAYLOAD: &str =
    include_str!("../../tests/fixtures/github-webhooks/push/with-new-branch.payload.json");
const DEMO_REPOSITORY: &str = "example/ml-platform";
const DEMO_SECRET: &str = "demo-webhook-secret";
/// The image the example platform's steps run in: python3 and terraform.
const DEMO_STEP_IMAGE: &str = "local/sluice-step:1";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep everything in this directory instead of a temporary one (and keep it afterwards).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// At the end, keep the server and its data running and print the web UI's address, until
    /// interrupted (Ctrl-C or SIGTERM).
    #[arg(long)]
    pub serve: bool,
    /// Where the demo's server listens; default 127.0.0.1:8080 with --serve (another free port
    /// if that one is taken), a free loopback port otherwise.
    #[arg(long)]
    pub listen: Option<String>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<bool> {
    let temporary = tempfile::tempdir()?;
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_owned());
    std::fs::create_dir_all(&work_dir)?;
    let repository_dir = work_dir.join("ml-platform");
    println!(
        "==> writing the example platform ({} files) into a git repository at {}",
        embedded::FILES.len(),
        repository_dir.display()
    );
    let first_commit = seed_repository(&repository_dir)?;

    let mut engine = Engine::open(
        &work_dir.join("data"),
        BTreeMap::from([(
            DEMO_REPOSITORY.to_owned(),
            repository_dir.display().to_string(),
        )]),
        4,
    )?;
    // As a server's defaults: every step in a container, as an unprivileged user.
    engine.settings.isolation.default_image =
        Some(std::env::var("SLUICE_STEP_IMAGE").unwrap_or_else(|_| DEMO_STEP_IMAGE.to_owned()));
    let (kubernetes_api, _fake_kubernetes) =
        crate::targets::kubernetes::fake::spawn_fake_api_server().await;
    println!(
        "==> no Kubernetes cluster runs on this machine: an in-process fake Kubernetes API server at {kubernetes_api} stands in for it (server-side apply, labels, rollout status, in memory)"
    );
    // One set of targets for the pull request's previews and for promotion.
    let deploy_targets = Arc::new(super::demo_promotion::DemoTargets {
        real: crate::targets::EnvironmentTargets {
            data_dir: work_dir.join("data"),
            recording: None,
            store: Some(engine.database.clone()),
            kubernetes_api: Some(kubernetes_api.clone()),
        },
        recording: work_dir.join("recorded-target-calls"),
        explained: Default::default(),
        airflow: super::demo_airflow::DemoAirflow::from_env(),
        real_airflow: Default::default(),
    });
    engine.settings.deploy_targets = Some(crate::scheduler::DeployTargets(deploy_targets.clone()));
    engine.start()?;
    println!(
        "==> every step runs in a container from {} (scripts/setup-step-image.sh builds it)",
        engine
            .settings
            .isolation
            .default_image
            .as_deref()
            .unwrap_or_default()
    );
    let state = AppState {
        store: engine.store.clone(),
        deploy_store: engine.deploy_store.clone(),
        promotion_wakeup: engine.promotion_wakeup.clone(),
        api_token: None,
        webhook_secret: Arc::new(DEMO_SECRET.as_bytes().to_vec()),
        repositories: Arc::new(BTreeMap::from([(
            DEMO_REPOSITORY.to_owned(),
            repository_dir.display().to_string(),
        )])),
        metrics: Arc::new(Metrics::default()),
        intake_wakeup: engine.intake_wakeup.clone(),
        body_limits: Default::default(),
        run_updates: engine.updates.clone(),
        dispatcher_wakeup: engine.dispatcher_wakeup.clone(),
        drift_asks: None,
        ui: Default::default(),
    };
    let listener = demo_listener(&args).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    println!("==> sluice is listening on {base_url} and watches {DEMO_REPOSITORY}");

    let promotion = super::demo_promotion::DemoPromotion {
        store: engine.store.clone(),
        deploy_store: engine.deploy_store.clone(),
        mirrors: engine.mirrors.clone(),
        repository: DEMO_REPOSITORY.to_owned(),
        targets: deploy_targets.clone(),
        work_dir: work_dir.clone(),
        clock: super::demo_promotion::DemoPromotion::wednesday_clock(),
    };
    println!(
        "==> promotion runs on a simulated clock from {} (a Wednesday morning in Amsterdam), outside production's weekend freeze; each jump is shown, and the merges are dated by it",
        crate::policy::Clock::now(promotion.clock.as_ref()).format("%Y-%m-%d %H:%M UTC")
    );
    let client = reqwest::Client::new();
    let mut updates = engine.updates.subscribe();
    let mut all_good = true;

    println!(
        "==> a data scientist opens pull request #1: the churn model's feature code changes on branch cap-tenure"
    );
    let (base, head) = super::demo_pull_request::open_branch(
        &repository_dir,
        "cap-tenure",
        "platform/src/churn/features.py",
        FEATURE_NOTE,
        "Cap tenure feature at ten years",
    )?;
    let runs = pull_request_and_watch(
        &client,
        &base_url,
        1,
        "cap-tenure",
        &base,
        &head,
        &mut updates,
    )
    .await?;
    all_good &= show_runs(&runs);
    super::demo_pull_request::show_comment(engine.store.as_ref(), &runs);
    println!("==> the pull request is reviewed and merged into main");
    let second_commit = super::demo_pull_request::merge_branch(
        &repository_dir,
        "cap-tenure",
        1,
        crate::policy::Clock::now(promotion.clock.as_ref()),
    )?;
    close_pull_request(&client, &base_url, 1, "cap-tenure", &base, &head).await?;
    let runs = push_and_watch(
        &client,
        &base_url,
        &first_commit,
        &second_commit,
        &mut updates,
    )
    .await?;
    all_good &= show_runs(&runs);
    all_good &= promotion.promote_newest(true).await?;

    println!(
        "==> a platform engineer opens pull request #2 describing staging's soak; merged, the images' contexts did not change, so nothing is rebuilt"
    );
    let (base, head) = super::demo_pull_request::open_branch(
        &repository_dir,
        "describe-soak",
        "environments/staging.yaml",
        STAGING_NOTE,
        "Describe the staging soak",
    )?;
    let runs = pull_request_and_watch(
        &client,
        &base_url,
        2,
        "describe-soak",
        &base,
        &head,
        &mut updates,
    )
    .await?;
    all_good &= show_runs(&runs);
    let third_commit = super::demo_pull_request::merge_branch(
        &repository_dir,
        "describe-soak",
        2,
        crate::policy::Clock::now(promotion.clock.as_ref()),
    )?;
    close_pull_request(&client, &base_url, 2, "describe-soak", &base, &head).await?;
    let runs = push_and_watch(
        &client,
        &base_url,
        &second_commit,
        &third_commit,
        &mut updates,
    )
    .await?;
    all_good &= show_runs(&runs);
    for run in &runs {
        for job in run
            .jobs
            .iter()
            .filter(|job| job.outputs.contains_key("context-digest"))
        {
            let built = job.outputs.get("built").map(String::as_str) == Some("true");
            println!(
                "    {}: {} {}",
                job.name,
                if built {
                    "built"
                } else {
                    "not rebuilt, same content digest; pushed"
                },
                job.outputs.get("image").map(String::as_str).unwrap_or("")
            );
        }
    }

    all_good &= promotion.promote_newest(false).await?;
    all_good &= promotion.roll_back_production().await?;
    all_good &= promotion.drift_found_and_healed().await?;

    let metrics = client
        .get(format!("{base_url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    println!("==> GET /metrics (excerpt)");
    for line in metrics.lines().filter(|line| {
        line.starts_with("sluice_webhook_deliveries_total") || line.starts_with("sluice_runs{")
    }) {
        println!("    {line}");
    }
    if args.work_dir.is_some() {
        println!(
            "==> logs: `sluice logs RUN [JOB] --data-dir {}`",
            work_dir.join("data").display()
        );
    } else {
        println!(
            "==> (the demo's files were temporary; pass --work-dir DIR to keep them and read the logs with `sluice logs`)"
        );
    }
    println!(
        "{}",
        if all_good {
            "==> demo finished: every run succeeded"
        } else {
            "==> demo finished: some runs failed (see above)"
        }
    );
    if args.serve {
        println!(
            "==> the web UI is at {base_url}/ : the demo's runs, environments ({base_url}/environments), releases, history ({base_url}/history) and delivery metrics ({base_url}/metrics/delivery); it keeps running until interrupted"
        );
        super::serve::shutdown_signal().await;
        println!("==> stopped the demo's server");
    }
    Ok(all_good)
}

/// The demo server's socket: `--listen`, else 127.0.0.1:8080 when it stays up (a free port if
/// that one is taken), else a free loopback port.
async fn demo_listener(args: &DemoArgs) -> anyhow::Result<tokio::net::TcpListener> {
    if let Some(address) = &args.listen {
        return tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| {
                anyhow::anyhow!("cannot listen on {address}: {error}; choose another with --listen")
            });
    }
    if args.serve
        && let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:8080").await
    {
        return Ok(listener);
    }
    Ok(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
}

/// Stored plans are encrypted; the demo makes a throwaway key unless one is set. Called before any
/// thread starts, so changing the environment is safe.
pub fn ensure_plan_key() {
    if std::env::var_os(crate::terraform::seal::KEY_VARIABLE).is_none()
        && std::env::var_os(crate::terraform::seal::KEY_FILE_VARIABLE).is_none()
    {
        let key: [u8; 32] = rand::random();
        // SAFETY: called from `main` before the runtime and any other thread exist.
        unsafe { std::env::set_var(crate::terraform::seal::KEY_VARIABLE, hex::encode(key)) };
    }
}

const FEATURE_NOTE: &str =
    "\n# Tenure is capped at ten years: longer tenures carry no extra churn signal.\n";
const STAGING_NOTE: &str =
    "\n# Staging soaks a release for ten minutes before production may take it.\n";

/// Posts a GitHub delivery to the demo's server, signed with the demo secret.
async fn post_delivery(
    client: &reqwest::Client,
    base_url: &str,
    event: &str,
    delivery: &str,
    payload: Vec<u8>,
) -> anyhow::Result<reqwest::Response> {
    Ok(client
        .post(format!("{base_url}/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            crate::server::webhook::sign(DEMO_SECRET.as_bytes(), &payload),
        )
        .body(payload)
        .send()
        .await?)
}

/// Sends GitHub's `pull_request` payload for a newly opened pull request, signed, and shows the
/// runs as they happen.
async fn pull_request_and_watch(
    client: &reqwest::Client,
    base_url: &str,
    number: u64,
    branch: &str,
    base: &str,
    head: &str,
    updates: &mut tokio::sync::broadcast::Receiver<RunUpdate>,
) -> anyhow::Result<Vec<crate::model::Run>> {
    let payload =
        super::demo_pull_request::opened_payload(DEMO_REPOSITORY, number, branch, base, head)?;
    let delivery = format!("demo-pr-{number}-{}", &head[..12]);
    let response = post_delivery(client, base_url, "pull_request", &delivery, payload).await?;
    println!(
        "==> POST /webhooks/github (signed pull_request opened #{number}, head {}) -> {}",
        &head[..7],
        response.status()
    );
    if response.status() != reqwest::StatusCode::ACCEPTED {
        anyhow::bail!(
            "the server did not accept the delivery: {}",
            response.text().await?
        );
    }
    watch_until_finished(client, base_url, head, updates).await
}

/// Sends GitHub's `closed` payload of a merged pull request: its Terraform locks are released.
async fn close_pull_request(
    client: &reqwest::Client,
    base_url: &str,
    number: u64,
    branch: &str,
    base: &str,
    head: &str,
) -> anyhow::Result<()> {
    let payload =
        super::demo_pull_request::merged_payload(DEMO_REPOSITORY, number, branch, base, head)?;
    let response = post_delivery(
        client,
        base_url,
        "pull_request",
        &format!("demo-pr-{number}-closed"),
        payload,
    )
    .await?;
    println!(
        "==> POST /webhooks/github (signed pull_request closed #{number}, merged) -> {}: its Terraform locks are released",
        response.status()
    );
    Ok(())
}

/// Sends GitHub's push payload for `before..after`, signed, and shows the runs as they happen.
async fn push_and_watch(
    client: &reqwest::Client,
    base_url: &str,
    before: &str,
    after: &str,
    updates: &mut tokio::sync::broadcast::Receiver<RunUpdate>,
) -> anyhow::Result<Vec<crate::model::Run>> {
    let payload = push_payload(before, after)?;
    let response = post_delivery(
        client,
        base_url,
        "push",
        &format!("demo-{}", &after[..12]),
        payload,
    )
    .await?;
    println!(
        "==> POST /webhooks/github (signed push {}..{}) -> {}",
        &before[..7],
        &after[..7],
        response.status()
    );
    if response.status() != reqwest::StatusCode::ACCEPTED {
        anyhow::bail!(
            "the server did not accept the delivery: {}",
            response.text().await?
        );
    }
    let runs = watch_until_finished(client, base_url, after, updates).await?;
    println!("==> GET /api/runs?commit={}", &after[..12]);
    Ok(runs)
}

/// Prints each run with its jobs; true when every run succeeded or was skipped.
fn show_runs(runs: &[crate::model::Run]) -> bool {
    let mut all_good = true;
    for run in runs {
        println!(
            "    run {} `{}` ({}): {}",
            run.id, run.pipeline, run.event, run.status
        );
        for job in &run.jobs {
            let reason = job
                .reason
                .as_deref()
                .map(|reason| format!("  ({})", reason.lines().next().unwrap_or("")))
                .unwrap_or_default();
            println!("      {:<30} {}{reason}", job.name, job.status);
        }
        all_good &= matches!(run.status, Status::Succeeded | Status::Skipped);
    }
    all_good
}

/// Prints job transitions and log lines as they happen, until every run of the commit is finished.
async fn watch_until_finished(
    client: &reqwest::Client,
    base_url: &str,
    commit: &str,
    updates: &mut tokio::sync::broadcast::Receiver<RunUpdate>,
) -> anyhow::Result<Vec<crate::model::Run>> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let runs: Vec<crate::model::Run> = client
            .get(format!("{base_url}/api/runs?commit={commit}"))
            .send()
            .await?
            .json()
            .await?;
        if !runs.is_empty() && runs.iter().all(|run| run.status.is_terminal()) {
            return Ok(runs);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the runs did not finish within 10 minutes");
        }
        // Wait for the next engine event (or a short while) before looking again.
        match tokio::time::timeout(std::time::Duration::from_millis(500), updates.recv()).await {
            Ok(Ok(RunUpdate::JobStatus {
                run,
                job,
                status,
                reason,
            })) => {
                let reason = reason
                    .map(|reason| format!("  ({})", reason.lines().next().unwrap_or("").to_owned()))
                    .unwrap_or_default();
                println!("    [run {run}] {job}: {status}{reason}");
            }
            Ok(Ok(RunUpdate::LogLine { run, job, line })) => {
                println!("    [run {run}] {job} | {line}")
            }
            Ok(Ok(RunUpdate::RunStatus { run, status, .. })) => {
                println!("    [run {run}] run {status}")
            }
            _ => {}
        }
    }
}

fn seed_repository(directory: &Path) -> anyhow::Result<String> {
    if directory.exists() {
        std::fs::remove_dir_all(directory)?;
    }
    for (relative, contents, executable) in embedded::FILES {
        let path = directory.join(relative);
        std::fs::create_dir_all(path.parent().expect("files have parents"))?;
        std::fs::write(&path, contents)?;
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let repository = git2::Repository::init_opts(
        directory,
        git2::RepositoryInitOptions::new().initial_head("main"),
    )?;
    commit_all(&repository, "Example ML platform")
}

fn commit_all(repository: &git2::Repository, message: &str) -> anyhow::Result<String> {
    let mut index = repository.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repository.find_tree(index.write_tree()?)?;
    let signature = git2::Signature::now("Ada Data", "ada@example.com")?;
    let parent = repository
        .head()
        .ok()
        .and_then(|head| head.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let commit = repository.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )?;
    Ok(commit.to_string())
}

/// GitHub's push payload with the repository and commits replaced by the demo's.
fn push_payload(before: &str, after: &str) -> anyhow::Result<Vec<u8>> {
    let mut payload: serde_json::Value = serde_json::from_str(PUSH_PAYLOAD)?;
    payload["ref"] = "refs/heads/main".into();
    payload["before"] = before.into();
    payload["after"] = after.into();
    payload["created"] = false.into();
    payload["deleted"] = false.into();
    payload["repository"]["full_name"] = DEMO_REPOSITORY.into();
    payload["repository"]["name"] = "ml-platform".into();
    if let Some(head) = payload
        .get_mut("head_commit")
        .filter(|head| head.is_object())
    {
        head["id"] = after.into();
    }
    Ok(serde_json::to_vec(&payload)?)
}
