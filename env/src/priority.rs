//! CPU priority tiers for processes that share a machine's cores.
//!
//! When every core is busy, the kernel shares CPU time by weight (the nice
//! value), and a process woken by a socket waits for a core behind
//! everything of equal weight. Measured on the 2-core machine, the overload
//! scenario's shed answers waited 4-8 ms at their median and 20-30 ms at
//! their p99 for exactly that, at the gateways (to read the request) and at
//! the loadgen (to read the answer), while the stack's queued work (agents,
//! the event log, Prometheus) took its equal share. A deployment gives its
//! request path the CPU first (a pod's guaranteed CPU, a unit's
//! `CPUWeight`); a benchmark gives its load generator the CPU first, so that
//! what it records is the system's latency and not its own wait. The tiers
//! say that for the local environment; `[topology] cpu_priorities = "equal"`
//! runs everything at the same weight.
//!
//! Raising a priority (a negative nice value) needs root or `CAP_SYS_NICE`.
//! Without it the process keeps nice 0, and [`spawned`] says so once.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// How a process ranks for CPU time when the machine is busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The load generator: the measurement must not wait behind what it measures.
    Load,
    /// The front door: the gateways (and the monolith, nginx), where
    /// admission control turns excess requests away.
    Front,
    /// What admitted requests wait for: Redis and the search service.
    Serving,
    /// Queued work no request waits on: the agents, the event log, Prometheus.
    Background,
}

impl Tier {
    /// The nice value of the tier. A step of 5 is about a third of the CPU
    /// weight; +10 leaves the background a tenth of a front process's share
    /// while both want a core, and all of an idle machine.
    pub const fn nice(self) -> i32 {
        match self {
            Tier::Load | Tier::Front => -5,
            Tier::Serving => 0,
            Tier::Background => 10,
        }
    }
}

/// The topology's `cpu_priorities`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuPriorities {
    /// Each process at its [`Tier`]'s nice value.
    #[default]
    Tiered,
    /// Every process at nice 0, as the shell started the harness.
    Equal,
}

impl CpuPriorities {
    /// The nice value a process of `tier` starts with.
    pub const fn nice(self, tier: Tier) -> i32 {
        match self {
            CpuPriorities::Tiered => tier.nice(),
            CpuPriorities::Equal => 0,
        }
    }
}

/// Makes `command`'s process start at `nice`: set between fork and exec,
/// so that every thread it starts inherits it (`renice` from outside
/// changes one thread). A refusal (raising without the right) is ignored
/// there and reported by [`spawned`] from the parent.
pub fn start_at(command: &mut tokio::process::Command, nice: i32) {
    if nice == 0 {
        return;
    }
    // SAFETY: setpriority(2) on the calling process between fork and exec:
    // async-signal-safe, no memory passed, nothing allocated.
    unsafe {
        command.pre_exec(move || {
            libc::setpriority(libc::PRIO_PROCESS, 0, nice);
            Ok(())
        });
    }
}

/// The nice value of a running process, from `/proc/<pid>/stat`.
pub fn of(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_nice(&stat)
}

/// The nice value: field 19 of a stat line.
fn parse_nice(stat: &str) -> Option<i32> {
    crate::proc_stat::field(stat, 19)?.parse().ok()
}

/// Checks a process just started at `nice`; when it did not get it (a
/// raise without the right), says so on stderr, once per harness.
pub fn spawned(name: &str, pid: u32, nice: i32) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if nice == 0 {
        return;
    }
    match of(pid) {
        Some(actual) if actual != nice && !WARNED.swap(true, Ordering::Relaxed) => {
            eprintln!(
                "q2o-bench: {name} runs at nice {actual}, not {nice}: raising a CPU priority needs root or \
                 CAP_SYS_NICE (latencies measured on a busy machine include the wait for a core)"
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nice_value_is_read_past_a_name_with_spaces_and_parentheses() {
        let line = "4242 (q2o (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 731 96 0 0 20 -5 9 0 1234 0 0";
        assert_eq!(parse_nice(line), Some(-5));
        assert_eq!(parse_nice("garbage"), None);
    }

    #[test]
    fn equal_priorities_start_every_tier_at_nice_zero_and_tiers_order_the_cpu() {
        let tiers = [Tier::Load, Tier::Front, Tier::Serving, Tier::Background];
        assert!(tiers.iter().all(|&t| CpuPriorities::Equal.nice(t) == 0));
        let nice = |t| CpuPriorities::Tiered.nice(t);
        assert!(nice(Tier::Load) <= nice(Tier::Serving) && nice(Tier::Front) < nice(Tier::Serving));
        assert!(nice(Tier::Serving) < nice(Tier::Background));
    }

    #[tokio::test]
    async fn a_child_started_at_a_lower_priority_runs_at_it() {
        let mut command = tokio::process::Command::new("sleep");
        command.arg("5").kill_on_drop(true);
        start_at(&mut command, 19);
        let mut child = command.spawn().unwrap();
        let seen = of(child.id().unwrap());
        child.kill().await.unwrap();
        // Nice values are absolute, and lowering to the lowest is always allowed.
        assert_eq!(seen, Some(19));
    }
}
