//! A real MLflow tracking server for the MLflow target's tests: one per test binary on a loopback
//! port with a SQLite backend in a temporary directory, started from the venv that
//! `scripts/setup-mlflow.sh` makes; model versions registered with real runs and metrics through
//! the MLflow Python client (`mlflow_register.py`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct MlflowServer {
    pub url: String,
    pub venv: PathBuf,
    /// Holding the shell's standard input open keeps the server alive; when the test process
    /// exits the pipe closes and the shell stops the server's whole process group.
    _supervisor: Child,
    _directory: tempfile::TempDir,
}

/// The venv with MLflow: `SLUICE_MLFLOW_VENV`, else `.venv-mlflow`. Under `scripts/test.sh`
/// (`SLUICE_REQUIRE_MLFLOW=1`) a missing one fails the test; elsewhere the test says how to get
/// it and is skipped.
fn mlflow_venv() -> Option<PathBuf> {
    let venv = std::env::var_os("SLUICE_MLFLOW_VENV")
        .map(PathBuf::from)
        .map(|path| {
            if path.is_absolute() {
                path
            } else {
                crate::support::repository_root().join(path)
            }
        })
        .unwrap_or_else(|| crate::support::repository_root().join(".venv-mlflow"));
    let works = venv.join("bin/mlflow").exists()
        && Command::new(venv.join("bin/python"))
            .args(["-c", "import mlflow"])
            .output()
            .is_ok_and(|output| output.status.success());
    if works {
        return Some(venv);
    }
    let message = format!(
        "MLflow is not installed in {}; run scripts/setup-mlflow.sh (or set SLUICE_MLFLOW_VENV)",
        venv.display()
    );
    if std::env::var("SLUICE_REQUIRE_MLFLOW").is_ok_and(|value| value == "1") {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    None
}

/// The shared server, started on first use; `None` (the test should return) when MLflow is
/// not installed and not required.
pub fn server() -> Option<&'static MlflowServer> {
    static SERVER: OnceLock<Option<MlflowServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| off_runtime(|| mlflow_venv().map(start)))
        .as_ref()
}

/// Runs blocking HTTP calls on a thread of their own, so async tests may call these helpers.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().unwrap())
}

fn start(venv: PathBuf) -> MlflowServer {
    let directory = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let database = directory.path().join("mlflow.db");
    let artifacts = directory.path().join("artifacts");
    let log = directory.path().join("server.log");
    let script = format!(
        "setsid '{mlflow}' server --backend-store-uri 'sqlite:///{database}' --default-artifact-root '{artifacts}' \
         --host 127.0.0.1 --port {port} --workers 2 >'{log}' 2>&1 & server=$!; \
         read _; kill -TERM -$server 2>/dev/null; sleep 3; kill -KILL -$server 2>/dev/null; wait",
        mlflow = venv.join("bin/mlflow").display(),
        database = database.display(),
        artifacts = artifacts.display(),
        log = log.display(),
    );
    let supervisor = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sh starts");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if client
            .get(format!("{url}/health"))
            .send()
            .is_ok_and(|response| response.status().is_success())
        {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "mlflow server on {url} did not answer /health within 120 s; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    MlflowServer {
        url,
        venv,
        _supervisor: supervisor,
        _directory: directory,
    }
}

/// One version to register: its run's metrics and the version's tags.
pub struct VersionSpec<'a> {
    pub metrics: &'a [(&'a str, f64)],
    pub tags: &'a [(&'a str, &'a str)],
}

impl MlflowServer {
    /// Registers the versions in order (each with its own run) and returns their numbers.
    pub fn register(&self, model: &str, versions: &[VersionSpec]) -> Vec<String> {
        let spec = serde_json::json!({
            "model": model,
            "versions": versions.iter().map(|version| serde_json::json!({
                "metrics": version.metrics.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
                "tags": version.tags.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
        });
        let output = Command::new(self.venv.join("bin/python"))
            .arg(crate::support::repository_root().join("tests/support/mlflow_register.py"))
            .arg(&self.url)
            .arg(spec.to_string())
            .env("MLFLOW_TRACKING_URI", &self.url)
            .output()
            .expect("python runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "registering {model} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let last_line = stdout
            .lines()
            .rev()
            .find(|line| line.starts_with('{'))
            .unwrap();
        let answer: serde_json::Value = serde_json::from_str(last_line).unwrap();
        answer["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|version| version.as_str().unwrap().to_string())
            .collect()
    }

    /// A GET on the REST API, read back independently of the code under test.
    pub fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> (u16, serde_json::Value) {
        off_runtime(|| {
            let response = reqwest::blocking::Client::new()
                .get(format!("{}/api/2.0/mlflow/{endpoint}", self.url))
                .query(query)
                .send()
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json().unwrap_or_default())
        })
    }

    /// Points `alias` at `version` through the REST API, as someone would by hand.
    pub fn set_alias(&self, model: &str, alias: &str, version: &str) {
        off_runtime(|| {
            let response = reqwest::blocking::Client::new()
                .post(format!(
                    "{}/api/2.0/mlflow/registered-models/alias",
                    self.url
                ))
                .json(&serde_json::json!({"name": model, "alias": alias, "version": version}))
                .send()
                .unwrap();
            let status = response.status();
            assert!(
                status.is_success(),
                "setting {model}@{alias} to {version}: {status} {}",
                response.text().unwrap_or_default()
            );
        })
    }

    /// The version the alias points at now, `None` when it points nowhere.
    pub fn alias_version(&self, model: &str, alias: &str) -> Option<String> {
        let (status, body) = self.get(
            "registered-models/alias",
            &[("name", model), ("alias", alias)],
        );
        if status != 200 {
            return None;
        }
        body["model_version"]["version"]
            .as_str()
            .map(str::to_string)
    }

    pub fn version(&self, model: &str, version: &str) -> serde_json::Value {
        let (status, body) = self.get(
            "model-versions/get",
            &[("name", model), ("version", version)],
        );
        assert_eq!(status, 200, "{body}");
        body["model_version"].clone()
    }

    pub fn version_tag(&self, model: &str, version: &str, key: &str) -> Option<String> {
        self.version(model, version)["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|tag| tag["key"] == key)
            .and_then(|tag| tag["value"].as_str().map(str::to_string))
    }
}
