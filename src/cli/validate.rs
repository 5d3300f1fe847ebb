//! `sluice validate [DIR]`: every problem in one pass, exit 1 if there is any.

use crate::config;
use std::path::Path;

pub fn run(dir: &Path) -> anyhow::Result<bool> {
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a directory; give the repository's root",
            dir.display()
        );
    }
    let files = config::read_project_dir(dir)?;
    let project = config::load_project(&files);
    for diagnostic in &project.diagnostics {
        println!("{diagnostic}");
    }
    if project.diagnostics.is_empty() {
        println!(
            "{}: {} pipeline(s) and {} environment(s) are valid",
            dir.display(),
            project.workflows.len(),
            project.environments.len()
        );
        Ok(true)
    } else {
        let files_with_problems: std::collections::BTreeSet<&str> = project
            .diagnostics
            .iter()
            .map(|diagnostic| diagnostic.path.as_str())
            .collect();
        eprintln!(
            "{} problem(s) in {} file(s)",
            project.diagnostics.len(),
            files_with_problems.len()
        );
        Ok(false)
    }
}
