//! The resource thresholds (`thresholds.resource`): memory, CPU and
//! storage, each as a fraction of what the process may use.
//!
//! - memory: the process' resident set over the memory it may use (the
//!   cgroup's `memory.max` when one is set, else the machine's total);
//! - cpu: CPU time the process used over the window, per core it may use
//!   (`available_parallelism`, which follows cgroup quotas), so 1.0 is every
//!   core busy;
//! - storage: used space of the file system holding the data directory.
//!
//! Figures the platform cannot give are `None` and judged healthy.

use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use std::path::{Path, PathBuf};

/// What the process uses now.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub rss_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
}

pub struct Resources {
    process: ProcessCollector,
    data_dir: PathBuf,
}

impl Resources {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            process: ProcessCollector::for_self(),
            data_dir,
        }
    }

    /// The process' resident memory and CPU time so far.
    pub fn usage(&self) -> Usage {
        let mut usage = Usage::default();
        for family in self.process.collect() {
            let Some(m) = family.get_metric().first() else {
                continue;
            };
            match family.name() {
                "process_resident_memory_bytes" => {
                    usage.rss_bytes = Some(m.get_gauge().get_value() as u64);
                }
                "process_cpu_seconds_total" => {
                    usage.cpu_seconds = Some(m.get_counter().get_value());
                }
                _ => {}
            }
        }
        usage
    }

    /// Memory the process may use, in bytes.
    pub fn memory_limit(&self) -> Option<u64> {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| meminfo_total(&s));
        let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        match (total, cgroup) {
            (Some(t), Some(c)) => Some(t.min(c)),
            (t, c) => t.or(c),
        }
    }

    /// (used, capacity) bytes of the data directory's file system, as `df`
    /// reckons them (see [`usage_like_df`]).
    pub fn storage(&self) -> Option<(u64, u64)> {
        storage_of(&self.data_dir)
    }
}

/// `MemTotal` of a /proc/meminfo text, in bytes.
fn meminfo_total(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
}

#[cfg(unix)]
fn storage_of(dir: &Path) -> Option<(u64, u64)> {
    // The data directory may not exist yet (PostgreSQL deployments create
    // it lazily): its nearest existing ancestor is on the same file system.
    let existing = dir.ancestors().find(|p| p.exists())?;
    let st = nix::sys::statvfs::statvfs(existing).ok()?;
    let unit = st.fragment_size() as u64;
    usage_like_df(
        st.blocks() as u64 * unit,
        st.blocks_free() as u64 * unit,
        st.blocks_available() as u64 * unit,
    )
}

/// (used, capacity) as `df` reckons them: used is what files hold (total
/// minus free), capacity is what the service could ever fill (used plus
/// what is available to it). Space reserved for root is in neither, so
/// 100 % is exactly "nothing left for the service", and the share matches
/// the Use% an operator sees. (Counting the reserve as used overstated it:
/// 80 % where `df` said 37 % on a file system with a large reserve.)
fn usage_like_df(total: u64, free: u64, available: u64) -> Option<(u64, u64)> {
    let used = total.saturating_sub(free);
    let capacity = used.saturating_add(available);
    (capacity > 0).then_some((used, capacity))
}

#[cfg(not(unix))]
fn storage_of(_: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_reckoned_as_df_does() {
        // 252 G in all, 34 G used, 58 G available to the service: the rest
        // is reserved. df says 37 %.
        let g = 1 << 30;
        let (used, capacity) = usage_like_df(252 * g, 218 * g, 58 * g).unwrap();
        assert_eq!((used, capacity), (34 * g, 92 * g));
        assert_eq!((used * 100).div_ceil(capacity), 37);
        assert_eq!(usage_like_df(0, 0, 0), None);
    }

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let text = "MemTotal:       24590164 kB\nMemFree:        1000 kB\n";
        assert_eq!(meminfo_total(text), Some(24_590_164 * 1024));
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn this_process_has_usage_and_a_file_system() {
        let r = Resources::new(std::env::temp_dir().join("tgvisor-not-created-yet"));
        let usage = r.usage();
        if cfg!(target_os = "linux") {
            assert!(usage.rss_bytes.is_some_and(|b| b > 0));
            assert!(usage.cpu_seconds.is_some());
            assert!(
                r.memory_limit()
                    .is_some_and(|l| l > usage.rss_bytes.unwrap_or(0))
            );
            let (used, total) = r.storage().expect("the temp dir's file system");
            assert!(used <= total && total > 0);
        }
    }
}
