//! What the benchmarks read from the operating system: memory of a process, the load
//! average, and the open-files limit (which they raise when too low for their sockets).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Kibibytes, as /proc reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Kib(pub u64);

impl fmt::Display for Kib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} MiB", self.0 as f64 / 1024.0)
    }
}

/// A process's memory: resident now (`VmRSS`) and its peak (`VmHWM`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss: Kib,
    pub peak: Kib,
}

/// Reads `/proc/<pid>/status`, or this process's with `None`.
pub fn memory(pid: Option<u32>) -> Result<Memory, String> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".into(),
    };
    let status = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let field = |name: &str| -> Result<Kib, String> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .map(Kib)
            .ok_or_else(|| format!("no {name} in {path}"))
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

/// The 1, 5 and 15 minute load averages, as `uptime` prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|line| {
            line.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".into())
}

/// CPU time (user + system) each thread of a process has used, by thread name (threads of
/// one name are added up); this process's with `None`.
pub fn thread_cpu(pid: Option<u32>) -> Result<BTreeMap<String, Duration>, String> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}/task"),
        None => "/proc/self/task".into(),
    };
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut threads = BTreeMap::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {dir}: {e}"))?;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // `tid (name) state …`: the name may hold spaces and parentheses, so split at the last.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Fields 14 and 15 of proc(5), counted from the state (field 3).
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
            .sum();
        *threads.entry(name).or_insert(Duration::ZERO) +=
            Duration::from_secs_f64(ticks as f64 / ticks_per_second);
    }
    Ok(threads)
}

/// Write system calls a process has made (`syscw` of `/proc/<pid>/io`): `write` and
/// `writev`, as `breeze-server`'s sockets write, but not `send`, as std's `TcpStream::write`
/// does, so the load clients' writes are not counted in this process.
pub fn writes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("syscw:")?.trim().parse().ok())
}

/// CPU used per thread name between two [`thread_cpu`] readings, busiest first.
pub fn cpu_between(
    before: &BTreeMap<String, Duration>,
    after: &BTreeMap<String, Duration>,
) -> Vec<(String, Duration)> {
    let mut used: Vec<(String, Duration)> = after
        .iter()
        .map(|(name, t)| {
            let earlier = before.get(name).copied().unwrap_or_default();
            (name.clone(), t.saturating_sub(earlier))
        })
        .filter(|(_, t)| *t >= Duration::from_millis(10))
        .collect();
    used.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
    used
}

/// `name 1.23 s, other 0.45 s`.
pub fn cpu_line(used: &[(String, Duration)]) -> String {
    let total: Duration = used.iter().map(|(_, t)| *t).sum();
    let parts: Vec<String> = used
        .iter()
        .map(|(name, t)| format!("{name} {:.2} s", t.as_secs_f64()))
        .collect();
    format!("{:.2} s = {}", total.as_secs_f64(), parts.join(", "))
}

/// Logical CPUs.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Makes sure this process (and the processes it starts, which inherit the limit) may open
/// `needed` files, raising the soft limit up to the hard one if it is lower.
pub fn ensure_open_files(needed: u64) -> Result<u64, String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!(
            "cannot read the open-files limit: {}",
            std::io::Error::last_os_error()
        ));
    }
    if limit.rlim_cur >= needed {
        return Ok(limit.rlim_cur);
    }
    if limit.rlim_max < needed {
        return Err(format!(
            "{needed} open files are needed but the hard limit is {}; raise it (ulimit -Hn)",
            limit.rlim_max
        ));
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit from a struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(format!(
            "cannot raise the open-files limit to {needed}: {}",
            std::io::Error::last_os_error()
        ));
    }
    eprintln!(
        "raised the open-files soft limit from {} to {needed}",
        limit.rlim_cur
    );
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn this_process_has_a_resident_size() {
        let memory = memory(None).unwrap();
        assert!(memory.rss.0 > 0 && memory.peak >= memory.rss, "{memory:?}");
    }

    #[test]
    fn this_process_has_threads_that_used_cpu() {
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        let threads = thread_cpu(None).unwrap();
        assert!(!threads.is_empty());
        let used = cpu_between(&BTreeMap::new(), &threads);
        assert!(cpu_line(&used).contains(" s"));
    }

    #[test]
    fn a_low_need_leaves_the_limit_alone() {
        assert!(ensure_open_files(16).unwrap() >= 16);
    }
}
