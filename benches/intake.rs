//! Webhook intake benchmark: how many signed GitHub `push` deliveries per second sluice stores
//! durably on loopback, and its p99 latency at a fixed 1,000 deliveries per second, next to a
//! do-nothing axum handler (the ceiling) and adnanh/webhook. Run with `cargo bench --bench intake`.
//!
//! Settings (environment): `BENCH_SECONDS` (measured seconds per phase, default 10),
//! `BENCH_WARM_UP_SECONDS` (default 2), `BENCH_CONNECTIONS` (default 64), `BENCH_WRK_THREADS`
//! (default 2), `BENCH_RATE` (default 1000), `BENCH_LOAD=inprocess` to skip `wrk`,
//! `BENCH_PEERS` (default `ceiling,sluice,webhook`) to measure only some peers.

#[path = "intake/load.rs"]
mod load;
#[path = "common/machine.rs"]
mod machine;
#[path = "intake/peers.rs"]
mod peers;
#[path = "intake/report.rs"]
mod report;
#[path = "intake/sluice_peer.rs"]
mod sluice_peer;
#[path = "common/table.rs"]
mod table;
#[path = "intake/wrk.rs"]
mod wrk;

use load::{DeliveryIds, Paced, RequestTemplate};
use report::{Row, Throughput};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "intake-benchmark-secret";
const FIXTURE: &str = "tests/fixtures/github-webhooks/push/payload.json";

struct Settings {
    measured: Duration,
    warm_up: Duration,
    connections: usize,
    wrk_threads: usize,
    rate: u32,
    use_wrk: bool,
}

impl Settings {
    fn from_environment() -> Settings {
        let number = |name: &str, default: u64| -> u64 {
            std::env::var(name)
                .ok()
                .and_then(|value| value.parse().ok())
                .unwrap_or(default)
        };
        let in_process_requested =
            std::env::var("BENCH_LOAD").is_ok_and(|load| load == "inprocess");
        Settings {
            measured: Duration::from_secs(number("BENCH_SECONDS", 10)),
            warm_up: Duration::from_secs(number("BENCH_WARM_UP_SECONDS", 2)),
            connections: number("BENCH_CONNECTIONS", 64) as usize,
            wrk_threads: number("BENCH_WRK_THREADS", 2) as usize,
            rate: number("BENCH_RATE", 1000) as u32,
            use_wrk: !in_process_requested && wrk::installed(),
        }
    }
}

/// What every phase needs to send requests.
struct Workload {
    body: Vec<u8>,
    body_path: PathBuf,
    signature: String,
    scratch_dir: PathBuf,
}

#[derive(Clone, Copy)]
enum PeerKind {
    Ceiling,
    Sluice,
    Webhook,
}

/// A running peer: where to send, and (for sluice) how to count what it stored.
struct Running {
    address: SocketAddr,
    url_path: &'static str,
    sluice: Option<sluice_peer::SluicePeer>,
    _ceiling: Option<peers::InProcessServer>,
    _webhook: Option<peers::WebhookPeer>,
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_environment();
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(manifest_dir.join(FIXTURE))?;
    let document: serde_json::Value = serde_json::from_slice(&body)?;
    let repository = document
        .pointer("/repository/full_name")
        .and_then(|name| name.as_str())
        .ok_or_else(|| anyhow::anyhow!("{FIXTURE} has no repository.full_name"))?
        .to_owned();
    // On the same disk as the build, so the durable store really waits for fsync.
    let scratch = tempfile::Builder::new()
        .prefix("intake-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let workload = Workload {
        signature: sluice::server::webhook::sign(SECRET.as_bytes(), &body),
        body_path: manifest_dir.join(FIXTURE),
        body,
        scratch_dir: scratch.path().to_owned(),
    };

    println!("machine: {}", machine::describe());
    match machine::fdatasync_median(scratch.path()) {
        Ok(median) => println!(
            "disk: fdatasync of an 8 KiB overwrite takes {} (median of 31) where the store lives",
            table::milliseconds(median)
        ),
        Err(error) => println!("disk: could not time fdatasync: {error}"),
    }
    println!(
        "intake benchmark: `push` payload of {} bytes, HMAC-SHA256 signed, unique X-GitHub-Delivery per request",
        workload.body.len()
    );
    if settings.use_wrk {
        println!(
            "saturation: wrk, {} threads, {} connections, {} s after {} s warm-up",
            settings.wrk_threads,
            settings.connections,
            settings.measured.as_secs(),
            settings.warm_up.as_secs()
        );
    } else {
        println!(
            "saturation: in-process closed loop (wrk {}), {} connections, {} s after {} s warm-up",
            if wrk::installed() {
                "not used"
            } else {
                "is not installed"
            },
            settings.connections,
            settings.measured.as_secs(),
            settings.warm_up.as_secs()
        );
    }
    println!(
        "fixed rate: in-process open loop, {} req/s for {} s after {} s warm-up, latency from each request's due time",
        settings.rate,
        settings.measured.as_secs(),
        settings.warm_up.as_secs()
    );

    let requested_peers =
        std::env::var("BENCH_PEERS").unwrap_or_else(|_| "ceiling,sluice,webhook".to_owned());
    let requested = |name: &str| requested_peers.split(',').any(|peer| peer.trim() == name);
    let mut peer_kinds = Vec::new();
    if requested("ceiling") {
        peer_kinds.push(PeerKind::Ceiling);
    }
    if requested("sluice") {
        peer_kinds.push(PeerKind::Sluice);
    }
    if requested("webhook") {
        match peers::webhook_installed() {
            Some(version) => {
                println!("peer: {version}");
                peer_kinds.push(PeerKind::Webhook);
            }
            None => println!(
                "peer: adnanh/webhook is not installed (apt-get install -y webhook); its row is skipped"
            ),
        }
    }
    println!();

    let mut rows = Vec::new();
    for kind in peer_kinds {
        let name = match kind {
            PeerKind::Ceiling => "ceiling: axum, read body, 202".to_owned(),
            PeerKind::Sluice => "sluice: verify, SQLite WAL durable, 202".to_owned(),
            PeerKind::Webhook => "adnanh/webhook: verify, run /bin/true".to_owned(),
        };
        eprintln!("measuring {name} ...");
        let throughput = measure_throughput(kind, &repository, &workload, &settings)
            .map_err(|error| format!("{error:#}"));
        let paced = measure_paced(kind, &repository, &workload, &settings)
            .map_err(|error| format!("{error:#}"));
        rows.push(Row {
            name,
            is_ceiling: matches!(kind, PeerKind::Ceiling),
            is_sluice: matches!(kind, PeerKind::Sluice),
            throughput,
            paced,
        });
    }
    report::print(&rows, settings.rate);
    println!("load average after: {}", machine::load_average());
    Ok(())
}

fn start(
    kind: PeerKind,
    repository: &str,
    workload: &Workload,
    phase: &str,
) -> anyhow::Result<Running> {
    let phase_dir = workload
        .scratch_dir
        .join(format!("{phase}-{}", unique_suffix()));
    std::fs::create_dir_all(&phase_dir)?;
    Ok(match kind {
        PeerKind::Ceiling => {
            let server = peers::ceiling()?;
            Running {
                address: server.address,
                url_path: sluice_peer::URL_PATH,
                sluice: None,
                _ceiling: Some(server),
                _webhook: None,
            }
        }
        PeerKind::Sluice => {
            let peer = sluice_peer::start(&phase_dir, SECRET, repository)?;
            Running {
                address: peer.server.address,
                url_path: sluice_peer::URL_PATH,
                sluice: Some(peer),
                _ceiling: None,
                _webhook: None,
            }
        }
        PeerKind::Webhook => {
            let peer = peers::webhook(&phase_dir, SECRET)?;
            Running {
                address: peer.address,
                url_path: peers::WEBHOOK_URL_PATH,
                sluice: None,
                _ceiling: None,
                _webhook: Some(peer),
            }
        }
    })
}

fn measure_throughput(
    kind: PeerKind,
    repository: &str,
    workload: &Workload,
    settings: &Settings,
) -> anyhow::Result<(Throughput, Option<String>)> {
    let running = start(kind, repository, workload, "saturation")?;
    let stored_before = stored_deliveries(&running)?;
    let template = Arc::new(RequestTemplate::new(
        running.address,
        running.url_path,
        &workload.signature,
        &workload.body,
    ));
    let delivery_ids = Arc::new(DeliveryIds::new(&format!("closed-{}", unique_suffix())));
    // Returns the successes (answers in 2xx) and the figures of one closed-loop run.
    let run_at_saturation =
        |duration: Duration, label: &str| -> anyhow::Result<(u64, Throughput)> {
            if settings.use_wrk {
                let summary = wrk::run(
                    &workload.scratch_dir,
                    running.address,
                    running.url_path,
                    &workload.body_path,
                    &workload.signature,
                    &format!("{label}-{}", unique_suffix()),
                    &wrk::WrkSettings {
                        threads: settings.wrk_threads,
                        connections: settings.connections,
                        duration,
                    },
                )?;
                let throughput = Throughput {
                    requests_per_second: summary.requests_per_second(),
                    errors: summary.bad_statuses + summary.socket_errors,
                    p99: Some(summary.latency_p99),
                };
                Ok((summary.requests - summary.bad_statuses, throughput))
            } else {
                let saturation = load::saturate(
                    running.address,
                    template.clone(),
                    delivery_ids.clone(),
                    settings.connections,
                    duration,
                );
                let throughput = Throughput {
                    requests_per_second: saturation.requests_per_second(),
                    errors: saturation.outcomes.errors(),
                    p99: None,
                };
                Ok((saturation.outcomes.successes, throughput))
            }
        };
    // Both runs carry unique delivery ids, so every success is a new stored delivery.
    let (warm_up_successes, _) = run_at_saturation(settings.warm_up, "warm-up")?;
    let commits_before = commits_and_writes(&running);
    let (measured_successes, throughput) = run_at_saturation(settings.measured, "saturation")?;
    let group_commit = describe_group_commit(&running, commits_before, settings.measured);
    check_stored(
        &running,
        stored_before,
        warm_up_successes + measured_successes,
    )?;
    Ok((throughput, group_commit))
}

fn measure_paced(
    kind: PeerKind,
    repository: &str,
    workload: &Workload,
    settings: &Settings,
) -> anyhow::Result<(Paced, Option<String>)> {
    let running = start(kind, repository, workload, "paced")?;
    let stored_before = stored_deliveries(&running)?;
    let commits_before = commits_and_writes(&running);
    let template = Arc::new(RequestTemplate::new(
        running.address,
        running.url_path,
        &workload.signature,
        &workload.body,
    ));
    let delivery_ids = Arc::new(DeliveryIds::new(&format!("paced-{}", unique_suffix())));
    let paced = load::pace(
        running.address,
        template,
        delivery_ids,
        settings.rate,
        settings.warm_up,
        settings.measured,
    );
    let group_commit = describe_group_commit(
        &running,
        commits_before,
        settings.warm_up + settings.measured,
    );
    // Warm-up answers are not counted in `paced`; expect at least the measured successes.
    check_stored(&running, stored_before, paced.outcomes.successes)?;
    Ok((paced, group_commit))
}

fn commits_and_writes(running: &Running) -> (u64, u64) {
    running
        .sluice
        .as_ref()
        .map(|peer| peer.commits_and_writes())
        .unwrap_or_default()
}

/// How many transactions (fsyncs) the store needed for the deliveries it wrote since `before`.
fn describe_group_commit(
    running: &Running,
    before: (u64, u64),
    elapsed: Duration,
) -> Option<String> {
    running.sluice.as_ref()?;
    let (commits, writes) = commits_and_writes(running);
    let commits = commits - before.0;
    let writes = writes - before.1;
    Some(format!(
        "{writes} deliveries in {commits} commits ({:.1} per commit, {:.0} commits/s)",
        writes as f64 / commits.max(1) as f64,
        commits as f64 / elapsed.as_secs_f64()
    ))
}

fn stored_deliveries(running: &Running) -> anyhow::Result<u64> {
    match &running.sluice {
        Some(peer) => peer.stored_deliveries(),
        None => Ok(0),
    }
}

/// sluice answers 200 (not 202) to a repeated delivery id, and a 200 counts as a success for
/// `wrk`; so check that every success really was a new, stored delivery.
fn check_stored(running: &Running, stored_before: u64, successes: u64) -> anyhow::Result<()> {
    let Some(peer) = &running.sluice else {
        return Ok(());
    };
    let stored = peer.stored_deliveries()? - stored_before;
    if stored < successes {
        anyhow::bail!(
            "sluice stored {stored} deliveries but answered {successes} with success; \
             delivery ids were repeated or writes were lost"
        );
    }
    let journal_mode = peer.journal_mode()?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!("the sluice database is in journal mode `{journal_mode}`, not WAL");
    }
    Ok(())
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}
