//! Replicas benchmark: deliveries of pushes to `main` until their runs of a three-job pipeline
//! (host steps that exit at once) have finished, on one `sluice serve` on SQLite and on one, two
//! and three replicas sharing one PostgreSQL database, in one run. For each configuration: intake
//! throughput and latency (each request until its 202), runs finished per second and each run's
//! latency from its delivery's arrival, and the CPU the replicas, PostgreSQL, the load and the
//! rest of the machine used meanwhile. Run with `cargo bench --bench replicas`.
//!
//! Settings (environment): `BENCH_DELIVERIES` (per configuration and repeat, default 300),
//! `BENCH_CLIENTS` (sending threads, default 8), `BENCH_REPEATS` (default 3),
//! `BENCH_MAX_PARALLEL_JOBS` (per replica, default 4, sluice's own default),
//! `BENCH_CONFIGURATIONS` (default `sqlite,postgres1,postgres2,postgres3`).

#[path = "common/machine.rs"]
mod machine;
#[path = "common/table.rs"]
mod table;

#[path = "replicas/cpu.rs"]
mod cpu;
#[path = "replicas/report.rs"]
mod report;
#[path = "replicas/send.rs"]
mod send;
#[path = "replicas/servers.rs"]
mod servers;

use report::Measurement;
use servers::{Replica, ReplicaSettings};
use sluice::store::{PostgresStore, RunFilter, SqliteStore, Store, ThrowawayCluster};
use std::path::Path;
use std::time::{Duration, Instant};

const SECRET: &str = "replicas-benchmark-secret";
const FIXTURE: &str = "tests/fixtures/github-webhooks/push/with-new-branch.payload.json";
/// sluice's default lease and takeover, written out.
const SERVER_CONFIG: &str = "replicas: { lease: 15s, takeover: 5s }\n";
/// How long a configuration may take to finish its runs before the benchmark gives up.
const FINISH_LIMIT: Duration = Duration::from_secs(900);

struct Settings {
    deliveries: usize,
    clients: usize,
    repeats: usize,
    max_parallel_jobs: usize,
    configurations: Vec<Configuration>,
}

#[derive(Clone, Copy, PartialEq)]
enum Configuration {
    Sqlite,
    Postgres(usize),
}

impl Configuration {
    fn name(self) -> String {
        match self {
            Configuration::Sqlite => "SQLite ×1".to_owned(),
            Configuration::Postgres(replicas) => format!("PostgreSQL ×{replicas}"),
        }
    }

    fn replicas(self) -> usize {
        match self {
            Configuration::Sqlite => 1,
            Configuration::Postgres(replicas) => replicas,
        }
    }
}

impl Settings {
    fn from_environment() -> anyhow::Result<Settings> {
        let number = |name: &str, default: usize| -> usize {
            std::env::var(name)
                .ok()
                .and_then(|value| value.parse().ok())
                .filter(|value| *value > 0)
                .unwrap_or(default)
        };
        let listed = std::env::var("BENCH_CONFIGURATIONS")
            .unwrap_or_else(|_| "sqlite,postgres1,postgres2,postgres3".to_owned());
        let mut configurations = Vec::new();
        for name in listed.split(',').map(str::trim) {
            configurations.push(match name {
                "sqlite" => Configuration::Sqlite,
                other => match other.strip_prefix("postgres").map(str::parse) {
                    Some(Ok(replicas)) if replicas > 0 => Configuration::Postgres(replicas),
                    _ => anyhow::bail!(
                        "BENCH_CONFIGURATIONS names `{name}`; write `sqlite` or `postgresN` such as `postgres2`"
                    ),
                },
            });
        }
        Ok(Settings {
            deliveries: number("BENCH_DELIVERIES", 300),
            clients: number("BENCH_CLIENTS", 8),
            repeats: number("BENCH_REPEATS", 3),
            max_parallel_jobs: number("BENCH_MAX_PARALLEL_JOBS", 4),
            configurations,
        })
    }
}

/// What every configuration shares: the repository, the payload and where scratch files go.
struct Workload {
    repository_path: std::path::PathBuf,
    config_file: std::path::PathBuf,
    body: Vec<u8>,
    signature: String,
    scratch: std::path::PathBuf,
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_environment()?;
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // On the same disk as the build, so SQLite and PostgreSQL really wait for fsync.
    let scratch = tempfile::Builder::new()
        .prefix("replicas-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let repository_path = scratch.path().join("repository");
    std::fs::create_dir_all(&repository_path)?;
    let commit = servers::pipeline_repository(&repository_path)?;
    let config_file = scratch.path().join("server.yaml");
    std::fs::write(&config_file, SERVER_CONFIG)?;
    let body = push_to_main(&manifest_dir.join(FIXTURE), &commit)?;
    let workload = Workload {
        repository_path,
        config_file,
        signature: sluice::server::webhook::sign(SECRET.as_bytes(), &body),
        body,
        scratch: scratch.path().to_owned(),
    };

    println!("machine: {}", machine::describe());
    match machine::fdatasync_median(scratch.path()) {
        Ok(median) => println!(
            "disk: fdatasync of an 8 KiB overwrite takes {} (median of 31) where the data directories live",
            table::milliseconds(median)
        ),
        Err(error) => println!("disk: could not time fdatasync: {error}"),
    }
    println!(
        "replicas benchmark: {} deliveries of a push to main ({} bytes, signed) per configuration and repeat, \
         from {} client threads, delivery i to replica i mod N; each a run of 3 jobs chained by needs, \
         each job one host step `true`; --max-parallel-jobs {} per replica; {}; {} repeats, configurations in turn",
        settings.deliveries,
        workload.body.len(),
        settings.clients,
        settings.max_parallel_jobs,
        SERVER_CONFIG.trim(),
        settings.repeats,
    );

    let needs_postgres = settings
        .configurations
        .iter()
        .any(|configuration| matches!(configuration, Configuration::Postgres(_)));
    let cluster = if needs_postgres {
        match sluice::store::postgres_binaries() {
            Some(binaries) => {
                let cluster = ThrowawayCluster::start(&binaries).map_err(anyhow::Error::msg)?;
                println!(
                    "PostgreSQL: {} (throwaway cluster as the tests start it: `-F`, fsync off; in {})",
                    postgres_version(&binaries),
                    std::env::temp_dir().display()
                );
                Some(cluster)
            }
            None => {
                println!(
                    "PostgreSQL: no initdb found (set SLUICE_POSTGRES_BIN); its rows are skipped"
                );
                None
            }
        }
    } else {
        None
    };
    println!();

    let mut results: Vec<(String, Vec<Measurement>)> = settings
        .configurations
        .iter()
        .map(|configuration| (configuration.name(), Vec::new()))
        .collect();
    for repeat in 1..=settings.repeats {
        for (index, configuration) in settings.configurations.iter().enumerate() {
            let cluster = match configuration {
                Configuration::Sqlite => None,
                Configuration::Postgres(_) => match &cluster {
                    Some(cluster) => Some(cluster),
                    None => continue,
                },
            };
            let measurement = measure(*configuration, repeat, cluster, &workload, &settings)?;
            report::print_repeat(&configuration.name(), repeat, &measurement);
            results[index].1.push(measurement);
        }
    }
    report::print(&results, settings.deliveries);
    println!();
    println!("load average after: {}", machine::load_average());
    Ok(())
}

/// GitHub's push payload, pointed at the benchmark's repository and its commit on `main`.
fn push_to_main(fixture: &Path, commit: &str) -> anyhow::Result<Vec<u8>> {
    let mut payload: serde_json::Value = serde_json::from_slice(&std::fs::read(fixture)?)?;
    payload["ref"] = "refs/heads/main".into();
    payload["before"] = "0".repeat(40).into();
    payload["after"] = commit.into();
    payload["created"] = true.into();
    payload["deleted"] = false.into();
    payload["repository"]["full_name"] = servers::REPOSITORY.into();
    Ok(serde_json::to_vec(&payload)?)
}

fn postgres_version(binaries: &Path) -> String {
    std::process::Command::new(binaries.join("postgres"))
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown version".to_owned())
}

/// The port in `postgres://user@host:PORT/name`.
fn port_of(url: &str) -> Option<u16> {
    url::Url::parse(url).ok()?.port()
}

/// The statement of each transaction the cluster's log shows losing a race with another, in
/// order: SQLSTATE 40001 (serialization failure) or 40P01 (deadlock), both retried by sluice's
/// PostgreSQL store. PostgreSQL logs the failing statement on a `STATEMENT:` line after the error.
fn serialization_failures(cluster: Option<&ThrowawayCluster>) -> Vec<String> {
    let Some(cluster) = cluster else {
        return Vec::new();
    };
    let log = cluster.log();
    let lines: Vec<&str> = log.lines().collect();
    let mut statements = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let lost_race = line.contains("ERROR:")
            && (line.contains("could not serialize access") || line.contains("deadlock detected"));
        if !lost_race {
            continue;
        }
        let statement = lines[index + 1..]
            .iter()
            .take(4)
            .find_map(|next| next.split_once("STATEMENT:"))
            .map(|(_, statement)| statement.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "(no statement logged)".to_owned());
        statements.push(statement.chars().take(70).collect());
    }
    statements
}

fn measure(
    configuration: Configuration,
    repeat: usize,
    cluster: Option<&ThrowawayCluster>,
    workload: &Workload,
    settings: &Settings,
) -> anyhow::Result<Measurement> {
    let label = match configuration {
        Configuration::Sqlite => format!("sqlite-{repeat}"),
        Configuration::Postgres(replicas) => format!("postgres{replicas}_{repeat}"),
    };
    eprintln!("measuring {} (repeat {repeat}) ...", configuration.name());
    let directory = workload.scratch.join(&label);
    let database_url = match cluster {
        Some(cluster) => Some(cluster.database(&label).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let replica_settings = ReplicaSettings {
        repository_path: &workload.repository_path,
        config_file: &workload.config_file,
        secret: SECRET,
        max_parallel_jobs: settings.max_parallel_jobs,
        database_url: database_url.as_deref(),
    };
    let replicas: Vec<Replica> = (0..configuration.replicas())
        .map(|index| {
            Replica::start(
                &directory.join(format!("replica-{index}")),
                &replica_settings,
            )
        })
        .collect::<anyhow::Result<_>>()?;
    // Opened after the replicas, which create and migrate the database.
    let store: Box<dyn Store> = match &database_url {
        Some(url) => Box::new(PostgresStore::open(url)?),
        None => Box::new(SqliteStore::open(&directory.join("replica-0/sluice.db"))?),
    };
    let postmaster = database_url
        .as_deref()
        .and_then(port_of)
        .and_then(cpu::postmaster_on_port);
    if database_url.is_some() && postmaster.is_none() {
        eprintln!("could not find the postmaster's process; PostgreSQL's CPU is counted as 0");
    }
    let replica_urls: Vec<String> = replicas
        .iter()
        .map(|replica| replica.base_url.clone())
        .collect();
    let sluice_cpu = || -> f64 {
        replicas
            .iter()
            .map(|replica| cpu::process_seconds(replica.pid()))
            .sum()
    };
    let postgres_cpu = || postmaster.map_or(0.0, cpu::cluster_seconds);
    let failures_before = serialization_failures(cluster).len();

    let (sluice_before, postgres_before, client_before, machine_before) = (
        sluice_cpu(),
        postgres_cpu(),
        cpu::own_seconds(),
        cpu::Machine::now(),
    );
    let first_sent_at = chrono::Utc::now();
    let started = Instant::now();
    let sent = send::send(
        &send::Load {
            replica_urls: &replica_urls,
            body: &workload.body,
            signature: &workload.signature,
            delivery_prefix: &label,
            deliveries: settings.deliveries,
            clients: settings.clients,
        },
        started,
    );
    if sent.refused > 0 {
        anyhow::bail!(
            "{} of {} deliveries were not accepted with 202, e.g. {:?}",
            sent.refused,
            settings.deliveries,
            sent.refusals
        );
    }
    wait_until_finished(store.as_ref(), settings.deliveries)?;
    let window = started.elapsed();
    let (sluice_after, postgres_after, client_after, machine_after) = (
        sluice_cpu(),
        postgres_cpu(),
        cpu::own_seconds(),
        cpu::Machine::now(),
    );
    let failed_statements: Vec<String> = serialization_failures(cluster)
        .into_iter()
        .skip(failures_before)
        .collect();

    let runs = store.list_runs(&RunFilter::default())?;
    if runs.len() != settings.deliveries {
        anyhow::bail!(
            "{} deliveries to main made {} runs; expected one run each",
            settings.deliveries,
            runs.len()
        );
    }
    let mut run_latencies = Vec::new();
    let mut last_finished = first_sent_at;
    for run in &runs {
        let finished_at = run
            .finished_at
            .ok_or_else(|| anyhow::anyhow!("run {} is terminal but has no finished_at", run.id))?;
        last_finished = last_finished.max(finished_at);
        let delivery_id = run
            .delivery
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("run {} names no delivery", run.id))?;
        let delivery = store.delivery(delivery_id)?.ok_or_else(|| {
            anyhow::anyhow!("delivery {delivery_id} of run {} is not stored", run.id)
        })?;
        run_latencies.push(
            (finished_at - delivery.received_at)
                .to_std()
                .unwrap_or_default(),
        );
    }
    run_latencies.sort_unstable();
    let mut intake_latencies = sent.latencies.clone();
    intake_latencies.sort_unstable();
    let end_to_end = (last_finished - first_sent_at).to_std().unwrap_or(window);

    let warnings: Vec<String> = replicas.iter().flat_map(Replica::warnings).collect();
    for line in warnings.iter().take(3) {
        println!("  {} logged: {line}", configuration.name());
    }
    let measurement = Measurement {
        intake_per_second: intake_latencies.len() as f64 / sent.sending_period.as_secs_f64(),
        intake_p50: report::percentile(&intake_latencies, 0.50),
        intake_p99: report::percentile(&intake_latencies, 0.99),
        sending_period: sent.sending_period,
        runs_per_second: runs.len() as f64 / end_to_end.as_secs_f64(),
        run_p50: report::percentile(&run_latencies, 0.50),
        run_p99: report::percentile(&run_latencies, 0.99),
        window,
        sluice_cpu_seconds: sluice_after - sluice_before,
        postgres_cpu_seconds: postgres_after - postgres_before,
        client_cpu_seconds: client_after - client_before,
        machine_cpu_seconds: machine_after.busy_seconds_since(&machine_before),
        machine_utilisation: machine_after.utilisation_since(&machine_before),
        serialization_failures: failed_statements.len(),
        failed_statements,
        runs_not_succeeded: runs
            .iter()
            .filter(|run| run.status != sluice::model::Status::Succeeded)
            .count(),
        replica_warnings: warnings.len(),
        replica_errors: warnings
            .iter()
            .filter(|line| line.contains(" ERROR "))
            .count(),
    };
    drop(store);
    drop(replicas);
    let _ = std::fs::remove_dir_all(&directory);
    Ok(measurement)
}

/// Polls the store's counts until every delivery is planned and `runs` runs exist, all terminal.
fn wait_until_finished(store: &dyn Store, runs: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + FINISH_LIMIT;
    loop {
        let stats = store.stats()?;
        let terminal: u64 = stats
            .runs_by_status
            .iter()
            .filter(|(status, _)| status.is_terminal())
            .map(|(_, count)| count)
            .sum();
        let unfinished: u64 = stats
            .runs_by_status
            .iter()
            .filter(|(status, _)| !status.is_terminal())
            .map(|(_, count)| count)
            .sum();
        if stats.pending_deliveries == 0 && unfinished == 0 && terminal >= runs as u64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "after {} s: {terminal} of {runs} runs finished, {unfinished} unfinished, {} deliveries pending",
                FINISH_LIMIT.as_secs(),
                stats.pending_deliveries
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
