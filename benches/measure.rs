//! What the benchmarks print besides their own figures: the machine they ran on, the median
//! of repeated runs, and this process's memory.

/// "N cores; CPU model", for benchmark headers.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    format!("{cores} cores; {model}")
}

/// The run whose `key` (e.g. the wall time) is the median of `runs` (the upper one of an even
/// count). Panics on an empty list.
pub fn median_by<T, K: Ord>(mut runs: Vec<T>, key: impl FnMut(&T) -> K) -> T {
    runs.sort_by_key(key);
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// A memory figure of this process from `/proc/self/status` in MiB: `"VmRSS:"` (now) or
/// `"VmHWM:"` (peak); 0 where it cannot be read.
pub fn rss_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// User and system CPU time of this process's waited-for children (and theirs), from
/// /proc/self/stat (`cutime` and `cstime`, in clock ticks of 1/100 s on Linux).
pub fn children_cpu() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(13)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    std::time::Duration::from_millis(ticks * 10)
}
