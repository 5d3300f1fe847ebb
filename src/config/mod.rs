//! Pipeline, environment and server configuration: typed schemas and a loader that reports
//! every problem at once as `path:line:column: message`. Pure: callers hand in file contents,
//! read from disk (`sluice validate`) or from git at a commit (the server).

pub mod build;
pub mod drift;
pub mod environment;
pub mod expr;
pub mod glob;
pub mod runner;
pub mod section;
pub mod server;
pub mod untrusted;
pub mod workflow;

mod de;
mod graph;
mod load;
mod located;
mod messages;
mod recover;
mod validate;
mod validate_environment;
mod validate_run;
pub mod validate_server;
mod yaml;

pub use load::{Project, load_project, load_server_config, read_project_dir};
pub use located::PathPart;
pub use validate::PULL_REQUEST_TYPES;

use serde::{Deserialize, Serialize};
use std::fmt;

/// One configuration file's contents, with its path relative to the repository root
/// (`workflows/platform.yaml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub contents: Vec<u8>,
}

/// A parsed configuration document and the file it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Loaded<T> {
    pub path: String,
    pub value: T,
}

/// One problem found in the configuration, located in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: u32,
    pub column: u32,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{}:{}: {}",
            self.path,
            self.line.max(1),
            self.column.max(1),
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(formatter, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}
