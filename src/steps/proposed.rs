//! What a pull request proposes for the configuration that judges it. `environments/` and
//! `policies/` are read from the default branch while a change is reviewed, so edits to them are
//! not in force until they merge; a reviewer still has to see them. This file lists the files the
//! checkout changes, adds or removes in those folders against the default branch's tree, and runs
//! the proposed policies' unit tests (`sluice policy test`). Pure apart from reading the two trees.

use std::collections::BTreeMap;
use std::path::Path;

/// The folders whose content decides instead of the commit under test.
const AUTHORITY_FOLDERS: [&str; 2] = ["environments", "policies"];

/// The proposed edits, as Markdown for the pull-request comment; `None` when there are none.
pub fn describe(authority_tree: &Path, workspace: &Path) -> Option<String> {
    let before = files_under(authority_tree);
    let after = files_under(workspace);
    let mut lines = Vec::new();
    for (path, contents) in &after {
        match before.get(path) {
            None => lines.push(format!("- added `{path}`")),
            Some(old) if old != contents => lines.push(format!("- changed `{path}`")),
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|path| !after.contains_key(*path)) {
        lines.push(format!("- removed `{path}`"));
    }
    if lines.is_empty() {
        return None;
    }
    let tests = match crate::policy::load_sources(&workspace.join("policies"))
        .and_then(|sources| crate::policy::run_tests(&sources))
    {
        Ok(report) if report.results.is_empty() => "no policy tests".to_owned(),
        Ok(report) => format!(
            "`sluice policy test` on the proposed policies: {} passed, {} failed, {} errors",
            report.passed_count(),
            report.failed_count(),
            report.error_count()
        ),
        Err(errors) => format!(
            "`sluice policy test` on the proposed policies could not load them: {}",
            errors.to_string().lines().next().unwrap_or_default()
        ),
    };
    Some(format!(
        "This change edits the configuration that judges changes. The edits take effect when it \
         merges; until then its plans, gates and policies come from the default branch.\n\n{}\n\n{}",
        lines.join("\n"),
        tests
    ))
}

/// Every file under the authority folders of a tree, by relative path.
fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending: Vec<std::path::PathBuf> = AUTHORITY_FOLDERS
        .iter()
        .map(|folder| root.join(folder))
        .collect();
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file()
                && let (Ok(relative), Ok(contents)) =
                    (path.strip_prefix(root), std::fs::read(&path))
            {
                files.insert(relative.to_string_lossy().into_owned(), contents);
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let directory = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let full = directory.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, contents).unwrap();
        }
        directory
    }

    #[test]
    fn edits_to_environments_and_policies_are_listed_with_the_proposed_tests() {
        let base = tree(&[
            ("environments/dev.yaml", "name: dev\n"),
            ("policies/guard.rego", "package guard\n"),
            ("src/app.py", "print(1)\n"),
        ]);
        let head = tree(&[
            (
                "environments/dev.yaml",
                "name: dev\ngates: { approvals: 0 }\n",
            ),
            ("policies/extra.rego", "package extra\n"),
            ("src/app.py", "print(2)\n"),
        ]);
        let text = describe(base.path(), head.path()).expect("edits are described");
        assert!(text.contains("- changed `environments/dev.yaml`"), "{text}");
        assert!(text.contains("- added `policies/extra.rego`"), "{text}");
        assert!(text.contains("- removed `policies/guard.rego`"), "{text}");
        assert!(!text.contains("app.py"), "{text}");
        assert!(text.contains("no policy tests"), "{text}");
    }

    #[test]
    fn an_unchanged_configuration_proposes_nothing() {
        let base = tree(&[("policies/guard.rego", "package guard\n")]);
        let head = tree(&[("policies/guard.rego", "package guard\n")]);
        assert_eq!(describe(base.path(), head.path()), None);
    }
}
