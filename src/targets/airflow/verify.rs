//! Verification after a switch: waits until Airflow's DAG processor has parsed every changed DAG
//! file, then requires zero import errors for the deployed files and every expected DAG id
//! present. The judgement (`judge`) is pure over one snapshot of the API; `wait_until_parsed`
//! polls it. Knows the API's shapes, nothing of folders or rollback.

use super::api::{AirflowApi, ApiDag, ApiImportError};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// What the deploy expects Airflow to show.
#[derive(Clone, Debug, Default)]
pub struct Expectation {
    /// Every deployed file (relative to the DAG folder).
    pub files: BTreeSet<String>,
    /// Files whose content is new in this version: Airflow must parse these again.
    pub changed_files: BTreeSet<String>,
    /// File → DAG ids it defines (from validation). Without validation: the files that look
    /// like DAG files map to no ids, and any DAG parsed from them counts.
    pub dags_by_file: BTreeMap<String, Vec<String>>,
    /// When the symlink switched (this machine's clock; Airflow's must agree).
    pub switched_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Parsed, no import errors, every DAG present.
    Verified,
    /// Some changed files are not parsed yet.
    Waiting(Vec<String>),
    /// Will not get better: import errors or missing DAGs once everything was parsed.
    Failed(String),
}

/// Maps an API file name (relative in Airflow 3, absolute in Airflow 2) to a path relative to
/// the DAG folder, through the folder's symlink or a version directory.
pub fn relative_file(filename: &str, folder: &str, versions: &str) -> String {
    let trimmed = |path: &str| path.trim_end_matches('/').to_owned();
    if let Some(rest) = filename.strip_prefix(&format!("{}/", trimmed(folder))) {
        return rest.to_owned();
    }
    if let Some(rest) = filename.strip_prefix(&format!("{}/", trimmed(versions))) {
        return rest
            .split_once('/')
            .map(|(_, file)| file.to_owned())
            .unwrap_or_default();
    }
    filename.to_owned()
}

pub fn judge(
    expectation: &Expectation,
    dags: &[ApiDag],
    import_errors: &[ApiImportError],
    folder: &str,
    versions: &str,
) -> Verdict {
    let parsed_after_switch =
        |time: &Option<DateTime<Utc>>| time.is_some_and(|time| time >= expectation.switched_at);
    let ours: Vec<(String, &ApiImportError)> = import_errors
        .iter()
        .map(|error| (relative_file(&error.filename, folder, versions), error))
        .filter(|(file, _)| expectation.files.contains(file))
        .collect();
    let dag_file = |dag: &ApiDag| {
        dag.relative_fileloc
            .clone()
            .or_else(|| {
                dag.fileloc
                    .as_deref()
                    .map(|fileloc| relative_file(fileloc, folder, versions))
            })
            .unwrap_or_default()
    };
    let dags_by_id: BTreeMap<&str, &ApiDag> =
        dags.iter().map(|dag| (dag.dag_id.as_str(), dag)).collect();

    // A new import error for a changed file will not go away by waiting.
    let fresh_errors: Vec<String> = ours
        .iter()
        .filter(|(file, error)| {
            expectation.changed_files.contains(file) && parsed_after_switch(&error.timestamp)
        })
        .map(|(file, error)| format!("{file}: {}", last_lines(&error.stack_trace)))
        .collect();
    if !fresh_errors.is_empty() {
        return Verdict::Failed(format!(
            "airflow could not import {} deployed DAG file(s):\n  {}",
            fresh_errors.len(),
            fresh_errors.join("\n  ")
        ));
    }

    let mut waiting = Vec::new();
    for file in &expectation.changed_files {
        let Some(expected_ids) = expectation.dags_by_file.get(file) else {
            continue;
        };
        let parsed = if expected_ids.is_empty() {
            dags.iter()
                .any(|dag| &dag_file(dag) == file && parsed_after_switch(&dag.last_parsed_time))
        } else {
            expected_ids.iter().all(|dag_id| {
                dags_by_id
                    .get(dag_id.as_str())
                    .is_some_and(|dag| parsed_after_switch(&dag.last_parsed_time))
            })
        };
        if !parsed {
            waiting.push(file.clone());
        }
    }
    if !waiting.is_empty() {
        return Verdict::Waiting(waiting);
    }
    if !ours.is_empty() {
        let messages: Vec<String> = ours
            .iter()
            .map(|(file, error)| format!("{file}: {}", last_lines(&error.stack_trace)))
            .collect();
        return Verdict::Failed(format!(
            "airflow reports import errors for {} deployed DAG file(s):\n  {}",
            messages.len(),
            messages.join("\n  ")
        ));
    }
    let missing: Vec<&str> = expectation
        .dags_by_file
        .values()
        .flatten()
        .map(String::as_str)
        .filter(|dag_id| !dags_by_id.contains_key(dag_id))
        .collect();
    if !missing.is_empty() {
        return Verdict::Failed(format!(
            "airflow parsed the new DAG files but does not list DAG(s) {}",
            missing.join(", ")
        ));
    }
    Verdict::Verified
}

fn last_lines(trace: &str) -> String {
    let lines: Vec<&str> = trace
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// Polls the API until `judge` says Verified or Failed, or `timeout` passes.
pub async fn wait_until_parsed(
    api: &AirflowApi,
    expectation: &Expectation,
    folder: &str,
    versions: &str,
    timeout: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let mut poll_interval = Duration::from_millis(500);
    loop {
        let snapshot = async {
            Ok::<_, super::api::ApiError>((api.dags().await?, api.import_errors().await?))
        }
        .await;
        let waiting = match snapshot {
            Ok((dags, import_errors)) => {
                match judge(expectation, &dags, &import_errors, folder, versions) {
                    Verdict::Verified => return Ok(()),
                    Verdict::Failed(message) => return Err(message),
                    Verdict::Waiting(files) => files.join(", "),
                }
            }
            Err(error) => error.to_string(),
        };
        if started.elapsed() >= timeout {
            return Err(format!(
                "airflow's DAG processor did not parse the new version within {timeout:?} (still waiting for: {waiting}); check that the scheduler and dag-processor run, or raise `airflow.parse_timeout`"
            ));
        }
        tokio::time::sleep(poll_interval).await;
        poll_interval = (poll_interval * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0)
    }

    fn dag(dag_id: &str, file: &str, parsed: i64) -> ApiDag {
        ApiDag {
            dag_id: dag_id.into(),
            is_paused: Some(true),
            fileloc: None,
            relative_fileloc: Some(file.into()),
            last_parsed_time: at(parsed),
        }
    }

    fn error(file: &str, when: i64) -> ApiImportError {
        ApiImportError {
            filename: file.into(),
            timestamp: at(when),
            stack_trace: "Traceback\nNameError: boom".into(),
        }
    }

    fn expectation(changed: &[&str], dags: &[(&str, &[&str])]) -> Expectation {
        Expectation {
            files: ["a.py", "b.py", "util.py"]
                .iter()
                .map(|file| file.to_string())
                .collect(),
            changed_files: changed.iter().map(|file| file.to_string()).collect(),
            dags_by_file: dags
                .iter()
                .map(|(file, ids)| {
                    (
                        file.to_string(),
                        ids.iter().map(|id| id.to_string()).collect(),
                    )
                })
                .collect(),
            switched_at: at(0).unwrap(),
        }
    }

    fn check(expectation: Expectation, dags: &[ApiDag], errors: &[ApiImportError], expect: &str) {
        let verdict = judge(
            &expectation,
            dags,
            errors,
            "/srv/dags",
            "/srv/dags.versions",
        );
        let text = format!("{verdict:?}");
        let expect = expect.replace('\n', "\\n");
        assert!(text.contains(&expect), "got {text}, want {expect}");
    }

    #[test]
    fn verdicts_follow_what_the_processor_parsed() {
        let both = expectation(&["a.py"], &[("a.py", &["alpha"]), ("b.py", &["beta"])]);
        check(
            both.clone(),
            &[dag("alpha", "a.py", 5), dag("beta", "b.py", -50)],
            &[],
            "Verified",
        );
        check(
            both.clone(),
            &[dag("alpha", "a.py", -5), dag("beta", "b.py", -50)],
            &[],
            "Waiting([\"a.py\"])",
        );
        check(
            both.clone(),
            &[dag("alpha", "a.py", -5)],
            &[error("a.py", 3)],
            "could not import 1 deployed DAG file(s):\n  a.py: Traceback | NameError: boom",
        );
        check(
            both.clone(),
            &[dag("alpha", "a.py", 5)],
            &[],
            "does not list DAG(s) beta",
        );
        check(
            both.clone(),
            &[dag("alpha", "a.py", 5), dag("beta", "b.py", -50)],
            &[error("/srv/dags.versions/0123/b.py", -40)],
            "reports import errors for 1",
        );
        check(
            both,
            &[dag("alpha", "a.py", 5), dag("beta", "b.py", -50)],
            &[error("other/c.py", 3)],
            "Verified",
        );
        let unvalidated = expectation(&["a.py", "util.py"], &[("a.py", &[])]);
        check(
            unvalidated.clone(),
            &[dag("whatever", "a.py", 2)],
            &[],
            "Verified",
        );
        check(unvalidated, &[dag("whatever", "a.py", -2)], &[], "Waiting");
    }

    #[test]
    fn file_names_map_through_the_symlink_and_the_version_directories() {
        assert_eq!(
            relative_file("/srv/dags/x/a.py", "/srv/dags", "/srv/dags.versions"),
            "x/a.py"
        );
        assert_eq!(
            relative_file(
                "/srv/dags.versions/abc/x/a.py",
                "/srv/dags",
                "/srv/dags.versions"
            ),
            "x/a.py"
        );
        assert_eq!(
            relative_file("x/a.py", "/srv/dags", "/srv/dags.versions"),
            "x/a.py"
        );
    }
}
