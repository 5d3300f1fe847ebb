//! Peak memory of a build that sends a large context: the benchmark binary re-executes itself
//! with `CHILD_ARGUMENT`, the child builds once and prints its own peak resident set (`VmHWM`),
//! and the parent also reads the child's `ru_maxrss` from `wait4`. Knows nothing of the context's
//! contents.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The first argument that makes the benchmark binary the child.
pub const CHILD_ARGUMENT: &str = "--build-bench-large-context-child";

const RESULT_PREFIX: &str = "build-bench-result";

pub struct Measured {
    pub bytes_sent: u64,
    pub elapsed: Duration,
    pub peak_rss_bytes: u64,
    pub rusage_max_rss_bytes: u64,
}

/// In the child: `<workspace> <context> <image>`; builds without pushing and prints the result line.
pub fn child_main(arguments: &[String]) -> anyhow::Result<()> {
    let [workspace, context, image] = arguments else {
        anyhow::bail!("usage: {CHILD_ARGUMENT} <workspace> <context> <image>");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let report = runtime.block_on(super::sluice_build::build(
        Path::new(workspace),
        context,
        image,
        "main",
        false,
    ))?;
    let elapsed = started.elapsed();
    anyhow::ensure!(report.built, "the large context was not built: {report:?}");
    println!(
        "{RESULT_PREFIX} bytes_sent={} elapsed_ns={} vm_hwm_bytes={}",
        report.context_bytes,
        elapsed.as_nanos(),
        own_peak_rss_bytes()?
    );
    Ok(())
}

fn own_peak_rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kibibytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .ok_or_else(|| anyhow::anyhow!("/proc/self/status has no VmHWM line"))?;
    Ok(kibibytes * 1024)
}

/// In the parent: runs the child on `context` of `workspace` and collects its figures.
pub fn run_child(workspace: &Path, context: &str, image: &str) -> anyhow::Result<Measured> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg(CHILD_ARGUMENT)
        .arg(workspace)
        .arg(context)
        .arg(image)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut output = String::new();
    child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("the child has no stdout"))?
        .read_to_string(&mut output)?;
    let process_id = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for the child we spawned and
    // have not waited for (std's `Child` is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(process_id, &mut status, 0, &mut usage) };
    anyhow::ensure!(
        waited == process_id,
        "waiting for the child failed: {}",
        std::io::Error::last_os_error()
    );
    anyhow::ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the large-context child failed (status {status}); output:\n{output}"
    );
    let line = output
        .lines()
        .find(|line| line.starts_with(RESULT_PREFIX))
        .ok_or_else(|| anyhow::anyhow!("the child printed no result line:\n{output}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")[..]))
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("the child's result line has no {name}: {line}"))
    };
    Ok(Measured {
        bytes_sent: field("bytes_sent")?,
        elapsed: Duration::from_nanos(field("elapsed_ns")?),
        peak_rss_bytes: field("vm_hwm_bytes")?,
        rusage_max_rss_bytes: usage.ru_maxrss as u64 * 1024,
    })
}
