//! CPU time spent by processes, from the kernel's own accounting: a running
//! process's `utime + stime` in `/proc/<pid>/stat`, how often its threads were
//! put on a core and how long they waited for one (`schedstat`), and the
//! summed rusage of the children this process has waited for (a loadgen run,
//! once it exits).

use crate::proc_stat;

/// CPU seconds (user + system) a running process has used so far, or `None`
/// if it is gone or `/proc` cannot say.
pub fn process_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).map(|ticks| ticks as f64 / ticks_per_second())
}

/// `utime + stime` (fields 14 and 15) in clock ticks from a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<u64> {
    let utime: u64 = proc_stat::field(stat, 14)?.parse().ok()?;
    let stime: u64 = proc_stat::field(stat, 15)?.parse().ok()?;
    Some(utime + stime)
}

/// How a process's threads got the CPU so far: the times the scheduler put one
/// on a core, and the time they spent runnable, waiting for one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Runs {
    /// Runs on a core: each wake-up, and each return after being preempted.
    pub count: u64,
    /// Seconds spent runnable but not running.
    pub waited_seconds: f64,
}

impl Runs {
    /// The runs made since `earlier`, a reading of the same process. A thread
    /// that exited in between took its runs along: never less than none.
    pub fn since(self, earlier: Runs) -> Runs {
        Runs {
            count: self.count.saturating_sub(earlier.count),
            waited_seconds: (self.waited_seconds - earlier.waited_seconds).max(0.0),
        }
    }
}

impl std::ops::AddAssign for Runs {
    fn add_assign(&mut self, other: Runs) {
        self.count += other.count;
        self.waited_seconds += other.waited_seconds;
    }
}

/// The runs of `pid`'s live threads (`/proc/<pid>/task/*/schedstat`), or
/// `None` if it is gone or the kernel keeps no schedstat. A thread that has
/// exited takes its runs with it: the process-wide file counts the main
/// thread alone.
pub fn process_runs(pid: u32) -> Option<Runs> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = None::<Runs>;
    for thread in threads.flatten() {
        if let Some(runs) =
            std::fs::read_to_string(thread.path().join("schedstat")).ok().and_then(|s| parse_schedstat(&s))
        {
            *total.get_or_insert_default() += runs;
        }
    }
    total
}

/// `<ns on a core> <ns waiting on a run queue> <runs>` (the kernel's
/// `Documentation/scheduler/sched-stats.rst`).
fn parse_schedstat(line: &str) -> Option<Runs> {
    let mut fields = line.split_whitespace().skip(1);
    let waited_ns: u64 = fields.next()?.parse().ok()?;
    let count: u64 = fields.next()?.parse().ok()?;
    Some(Runs { count, waited_seconds: waited_ns as f64 / 1e9 })
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// CPU seconds of every child (and their children) this process has waited
/// for: the difference across one child's run is that child's CPU time.
pub fn waited_children_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// CPU seconds the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`):
/// unlike wall time, not inflated by other processes taking turns on its core.
pub fn thread_seconds() -> f64 {
    // SAFETY: clock_gettime writes into the struct we own.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return 0.0;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_lines_give_runs_and_the_wait_for_a_core() {
        assert_eq!(parse_schedstat("154703 2500000000 17\n"), Some(Runs { count: 17, waited_seconds: 2.5 }));
        assert_eq!(parse_schedstat("154703 2500000000"), None);
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn this_process_has_run_at_least_once() {
        let runs = process_runs(std::process::id()).expect("Linux keeps schedstat for every thread");
        assert!(runs.count >= 1, "{runs:?}");
        assert_eq!(process_runs(u32::MAX), None, "no such process");
    }

    #[test]
    fn stat_lines_are_read_past_a_name_with_spaces_and_parentheses() {
        let line = "4242 (q2o (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 731 96 0 0 20 0 9 0 1234 0 0";
        assert_eq!(parse_stat(line), Some(731 + 96));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_and_a_waited_child_have_used_cpu() {
        // Spin until the kernel has counted 50 ms more (bounded by 20 s of wall
        // time, for a machine busy with other work).
        let own = process_seconds(std::process::id()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut x = 0u64;
        let mut now = own;
        while now < own + 0.05 && std::time::Instant::now() < deadline {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            now = process_seconds(std::process::id()).unwrap();
        }
        assert!(now >= own + 0.05, "spun 20 s, the kernel counted {:.3} s", now - own);
        let before = waited_children_seconds();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(waited_children_seconds() > before, "the child's CPU time was added once it was waited for");
    }

    #[test]
    fn a_thread_counts_its_own_cpu_time_not_its_sleep() {
        let start = thread_seconds();
        assert!(start > 0.0, "a running thread has used some CPU");
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(thread_seconds() - start < 0.1, "sleeping uses no CPU");
        let mut x = 0u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while thread_seconds() < start + 0.02 && std::time::Instant::now() < deadline {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        assert!(thread_seconds() >= start + 0.02, "spinning is counted");
    }
}
