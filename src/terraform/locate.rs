//! Where in the Terraform sources a policy finding points. A plan has no source positions, so a
//! finding's resource address (`policy::resource_address`) is looked up as the line of its
//! `resource "TYPE" "NAME"` block among the `.tf` files of the environment's directory, following
//! `module.NAME.` through local module sources (`source = "./modules/x"`). A finding that carries
//! its own `file` and `line` is placed there. Reads only regular files inside the checkout (no
//! symbolic links, nothing outside it), since the checkout is the code under review.

use crate::policy::{self, Finding, FindingLocation, ResourceAddress};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// Larger `.tf` files are not read.
const LARGEST_SOURCE_BYTES: u64 = 4 * 1024 * 1024;
/// Module calls followed from the root, at most.
const DEEPEST_MODULE_CHAIN: usize = 16;

/// The findings that can be placed at a file and line, in their order; the others are left out
/// (the check run lists every finding in its summary, placed or not).
pub fn locate_findings(checkout: &Path, dir: &str, findings: &[Finding]) -> Vec<FindingLocation> {
    let mut sources = Sources::new(checkout);
    findings
        .iter()
        .filter_map(|finding| {
            let (path, line) = policy::file_position(&finding.metadata).or_else(|| {
                let address = policy::resource_address(&finding.metadata, &finding.message)?;
                sources.find_block(dir, &address)
            })?;
            Some(FindingLocation {
                path,
                line,
                rule: finding.rule.clone(),
                message: finding.message.clone(),
                severity: finding.severity,
            })
        })
        .collect()
}

/// The `.tf` files of directories in the checkout, read once each.
struct Sources {
    checkout: PathBuf,
    /// Directory (repository-relative) → its `.tf` files (repository-relative path, text).
    directories: HashMap<String, Vec<(String, String)>>,
}

impl Sources {
    fn new(checkout: &Path) -> Sources {
        Sources {
            checkout: checkout
                .canonicalize()
                .unwrap_or_else(|_| checkout.to_path_buf()),
            directories: HashMap::new(),
        }
    }

    /// The file and line of the block `address` names, starting from the root module in `dir`.
    fn find_block(&mut self, dir: &str, address: &ResourceAddress) -> Option<(String, u32)> {
        if address.modules.len() > DEEPEST_MODULE_CHAIN {
            return None;
        }
        let mut directory = normalise("", dir)?;
        for module in &address.modules {
            let source = self
                .files(&directory)
                .iter()
                .find_map(|(_, text)| module_source(text, module))?;
            directory = normalise(&directory, &source)?;
        }
        self.files(&directory).iter().find_map(|(path, text)| {
            block_line(text, address.mode, &address.kind, &address.name)
                .map(|line| (path.clone(), line))
        })
    }

    fn files(&mut self, directory: &str) -> &[(String, String)] {
        let checkout = self.checkout.clone();
        self.directories
            .entry(directory.to_owned())
            .or_insert_with(|| read_tf_files(&checkout, directory))
    }
}

/// The regular `.tf` files directly in `directory`, sorted by name; nothing when the directory
/// is not a real directory inside the checkout.
fn read_tf_files(checkout: &Path, directory: &str) -> Vec<(String, String)> {
    let absolute = checkout.join(directory);
    let inside = absolute
        .canonicalize()
        .is_ok_and(|real| real.starts_with(checkout));
    if !inside {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(&absolute) else {
        return Vec::new();
    };
    let mut files: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let metadata = entry.path().symlink_metadata().ok()?;
            if !name.ends_with(".tf")
                || !metadata.is_file()
                || metadata.len() > LARGEST_SOURCE_BYTES
            {
                return None;
            }
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let path = if directory.is_empty() {
                name
            } else {
                format!("{directory}/{name}")
            };
            Some((path, text))
        })
        .collect();
    files.sort();
    files
}

/// `base` joined with the relative `path`, `/`-separated, `.` and `..` resolved; `None` when it
/// leaves the repository or is absolute.
fn normalise(base: &str, path: &str) -> Option<String> {
    let mut parts: Vec<String> = base
        .split('/')
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// The labels of a block header line such as `resource "aws_s3_bucket" "models" {`, if the
/// line opens a block of type `block_type`.
fn block_labels<'a>(line: &'a str, block_type: &str) -> Option<Vec<&'a str>> {
    let rest = line.trim_start().strip_prefix(block_type)?;
    if !rest.starts_with(|c: char| c.is_whitespace() || c == '"') {
        return None;
    }
    let mut labels = Vec::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() && !rest.starts_with('{') {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            labels.push(&quoted[..end]);
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            labels.push(&rest[..end]);
            rest = rest[end..].trim_start();
        }
    }
    Some(labels)
}

/// The line (from 1) where `mode "kind" "name"` opens in `text`.
fn block_line(text: &str, mode: &str, kind: &str, name: &str) -> Option<u32> {
    text.lines()
        .position(|line| block_labels(line, mode).is_some_and(|labels| labels == [kind, name]))
        .and_then(|index| u32::try_from(index + 1).ok())
}

/// The local `source` of `module "name"` in `text` (`./x` or `../x`); registry and git sources
/// have no files here.
fn module_source(text: &str, name: &str) -> Option<String> {
    let mut lines = text.lines();
    lines.find(|line| block_labels(line, "module").is_some_and(|labels| labels == [name]))?;
    for line in lines {
        let trimmed = line.trim();
        if line.starts_with('}') {
            return None;
        }
        if let Some(value) = trimmed
            .strip_prefix("source")
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix('='))
        {
            let value = value.trim().trim_matches('"');
            return (value.starts_with("./") || value.starts_with("../")).then(|| value.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Severity;
    use serde_json::{Map, json};

    fn finding(message: &str, metadata: serde_json::Value) -> Finding {
        Finding {
            severity: Severity::Deny,
            rule: "terraform.s3.deny".to_owned(),
            message: message.to_owned(),
            metadata: metadata.as_object().cloned().unwrap_or_else(Map::new),
        }
    }

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn checkout() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "infra/dev/main.tf",
            "terraform {\n  required_version = \">= 1.5\"\n}\n\n# resource \"aws_s3_bucket\" \"models\" (see below)\nresource \"aws_s3_bucket\" \"logs\" {\n  bucket = \"logs\"\n}\n\nresource \"aws_s3_bucket\"   \"models\"   {\n  bucket = \"models\"\n}\n\nmodule \"storage\" {\n  source = \"../modules/storage\"\n}\n\nmodule \"remote\" {\n  source = \"terraform-aws-modules/s3-bucket/aws\"\n}\n",
        );
        write(
            root.path(),
            "infra/dev/data.tf",
            "data \"aws_iam_policy_document\" \"read\" {\n}\n",
        );
        write(
            root.path(),
            "infra/modules/storage/buckets.tf",
            "variable \"name\" {}\n\nresource aws_s3_bucket raw {\n  bucket = var.name\n}\n",
        );
        root
    }

    fn check(findings: &[Finding], expect: &[(&str, u32)]) {
        let root = checkout();
        let found: Vec<(String, u32)> = locate_findings(root.path(), "infra/dev", findings)
            .into_iter()
            .map(|location| (location.path, location.line))
            .collect();
        let expect: Vec<(String, u32)> = expect
            .iter()
            .map(|(path, line)| (path.to_string(), *line))
            .collect();
        assert_eq!(found, expect);
    }

    #[test]
    fn a_resource_named_in_the_message_is_found_at_its_block() {
        check(
            &[finding(
                "aws_s3_bucket.models must block public access",
                json!({}),
            )],
            &[("infra/dev/main.tf", 10)],
        );
    }

    #[test]
    fn a_structured_address_data_sources_and_modules_are_followed() {
        check(
            &[
                finding("public bucket", json!({"resource": "aws_s3_bucket.logs"})),
                finding(
                    "too wide",
                    json!({"address": "data.aws_iam_policy_document.read"}),
                ),
                finding("module.storage.aws_s3_bucket.raw[0] has no tags", json!({})),
            ],
            &[
                ("infra/dev/main.tf", 6),
                ("infra/dev/data.tf", 1),
                ("infra/modules/storage/buckets.tf", 3),
            ],
        );
    }

    #[test]
    fn a_finding_with_its_own_file_and_line_is_placed_there() {
        check(
            &[finding(
                "image is not pinned by digest",
                json!({"file": "k8s/serving.yaml", "line": 14}),
            )],
            &[("k8s/serving.yaml", 14)],
        );
    }

    #[test]
    fn what_cannot_be_found_is_left_out() {
        check(
            &[
                finding("aws_s3_bucket.missing is public", json!({})),
                finding("module.remote.aws_s3_bucket.this is public", json!({})),
                finding("no address at all", json!({})),
                finding("module.nowhere.aws_s3_bucket.x", json!({})),
            ],
            &[],
        );
    }

    #[test]
    fn module_sources_cannot_leave_the_checkout() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "infra/main.tf",
            "module \"escape\" {\n  source = \"../../../../../../etc\"\n}\n",
        );
        let found = locate_findings(
            root.path(),
            "infra",
            &[finding("module.escape.aws_s3_bucket.x", json!({}))],
        );
        assert!(found.is_empty());
    }

    #[test]
    fn block_headers_take_quoted_and_bare_labels() {
        assert_eq!(
            block_labels("resource \"a_b\" \"c\" {", "resource"),
            Some(vec!["a_b", "c"])
        );
        assert_eq!(
            block_labels("  resource a_b c {", "resource"),
            Some(vec!["a_b", "c"])
        );
        assert_eq!(block_labels("resources \"a_b\" \"c\" {", "resource"), None);
        assert_eq!(block_labels("# resource \"a_b\" \"c\" {", "resource"), None);
    }
}
