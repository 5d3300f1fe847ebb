//! Drift check benchmark. DAGs: a 10,000-file DAG folder (about 2 KiB each) deployed by
//! sluice, then 3 files changed in place and 2 added by hand. The Airflow target's drift check
//! (`Target::drift`: read the release's manifest, walk the live folder, hash what it must) with
//! no hash remembered (the first check after a start), and again with the files' hashes
//! remembered (every later check), next to `rsync --dry-run --checksum -r --delete` of the
//! release's folder against the live one. The folder needs no Airflow; with a real Airflow
//! (`SLUICE_AIRFLOW_VENV`) the check also lists import errors and DAGs, measured too.
//! Models: 20 aliases on a real MLflow (`SLUICE_MLFLOW_VENV`) checked against what the release
//! set, with the number of API calls. Every round checks that each tool found the 5 files.
//! Run with `cargo bench --bench drift_dags_models`; `BENCH_REPEATS` sets the rounds (default 7),
//! `BENCH_FILES` the number of files (default 10000).

#[path = "common/machine.rs"]
mod machine;
#[path = "common/table.rs"]
mod table;

use serde_json::json;
use sluice::config::environment::Environment;
use sluice::deploy::{DeployContext, DriftReport, Release};
use sluice::targets::airflow::{VersionedFolder, forget_hashes};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use table::{milliseconds, print_table, ratio};

fn dag_text(index: usize, round: usize) -> String {
    let mut text = format!(
        "\"\"\"Generated DAG {index}.\"\"\"\nimport pendulum\nfrom airflow.sdk import DAG, task\n\nwith DAG(dag_id=\"generated_{index}\", schedule=None, start_date=pendulum.datetime(2025, 1, 1)):\n"
    );
    for task in 0..20 {
        text.push_str(&format!(
            "    # task {task} of DAG {index}: a line of ordinary padding to reach a typical size\n"
        ));
    }
    text.push_str(&format!("    ROUND = {round}\n"));
    text
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn release_context(environment: &Environment, tree: &Path) -> DeployContext {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    DeployContext {
        environment: environment.clone(),
        release: Release {
            id: Release::new_id(1, commit),
            sequence: 1,
            ..Release::unrecorded("acme/ml-platform", commit, "main", None)
        },
        tree: tree.to_path_buf(),
        previous: None,
        applied: Default::default(),
    }
}

/// A server started in its own process group, killed with its group at the end.
struct Service {
    child: Child,
    url: String,
    home: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_secs(2));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(url: &str, limit: Duration, ready: impl Fn(&str) -> bool) -> bool {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(response) = client.get(url).send()
            && response.status().is_success()
            && ready(&response.text().unwrap_or_default())
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

fn venv(variable: &str) -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os(variable)?);
    path.join("bin/python").exists().then_some(path)
}

/// `airflow standalone` with its own small DAG folder, or None without a venv.
fn start_airflow(scratch: &Path) -> Option<Service> {
    let venv = venv("SLUICE_AIRFLOW_VENV")?;
    let home = scratch.join("airflow-home");
    std::fs::create_dir_all(home.join("dags")).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(venv.join("bin/airflow"))
        .arg("standalone")
        .env("PATH", path)
        .env("AIRFLOW_HOME", &home)
        .env("AIRFLOW__CORE__DAGS_FOLDER", home.join("dags"))
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("AIRFLOW__API__PORT", port.to_string())
        .env("AIRFLOW__API__HOST", "127.0.0.1")
        .env("AIRFLOW__API__WORKERS", "1")
        .env(
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
            format!("{url}/execution/"),
        )
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let service = Service { child, url, home };
    let healthy = wait_until(
        &format!("{}/api/v2/monitor/health", service.url),
        Duration::from_secs(240),
        |body| body.matches("\"healthy\"").count() >= 3,
    );
    healthy.then_some(service)
}

fn start_mlflow(scratch: &Path) -> Option<Service> {
    let venv = venv("SLUICE_MLFLOW_VENV")?;
    let home = scratch.join("mlflow-home");
    std::fs::create_dir_all(&home).unwrap();
    let port = free_port();
    let child = Command::new(venv.join("bin/mlflow"))
        .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", home.join("mlflow.db").display()))
        .arg("--default-artifact-root")
        .arg(home.join("artifacts"))
        .args(["--workers", "2"])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let service = Service {
        child,
        url: format!("http://127.0.0.1:{port}"),
        home,
    };
    wait_until(
        &format!("{}/health", service.url),
        Duration::from_secs(120),
        |_| true,
    )
    .then_some(service)
}

fn rsync_dry_run(source: &Path, live: &Path) -> usize {
    let output = Command::new("rsync")
        .args([
            "--dry-run",
            "--checksum",
            "-r",
            "--delete",
            "--itemize-changes",
        ])
        .arg(format!("{}/", source.display()))
        .arg(format!("{}/", live.display()))
        .output()
        .expect("rsync runs; apt-get install rsync");
    assert!(output.status.success(), "rsync failed");
    // Files that differ or would be deleted; the manifest sluice keeps in the folder is one.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.contains(".sluice-manifest.json"))
        .count()
}

fn main() {
    let repeats: usize = std::env::var("BENCH_REPEATS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(7)
        .max(1);
    let file_count: usize = std::env::var("BENCH_FILES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    println!(
        "drift check: {file_count} DAG files, 3 changed and 2 added by hand, {repeats} rounds; {}",
        machine::describe()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let tree = scratch.path().join("release");
    let source = tree.join("dags");
    std::fs::create_dir_all(&source).unwrap();
    for index in 0..file_count {
        std::fs::write(
            source.join(format!("dag_{index:05}.py")),
            dag_text(index, 0),
        )
        .unwrap();
    }
    let folder = VersionedFolder {
        folder: scratch.path().join("live/dags"),
        versions: scratch.path().join("live/dags.versions"),
        keep: 3,
    };
    let deployed = folder.deploy(&source).unwrap();
    for index in [11, 4242, 9001] {
        let index = index % file_count;
        std::fs::write(
            folder.folder.join(format!("dag_{index:05}.py")),
            dag_text(index, 1),
        )
        .unwrap();
    }
    for name in ["added_a.py", "added_b.py"] {
        std::fs::write(folder.folder.join(name), dag_text(0, 2)).unwrap();
    }
    // Files whose ctime is this recent are always hashed again (see the drift module).
    std::thread::sleep(Duration::from_secs(3));

    let airflow = start_airflow(scratch.path());
    let section = |api: Option<&Service>| {
        let mut section = json!({"dags": "dags", "folder": folder.folder, "validate": false});
        if let Some(airflow) = api {
            section["api"] = json!(airflow.url);
            section["unpause"] = json!(["generated_00000"]);
            section["auth"] = json!({"username": "admin", "password_file": airflow.home.join("simple_auth_manager_passwords.json.generated")});
        }
        serde_json::from_value::<Environment>(json!({"name": "bench", "airflow": section})).unwrap()
    };
    let mut rows = Vec::new();
    let mut contenders: Vec<(String, Environment, bool)> = vec![
        (
            "sluice drift, no API, nothing remembered".into(),
            section(None),
            true,
        ),
        (
            "sluice drift, no API, hashes remembered".into(),
            section(None),
            false,
        ),
    ];
    match &airflow {
        Some(airflow) => {
            contenders.push((
                "sluice drift + real Airflow API, hashes remembered".into(),
                section(Some(airflow)),
                false,
            ));
        }
        None => println!("no Airflow venv (SLUICE_AIRFLOW_VENV): the API part is not measured"),
    }
    let mut rsync_times = Vec::new();
    for _ in 0..repeats {
        let started = Instant::now();
        let found = rsync_dry_run(&source, &folder.folder);
        rsync_times.push(started.elapsed());
        assert_eq!(found, 5, "rsync itemizes the 3 changed and 2 added files");
    }
    let rsync_median = median(&mut rsync_times);
    for (name, environment, cold) in &contenders {
        let target = sluice::targets::airflow::from_environment(environment)
            .unwrap()
            .unwrap();
        let mut context = release_context(environment, &tree);
        context
            .applied
            .insert("airflow".into(), json!({"version": deployed.version}));
        let mut times = Vec::new();
        let mut last = DriftReport::default();
        // One check first, so the remembered hashes exist and a login is made.
        runtime.block_on(target.drift(&context)).unwrap();
        for _ in 0..repeats {
            if *cold {
                forget_hashes();
            }
            let started = Instant::now();
            last = runtime
                .block_on(target.drift(&context))
                .unwrap_or_else(|error| panic!("{error}"));
            times.push(started.elapsed());
            let files = last
                .drifts
                .iter()
                .filter(|drift| drift.object.starts_with("dags/"))
                .count();
            assert_eq!(files, 5, "{:?}", last.drifts);
        }
        let middle = median(&mut times);
        rows.push(vec![
            name.clone(),
            milliseconds(middle),
            ratio(middle.as_secs_f64(), rsync_median.as_secs_f64()),
            format!("{:?}", last.calls),
        ]);
    }
    rows.push(vec![
        "rsync --dry-run --checksum -r --delete".into(),
        milliseconds(rsync_median),
        "1.00x".into(),
        "reads every file on both sides".into(),
    ]);
    print_table(
        &[
            "DAG folder drift",
            "median",
            "vs rsync",
            "calls (last round)",
        ],
        &rows,
    );
    drop(airflow);
    println!();
    models(&runtime, scratch.path(), repeats);
    println!("\nload average at the end: {}", machine::load_average());
}

/// 20 models with one alias each, moved by a deploy; one moved by hand, then checked.
fn models(runtime: &tokio::runtime::Runtime, scratch: &Path, repeats: usize) {
    let Some(mlflow) = start_mlflow(scratch) else {
        println!(
            "no MLflow venv (SLUICE_MLFLOW_VENV) or it did not start: the model check is not measured"
        );
        return;
    };
    let http = reqwest::blocking::Client::new();
    let post = |endpoint: &str, body: serde_json::Value| {
        let response = http
            .post(format!("{}/api/2.0/mlflow/{endpoint}", mlflow.url))
            .json(&body)
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{endpoint}: {}",
            response.text().unwrap()
        );
    };
    let mut models = serde_json::Map::new();
    for index in 0..20 {
        let name = format!("bench-model-{index:02}");
        post("registered-models/create", json!({"name": name}));
        for _ in 0..2 {
            post(
                "model-versions/create",
                json!({"name": name, "source": format!("s3://bench-models/{name}")}),
            );
        }
        models.insert(name, json!({"alias": "champion", "version": 2}));
    }
    let environment: Environment = serde_json::from_value(json!({
        "name": "bench",
        "mlflow": {"tracking_uri": mlflow.url, "models": models},
    }))
    .unwrap();
    let target = sluice::targets::mlflow::from_environment(&environment, None)
        .unwrap()
        .unwrap();
    let tree = scratch.join("models-release");
    std::fs::create_dir_all(&tree).unwrap();
    let mut context = release_context(&environment, &tree);
    let applied = runtime.block_on(target.apply(&context)).unwrap();
    context.applied.insert("mlflow".into(), applied.outputs);
    post(
        "registered-models/alias",
        json!({"name": "bench-model-07", "alias": "champion", "version": "1"}),
    );
    let mut times = Vec::new();
    let mut last = DriftReport::default();
    for _ in 0..repeats {
        let started = Instant::now();
        last = runtime.block_on(target.drift(&context)).unwrap();
        times.push(started.elapsed());
        assert_eq!(last.drifts.len(), 1, "{:?}", last.drifts);
    }
    print_table(
        &[
            "MLflow alias drift (real server)",
            "median",
            "API calls",
            "drifts",
        ],
        &[vec![
            "20 aliases, 1 moved by hand".into(),
            milliseconds(median(&mut times)),
            format!("{:?}", last.calls),
            format!(
                "{} {}: {} → {}",
                last.drifts[0].object, "expected", last.drifts[0].expected, last.drifts[0].actual
            ),
        ]],
    );
}
