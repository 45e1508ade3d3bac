//! How much memory this machine (or container) gives us, and how much we use.
//!
//! The default budget is a fraction of what is really available: inside a container the cgroup
//! limit, not the host's RAM, is what the kernel enforces. What the process holds is read from
//! `/proc/self/status`: its peak, and (sampled while tasks run) the RSS during each task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

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
    status_kb("VmHWM:")
}

/// Resident set size of this process now (VmRSS), if known.
pub fn rss() -> Option<u64> {
    status_kb("VmRSS:")
}

/// The most file-backed memory the RSS sampler saw resident (RssFile): almost all of it the
/// program's own code and constants, mapped from the binary as they run. Part of the RSS the
/// budget's allowance covers, but not data: it shows how much of a peak is code.
pub fn peak_file_rss() -> Option<u64> {
    let sampled = PEAK_FILE.load(Ordering::Relaxed);
    let now = status_kb("RssFile:");
    match now {
        Some(n) => Some(n.max(sampled)),
        None => (sampled > 0).then_some(sampled),
    }
}

static PEAK_FILE: AtomicU64 = AtomicU64::new(0);

fn status_kb(field: &str) -> Option<u64> {
    let [v] = status_fields([field]);
    v
}

/// Bytes of each of `fields` of `/proc/self/status` (kB lines), from one read of it.
fn status_fields<const N: usize>(fields: [&str; N]) -> [Option<u64>; N] {
    let mut out = [None; N];
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return out;
    };
    for line in s.lines() {
        if let Some(i) = fields.iter().position(|f| line.starts_with(f)) {
            out[i] = line
                .split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024);
        }
    }
    out
}

/// Samples the process's RSS every few milliseconds on a thread of its own, for as long as it
/// exists, and keeps the highest value seen by each open [`RssSpan`]: what the whole process
/// held while a task ran (tasks overlap, so this is the process's figure, not the task's own).
pub struct RssWatch {
    spans: Arc<Mutex<Vec<Weak<AtomicU64>>>>,
}

/// The highest RSS seen since [`RssWatch::span`] opened it.
pub struct RssSpan(Arc<AtomicU64>);

impl RssWatch {
    pub fn start(every: Duration) -> RssWatch {
        let spans: Arc<Mutex<Vec<Weak<AtomicU64>>>> = Arc::default();
        let weak = Arc::downgrade(&spans);
        let spawned = std::thread::Builder::new()
            .name("dag-rss".into())
            .spawn(move || {
                while let Some(spans) = weak.upgrade() {
                    let [rss, file] = status_fields(["VmRSS:", "RssFile:"]);
                    if let Some(file) = file {
                        PEAK_FILE.fetch_max(file, Ordering::Relaxed);
                    }
                    if let Some(now) = rss {
                        let mut spans = spans.lock().unwrap_or_else(|p| p.into_inner());
                        spans.retain(|s| match s.upgrade() {
                            Some(s) => {
                                s.fetch_max(now, Ordering::Relaxed);
                                true
                            }
                            None => false,
                        });
                    }
                    drop(spans);
                    std::thread::sleep(every);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(
                "cannot start the RSS sampler ({e}); tasks record their RSS at start and end only"
            );
        }
        RssWatch { spans }
    }

    pub fn span(&self) -> RssSpan {
        let slot = Arc::new(AtomicU64::new(rss().unwrap_or(0)));
        self.spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&slot));
        RssSpan(slot)
    }
}

impl RssSpan {
    /// The highest RSS seen while the span was open, the present included.
    pub fn peak(&self) -> u64 {
        self.0.fetch_max(rss().unwrap_or(0), Ordering::Relaxed);
        self.0.load(Ordering::Relaxed)
    }
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
        // The test binary's own code is resident, and never more than all of the process.
        let code = super::peak_file_rss().unwrap();
        assert!(code > 0 && code <= super::peak_rss().unwrap());
    }

    #[test]
    fn a_span_sees_what_the_process_held_while_it_was_open() {
        let watch = super::RssWatch::start(std::time::Duration::from_millis(5));
        let before = super::rss().unwrap();
        let span = watch.span();
        // 64 MiB touched page by page, held past a few samples, then freed before the span
        // is read: only the sampler can have seen it.
        let mut held = vec![0u8; 64 << 20];
        for i in (0..held.len()).step_by(4096) {
            held[i] = 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(
            std::hint::black_box(&held).iter().step_by(4096).count(),
            16384
        );
        drop(held);
        let peak = span.peak();
        assert!(peak >= before + (60 << 20), "peak {peak}, before {before}");
    }
}
