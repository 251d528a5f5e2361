//! What processes and the machine spend, read from the kernel's own
//! accounting once a second: each process tree's CPU time, resident memory
//! and open files (`/proc/<pid>/{stat,status,fd}`, children included, so
//! nginx's worker counts for its master and `--processes` children for their
//! loadgen), how often its threads were put on a core and how long they
//! waited for one (`/proc/<pid>/task/*/schedstat`), and the machine's busy
//! share of its cores (`/proc/stat`).
//!
//! Containers' processes are host processes: the docker backend hands over
//! their host pids, and they are read the same way.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::cpu::Runs;

/// One process tree's totals at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TreeSample {
    /// CPU seconds (user + system) of the tree's live processes so far.
    pub cpu_seconds: f64,
    /// Resident memory of the tree, bytes.
    pub rss_bytes: u64,
    /// Open file descriptors of the tree.
    pub open_files: u64,
    /// Runs on a core of the tree's live threads so far, and their waits for
    /// one (`None` where the kernel keeps no schedstat).
    pub runs: Option<Runs>,
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

/// The parent's pid: field 4 of `/proc/<pid>/stat`.
fn parse_ppid(stat: &str) -> Option<u32> {
    crate::proc_stat::field(stat, 4)?.parse().ok()
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
    let runs = crate::cpu::process_runs(pid);
    Some(TreeSample { cpu_seconds, rss_bytes: rss_kib * 1024, open_files, runs })
}

/// Samples each of `roots`' process trees now (`None` for a root that is gone).
pub fn sample_trees(roots: &[u32]) -> Vec<Option<TreeSample>> {
    let parents = parents();
    roots.iter().map(|root| tree_sample(*root, &parents)).collect()
}

/// What a watched process is to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Part of the system under test.
    Service,
    /// Part of the harness: the loadgen, Prometheus, the runner itself.
    Harness,
}

/// A process to watch: its name, its role, the most cores it can use, and
/// what of it is measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Watched {
    /// Its name in reports (`gateway-0`, `loadgen-0`, `runner`).
    pub name: String,
    /// Service or harness.
    pub role: Role,
    /// Cores it can use at most: a container's limit, one for a
    /// single-threaded server, else the machine's.
    pub core_limit: f64,
    /// The process alone, its tree, or its container's control group.
    pub scope: Scope,
}

/// What a watched process's figures are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The process alone (the runner, whose children are everything else).
    Process,
    /// The process and its descendants (a service's workers), from `/proc`.
    Tree,
    /// A container: CPU and memory from its control group's own counters
    /// (what its limits are enforced on), open files from its process tree.
    /// Falls back to the tree where the cgroup cannot be read.
    Cgroup,
}

/// One watched process over a run, second by second.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Cores used in each second (CPU seconds over wall seconds), from the second second on.
    pub cores: Vec<f64>,
    /// Resident memory at each sample, bytes.
    pub rss_bytes: Vec<u64>,
    /// Open files at each sample.
    pub open_files: Vec<u64>,
    /// The most files it may open.
    pub open_files_limit: Option<u64>,
    /// Its threads' runs on a core in each second, and their waits for one,
    /// aligned with `cores` (`None` in a second the kernel could not say).
    pub runs: Vec<Option<Runs>>,
    last: Option<(u32, TreeSample)>,
}

/// Everything watched over a run: per process and for the machine, one entry a second.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// The processes, in the order first seen.
    pub processes: Vec<(Watched, Series)>,
    /// The machine's busy share of all its cores, each second.
    pub machine_busy: Vec<f64>,
    last_machine: Option<MachineSample>,
}

impl Timeline {
    /// Adds one sample of each of `watched` (with its pid now; a pid that
    /// changed is a restart, whose CPU time starts again from zero).
    pub fn sample(&mut self, watched: &[(Watched, u32)]) {
        let parents = parents();
        if let Some(now) = MachineSample::now() {
            if let Some(busy) = self.last_machine.and_then(|before| now.busy_since(&before)) {
                self.machine_busy.push(busy);
            }
            self.last_machine = Some(now);
        }
        for (who, pid) in watched {
            let sample = match who.scope {
                Scope::Process => process(*pid),
                Scope::Tree => tree_sample(*pid, &parents),
                Scope::Cgroup => tree_sample(*pid, &parents).map(|tree| match cgroup_sample(*pid) {
                    Some((cpu_seconds, rss_bytes)) => TreeSample { cpu_seconds, rss_bytes, ..tree },
                    None => tree,
                }),
            };
            let Some(sample) = sample else { continue };
            let index = match self.processes.iter().position(|(w, _)| w.name == who.name) {
                Some(i) => i,
                None => {
                    let series = Series { open_files_limit: open_files_limit(*pid), ..Series::default() };
                    self.processes.push((who.clone(), series));
                    self.processes.len() - 1
                }
            };
            let series = &mut self.processes[index].1;
            match series.last {
                Some((last_pid, last)) if last_pid == *pid => {
                    series.cores.push((sample.cpu_seconds - last.cpu_seconds).max(0.0));
                    series.runs.push(sample.runs.zip(last.runs).map(|(now, then)| now.since(then)));
                }
                // A restarted process: this second's use is unknown, not negative.
                Some(_) => {
                    series.cores.push(0.0);
                    series.runs.push(Some(Runs::default()));
                }
                None => {}
            }
            series.last = Some((*pid, sample));
            series.rss_bytes.push(sample.rss_bytes);
            series.open_files.push(sample.open_files);
        }
    }
}

/// CPU seconds and resident (anonymous) memory of `pid`'s control group:
/// cgroup v1's `cpuacct.usage` and `memory.stat` `total_rss`, or v2's
/// `cpu.stat` `usage_usec` and `memory.stat` `anon`. `None` where they
/// cannot be read.
pub fn cgroup_sample(pid: u32) -> Option<(f64, u64)> {
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let root = Path::new("/sys/fs/cgroup");
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).ok();
    match (cgroup_path(&membership, "cpuacct"), cgroup_path(&membership, "memory")) {
        (Some(cpu), Some(memory)) => {
            let nanos: u64 = read(root.join("cpuacct").join(cpu).join("cpuacct.usage"))?.trim().parse().ok()?;
            let rss = stat_field(&read(root.join("memory").join(memory).join("memory.stat"))?, "total_rss")?;
            Some((nanos as f64 / 1e9, rss))
        }
        _ => {
            let unified = root.join(cgroup_path(&membership, "")?);
            let micros = stat_field(&read(unified.join("cpu.stat"))?, "usage_usec")?;
            let anon = stat_field(&read(unified.join("memory.stat"))?, "anon")?;
            Some((micros as f64 / 1e6, anon))
        }
    }
}

/// The path (relative to its hierarchy's mount) of the cgroup holding a
/// process for `controller`, from `/proc/<pid>/cgroup` (`id:controllers:path`);
/// `""` names the v2 unified hierarchy.
fn cgroup_path<'a>(membership: &'a str, controller: &str) -> Option<&'a str> {
    membership.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let matches = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        matches.then(|| path.trim_start_matches('/'))
    })
}

/// A `name value` line's value in a cgroup stat file.
fn stat_field(stat: &str, name: &str) -> Option<u64> {
    stat.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn tree_sample(root: u32, parents: &HashMap<u32, u32>) -> Option<TreeSample> {
    let members = tree(root, parents);
    let mut total = process(root)?;
    for member in &members[1..] {
        if let Some(s) = process(*member) {
            total.cpu_seconds += s.cpu_seconds;
            total.rss_bytes += s.rss_bytes;
            total.open_files += s.open_files;
            total.runs = total.runs.zip(s.runs).map(|(mut sum, runs)| {
                sum += runs;
                sum
            });
        }
    }
    Some(total)
}

/// One process's figures over a span of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessFigures {
    /// Its name.
    pub name: String,
    /// `service` or `harness`.
    pub role: Role,
    /// Mean cores used over the span.
    pub cpu_cores_mean: f64,
    /// The most cores used in one second of the span.
    pub cpu_cores_peak: f64,
    /// CPU microseconds per request finished in the span (null without requests).
    pub cpu_us_per_request: Option<f64>,
    /// Times its threads were put on a core, per request finished in the
    /// span: its wake-ups and returns from preemption (null without requests).
    pub runs_per_request: Option<f64>,
    /// Mean microseconds a run waited, runnable, for a core (null without runs).
    pub wait_us_per_run: Option<f64>,
    /// Largest resident memory, bytes.
    pub rss_peak_bytes: u64,
    /// Most files open at once.
    pub open_files_peak: u64,
}

/// The machine over the span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MachineFigures {
    /// Logical cores.
    pub cores: usize,
    /// Memory, bytes.
    pub memory_bytes: u64,
    /// Mean busy share of all cores over the span.
    pub cpu_busy_mean: f64,
    /// Busiest second's share.
    pub cpu_busy_peak: f64,
}

/// Where the machine's capacity went over a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resources {
    /// The machine.
    pub machine: MachineFigures,
    /// Every watched process, services first.
    pub processes: Vec<ProcessFigures>,
}

/// The first resource to reach [`SATURATED`] of what it has.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Saturation {
    /// What saturated: `machine cpu`, `cpu of <process>`, `open files of <process>`, `memory`.
    pub resource: String,
    /// Seconds after the first sample.
    pub at_seconds: f64,
    /// Users active in that second (closed model), when known.
    pub users: Option<u64>,
    /// The figure and the limit, in words.
    pub detail: String,
}

/// The seconds of a per-second series inside `span`: fewer, or none, where
/// the series ends first.
fn within<'a, T>(series: &'a [T], span: &std::ops::Range<usize>) -> &'a [T] {
    series.get(span.start.min(series.len())..span.end.min(series.len())).unwrap_or_default()
}

/// The share of a resource at which it counts as saturated.
pub const SATURATED: f64 = 0.9;

impl Timeline {
    /// The figures over seconds `span` of the run (indices into the per-second
    /// series), with `requests` finished in each second of the run.
    pub fn figures(&self, span: std::ops::Range<usize>, requests: &[u64]) -> Resources {
        let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        let peak = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let busy = within(&self.machine_busy, &span);
        let in_span: u64 = within(requests, &span).iter().sum();
        let mut processes: Vec<ProcessFigures> = self
            .processes
            .iter()
            .map(|(who, series)| {
                let cores = within(&series.cores, &span);
                let cpu: f64 = cores.iter().sum();
                // Unknown for the span if unknown in any second of it.
                let runs = within(&series.runs, &span).iter().try_fold(Runs::default(), |mut sum, second| {
                    sum += (*second)?;
                    Some(sum)
                });
                ProcessFigures {
                    name: who.name.clone(),
                    role: who.role,
                    cpu_cores_mean: mean(cores),
                    cpu_cores_peak: peak(cores),
                    cpu_us_per_request: (in_span > 0).then(|| cpu * 1e6 / in_span as f64),
                    runs_per_request: runs.filter(|_| in_span > 0).map(|runs| runs.count as f64 / in_span as f64),
                    wait_us_per_run: runs
                        .filter(|runs| runs.count > 0)
                        .map(|runs| runs.waited_seconds * 1e6 / runs.count as f64),
                    rss_peak_bytes: series.rss_bytes.iter().copied().max().unwrap_or(0),
                    open_files_peak: series.open_files.iter().copied().max().unwrap_or(0),
                }
            })
            .collect();
        processes.sort_by_key(|p| p.role == Role::Harness);
        Resources {
            machine: MachineFigures {
                cores: cores(),
                memory_bytes: memory_bytes(),
                cpu_busy_mean: mean(busy),
                cpu_busy_peak: peak(busy),
            },
            processes,
        }
    }

    /// The first of [`SUSTAINED`] seconds in a row in which one resource
    /// stayed at [`SATURATED`] or above: the machine's CPU, a process's cores
    /// against its limit, a process's open files against its limit, or the
    /// machine's memory. `users[i]` are the users active in second `i`.
    pub fn saturation(&self, users: &[u64]) -> Option<Saturation> {
        let seconds = self.machine_busy.len().max(self.processes.iter().map(|(_, s)| s.cores.len()).max().unwrap_or(0));
        let hits: Vec<Option<(String, String)>> = (0..seconds).map(|i| self.saturated_in(i)).collect();
        let first = (0..seconds).find(|&i| {
            let resource = hits[i].as_ref().map(|(r, _)| r);
            resource.is_some()
                && (i..i + SUSTAINED).all(|j| hits.get(j).and_then(|h| h.as_ref()).map(|(r, _)| r) == resource)
        })?;
        let (resource, detail) = hits[first].clone()?;
        Some(Saturation { resource, at_seconds: (first + 1) as f64, users: users.get(first + 1).copied(), detail })
    }

    /// The first resource at [`SATURATED`] in second `i`, with its figure in words.
    fn saturated_in(&self, i: usize) -> Option<(String, String)> {
        if let Some(busy) = self.machine_busy.get(i).filter(|b| **b >= SATURATED) {
            return Some(("machine cpu".into(), format!("{:.0} % of {} cores busy", busy * 100.0, cores())));
        }
        for (who, series) in &self.processes {
            if let Some(used) = series.cores.get(i).filter(|c| **c >= SATURATED * who.core_limit) {
                return Some((format!("cpu of {}", who.name), format!("{used:.2} cores of its {:.2}", who.core_limit)));
            }
            let limit = series.open_files_limit.unwrap_or(u64::MAX) as f64;
            if let Some(open) = series.open_files.get(i + 1).filter(|n| **n as f64 >= SATURATED * limit) {
                return Some((format!("open files of {}", who.name), format!("{open} of {limit:.0}")));
            }
        }
        let memory = memory_bytes() as f64;
        let resident: u64 = self.processes.iter().filter_map(|(_, s)| s.rss_bytes.get(i + 1)).sum();
        (memory > 0.0 && resident as f64 >= SATURATED * memory).then(|| {
            let gib = |b: f64| b / (1u64 << 30) as f64;
            ("memory".into(), format!("{:.1} GiB resident of {:.1} GiB", gib(resident as f64), gib(memory)))
        })
    }
}

/// Seconds in a row a resource must stay saturated to count: one busy
/// second (a start-up, a garbage collection) is not saturation.
pub const SUSTAINED: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_containers_cgroup_is_found_in_v1_and_v2_membership_lines() {
        let v1 = "4:memory:/docker/50b7\n2:cpuacct,cpu:/docker/50b7\n0::/docker/50b7\n";
        assert_eq!(cgroup_path(v1, "cpuacct"), Some("docker/50b7"));
        assert_eq!(cgroup_path(v1, "memory"), Some("docker/50b7"));
        let v2 = "0::/system.slice/docker-50b7.scope\n";
        assert_eq!((cgroup_path(v2, "cpuacct"), cgroup_path(v2, "")), (None, Some("system.slice/docker-50b7.scope")));
        let stat = "cache 4096\nrss 2772992\ntotal_rss 2772992\n";
        assert_eq!((stat_field(stat, "rss"), stat_field(stat, "total_rss")), (Some(2772992), Some(2772992)));
        assert_eq!(stat_field("usage_usec 1500\nuser_usec 1000\n", "usage_usec"), Some(1500));
    }

    #[test]
    fn the_machine_line_counts_idle_and_iowait_as_not_busy() {
        let a = parse_machine("cpu  100 0 50 800 50 0 0 0 0 0").unwrap();
        let b = parse_machine("cpu  200 0 100 900 50 0 0 0 0 0").unwrap();
        assert_eq!(b.busy_since(&a), Some(0.6), "150 of 250 ticks busy");
        assert!(parse_machine("intr 1 2 3").is_none());
    }

    #[test]
    fn saturation_is_the_first_resource_held_at_ninety_percent_for_three_seconds() {
        let watched = Watched { name: "redis".into(), role: Role::Service, core_limit: 1.0, scope: Scope::Tree };
        let series = |cores: &[f64]| Series {
            cores: cores.to_vec(),
            rss_bytes: vec![1; cores.len() + 1],
            open_files: vec![10; cores.len() + 1],
            open_files_limit: Some(1024),
            runs: cores.iter().map(|_| Some(Runs { count: 50, waited_seconds: 0.001 })).collect(),
            last: None,
        };
        let timeline = Timeline {
            processes: vec![(watched, series(&[0.2, 0.95, 0.3, 0.92, 0.97, 0.99, 0.5]))],
            machine_busy: vec![0.95, 0.3, 0.4, 0.5, 0.6, 0.6, 0.6],
            last_machine: None,
        };
        let found = timeline.saturation(&[0, 10, 20, 30, 40, 50, 60, 70]).expect("redis held one core from second 4");
        assert_eq!((found.resource.as_str(), found.at_seconds, found.users), ("cpu of redis", 4.0, Some(40)));
        assert!(found.detail.contains("0.92 cores of its 1.00"), "{}", found.detail);
        let calm = Timeline { machine_busy: vec![0.95, 0.2, 0.95], ..timeline.clone() };
        let calm = Timeline { processes: Vec::new(), ..calm };
        assert_eq!(calm.saturation(&[]), None, "single busy seconds are not saturation");
        let figures = timeline.figures(1..4, &[100, 100, 100, 100, 100]);
        assert!((figures.processes[0].cpu_cores_mean - (0.95 + 0.3 + 0.92) / 3.0).abs() < 1e-9);
        let per_request = figures.processes[0].cpu_us_per_request.unwrap();
        assert!((per_request - (0.95 + 0.3 + 0.92) * 1e6 / 300.0).abs() < 1e-6, "{per_request}");
        // 150 runs over 300 requests, each run having waited 1 ms / 50.
        assert_eq!(figures.processes[0].runs_per_request, Some(0.5));
        assert!((figures.processes[0].wait_us_per_run.unwrap() - 20.0).abs() < 1e-9);
        let idle = timeline.figures(1..4, &[0; 5]);
        assert_eq!((idle.processes[0].cpu_us_per_request, idle.processes[0].runs_per_request), (None, None));
        // A second without schedstat leaves the span's runs unknown, not fewer.
        let mut blind = timeline.clone();
        blind.processes[0].1.runs[2] = None;
        let blind = blind.figures(1..4, &[100; 5]);
        assert_eq!((blind.processes[0].runs_per_request, blind.processes[0].wait_us_per_run), (None, None));
        assert!(blind.processes[0].cpu_us_per_request.is_some());
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

    #[test]
    fn each_second_counts_the_runs_its_threads_made_in_it() {
        // A shell of its own, so no other test's threads come or go in it:
        // it waits for each `sleep` it starts, and wakes when each one ends.
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "read go; for i in 1 2 3 4 5; do sleep 0.01; done; read done"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        let who = Watched { name: "sh".into(), role: Role::Harness, core_limit: 1.0, scope: Scope::Process };
        let watched = [(who, shell.id())];
        let mut timeline = Timeline::default();
        timeline.sample(&watched);
        let mut stdin = shell.stdin.take().expect("piped");
        std::io::Write::write_all(&mut stdin, b"go\n").expect("sh reads");
        std::thread::sleep(std::time::Duration::from_millis(500));
        timeline.sample(&watched);
        std::io::Write::write_all(&mut stdin, b"done\n").expect("sh reads");
        assert!(shell.wait().expect("sh ends").success());
        let series = &timeline.processes[0].1;
        assert_eq!(series.runs.len(), series.cores.len());
        assert!(series.runs[0].is_some_and(|runs| runs.count >= 5), "{:?}", series.runs);
    }
}
