//! The `sluice` binary: everything happens in `sluice::cli`.

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
