//! Embeds the reference configuration and the example platform (`workflows/`, `environments/`,
//! `policies/`, `platform/`) into the binary, so `sluice demo` works from the binary alone.

use std::fmt::Write;
use std::path::{Path, PathBuf};

const EMBEDDED_DIRECTORIES: [&str; 4] = ["workflows", "environments", "policies", "platform"];

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for directory in EMBEDDED_DIRECTORIES {
        println!("cargo:rerun-if-changed={directory}");
        collect(&root, &root.join(directory), &mut files);
    }
    files.sort();
    let mut source = String::from(
        "/// (path relative to the repository root, contents, executable)\npub static FILES: &[(&str, &[u8], bool)] = &[\n",
    );
    for (relative, absolute, executable) in &files {
        writeln!(
            source,
            "    ({relative:?}, include_bytes!({absolute:?}), {executable}),"
        )
        .expect("write to string");
    }
    source.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(out, source).expect("write embedded.rs");
}

fn collect(root: &Path, directory: &Path, files: &mut Vec<(String, String, bool)>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Local tool state never belongs in the example.
        if matches!(name.as_str(), ".terraform" | "__pycache__" | ".venv")
            || name.ends_with(".tfstate")
            || name.ends_with(".pyc")
        {
            continue;
        }
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            collect(root, &path, files);
        } else if metadata.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let executable = metadata.permissions().mode() & 0o111 != 0;
            files.push((relative, path.to_string_lossy().into_owned(), executable));
        }
    }
}
