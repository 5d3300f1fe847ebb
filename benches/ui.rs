//! Web UI benchmark: the runs page (`GET /`, server-rendered HTML with commit summaries and job
//! badges) with 10,000 runs of three jobs each in the store, next to the JSON API answering the
//! same query (`GET /api/runs?limit=50`) in the same run, over real HTTP on loopback; plus a
//! filtered page and an older page. Median, minimum and maximum of `BENCH_REPEATS` (default 20)
//! loads each. Run with `cargo bench --bench ui`.

#[path = "common/machine.rs"]
mod machine;
#[path = "common/table.rs"]
mod table;

use sluice::model::{EventKind, Status};
use sluice::server::{AppState, Metrics, router};
use sluice::store::{CommitSummary, NewJob, NewRun};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const RUNS: usize = 10_000;
const REPOSITORY: &str = "acme/ml-platform";

fn new_run(index: usize) -> NewRun {
    let status = match index % 10 {
        0 => Status::Failed,
        1 => Status::Cancelled,
        _ => Status::Succeeded,
    };
    let job = |name: &str, needs: &[&str]| NewJob {
        name: name.to_owned(),
        needs: needs.iter().map(|need| need.to_string()).collect(),
        status,
        reason: None,
    };
    NewRun {
        repository: REPOSITORY.to_owned(),
        commit: format!("{index:040x}"),
        git_ref: if index.is_multiple_of(3) {
            "refs/heads/main".to_owned()
        } else {
            format!("refs/heads/feature-{}", index % 50)
        },
        event: if index.is_multiple_of(3) {
            EventKind::Merge
        } else {
            EventKind::PullRequest
        },
        pipeline: "platform".to_owned(),
        status,
        reason: None,
        concurrency_group: None,
        plan: "{}".to_owned(),
        jobs: vec![
            job("build", &[]),
            job("plan-dev", &["build"]),
            job("preview-dev", &["plan-dev"]),
        ],
    }
}

fn main() -> anyhow::Result<()> {
    let repeats: usize = std::env::var("BENCH_REPEATS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir()?;
    let database = sluice::store::open(&dir.path().join("sluice.db"))?;
    let started = Instant::now();
    for batch in (0..RUNS).collect::<Vec<_>>().chunks(500) {
        let runs: Vec<NewRun> = batch.iter().map(|index| new_run(*index)).collect();
        database.insert_runs(&runs)?;
        let commits: Vec<CommitSummary> = batch
            .iter()
            .map(|index| CommitSummary {
                repository: REPOSITORY.to_owned(),
                sha: format!("{index:040x}"),
                title: format!("Change number {index} to the churn model's features"),
                author: "Dana Reviewer".to_owned(),
                committed_at: 1_700_000_000 + *index as i64,
            })
            .collect();
        database.record_commits(&commits)?;
    }
    eprintln!("stored {RUNS} runs in {:?}", started.elapsed());
    let (updates, _) = tokio::sync::broadcast::channel(16);
    let state = AppState {
        store: database.clone(),
        deploy_store: database.clone(),
        promotion_wakeup: Arc::new(Notify::new()),
        api_token: None,
        webhook_secret: Arc::new(b"bench".to_vec()),
        repositories: Arc::new(BTreeMap::from([(REPOSITORY.to_owned(), String::new())])),
        metrics: Arc::new(Metrics::default()),
        intake_wakeup: Arc::new(Notify::new()),
        body_limits: Default::default(),
        run_updates: updates,
        dispatcher_wakeup: Arc::new(Notify::new()),
        drift_asks: None,
        ui: Default::default(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let base = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        anyhow::Ok(base)
    })?;
    let client = reqwest::blocking::Client::new();
    let cases = [
        ("runs page `/` (HTML, 50 rows)", "/".to_owned()),
        (
            "same query as JSON `/api/runs?limit=50`",
            "/api/runs?limit=50".to_owned(),
        ),
        (
            "filtered page `/?event=merge&status=failed`",
            "/?event=merge&status=failed".to_owned(),
        ),
        ("older page `/?before=5000`", "/?before=5000".to_owned()),
    ];
    let mut rows = Vec::new();
    let mut medians = Vec::new();
    for (name, path) in &cases {
        let url = format!("{base}{path}");
        // One load first, so every case starts with warm connections and caches.
        let bytes = client.get(&url).send()?.error_for_status()?.bytes()?.len();
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let start = Instant::now();
            let answer = client.get(&url).send()?.error_for_status()?;
            let _ = answer.bytes()?;
            times.push(start.elapsed());
        }
        times.sort();
        let median = times[times.len() / 2];
        medians.push(median);
        rows.push(vec![
            name.to_string(),
            ms(median),
            ms(times[0]),
            ms(times[times.len() - 1]),
            format!("{:.1} KiB", bytes as f64 / 1024.0),
        ]);
    }
    println!("{}", machine::describe());
    println!("{RUNS} runs of 3 jobs in the store; {repeats} loads each over HTTP on loopback\n");
    table::print_table(&["request", "median", "min", "max", "size"], &rows);
    println!(
        "\nthe runs page takes {:.2}x the time of the JSON API answering the same query",
        medians[0].as_secs_f64() / medians[1].as_secs_f64()
    );
    Ok(())
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
