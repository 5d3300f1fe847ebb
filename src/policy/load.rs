//! Reading a policy directory: every `.rego` file (policies, and `*_test.rego` tests apart) and
//! every `.json`/`.yaml`/`.yml` data file below it, in a stable order, hidden folders skipped.
//! A `.rego` file that reads a part of `input` sluice never gives fails the load (`lint`).
//! The only part of `policy` that touches the file system; it does not parse Rego.

use super::data::{merge_data, parse_data_file};
use super::error::{PolicyError, PolicyErrorKind, PolicyErrors};
use super::lint::input_references;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One Rego file: the path it is reported under and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// Everything a policy directory holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicySources {
    /// Policy modules (`*.rego` except tests).
    pub modules: Vec<SourceFile>,
    /// Test modules (`*_test.rego`).
    pub tests: Vec<SourceFile>,
    /// All data files merged, as conftest merges them.
    pub data: Value,
}

impl PolicySources {
    /// Sources from memory, for tests and callers that hold the text already.
    pub fn from_memory(modules: &[(&str, &str)], tests: &[(&str, &str)], data: Value) -> Self {
        let files = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(path, text)| SourceFile {
                    path: (*path).to_owned(),
                    text: (*text).to_owned(),
                })
                .collect()
        };
        PolicySources {
            modules: files(modules),
            tests: files(tests),
            data,
        }
    }
}

/// Reads a policy directory; every unreadable or malformed file, and every reference to a part
/// of `input` that is not a domain, is reported, not only the first.
pub fn load_sources(directory: &Path) -> Result<PolicySources, PolicyErrors> {
    let directory_name = directory.display().to_string();
    if !directory.is_dir() {
        return Err(PolicyErrors(vec![PolicyError::new(
            PolicyErrorKind::Read,
            directory_name,
            "no such policy directory; pass the folder that holds the .rego files (--policies DIR)",
        )]));
    }
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    collect_files(directory, &mut paths, &mut errors);
    paths.sort();
    let mut sources = PolicySources {
        data: Value::Object(Default::default()),
        ..PolicySources::default()
    };
    for path in paths {
        let shown_path = path.display().to_string();
        let Some(extension) = path.extension().and_then(|extension| extension.to_str()) else {
            continue;
        };
        if !matches!(extension, "rego" | "json" | "yaml" | "yml") {
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                errors.push(PolicyError::new(
                    PolicyErrorKind::Read,
                    shown_path,
                    format!("{error}; check the file's permissions"),
                ));
                continue;
            }
        };
        if extension == "rego" {
            let file = SourceFile {
                path: shown_path.clone(),
                text,
            };
            errors.extend(input_references(&file));
            if shown_path.ends_with("_test.rego") {
                sources.tests.push(file);
            } else {
                sources.modules.push(file);
            }
            continue;
        }
        match parse_data_file(&shown_path, &text) {
            Ok(document) => errors.extend(merge_data(&mut sources.data, document, &shown_path)),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(sources)
    } else {
        Err(PolicyErrors(errors))
    }
}

fn collect_files(directory: &Path, paths: &mut Vec<PathBuf>, errors: &mut Vec<PolicyError>) {
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) => {
            errors.push(PolicyError::new(
                PolicyErrorKind::Read,
                directory.display().to_string(),
                format!("{error}; check the folder's permissions"),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, paths, errors);
        } else {
            paths.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rego_tests_and_data_are_told_apart() {
        let directory = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = directory.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("b/tags.rego", "package b");
        write("b/tags_test.rego", "package b_test");
        write("a/budgets.yaml", "budgets: {dev: small}\n");
        write("c/limits.json", "{\"limits\": {\"max\": 3}}");
        write(".git/ignored.rego", "not rego");
        write("README.md", "# ignored");
        let sources = load_sources(directory.path()).unwrap();
        assert_eq!(sources.modules.len(), 1);
        assert!(sources.modules[0].path.ends_with("b/tags.rego"));
        assert_eq!(sources.tests.len(), 1);
        assert_eq!(
            sources.data,
            serde_json::json!({"budgets": {"dev": "small"}, "limits": {"max": 3}})
        );
    }

    #[test]
    fn a_policy_reading_the_plan_as_the_whole_input_fails_the_load_with_its_fix() {
        let directory = tempfile::tempdir().unwrap();
        let policy = "package old\nimport rego.v1\n\ndeny contains change.address if {\n  some change in input.resource_changes\n  change.type == \"aws_instance\"\n}\n";
        std::fs::write(directory.path().join("old.rego"), policy).unwrap();
        std::fs::write(
            directory.path().join("good.rego"),
            "package good\nimport rego.v1\ndeny contains \"x\" if input.terraform.errored\n",
        )
        .unwrap();
        let errors = load_sources(directory.path()).unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        let shown = errors.to_string();
        let expected = format!(
            "{}:5:18: unknown input: `input.resource_changes` is not part of sluice's policy input; the Terraform plan is `input.terraform` (write `input.terraform.resource_changes`)",
            directory.path().join("old.rego").display()
        );
        assert_eq!(shown, expected);
        assert_eq!(errors.0[0].kind, PolicyErrorKind::Input);
    }

    #[test]
    fn a_missing_directory_says_what_to_pass() {
        let errors = load_sources(Path::new("/nonexistent/policies")).unwrap_err();
        assert!(errors.to_string().contains("--policies DIR"), "{errors}");
    }
}
