//! CPU and memory accounting from `/proc`: per process, every PostgreSQL process, the whole machine, and the
//! share the hypervisor took.

/// CPU seconds spent while driving the load, by process, and the servers' peak RSS.
#[derive(Debug, Default)]
pub(crate) struct CpuReport {
    pub(crate) serve: f64,
    pub(crate) sandbox: f64,
    pub(crate) load: f64,
    /// Every PostgreSQL process (backends, WAL writer, checkpointer...).
    pub(crate) postgres: f64,
    pub(crate) machine: f64,
    /// Taken by the hypervisor (part of `machine`).
    pub(crate) steal: f64,
    pub(crate) serve_rss_kib: u64,
    pub(crate) sandbox_rss_kib: u64,
}

/// utime + stime of a process, in seconds.
pub(crate) fn process_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0 // fields 14 and 15 of stat(5); USER_HZ is 100 on Linux
}

/// utime + stime of every `postgres` process, in seconds (backends that exit meanwhile are not counted: the
/// pool's and pgbench's connections live through the measurement).
pub(crate) fn postgres_cpu() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| process_cpu(&pid))
        .sum()
}

/// All CPUs' busy time, in seconds.
pub(crate) fn machine_cpu() -> f64 {
    cpu_line().0
}

/// CPU seconds the hypervisor gave to other guests while this VM wanted the CPU ("steal"): when it is high the
/// whole machine runs slower, whatever runs on it.
pub(crate) fn steal_cpu() -> f64 {
    cpu_line().1
}

/// From `/proc/stat`'s `cpu` line: busy seconds (steal included), and steal.
pub(crate) fn cpu_line() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let first = stat.lines().next().unwrap_or_default();
    let v: Vec<f64> = first
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: f64 = v
        .iter()
        .enumerate()
        // Not idle (3), iowait (4), or guest time (8, 9: already counted in user and nice).
        .filter(|(i, _)| ![3, 4, 8, 9].contains(i))
        .map(|(_, x)| x)
        .sum();
    (busy / 100.0, v.get(7).copied().unwrap_or(0.0) / 100.0)
}

pub(crate) fn peak_rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
