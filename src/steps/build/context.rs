//! The effective build context: the files of the context directory that `.dockerignore` keeps,
//! in sorted order, with their modes and sizes, plus the Dockerfile. Walking refuses symlinks
//! that point outside the context and reports every such link at once. It reads metadata only;
//! file contents are read later, in chunks, by the digest and the tar stream.

use super::ignore::IgnoreRules;
use super::tar::EntryType;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The name under which a Dockerfile from outside the context travels in the archive.
pub const OUTSIDE_DOCKERFILE_NAME: &str = ".sluice.Dockerfile";

/// One file, directory or symlink of the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextEntry {
    /// Relative to the context directory, `/`-separated.
    pub path: String,
    pub entry_type: EntryType,
    /// Permission bits (`0o755`).
    pub mode: u32,
    /// Bytes, for files.
    pub size: u64,
    pub modified_seconds: u64,
    /// For symlinks: the target as written in the link.
    pub link_target: Option<String>,
}

/// Where the Dockerfile travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerfileSource {
    /// A file of the context, by its relative path.
    InContext(String),
    /// Outside the context: its contents go into the archive as `OUTSIDE_DOCKERFILE_NAME`.
    Outside(Vec<u8>),
}

/// Everything that goes to the engine, without the contents.
#[derive(Clone, Debug)]
pub struct ContextPlan {
    pub root: PathBuf,
    pub entries: Vec<ContextEntry>,
    pub dockerfile: DockerfileSource,
    /// The Dockerfile's text, for the digest and for naming failed instructions.
    pub dockerfile_text: String,
}

impl ContextPlan {
    /// The `dockerfile` parameter of the engine's build call.
    pub fn dockerfile_name(&self) -> &str {
        match &self.dockerfile {
            DockerfileSource::InContext(path) => path,
            DockerfileSource::Outside(_) => OUTSIDE_DOCKERFILE_NAME,
        }
    }

    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|entry| entry.entry_type == EntryType::File)
            .count()
    }

    pub fn content_bytes(&self) -> u64 {
        self.entries.iter().map(|entry| entry.size).sum()
    }
}

/// Why the context cannot be sent; each names the path and says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    #[error(
        "build context `{0}` is not a directory of the commit; set `context:` to a directory relative to the repository root"
    )]
    MissingContext(String),
    #[error(
        "Dockerfile `{0}` does not exist in the commit; add it or set `dockerfile:` to its path relative to the repository root"
    )]
    MissingDockerfile(String),
    #[error("`{0}` leads outside the repository; use a path inside it")]
    OutsideRepository(String),
    #[error(
        "the build context `{context}` holds symlinks that point outside it, which the engine cannot follow: {links}; make them point inside the context or list them in .dockerignore"
    )]
    EscapingSymlinks { context: String, links: String },
    #[error("cannot read `{path}` in the build context: {message}")]
    Unreadable { path: String, message: String },
}

/// Walks `context` (relative to `workspace`) and reads its `.dockerignore`.
pub fn plan_context(
    workspace: &Path,
    context: &str,
    dockerfile: &str,
) -> Result<ContextPlan, ContextError> {
    let context_relative =
        normalise(context).ok_or_else(|| ContextError::OutsideRepository(context.to_owned()))?;
    let dockerfile_relative = normalise(dockerfile)
        .ok_or_else(|| ContextError::OutsideRepository(dockerfile.to_owned()))?;
    let root = workspace.join(&context_relative);
    let canonical_workspace = workspace
        .canonicalize()
        .map_err(|error| unreadable(workspace, &error))?;
    let canonical_root = root
        .canonicalize()
        .ok()
        .filter(|canonical| canonical.is_dir())
        .ok_or_else(|| ContextError::MissingContext(context.to_owned()))?;
    if !canonical_root.starts_with(&canonical_workspace) {
        return Err(ContextError::OutsideRepository(context.to_owned()));
    }
    let dockerfile_full = workspace.join(&dockerfile_relative);
    let dockerfile_bytes = match std::fs::read(&dockerfile_full) {
        Ok(bytes) if dockerfile_full.is_file() => bytes,
        _ => return Err(ContextError::MissingDockerfile(dockerfile.to_owned())),
    };
    let canonical_dockerfile = dockerfile_full
        .canonicalize()
        .map_err(|error| unreadable(&dockerfile_full, &error))?;
    if !canonical_dockerfile.starts_with(&canonical_workspace) {
        return Err(ContextError::OutsideRepository(dockerfile.to_owned()));
    }
    let mut rules = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(text) => IgnoreRules::parse(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
        Err(error) => return Err(unreadable(&root.join(".dockerignore"), &error)),
    };
    let dockerfile_in_context = dockerfile_full
        .strip_prefix(&root)
        .ok()
        .map(|relative| relative.to_string_lossy().replace('\\', "/"))
        .filter(|relative| !relative.is_empty());
    let dockerfile_source = match &dockerfile_in_context {
        Some(relative) => {
            rules.always_include(relative);
            rules.always_include(".dockerignore");
            DockerfileSource::InContext(relative.clone())
        }
        None => DockerfileSource::Outside(dockerfile_bytes.clone()),
    };
    let mut walk = Walk {
        rules: &rules,
        entries: Vec::new(),
        escaping_links: Vec::new(),
    };
    walk.directory(&root, "")?;
    if !walk.escaping_links.is_empty() {
        return Err(ContextError::EscapingSymlinks {
            context: context.to_owned(),
            links: walk.escaping_links.join(", "),
        });
    }
    let mut entries = walk.entries;
    entries.sort_by(|left, right| left.path.cmp(&right.path));
    Ok(ContextPlan {
        root,
        entries,
        dockerfile: dockerfile_source,
        dockerfile_text: String::from_utf8_lossy(&dockerfile_bytes).into_owned(),
    })
}

struct Walk<'a> {
    rules: &'a IgnoreRules,
    entries: Vec<ContextEntry>,
    escaping_links: Vec<String>,
}

impl Walk<'_> {
    fn directory(&mut self, directory: &Path, relative: &str) -> Result<(), ContextError> {
        let reader = std::fs::read_dir(directory).map_err(|error| unreadable(directory, &error))?;
        let mut children = Vec::new();
        for child in reader {
            let child = child.map_err(|error| unreadable(directory, &error))?;
            children.push(child.file_name());
        }
        children.sort();
        for name in children {
            let name_text = name.to_string_lossy();
            let child_relative = if relative.is_empty() {
                name_text.into_owned()
            } else {
                format!("{relative}/{name_text}")
            };
            let child_path = directory.join(&name);
            let metadata = std::fs::symlink_metadata(&child_path)
                .map_err(|error| unreadable(&child_path, &error))?;
            let excluded = self.rules.excludes(&child_relative);
            let file_type = metadata.file_type();
            if file_type.is_dir() {
                if excluded && !self.rules.has_exceptions() {
                    continue;
                }
                if !excluded {
                    self.entries.push(entry(
                        &child_relative,
                        EntryType::Directory,
                        &metadata,
                        None,
                    ));
                }
                self.directory(&child_path, &child_relative)?;
                continue;
            }
            if excluded {
                continue;
            }
            if file_type.is_symlink() {
                let target = std::fs::read_link(&child_path)
                    .map_err(|error| unreadable(&child_path, &error))?;
                let target_text = target.to_string_lossy().into_owned();
                if !link_stays_inside(&child_relative, &target_text) {
                    self.escaping_links
                        .push(format!("`{child_relative}` -> `{target_text}`"));
                    continue;
                }
                self.entries.push(entry(
                    &child_relative,
                    EntryType::Symlink,
                    &metadata,
                    Some(target_text),
                ));
            } else if file_type.is_file() {
                self.entries
                    .push(entry(&child_relative, EntryType::File, &metadata, None));
            }
            // Sockets, fifos and devices are not sent, as with the Docker CLI for a git tree.
        }
        Ok(())
    }
}

fn entry(
    path: &str,
    entry_type: EntryType,
    metadata: &std::fs::Metadata,
    link_target: Option<String>,
) -> ContextEntry {
    ContextEntry {
        path: path.to_owned(),
        entry_type,
        mode: metadata.permissions().mode() & 0o7777,
        size: if entry_type == EntryType::File {
            metadata.len()
        } else {
            0
        },
        modified_seconds: metadata.mtime().max(0) as u64,
        link_target,
    }
}

/// Whether a link at `link_path` (relative to the context) with `target` resolves, lexically,
/// to a place inside the context. Absolute targets never do: the engine would read them inside
/// the image, not from the commit.
fn link_stays_inside(link_path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let parent = link_path.rsplit_once('/').map_or("", |(parent, _)| parent);
    let joined = if parent.is_empty() {
        target.to_owned()
    } else {
        format!("{parent}/{target}")
    };
    normalise(&joined).is_some()
}

/// A relative `/`-path without `.` and `..`, or `None` when it climbs above its start.
fn normalise(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

fn unreadable(path: &Path, error: &std::io::Error) -> ContextError {
    ContextError::Unreadable {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_judged_lexically_from_their_directory() {
        let check = |link: &str, target: &str, inside: bool| {
            assert_eq!(
                link_stays_inside(link, target),
                inside,
                "{link} -> {target}"
            );
        };
        check("a", "b", true);
        check("dir/a", "../b", true);
        check("dir/a", "../../b", false);
        check("a", "../b", false);
        check("a", "/etc/passwd", false);
        check("dir/sub/a", "../x/./y", true);
    }

    fn write(root: &Path, path: &str, contents: &str) {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, contents).unwrap();
    }

    #[test]
    fn the_plan_keeps_what_dockerignore_keeps_and_always_the_dockerfile() {
        let workspace = tempfile::tempdir().unwrap();
        let root = workspace.path();
        write(root, "app/Dockerfile", "FROM scratch\n");
        write(root, "app/.dockerignore", "*\n!src\n");
        write(root, "app/src/main.py", "print(1)\n");
        write(root, "app/big.bin", "x");
        let plan = plan_context(root, "app", "app/Dockerfile").unwrap();
        let paths: Vec<&str> = plan
            .entries
            .iter()
            .map(|entry| entry.path.as_str())
            .collect();
        assert_eq!(
            paths,
            vec![".dockerignore", "Dockerfile", "src", "src/main.py"]
        );
        assert_eq!(plan.dockerfile_name(), "Dockerfile");
    }

    #[test]
    fn escaping_symlinks_are_all_named() {
        let workspace = tempfile::tempdir().unwrap();
        let root = workspace.path();
        write(root, "app/Dockerfile", "FROM scratch\n");
        std::os::unix::fs::symlink("../../etc", root.join("app/up")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("app/abs")).unwrap();
        std::os::unix::fs::symlink("Dockerfile", root.join("app/fine")).unwrap();
        let error = plan_context(root, "app", "app/Dockerfile")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`up` -> `../../etc`"), "{error}");
        assert!(error.contains("`abs` -> `/etc/passwd`"), "{error}");
        assert!(!error.contains("fine"), "{error}");
    }

    #[test]
    fn missing_pieces_are_named() {
        let workspace = tempfile::tempdir().unwrap();
        let root = workspace.path();
        write(root, "app/README", "x");
        assert_eq!(
            plan_context(root, "nope", "nope/Dockerfile").unwrap_err(),
            ContextError::MissingContext("nope".into())
        );
        assert_eq!(
            plan_context(root, "app", "app/Dockerfile").unwrap_err(),
            ContextError::MissingDockerfile("app/Dockerfile".into())
        );
        assert_eq!(
            plan_context(root, "../x", "app/Dockerfile").unwrap_err(),
            ContextError::OutsideRepository("../x".into())
        );
    }
}
