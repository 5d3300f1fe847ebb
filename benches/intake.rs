//! Webhook intake benchmark: how many signed GitHub `push` deliveries per second sluice stores
//! durably on loopback, and its p99 latency at a fixed 1,000 deliveries per second, next to a
//! do-nothing axum handler (the ceiling) and adnanh/webhook. Run with `cargo bench --bench intake`.
//!
//! Settings (environment): `BENCH_SECONDS` (measured seconds per phase, default 10),
//! `BENCH_WARM_UP_SECONDS` (default 2), `BENCH_CONNECTIONS` (default 64), `BENCH_WRK_THREADS`
//! (default 2), `BENCH_RATE` (default 1000), `BENCH_LOAD=inprocess` to skip `wrk`.

#[path = "intake/load.rs"]
mod load;
#[path = "common/machine.rs"]
mod machine;
#[path = "intake/peers.rs"]
mod peers;
#[path = "intake/sluice_peer.rs"]
mod sluice_peer;
#[path = "common/table.rs"]
mod table;
#[path = "intake/wrk.rs"]
mod wrk;

use load::{DeliveryIds, Paced, RequestTemplate};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use table::{milliseconds, print_table, ratio, thousands};

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

/// Throughput at saturation, however it was generated.
struct Throughput {
    requests_per_second: f64,
    errors: u64,
    /// Only `wrk` reports latency under saturation.
    p99: Option<Duration>,
}

struct Row {
    name: String,
    throughput: Result<Throughput, String>,
    paced: Result<Paced, String>,
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

    let mut peer_kinds = vec![PeerKind::Ceiling, PeerKind::Sluice];
    match peers::webhook_installed() {
        Some(version) => {
            println!("peer: {version}");
            peer_kinds.push(PeerKind::Webhook);
        }
        None => println!(
            "peer: adnanh/webhook is not installed (apt-get install -y webhook); its row is skipped"
        ),
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
            throughput,
            paced,
        });
    }
    report(&rows, &settings);
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
) -> anyhow::Result<Throughput> {
    let running = start(kind, repository, workload, "saturation")?;
    let stored_before = stored_deliveries(&running)?;
    // Warm-up, then the measured run; both carry unique delivery ids.
    let (warm_up, measured) = if settings.use_wrk {
        let wrk_settings = |duration| wrk::WrkSettings {
            threads: settings.wrk_threads,
            connections: settings.connections,
            duration,
        };
        let run_wrk = |duration, label: &str| {
            wrk::run(
                &workload.scratch_dir,
                running.address,
                running.url_path,
                &workload.body_path,
                &workload.signature,
                &format!("{label}-{}", unique_suffix()),
                &wrk_settings(duration),
            )
        };
        let warm_up = run_wrk(settings.warm_up, "warm-up")?;
        let measured = run_wrk(settings.measured, "saturation")?;
        let warm_up_successes = warm_up.requests - warm_up.bad_statuses;
        let throughput = Throughput {
            requests_per_second: measured.requests_per_second(),
            errors: measured.bad_statuses + measured.socket_errors,
            p99: Some(measured.latency_p99),
        };
        (
            warm_up_successes,
            (throughput, measured.requests - measured.bad_statuses),
        )
    } else {
        let template = Arc::new(RequestTemplate::new(
            running.address,
            running.url_path,
            &workload.signature,
            &workload.body,
        ));
        let delivery_ids = Arc::new(DeliveryIds::new(&format!("closed-{}", unique_suffix())));
        let run_closed_loop = |duration| {
            load::saturate(
                running.address,
                template.clone(),
                delivery_ids.clone(),
                settings.connections,
                duration,
            )
        };
        let warm_up = run_closed_loop(settings.warm_up);
        let measured = run_closed_loop(settings.measured);
        let throughput = Throughput {
            requests_per_second: measured.requests_per_second(),
            errors: measured.outcomes.errors(),
            p99: None,
        };
        (
            warm_up.outcomes.successes,
            (throughput, measured.outcomes.successes),
        )
    };
    let (throughput, measured_successes) = measured;
    check_stored(&running, stored_before, warm_up + measured_successes)?;
    Ok(throughput)
}

fn measure_paced(
    kind: PeerKind,
    repository: &str,
    workload: &Workload,
    settings: &Settings,
) -> anyhow::Result<Paced> {
    let running = start(kind, repository, workload, "paced")?;
    let stored_before = stored_deliveries(&running)?;
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
    // Warm-up answers are not counted in `paced`; expect at least the measured successes.
    check_stored(&running, stored_before, paced.outcomes.successes)?;
    Ok(paced)
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

fn report(rows: &[Row], settings: &Settings) {
    let ceiling_rate = rows
        .iter()
        .find(|row| row.name.starts_with("ceiling"))
        .and_then(|row| row.throughput.as_ref().ok())
        .map(|throughput| throughput.requests_per_second)
        .unwrap_or(0.0);
    let rate = settings.rate;
    let headers = [
        "peer",
        "req/s at saturation",
        "vs ceiling",
        "p99 at saturation",
        "errors",
        &format!("p50 at {rate}/s") as &str,
        &format!("p99 at {rate}/s"),
        &format!("p99.9 at {rate}/s"),
        &format!("max at {rate}/s"),
        "errors ",
    ]
    .map(str::to_owned);
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut table_rows = Vec::new();
    for row in rows {
        let mut cells = vec![row.name.clone()];
        match &row.throughput {
            Ok(throughput) => cells.extend([
                thousands(throughput.requests_per_second),
                ratio(throughput.requests_per_second, ceiling_rate),
                throughput
                    .p99
                    .map(milliseconds)
                    .unwrap_or_else(|| "-".to_owned()),
                throughput.errors.to_string(),
            ]),
            Err(_) => cells.extend(["failed", "-", "-", "-"].map(str::to_owned)),
        }
        match &row.paced {
            Ok(paced) => {
                let cell = |fraction| {
                    paced
                        .percentile(fraction)
                        .map(milliseconds)
                        .unwrap_or_else(|| "-".to_owned())
                };
                cells.extend([
                    cell(0.50),
                    cell(0.99),
                    cell(0.999),
                    cell(1.0),
                    paced.outcomes.errors().to_string(),
                ]);
            }
            Err(_) => cells.extend(["failed", "-", "-", "-", "-"].map(str::to_owned)),
        }
        table_rows.push(cells);
    }
    print_table(&header_refs, &table_rows);
    println!();
    for row in rows {
        if let Err(error) = &row.throughput {
            println!("{}: saturation failed: {error}", row.name);
        }
        match &row.paced {
            Err(error) => println!("{}: fixed rate failed: {error}", row.name),
            Ok(paced) => println!(
                "{}: fixed rate offered {:.0} req/s, {} answers measured, pacer at worst {} late",
                row.name,
                paced.achieved_rate,
                paced.latencies.len(),
                milliseconds(paced.worst_pacer_lateness)
            ),
        }
    }
    if let Some(sluice_row) = rows.iter().find(|row| row.name.starts_with("sluice")) {
        println!();
        if let Ok(throughput) = &sluice_row.throughput {
            let share = throughput.requests_per_second / ceiling_rate;
            println!(
                "target: sluice >= 50% of the ceiling's throughput: {:.0}% -> {}",
                share * 100.0,
                verdict(share >= 0.5)
            );
        }
        if let Some(p99) = sluice_row
            .paced
            .as_ref()
            .ok()
            .and_then(|paced| paced.percentile(0.99))
        {
            println!(
                "target: sluice p99 <= 5 ms at {rate} req/s: {} -> {}",
                milliseconds(p99),
                verdict(p99 <= Duration::from_millis(5))
            );
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
