//! How much memory this machine (or container) gives us, and how much we use.
//!
//! The default budget is a fraction of what is really available: inside a container the cgroup
//! limit, not the host's RAM, is what the kernel enforces.

/// Bytes available to this process: the smaller of physical memory and the cgroup limit.
pub fn available() -> u64 {
    let phys = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(4 << 30);
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .filter_map(|s| s.trim().parse::<u64>().ok())
    .min();
    cgroup.map_or(phys, |c| c.min(phys))
}

/// The default memory budget: a quarter of what is available, at least 256 MiB.
pub fn default_budget() -> u64 {
    (available() / 4).max(256 << 20)
}

/// Peak resident set size of this process so far (VmHWM), if known.
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn budget_is_positive_and_below_what_is_available() {
        let a = super::available();
        assert!(a > 0);
        let b = super::default_budget();
        assert!(b >= 256 << 20);
        assert!(b <= a.max(256 << 20));
        assert!(super::peak_rss().unwrap() > 0);
    }
}
