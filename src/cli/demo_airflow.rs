//! The demo's Airflow. scripts/setup-demo-airflow.sh starts one `airflow standalone` (Airflow 3,
//! from the pinned venv) per environment, at the API address and DAG folder its
//! `environments/*.yaml` names: one Airflow holds one set of DAG ids and Variables, and the three
//! environments deploy the same DAGs with different Variables. This module gives each
//! environment's `airflow:` section what the environment file leaves to the machine (the
//! interpreter that validates the DAGs and the login the standalone server generated) and prints
//! what Airflow's REST API reports after a deploy. It knows the demo's layout, nothing of targets.

use crate::config::environment::Environment;
use crate::targets::airflow::{AirflowApi, Credentials};
use std::path::PathBuf;

/// The user `airflow standalone` creates, with a generated password.
const USER: &str = "admin";

/// Where the demo's Airflow lives on this machine.
#[derive(Clone, Debug)]
pub struct DemoAirflow {
    /// The interpreter with Airflow installed: `$SLUICE_AIRFLOW_VENV/bin/python`.
    pub python: PathBuf,
    /// `$SLUICE_DEMO_AIRFLOW_DIR`: one AIRFLOW_HOME per environment below it.
    pub homes: PathBuf,
}

impl DemoAirflow {
    /// From `SLUICE_AIRFLOW_VENV` (default `.venv-airflow`) and `SLUICE_DEMO_AIRFLOW_DIR` (default
    /// `/var/lib/sluice-airflow`), as scripts/demo.sh sets them.
    pub fn from_env() -> DemoAirflow {
        let venv = std::env::var_os("SLUICE_AIRFLOW_VENV")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".venv-airflow"));
        let homes = std::env::var_os("SLUICE_DEMO_AIRFLOW_DIR")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib/sluice-airflow"));
        DemoAirflow {
            python: std::path::absolute(venv.join("bin/python"))
                .unwrap_or_else(|_| venv.join("bin/python")),
            homes,
        }
    }

    fn password_file(&self, environment: &str) -> PathBuf {
        self.homes
            .join(environment)
            .join("simple_auth_manager_passwords.json.generated")
    }

    /// The environment with the demo's interpreter and login in its `airflow:` section (what the
    /// file sets itself is kept), or why this machine's Airflow cannot serve it.
    pub fn prepare(&self, environment: &Environment) -> Result<Environment, String> {
        let mut prepared = environment.clone();
        let Some(section) = prepared.targets.airflow.as_mut() else {
            return Ok(prepared);
        };
        if !self.python.is_file() {
            return Err(format!(
                "no Airflow interpreter at {} (scripts/setup-airflow.sh installs it; SLUICE_AIRFLOW_VENV names the venv)",
                self.python.display()
            ));
        }
        let password_file = self.password_file(&environment.name);
        if !password_file.is_file() {
            return Err(format!(
                "no login of the demo's Airflow at {} (scripts/setup-demo-airflow.sh starts it)",
                password_file.display()
            ));
        }
        section.python.get_or_insert_with(|| self.python.clone());
        section
            .auth
            .get_or_insert_with(|| crate::targets::airflow::AuthConfig {
                username: USER.to_owned(),
                password_env: None,
                password_file: Some(password_file),
            });
        Ok(prepared)
    }

    /// What the environment's Airflow reports through its REST API: each DAG with its paused
    /// state and file, the import errors, and the Variables the environment sets.
    pub async fn report(&self, environment: &Environment) -> Vec<String> {
        let Some(api) = environment
            .targets
            .airflow
            .as_ref()
            .and_then(|section| section.api.clone())
        else {
            return Vec::new();
        };
        let password = std::fs::read_to_string(self.password_file(&environment.name))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|passwords| passwords.get(USER)?.as_str().map(str::to_owned))
            .unwrap_or_default();
        let client = AirflowApi::new(
            &api,
            3,
            Some(Credentials {
                username: USER.to_owned(),
                password,
            }),
        );
        let mut lines = vec![format!(
            "Airflow of {} at {api} reports (GET /api/v2/dags, /api/v2/importErrors, /api/v2/variables):",
            environment.name
        )];
        match client.dags().await {
            Ok(dags) if dags.is_empty() => lines.push("  no DAGs".to_owned()),
            Ok(dags) => {
                for dag in dags {
                    lines.push(format!(
                        "  DAG {:<20} {:<9} file {}",
                        dag.dag_id,
                        match dag.is_paused {
                            Some(true) => "paused",
                            Some(false) => "unpaused",
                            None => "paused ?",
                        },
                        dag.relative_fileloc
                            .or(dag.fileloc)
                            .unwrap_or_else(|| "?".to_owned())
                    ));
                }
            }
            Err(error) => lines.push(format!("  DAGs: {error}")),
        }
        match client.import_errors().await {
            Ok(errors) if errors.is_empty() => lines.push("  import errors: none".to_owned()),
            Ok(errors) => {
                for error in errors {
                    let last = error.stack_trace.lines().last().unwrap_or("").to_owned();
                    lines.push(format!("  import error in {}: {last}", error.filename));
                }
            }
            Err(error) => lines.push(format!("  import errors: {error}")),
        }
        let keys: Vec<String> = environment
            .targets
            .airflow
            .as_ref()
            .map(|section| section.variables.keys().cloned().collect())
            .unwrap_or_default();
        let mut variables = Vec::new();
        for key in keys {
            match client.variable(&key).await {
                Ok(Some(value)) => variables.push(format!("{key}={value}")),
                Ok(None) => variables.push(format!("{key} unset")),
                Err(error) => variables.push(format!("{key}: {error}")),
            }
        }
        if !variables.is_empty() {
            lines.push(format!("  Variables: {}", variables.join(", ")));
        }
        lines
    }
}
