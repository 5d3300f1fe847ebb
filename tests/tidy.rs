//! House rules checked as ordinary tests: every source file says what it owns in a `//!` header,
//! files (tests included) stay readable in one sitting, imports between modules run one way,
//! dependencies name the versions they were tested with, and the code is formatted.

use std::path::{Path, PathBuf};

fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

fn rust_files_under(directory: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(directory),
        &mut found,
    );
    found.sort();
    found
}

fn sources() -> Vec<PathBuf> {
    rust_files_under("src")
}

#[test]
fn every_source_file_opens_with_a_module_comment() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text
                .lines()
                .find(|line| !line.trim().is_empty())
                .is_some_and(|line| line.starts_with("//!"))
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files need a `//!` paragraph saying what they own: {missing:#?}"
    );
}

#[test]
fn no_source_or_test_file_is_longer_than_700_lines() {
    let long: Vec<String> = sources()
        .into_iter()
        .chain(rust_files_under("tests"))
        .filter_map(|path| {
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            (lines > 700).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by responsibility: {long:#?}");
}

#[test]
fn the_code_is_formatted() {
    let output = std::process::Command::new("cargo")
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match output {
        Ok(output) => assert!(
            output.status.success(),
            "run `cargo fmt`:\n{}",
            String::from_utf8_lossy(&output.stdout)
        ),
        Err(error) => panic!(
            "cannot run `cargo fmt` ({error}); install rustfmt with `rustup component add rustfmt`"
        ),
    }
}

/// Pairs of modules between which imports may run only one way: the first may use the second,
/// never the reverse. A file that needs to reach upward is a sign that a type belongs lower.
const ONE_WAY: &[(&str, &str)] = &[
    // Promotion reads environments; configuration knows nothing of how they are deployed.
    ("deploy", "config"),
    // Promotion keeps its records through the store's traits; the store knows no promotion.
    ("deploy", "store"),
    // The `terraform:` step drives the Terraform module; Terraform knows no step kinds.
    ("steps", "terraform"),
];

/// The top-level modules a line of `module`'s code names as `crate::NAME`, comments left out.
fn modules_named(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .filter(|(at, _)| !code[..*at].ends_with('$'))
        .map(|(at, found)| {
            code[at + found.len()..]
                .chars()
                .take_while(|character| character.is_ascii_alphanumeric() || *character == '_')
                .collect()
        })
        .collect()
}

fn module_files(module: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    if root.join(module).is_dir() {
        rust_files(&root.join(module), &mut files);
    }
    let single = root.join(format!("{module}.rs"));
    if single.is_file() {
        files.push(single);
    }
    files
}

#[test]
fn imports_between_modules_run_one_way() {
    let mut wrong = Vec::new();
    for (upper, lower) in ONE_WAY {
        assert!(
            !module_files(upper).is_empty() && !module_files(lower).is_empty(),
            "the table names a module that is gone: {upper} or {lower}"
        );
        for path in module_files(lower) {
            let text = std::fs::read_to_string(&path).unwrap();
            for (index, line) in text.lines().enumerate() {
                if modules_named(line).iter().any(|named| named == upper) {
                    wrong.push(format!(
                        "{}:{}: `{lower}` uses `{upper}`: {}",
                        path.display(),
                        index + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "move what both need below them instead: {wrong:#?}"
    );
}

#[test]
fn the_import_check_sees_paths_in_use_lines_and_code_but_not_comments() {
    assert_eq!(modules_named("use crate::deploy::Release;"), ["deploy"]);
    assert_eq!(
        modules_named("    let x = crate::store::open(); // crate::cli::x"),
        ["store"]
    );
    assert_eq!(
        modules_named("/// See `crate::deploy`."),
        Vec::<String>::new()
    );
    assert_eq!(
        modules_named("$crate::targets::registry::Entry"),
        Vec::<String>::new()
    );
}

/// Version requirements in `Cargo.toml`'s dependency tables that allow any version (`"*"`,
/// `"1.*"`), as `table: line`.
fn wildcard_versions(manifest: &str) -> Vec<String> {
    let mut table = String::new();
    let mut found = Vec::new();
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            table = line
                .trim_matches(|character| character == '[' || character == ']')
                .to_owned();
            continue;
        }
        if !table.ends_with("dependencies") {
            continue;
        }
        let Some((_, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let requirement = if value.starts_with('{') {
            value
                .split_once("version")
                .and_then(|(_, rest)| rest.split('"').nth(1))
        } else {
            value.split('"').nth(1)
        };
        if requirement.is_some_and(|requirement| requirement.contains('*')) {
            found.push(format!("[{table}] {line}"));
        }
    }
    found
}

#[test]
fn dependencies_name_the_versions_they_were_built_with() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let wildcards = wildcard_versions(&manifest);
    assert!(
        wildcards.is_empty(),
        "pin these to the version Cargo.lock holds: {wildcards:#?}"
    );
}

#[test]
fn the_version_check_finds_wildcards_only_in_dependency_tables() {
    let manifest = "[dependencies]\ngit2 = \"*\"\nserde = { version = \"1.*\", features = [\"derive\"] }\nanyhow = \"1\"\n\n[profile.dev.package.\"*\"]\nopt-level = 1\n[dev-dependencies]\nwiremock = { version = \"*\" }\n";
    assert_eq!(
        wildcard_versions(manifest),
        [
            "[dependencies] git2 = \"*\"",
            "[dependencies] serde = { version = \"1.*\", features = [\"derive\"] }",
            "[dev-dependencies] wiremock = { version = \"*\" }",
        ]
    );
}
