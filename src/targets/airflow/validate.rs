//! Validation before deploy: imports every DAG file with Airflow's own `DagBag` in the configured
//! interpreter (the venv or image Airflow runs with) and reads back, as JSON, the import errors
//! per file with the trace's last lines and the facts of every DAG. Runs one subprocess; knows
//! nothing of the folder layout, the API or policies.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The Python that runs in the target's interpreter. Prints one JSON document on stdout.
const DAGBAG_SNIPPET: &str = r#"
import hashlib, json, os, sys, warnings
warnings.simplefilter("ignore")
folder = sys.argv[1]
from airflow.models.dagbag import DagBag
import airflow
bag = DagBag(dag_folder=folder, include_examples=False, safe_mode=False)
def relative(path):
    return os.path.relpath(path, folder).replace(os.sep, "/")
def last_lines(trace, count=6):
    lines = [line for line in str(trace).strip().splitlines() if line.strip()]
    return "\n".join(lines[-count:])
def schedule_of(dag):
    value = getattr(dag, "schedule", None)
    if value is None or isinstance(value, str):
        return value
    timetable = getattr(dag, "timetable", None)
    return getattr(timetable, "summary", None) or str(value)
dags = []
for dag_id, dag in sorted(bag.dags.items()):
    default_args = getattr(dag, "default_args", None) or {}
    owner = default_args.get("owner") or getattr(dag, "owner", None)
    dags.append({
        "dag_id": dag_id,
        "file": relative(dag.fileloc),
        "owner": owner,
        "schedule": schedule_of(dag),
        "tags": sorted(str(tag) for tag in (getattr(dag, "tags", None) or [])),
        "max_active_runs": getattr(dag, "max_active_runs", None),
        "description": getattr(dag, "description", None),
    })
errors = [{"file": relative(path), "message": last_lines(trace)} for path, trace in sorted(bag.import_errors.items())]
print("SLUICE-DAGBAG " + json.dumps({"airflow_version": airflow.__version__, "dags": dags, "import_errors": errors}))
"#;

/// One DAG as `DagBag` sees it: what the policies judge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DagFacts {
    pub dag_id: String,
    /// Relative to the DAG folder, with `/`.
    pub file: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub max_active_runs: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportError {
    pub file: String,
    /// The last lines of the trace.
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub airflow_version: String,
    pub dags: Vec<DagFacts>,
    pub import_errors: Vec<ImportError>,
}

impl Validation {
    pub fn passed(&self) -> bool {
        self.import_errors.is_empty()
    }

    /// "2 DAG files failed to import: a.py: ModuleNotFoundError: ...".
    pub fn failure_message(&self) -> String {
        let mut message = format!(
            "{} DAG file(s) failed to import with Airflow {}; fix them and push again:",
            self.import_errors.len(),
            self.airflow_version
        );
        for error in &self.import_errors {
            message.push_str(&format!(
                "\n  {}:\n    {}",
                error.file,
                error.message.replace('\n', "\n    ")
            ));
        }
        message
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The interpreter could not run the snippet (missing, no Airflow, crashed).
    #[error("{0}")]
    Interpreter(String),
}

/// Imports the DAGs in `dag_folder` with `python`'s Airflow. A separate `AIRFLOW_HOME` keeps the
/// validation away from any real Airflow's configuration and database.
pub async fn validate_dags(
    python: &Path,
    dag_folder: &Path,
    timeout: Duration,
) -> Result<Validation, ValidateError> {
    let scratch_home = tempfile::tempdir().map_err(|error| {
        ValidateError::Interpreter(format!("cannot create a temporary AIRFLOW_HOME: {error}"))
    })?;
    let mut command = tokio::process::Command::new(python);
    command
        .arg("-c")
        .arg(DAGBAG_SNIPPET)
        .arg(dag_folder)
        .env("AIRFLOW_HOME", scratch_home.path())
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("AIRFLOW__CORE__DAGS_FOLDER", dag_folder)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // `-c` puts the working directory on sys.path; a stray `bisect.py` there must not win.
        .current_dir(scratch_home.path())
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| ValidateError::Interpreter(format!("validating DAGs with `{}` took longer than {timeout:?}; look for DAG files that do work at import time", python.display())))?
        .map_err(|error| ValidateError::Interpreter(format!("cannot run the validation interpreter `{}`: {error}; set `airflow.python` to a Python with Airflow installed", python.display())))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(document) = stdout
        .lines()
        .find_map(|line| line.strip_prefix("SLUICE-DAGBAG "))
    else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(ValidateError::Interpreter(format!(
            "the validation interpreter `{}` could not import Airflow's DagBag ({}): {}; set `airflow.python` to a Python with Airflow installed",
            python.display(),
            output.status,
            tail.join(" | ")
        )));
    };
    serde_json::from_str(document).map_err(|error| {
        ValidateError::Interpreter(format!(
            "the validation interpreter printed unreadable JSON: {error}"
        ))
    })
}
