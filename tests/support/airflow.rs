//! A real Airflow for the tests: `airflow standalone` from the venv scripts/setup-airflow.sh
//! makes, with a temporary AIRFLOW_HOME and DAG folder, started once per test binary and killed
//! (its whole process group) when the binary exits. Under scripts/test.sh
//! (`SLUICE_REQUIRE_AIRFLOW=1`) a missing venv fails the test; elsewhere tests skip with a reason.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub struct Airflow {
    pub venv: PathBuf,
    pub home: PathBuf,
    /// The path Airflow's `dags_folder` names; the target makes it a symlink.
    pub dags_folder: PathBuf,
    pub base_url: String,
    pub username: String,
    pub password: String,
    /// Holds the watchdog's stdin: when this process exits the pipe closes and the watchdog
    /// kills Airflow's process group.
    watchdog: Mutex<Child>,
    _scratch: tempfile::TempDir,
}

/// The venv with Airflow: `SLUICE_AIRFLOW_VENV`, else `.venv-airflow` in the repository.
pub fn airflow_venv() -> Option<PathBuf> {
    let candidate = std::env::var_os("SLUICE_AIRFLOW_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-airflow"));
    if candidate.join("bin/airflow").is_file() {
        return Some(candidate);
    }
    let message = format!(
        "no Airflow venv at {}; run scripts/setup-airflow.sh (or set SLUICE_AIRFLOW_VENV)",
        candidate.display()
    );
    if std::env::var("SLUICE_REQUIRE_AIRFLOW").is_ok_and(|value| value == "1") {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    None
}

/// The one Airflow of this test binary, started on first use; None (skip) without a venv.
pub fn airflow() -> Option<&'static Airflow> {
    static AIRFLOW: OnceLock<Option<Airflow>> = OnceLock::new();
    AIRFLOW
        .get_or_init(|| airflow_venv().map(|venv| Airflow::start(&venv)))
        .as_ref()
}

/// Tests share one DAG folder: they take turns.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Airflow {
    fn start(venv: &Path) -> Airflow {
        let scratch = tempfile::tempdir().expect("temp dir");
        let home = scratch.path().join("home");
        let dags_folder = scratch.path().join("dags");
        std::fs::create_dir_all(&home).unwrap();
        let port = crate::support::free_port();
        let base_url = format!("http://127.0.0.1:{port}");
        let log_path = home.join("standalone.log");
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // The shell starts Airflow in its own process group, then waits for its stdin to close
        // (this test binary exiting, however it exits) and kills the group.
        let script = r#"airflow standalone >"$SLUICE_AIRFLOW_LOG" 2>&1 &
trap '' TERM
cat >/dev/null
kill -TERM -$$ 2>/dev/null
sleep 5
kill -KILL -$$ 2>/dev/null"#;
        let watchdog = Command::new("sh")
            .args(["-c", script])
            .env("PATH", path)
            .env("SLUICE_AIRFLOW_LOG", &log_path)
            .env("AIRFLOW_HOME", &home)
            .env("AIRFLOW__CORE__DAGS_FOLDER", &dags_folder)
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__PARALLELISM", "2")
            .env("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "2")
            .env("AIRFLOW__API__PORT", port.to_string())
            .env("AIRFLOW__API__HOST", "127.0.0.1")
            .env("AIRFLOW__API__WORKERS", "1")
            .env(
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                format!("{base_url}/execution/"),
            )
            .env("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "2")
            .env("AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "2")
            .env("AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES", "1")
            .env("AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD", "10")
            .env("AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC", "2")
            .env("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh starts");
        let mut airflow = Airflow {
            venv: venv.to_path_buf(),
            home,
            dags_folder,
            base_url,
            username: "admin".into(),
            password: String::new(),
            watchdog: Mutex::new(watchdog),
            _scratch: scratch,
        };
        airflow.wait_until_healthy(Duration::from_secs(240));
        airflow.password = airflow.read_password();
        airflow
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.home.join("standalone.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Polls the health endpoint until the scheduler and the DAG processor report healthy.
    fn wait_until_healthy(&self, timeout: Duration) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let started = Instant::now();
        let url = format!("{}/api/v2/monitor/health", self.base_url);
        let mut last = String::new();
        while started.elapsed() < timeout {
            if let Ok(response) = client.get(&url).send()
                && let Ok(body) = response.json::<serde_json::Value>()
            {
                let healthy = |component: &str| body[component]["status"] == "healthy";
                if healthy("metadatabase") && healthy("scheduler") && healthy("dag_processor") {
                    return;
                }
                last = body.to_string();
            }
            if let Ok(Some(status)) = self.watchdog.lock().unwrap().try_wait() {
                panic!("airflow standalone exited ({status}):\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "airflow did not become healthy within {timeout:?} (last health: {last}):\n{}",
            self.log_tail()
        );
    }

    fn read_password(&self) -> String {
        let path = self.password_file();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let passwords: serde_json::Value = serde_json::from_str(&text).unwrap();
        passwords[&self.username]
            .as_str()
            .expect("a password for admin")
            .to_owned()
    }

    pub fn password_file(&self) -> PathBuf {
        self.home
            .join("simple_auth_manager_passwords.json.generated")
    }

    pub fn python(&self) -> PathBuf {
        self.venv.join("bin/python")
    }

    /// A bearer token for direct API calls.
    pub fn token(&self) -> String {
        let response: serde_json::Value = reqwest::blocking::Client::new()
            .post(format!("{}/auth/token", self.base_url))
            .json(&serde_json::json!({"username": self.username, "password": self.password}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        response["access_token"].as_str().unwrap().to_owned()
    }

    /// GET `/api/v2<path>` as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        reqwest::blocking::Client::new()
            .get(format!("{}/api/v2{path}", self.base_url))
            .bearer_auth(self.token())
            .send()
            .unwrap()
            .json()
            .unwrap()
    }
}
