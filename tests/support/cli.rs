//! The `sluice` binary as a user runs it from a shell, with its own data directory.

use std::path::Path;
use std::process::{Command, Output};

/// `sluice` with `data_dir` as its data directory (`SLUICE_DATA_DIR`), for callers that add
/// arguments, variables or a working directory.
pub fn sluice_command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.env("SLUICE_DATA_DIR", data_dir);
    command
}

/// Runs `sluice ARGS` with `data_dir` as its data directory.
pub fn sluice(data_dir: &Path, args: &[&str]) -> Output {
    sluice_command(data_dir)
        .args(args)
        .output()
        .expect("sluice runs")
}

/// Runs `sluice ARGS`, asserting it succeeded; what it printed.
pub fn sluice_ok(data_dir: &Path, args: &[&str]) -> String {
    let output = sluice(data_dir, args);
    assert!(
        output.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("sluice prints UTF-8")
}

/// Standard output, then standard error, as a terminal shows them.
pub fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
