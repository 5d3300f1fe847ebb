//! CPU time from `/proc`: what the `sluice serve` processes (with the host steps they ran and
//! reaped), the PostgreSQL cluster (postmaster, its backends and the ones that exited) and this
//! benchmark process spent, and how busy the whole machine was, between two readings.

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// `(ppid, utime + stime, cutime + cstime)` in clock ticks, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain numbers.
    let after_name = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let number = |index: usize| fields.get(index)?.parse::<u64>().ok();
    Some((
        number(1)? as u32,
        number(11)? + number(12)?,
        number(13)? + number(14)?,
    ))
}

/// The CPU seconds `pid` spent, with its children that exited and were waited for.
pub fn process_seconds(pid: u32) -> f64 {
    stat(pid).map_or(0.0, |(_, own, children)| {
        (own + children) as f64 / clock_ticks_per_second()
    })
}

/// This process only (all its threads).
pub fn own_seconds() -> f64 {
    process_seconds(std::process::id())
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` runs PostgreSQL's server with `-p PORT` among its arguments (`None` for any
/// port). A backend keeps its postmaster's arguments until it sets its title.
fn is_postgres(pid: u32, port: Option<&str>) -> bool {
    let Ok(command_line) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let arguments: Vec<&[u8]> = command_line.split(|byte| *byte == 0).collect();
    let program_is_postgres = arguments
        .first()
        .is_some_and(|program| program.ends_with(b"postgres"));
    program_is_postgres
        && port.is_none_or(|port| {
            arguments
                .windows(2)
                .any(|pair| pair[0] == b"-p" && pair[1] == port.as_bytes())
        })
}

/// The postmaster listening on `port`: a `postgres` process started with `-p PORT` whose parent
/// is not itself PostgreSQL (a backend just forked still looks like its postmaster).
pub fn postmaster_on_port(port: u16) -> Option<u32> {
    let port = port.to_string();
    all_pids().into_iter().find(|pid| {
        is_postgres(*pid, Some(&port))
            && stat(*pid).is_some_and(|(parent, _, _)| !is_postgres(parent, None))
    })
}

/// The CPU seconds of a PostgreSQL cluster: the postmaster with its exited backends, plus the
/// backends and background processes alive now.
pub fn cluster_seconds(postmaster: u32) -> f64 {
    let mut ticks = 0;
    if let Some((_, own, exited)) = stat(postmaster) {
        ticks += own + exited;
    }
    for pid in all_pids() {
        if let Some((parent, own, exited)) = stat(pid)
            && parent == postmaster
        {
            ticks += own + exited;
        }
    }
    ticks as f64 / clock_ticks_per_second()
}

/// The machine's busy and total CPU time so far (all cores), from the first line of `/proc/stat`.
#[derive(Clone, Copy, Default)]
pub struct Machine {
    busy: u64,
    total: u64,
}

impl Machine {
    pub fn now() -> Machine {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let numbers: Vec<u64> = text
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|field| field.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...; idle and iowait are not busy.
        let total: u64 = numbers.iter().take(8).sum();
        let idle = numbers.get(3).copied().unwrap_or(0) + numbers.get(4).copied().unwrap_or(0);
        Machine {
            busy: total - idle,
            total,
        }
    }

    /// CPU seconds every process on the machine spent since `earlier`.
    pub fn busy_seconds_since(&self, earlier: &Machine) -> f64 {
        (self.busy - earlier.busy) as f64 / clock_ticks_per_second()
    }

    /// Busy time over the time all cores had since `earlier`: 1.0 when every core was busy.
    pub fn utilisation_since(&self, earlier: &Machine) -> f64 {
        let total = self.total - earlier.total;
        if total == 0 {
            0.0
        } else {
            (self.busy - earlier.busy) as f64 / total as f64
        }
    }
}
