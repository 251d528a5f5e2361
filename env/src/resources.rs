//! What processes and the machine spend, read from the kernel's own
//! accounting once a second: each process tree's CPU time, resident memory
//! and open files (`/proc/<pid>/{stat,status,fd}`, children included, so
//! nginx's worker counts for its master and `--processes` children for their
//! loadgen), and the machine's busy share of its cores (`/proc/stat`).
//!
//! Containers' processes are host processes: the docker backend hands over
//! their host pids, and they are read the same way.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

/// One process tree's totals at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TreeSample {
    /// CPU seconds (user + system) of the tree's live processes so far.
    pub cpu_seconds: f64,
    /// Resident memory of the tree, bytes.
    pub rss_bytes: u64,
    /// Open file descriptors of the tree.
    pub open_files: u64,
}

/// The machine at one moment: busy and total CPU time since boot, in ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MachineSample {
    busy: u64,
    total: u64,
}

impl MachineSample {
    /// Reads `/proc/stat`'s first line.
    pub fn now() -> Option<MachineSample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        parse_machine(stat.lines().next()?)
    }

    /// The share of all cores busy between `earlier` and this sample.
    pub fn busy_since(&self, earlier: &MachineSample) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let busy = self.busy.checked_sub(earlier.busy)?;
        (total > 0).then(|| busy as f64 / total as f64)
    }
}

/// `cpu  user nice system idle iowait irq softirq steal ...`: idle and iowait are not busy.
fn parse_machine(line: &str) -> Option<MachineSample> {
    let fields: Vec<u64> = line.strip_prefix("cpu ")?.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some(MachineSample { busy: total - idle, total })
}

/// The machine's logical cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The machine's memory, bytes.
pub fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb * 1024)
}

/// The most files `pid` may hold open (its soft `RLIMIT_NOFILE`).
pub fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// Every live process's parent, to find trees.
fn parents() -> HashMap<u32, u32> {
    let mut parents = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(ppid) = std::fs::read_to_string(entry.path().join("stat")).ok().and_then(|s| parse_ppid(&s)) {
            parents.insert(pid, ppid);
        }
    }
    parents
}

/// Field 4 of `/proc/<pid>/stat`, counted past the command name's last `)`.
fn parse_ppid(stat: &str) -> Option<u32> {
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// `pid` and its descendants, given every process's parent.
fn tree(pid: u32, parents: &HashMap<u32, u32>) -> Vec<u32> {
    let mut members = vec![pid];
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        members.extend(parents.iter().filter(|(_, p)| **p == parent).map(|(child, _)| *child));
        i += 1;
    }
    members
}

fn process(pid: u32) -> Option<TreeSample> {
    let cpu_seconds = crate::cpu::process_seconds(pid)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Some(TreeSample { cpu_seconds, rss_bytes: rss_kib * 1024, open_files })
}

/// Samples each of `roots`' process trees now (`None` for a root that is gone).
pub fn sample_trees(roots: &[u32]) -> Vec<Option<TreeSample>> {
    let parents = parents();
    roots
        .iter()
        .map(|root| {
            let members = tree(*root, &parents);
            let mut total = process(*root)?;
            for member in &members[1..] {
                if let Some(s) = process(*member) {
                    total.cpu_seconds += s.cpu_seconds;
                    total.rss_bytes += s.rss_bytes;
                    total.open_files += s.open_files;
                }
            }
            Some(total)
        })
        .collect()
}

/// One watched process over a run, second by second.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Series {
    /// Cores used in each second (CPU seconds over wall seconds).
    pub cores: Vec<f64>,
    /// Resident memory at each sample, bytes.
    pub rss_bytes: Vec<u64>,
    /// Open files at each sample.
    pub open_files: Vec<u64>,
    /// CPU seconds used from the first sample to the last.
    pub cpu_seconds: f64,
}

/// How often samples are taken.
pub const INTERVAL: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_line_counts_idle_and_iowait_as_not_busy() {
        let a = parse_machine("cpu  100 0 50 800 50 0 0 0 0 0").unwrap();
        let b = parse_machine("cpu  200 0 100 900 50 0 0 0 0 0").unwrap();
        assert_eq!(b.busy_since(&a), Some(0.6), "150 of 250 ticks busy");
        assert!(parse_machine("intr 1 2 3").is_none());
    }

    #[test]
    fn a_tree_holds_its_descendants_and_this_process_is_sampled() {
        let parents = HashMap::from([(2, 1), (3, 2), (4, 1), (5, 9)]);
        let mut members = tree(1, &parents);
        members.sort_unstable();
        assert_eq!(members, [1, 2, 3, 4]);
        assert_eq!(parse_ppid("77 (a (b) c) S 12 77 77 0"), Some(12));
        let own = sample_trees(&[std::process::id(), u32::MAX]);
        let own_tree = own[0].expect("this process is alive");
        assert!(own_tree.rss_bytes > 0 && own_tree.open_files > 0, "{own_tree:?}");
        assert!(own[1].is_none(), "no such process");
        assert!(open_files_limit(std::process::id()).is_some_and(|n| n > 0));
    }
}
