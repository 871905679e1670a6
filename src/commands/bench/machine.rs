//! What `bench` reads of the machine and its processes: CPU seconds (this process, its
//! children, another process by pid), the whole machine's busy time, cores, memory, peak RSS.

/// User + system CPU seconds process `pid` has spent since `before` (its earlier reading of
/// the same; None without a pid or once the process is gone).
pub(super) fn process_cpu_since(pid: Option<u32>, before: Option<f64>) -> Option<f64> {
    Some(process_cpu_seconds(pid)? - before?)
}

/// User + system CPU seconds of process `pid` so far.
pub(super) fn process_cpu_seconds(pid: Option<u32>) -> Option<f64> {
    proc_stat(&format!("/proc/{}/stat", pid?), 11)
}

/// User + system CPU seconds of this process so far (Linux: /proc/self/stat, in USER_HZ = 100).
pub(super) fn cpu_seconds() -> Option<f64> {
    proc_self_stat(11)
}

/// User + system CPU seconds of the children this process has waited for.
pub(super) fn children_cpu_seconds() -> Option<f64> {
    proc_self_stat(13)
}

/// Fields `at` and `at + 1` of /proc/self/stat (counted from the state, field 3), added, in
/// seconds of USER_HZ = 100.
pub(super) fn proc_self_stat(at: usize) -> Option<f64> {
    proc_stat("/proc/self/stat", at)
}

/// [`proc_self_stat`] of any process's stat file.
pub(super) fn proc_stat(path: &str, at: usize) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let a: f64 = f.get(at)?.parse().ok()?;
    let b: f64 = f.get(at + 1)?.parse().ok()?;
    Some((a + b) / 100.0)
}

/// Busy and total jiffies of the whole machine (every core) so far, from /proc/stat.
pub(super) fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal …
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

pub(super) fn memory_mib() -> u64 {
    proc_kib("/proc/meminfo", "MemTotal:").unwrap_or(0) / 1024
}

pub(super) fn peak_rss_mib() -> f64 {
    proc_kib("/proc/self/status", "VmHWM:").unwrap_or(0) as f64 / 1024.0
}

/// A `Key:   123 kB` line of a /proc file, in KiB.
pub(super) fn proc_kib(file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub(super) fn diff(after: Option<f64>, before: Option<f64>) -> f64 {
    after.zip(before).map_or(f64::NAN, |(b, a)| b - a)
}
