//! The content address of a build: sha256 over the effective context (sorted paths, entry types,
//! modes, contents and link targets after `.dockerignore`), the Dockerfile, the build arguments,
//! the target stage and the user's labels. Two builds with the same digest make the same image,
//! so an image carrying the digest as a label can be reused instead of built again. Modification
//! times are left out: a fresh checkout must not change the digest.

use super::context::{ContextPlan, DockerfileSource};
use super::tar::EntryType;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

/// Bumped whenever what goes into the digest changes, so old images are not mistaken for new.
const DIGEST_VERSION: &str = "sluice-build-context-v1";

/// What besides the files decides the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInputs {
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// `sha256:<64 hex>`. Reads every file of the plan in chunks; blocking.
pub fn context_digest(plan: &ContextPlan, inputs: &BuildInputs) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    field(&mut hasher, DIGEST_VERSION.as_bytes());
    let mut buffer = vec![0u8; 64 * 1024];
    for entry in &plan.entries {
        let type_name: &[u8] = match entry.entry_type {
            EntryType::File => b"file",
            EntryType::Directory => b"dir",
            EntryType::Symlink => b"symlink",
        };
        field(&mut hasher, type_name);
        field(&mut hasher, entry.path.as_bytes());
        field(&mut hasher, format!("{:o}", entry.mode).as_bytes());
        match entry.entry_type {
            EntryType::File => {
                let mut file = std::fs::File::open(plan.root.join(&entry.path))?;
                let mut hashed = 0u64;
                hasher.update(entry.size.to_le_bytes());
                loop {
                    let read = file.read(&mut buffer)?;
                    if read == 0 {
                        break;
                    }
                    hashed += read as u64;
                    hasher.update(&buffer[..read]);
                }
                if hashed != entry.size {
                    return Err(std::io::Error::other(format!(
                        "`{}` changed size while it was read; nothing may write into the checkout during a build",
                        entry.path
                    )));
                }
            }
            EntryType::Symlink => {
                field(
                    &mut hasher,
                    entry.link_target.as_deref().unwrap_or("").as_bytes(),
                );
            }
            EntryType::Directory => {}
        }
    }
    field(&mut hasher, b"dockerfile");
    field(&mut hasher, plan.dockerfile_name().as_bytes());
    if let DockerfileSource::Outside(contents) = &plan.dockerfile {
        field(&mut hasher, contents);
    }
    field(&mut hasher, b"args");
    for (name, value) in &inputs.args {
        field(&mut hasher, name.as_bytes());
        field(&mut hasher, value.as_bytes());
    }
    field(&mut hasher, b"target");
    field(
        &mut hasher,
        inputs.target.as_deref().unwrap_or("").as_bytes(),
    );
    field(&mut hasher, b"labels");
    for (name, value) in &inputs.labels {
        field(&mut hasher, name.as_bytes());
        field(&mut hasher, value.as_bytes());
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// A length-prefixed field, so that no two different inputs hash the same byte sequence.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::super::context::plan_context;
    use super::*;

    fn digest_of(files: &[(&str, &str)], inputs: &BuildInputs) -> String {
        let workspace = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let full = workspace.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, contents).unwrap();
        }
        let plan = plan_context(workspace.path(), ".", "Dockerfile").unwrap();
        context_digest(&plan, inputs).unwrap()
    }

    #[test]
    fn the_digest_follows_content_args_target_and_labels_but_not_ignored_files() {
        let base = [("Dockerfile", "FROM scratch\n"), ("a.txt", "a")];
        let inputs = BuildInputs::default();
        let reference = digest_of(&base, &inputs);
        assert!(reference.starts_with("sha256:") && reference.len() == 71);
        assert_eq!(digest_of(&base, &inputs), reference, "stable");
        assert_ne!(
            digest_of(&[("Dockerfile", "FROM scratch\n"), ("a.txt", "b")], &inputs),
            reference,
            "one byte"
        );
        assert_ne!(
            digest_of(&[("Dockerfile", "FROM scratch\n"), ("b.txt", "a")], &inputs),
            reference,
            "a rename"
        );
        assert_eq!(
            digest_of(
                &[
                    ("Dockerfile", "FROM scratch\n"),
                    ("a.txt", "a"),
                    (".dockerignore", "x.log\n"),
                    ("x.log", "noise")
                ],
                &inputs
            ),
            digest_of(
                &[
                    ("Dockerfile", "FROM scratch\n"),
                    ("a.txt", "a"),
                    (".dockerignore", "x.log\n"),
                    ("x.log", "other noise")
                ],
                &inputs
            ),
            "ignored files do not count"
        );
        let with_arg = BuildInputs {
            args: [("BASE".to_owned(), "x".to_owned())].into(),
            ..BuildInputs::default()
        };
        assert_ne!(digest_of(&base, &with_arg), reference, "a build argument");
        let with_target = BuildInputs {
            target: Some("runtime".into()),
            ..BuildInputs::default()
        };
        assert_ne!(digest_of(&base, &with_target), reference, "a target");
    }
}
