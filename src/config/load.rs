//! The entry points: a repository's configuration files in, a [`Project`] with every problem
//! out; the server configuration file in, a [`ServerConfig`] or every problem out. Decides which
//! files count and in what order problems are listed; the checks themselves live beside it.

use crate::config::environment::Environment;
use crate::config::messages::{DocumentKind, at, problem_diagnostics};
use crate::config::recover::decode;
use crate::config::server::ServerConfig;
use crate::config::validate::{check_pipeline_names, check_workflow};
use crate::config::validate_environment::check_environments;
use crate::config::validate_run::check_run_scripts;
use crate::config::validate_server::check_server;
use crate::config::workflow::Workflow;
use crate::config::yaml::{self, Node, NodeValue, Position};
use crate::config::{Diagnostic, Loaded, SourceFile};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Everything found in one repository's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    /// Only the files that loaded cleanly: no diagnostic names them.
    pub workflows: Vec<Loaded<crate::config::workflow::Workflow>>,
    pub environments: Vec<Loaded<crate::config::environment::Environment>>,
    /// Every problem, sorted by path, line, column.
    pub diagnostics: Vec<Diagnostic>,
}

/// The directories whose YAML files make up a repository's configuration.
const WORKFLOWS_DIRECTORY: &str = "workflows";
const ENVIRONMENTS_DIRECTORY: &str = "environments";

/// A file decoded as far as it would go, with its tree for locating later problems.
struct Decoded<T> {
    path: String,
    value: T,
    tree: Node,
}

/// Pure: parses and validates the given files (paths like `workflows/ci.yaml`,
/// `environments/dev.yaml`). Files under other directories are ignored.
pub fn load_project(files: &[SourceFile]) -> Project {
    let mut ordered: Vec<&SourceFile> = files.iter().collect();
    ordered.sort_by(|left, right| left.path.cmp(&right.path));
    let mut diagnostics = Vec::new();
    let mut pipelines: Vec<Decoded<Workflow>> = Vec::new();
    let mut environments: Vec<Decoded<Environment>> = Vec::new();
    for file in ordered {
        match document_kind(&file.path) {
            Some(DocumentKind::Pipeline) => {
                let decoded = decode_file::<Workflow>(
                    &file.path,
                    &file.contents,
                    DocumentKind::Pipeline,
                    &mut diagnostics,
                );
                if let Some(decoded) = decoded {
                    diagnostics.extend(check_workflow(
                        &decoded.path,
                        &decoded.value,
                        &decoded.tree,
                    ));
                    let text = String::from_utf8_lossy(&file.contents);
                    diagnostics.extend(check_run_scripts(
                        &decoded.path,
                        &text,
                        &decoded.value,
                        &decoded.tree,
                    ));
                    pipelines.push(decoded);
                }
            }
            Some(DocumentKind::Environment) => {
                let decoded = decode_file::<Environment>(
                    &file.path,
                    &file.contents,
                    DocumentKind::Environment,
                    &mut diagnostics,
                );
                environments.extend(decoded);
            }
            _ => {}
        }
    }
    let pipeline_views: Vec<(&str, &Workflow, &Node)> = pipelines
        .iter()
        .map(|decoded| (decoded.path.as_str(), &decoded.value, &decoded.tree))
        .collect();
    diagnostics.extend(check_pipeline_names(&pipeline_views));
    let environment_views: Vec<(&str, &Environment, &Node)> = environments
        .iter()
        .map(|decoded| (decoded.path.as_str(), &decoded.value, &decoded.tree))
        .collect();
    diagnostics.extend(check_environments(&environment_views));
    sort(&mut diagnostics);
    let is_clean = |path: &str| !diagnostics.iter().any(|diagnostic| diagnostic.path == path);
    Project {
        workflows: keep_clean(pipelines, &is_clean),
        environments: keep_clean(environments, &is_clean),
        diagnostics,
    }
}

fn keep_clean<T>(decoded: Vec<Decoded<T>>, is_clean: &dyn Fn(&str) -> bool) -> Vec<Loaded<T>> {
    decoded
        .into_iter()
        .filter(|decoded| is_clean(&decoded.path))
        .map(|decoded| Loaded {
            path: decoded.path,
            value: decoded.value,
        })
        .collect()
}

/// `workflows/NAME.yaml` is a pipeline, `environments/NAME.yml` an environment; anything else,
/// including files in subdirectories, is not configuration.
fn document_kind(path: &str) -> Option<DocumentKind> {
    let (directory, file_name) = path.split_once('/')?;
    if file_name.contains('/') || !is_yaml_file_name(file_name) {
        return None;
    }
    match directory {
        WORKFLOWS_DIRECTORY => Some(DocumentKind::Pipeline),
        ENVIRONMENTS_DIRECTORY => Some(DocumentKind::Environment),
        _ => None,
    }
}

fn is_yaml_file_name(file_name: &str) -> bool {
    let stem_and_extension = file_name
        .strip_suffix(".yaml")
        .or_else(|| file_name.strip_suffix(".yml"));
    stem_and_extension.is_some_and(|stem| !stem.is_empty())
}

/// Reads `DIR/workflows/*.{yaml,yml}` and `DIR/environments/*.{yaml,yml}` (sorted by name),
/// returning paths relative to DIR. A missing directory is not an error (empty list).
pub fn read_project_dir(dir: &Path) -> std::io::Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    for directory in [ENVIRONMENTS_DIRECTORY, WORKFLOWS_DIRECTORY] {
        let entries = match std::fs::read_dir(dir.join(directory)) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if !is_yaml_file_name(&file_name) || !entry.path().is_file() {
                continue;
            }
            files.push(SourceFile {
                path: format!("{directory}/{file_name}"),
                contents: std::fs::read(entry.path())?,
            });
        }
    }
    files.sort_by(|left, right| left.path.cmp(&right.path));
    Ok(files)
}

/// Loads the server configuration file; every problem located. An empty file means all
/// defaults.
pub fn load_server_config(path: &Path) -> Result<ServerConfig, Vec<Diagnostic>> {
    let shown_path = path.display().to_string();
    let contents = std::fs::read(path).map_err(|error| {
        vec![at(
            &shown_path,
            Position::default(),
            format!("cannot read the server configuration: {error}"),
            Some("check the path given with `--config`".to_string()),
        )]
    })?;
    let mut diagnostics = Vec::new();
    let decoded = decode_file::<ServerConfig>(
        &shown_path,
        &contents,
        DocumentKind::Server,
        &mut diagnostics,
    );
    let Some(decoded) = decoded else {
        sort(&mut diagnostics);
        return Err(diagnostics);
    };
    diagnostics.extend(check_server(&shown_path, &decoded.value, &decoded.tree));
    if diagnostics.is_empty() {
        Ok(decoded.value)
    } else {
        sort(&mut diagnostics);
        Err(diagnostics)
    }
}

/// Reads one file as far as it goes: text, YAML, then the typed value. Problems go to
/// `diagnostics`; the value comes back whenever the file decoded at all.
fn decode_file<T: DeserializeOwned + MaybeEmpty>(
    path: &str,
    contents: &[u8],
    kind: DocumentKind,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Decoded<T>> {
    let Ok(text) = std::str::from_utf8(contents) else {
        diagnostics.push(at(
            path,
            Position::default(),
            "the file is not UTF-8 text".to_string(),
            Some("save it as UTF-8".to_string()),
        ));
        return None;
    };
    let mut tree = match yaml::parse(text) {
        Ok(tree) => tree,
        Err(syntax_error) => {
            diagnostics.push(at(
                path,
                syntax_error.position,
                format!("invalid YAML: {}", syntax_error.message),
                None,
            ));
            return None;
        }
    };
    if tree.value == NodeValue::Null
        && let Some(value) = T::for_empty_file()
    {
        return Some(Decoded {
            path: path.to_string(),
            value,
            tree,
        });
    }
    let (value, problems) = decode::<T>(&mut tree);
    for problem in problems {
        diagnostics.extend(problem_diagnostics(path, kind, problem));
    }
    value.map(|value| Decoded {
        path: path.to_string(),
        value,
        tree,
    })
}

/// What an empty file stands for: nothing (a mistake, reported) or the type's defaults.
trait MaybeEmpty: Sized {
    fn for_empty_file() -> Option<Self> {
        None
    }
}

impl MaybeEmpty for Workflow {}

impl MaybeEmpty for Environment {}

impl MaybeEmpty for ServerConfig {
    fn for_empty_file() -> Option<Self> {
        Some(ServerConfig::default())
    }
}

fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|left, right| {
        (&left.path, left.line, left.column).cmp(&(&right.path, right.line, right.column))
    });
}
