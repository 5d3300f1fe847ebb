//! Pure views of a DAG deploy for other layers: the Airflow part of the policy input
//! (`input.airflow`, whose `dags` the default policies under `policies/airflow/` read), the
//! per-file changes between two versions, and the pull-request comment section. No IO: callers
//! pass manifests, sources and validations.

use super::folder::Manifest;
use super::validate::Validation;
use crate::deploy::{Change, ChangeAction};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `input.airflow` for one environment (the policy input is `{"airflow": this, ...}`): every
/// DAG with its facts, the file it comes from (as a repository path under `dags_path`), the
/// file's sha256 and text, plus import errors and the Variables the environment sets.
///
/// `sources` maps a file relative to the DAG folder to its text; `manifest` to its sha256.
pub fn policy_input(
    environment: &str,
    dags_path: &str,
    validation: Option<&Validation>,
    manifest: &Manifest,
    sources: &BTreeMap<String, String>,
    variables: &BTreeMap<String, String>,
) -> Value {
    let repository_path = |file: &str| format!("{}/{file}", dags_path.trim_end_matches('/'));
    let dags: Vec<Value> = validation
        .map(|validation| validation.dags.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|dag| {
            let mut entry = json!({
                "dag_id": dag.dag_id,
                "file": repository_path(&dag.file),
                "tags": dag.tags,
                "schedule": dag.schedule,
                "sha256": manifest.get(&dag.file),
                "source": sources.get(&dag.file).cloned().unwrap_or_default(),
            });
            // Absent, not null, when unknown: the policies test `not dag.owner`.
            if let Some(owner) = &dag.owner {
                entry["owner"] = json!(owner);
            }
            if let Some(max_active_runs) = dag.max_active_runs {
                entry["max_active_runs"] = json!(max_active_runs);
            }
            entry
        })
        .collect();
    let import_errors: Vec<Value> = validation
        .map(|validation| validation.import_errors.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|error| json!({"file": repository_path(&error.file), "message": error.message}))
        .collect();
    let files: Vec<Value> = manifest
        .iter()
        .map(|(file, digest)| json!({"file": repository_path(file), "sha256": digest}))
        .collect();
    // A folder that was not imported (validation off, or a pull request's preview, which never
    // runs code under review on the server) is judged on its Python files' text alone.
    let unimported: Vec<Value> = if validation.is_some() {
        Vec::new()
    } else {
        sources
            .iter()
            .filter(|(file, _)| file.ends_with(".py"))
            .map(|(file, source)| {
                json!({"file": repository_path(file), "sha256": manifest.get(file), "source": source})
            })
            .collect()
    };
    json!({
        "environment": environment,
        "validated": validation.is_some(),
        "unimported": unimported,
        "dags": dags,
        "import_errors": import_errors,
        "files": files,
        "variables": variables,
    })
}

/// Files added, changed and removed from `previous` to `next`, sorted by path.
pub fn file_changes(previous: &Manifest, next: &Manifest) -> Vec<Change> {
    let mut changes = Vec::new();
    for (file, digest) in next {
        match previous.get(file) {
            None => changes.push(Change {
                address: file.clone(),
                action: ChangeAction::Create,
                detail: None,
            }),
            Some(old) if old != digest => changes.push(Change {
                address: file.clone(),
                action: ChangeAction::Update,
                detail: Some(format!(
                    "sha256 {} → {}",
                    &old[..12.min(old.len())],
                    &digest[..12.min(digest.len())]
                )),
            }),
            Some(_) => {}
        }
    }
    for file in previous.keys().filter(|file| !next.contains_key(*file)) {
        changes.push(Change {
            address: file.clone(),
            action: ChangeAction::Delete,
            detail: None,
        });
    }
    changes.sort_by(|left, right| left.address.cmp(&right.address));
    changes
}

/// The Airflow part of a pull-request comment for one environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentSection {
    pub environment: String,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// File → the DAG ids it defines (from validation).
    pub dags_by_file: BTreeMap<String, Vec<String>>,
    /// None when validation did not run.
    pub validation: Option<ValidationSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationSummary {
    pub airflow_version: String,
    pub dag_count: usize,
    /// File → the trace's last lines.
    pub import_errors: BTreeMap<String, String>,
}

pub fn comment_section(
    environment: &str,
    previous: &Manifest,
    next: &Manifest,
    validation: Option<&Validation>,
) -> CommentSection {
    let mut section = CommentSection {
        environment: environment.to_owned(),
        ..CommentSection::default()
    };
    for change in file_changes(previous, next) {
        match change.action {
            ChangeAction::Create => section.added.push(change.address),
            ChangeAction::Delete => section.removed.push(change.address),
            _ => section.changed.push(change.address),
        }
    }
    if let Some(validation) = validation {
        for dag in &validation.dags {
            section
                .dags_by_file
                .entry(dag.file.clone())
                .or_default()
                .push(dag.dag_id.clone());
        }
        section.validation = Some(ValidationSummary {
            airflow_version: validation.airflow_version.clone(),
            dag_count: validation.dags.len(),
            import_errors: validation
                .import_errors
                .iter()
                .map(|error| (error.file.clone(), error.message.clone()))
                .collect(),
        });
    }
    section
}

impl CommentSection {
    pub fn to_markdown(&self) -> String {
        let mut text = format!("#### Airflow DAGs · {}\n\n", self.environment);
        let describe = |file: &String| match self.dags_by_file.get(file) {
            Some(ids) => format!(
                "`{file}` ({})",
                ids.iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("`{file}`"),
        };
        if self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty() {
            text.push_str("No DAG file changes.\n");
        }
        for (label, files) in [
            ("Added", &self.added),
            ("Changed", &self.changed),
            ("Removed", &self.removed),
        ] {
            if !files.is_empty() {
                text.push_str(&format!(
                    "- {label}: {}\n",
                    files.iter().map(describe).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        match &self.validation {
            None => text.push_str("\nValidation: not run (`airflow.validate: false`).\n"),
            Some(summary) if summary.import_errors.is_empty() => text.push_str(&format!(
                "\n✅ Validation: {} DAG(s) import cleanly with Airflow {}.\n",
                summary.dag_count, summary.airflow_version
            )),
            Some(summary) => {
                text.push_str(&format!(
                    "\n❌ Validation: {} file(s) fail to import with Airflow {}:\n",
                    summary.import_errors.len(),
                    summary.airflow_version
                ));
                for (file, message) in &summary.import_errors {
                    text.push_str(&format!("\n`{file}`\n```\n{message}\n```\n"));
                }
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::airflow::validate::{DagFacts, ImportError};

    fn manifest(entries: &[(&str, &str)]) -> Manifest {
        entries
            .iter()
            .map(|(file, digest)| (file.to_string(), digest.to_string()))
            .collect()
    }

    fn validation() -> Validation {
        Validation {
            airflow_version: "3.1.8".into(),
            dags: vec![DagFacts {
                dag_id: "train".into(),
                file: "train.py".into(),
                owner: None,
                schedule: Some("@daily".into()),
                tags: vec![],
                max_active_runs: Some(4),
                description: None,
            }],
            import_errors: vec![ImportError {
                file: "broken.py".into(),
                message: "ModuleNotFoundError: No module named 'x'".into(),
            }],
        }
    }

    #[test]
    fn changes_and_the_comment_name_every_file_and_the_dags_in_it() {
        let previous = manifest(&[
            ("train.py", "aaaaaaaaaaaaaaaa"),
            ("gone.py", "b"),
            ("same.py", "c"),
        ]);
        let next = manifest(&[
            ("train.py", "dddddddddddddddd"),
            ("broken.py", "e"),
            ("same.py", "c"),
        ]);
        let section = comment_section("staging", &previous, &next, Some(&validation()));
        assert_eq!(
            (
                section.added.clone(),
                section.changed.clone(),
                section.removed.clone()
            ),
            (
                vec!["broken.py".to_string()],
                vec!["train.py".to_string()],
                vec!["gone.py".to_string()]
            )
        );
        let markdown = section.to_markdown();
        for fragment in [
            "Airflow DAGs · staging",
            "- Changed: `train.py` (`train`)",
            "- Removed: `gone.py`",
            "❌ Validation: 1 file(s)",
            "No module named 'x'",
        ] {
            assert!(
                markdown.contains(fragment),
                "{fragment} missing from:\n{markdown}"
            );
        }
        assert!(
            comment_section("dev", &next, &next, None)
                .to_markdown()
                .contains("No DAG file changes.\n\nValidation: not run")
        );
    }

    #[test]
    fn the_policy_input_names_repository_paths_and_leaves_an_unknown_owner_out() {
        let next = manifest(&[("train.py", "d")]);
        let sources = BTreeMap::from([("train.py".to_string(), "text".to_string())]);
        let input = policy_input(
            "dev",
            "platform/dags/",
            Some(&validation()),
            &next,
            &sources,
            &BTreeMap::new(),
        );
        let dag = &input["dags"][0];
        assert_eq!(dag["file"], "platform/dags/train.py");
        assert_eq!(dag["sha256"], "d");
        assert_eq!(dag["source"], "text");
        assert_eq!(dag["max_active_runs"], 4);
        assert!(dag.get("owner").is_none());
        assert_eq!(input["import_errors"][0]["file"], "platform/dags/broken.py");
    }
}
