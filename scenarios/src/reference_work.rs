//! A fixed piece of CPU work, timed in the CPU time of the thread that does
//! it: how fast this machine is at the moment of a measurement.
//!
//! The shared 2-core VM the cost figures are taken on runs 5–30 % slower on
//! some days than on others, with no steal time to show for it; this figure
//! says how fast it computed when a report was taken. The work is what
//! the services compute most (JSON encoded and decoded, allocations), on one
//! document of a completed task's shape. It times compute only, not wake-ups
//! or system calls: on 2026-12-06 it read 17.3 ms in two runs in which the
//! stack cost 20 % more per request than that morning and idled at ten times
//! the cores, a slowdown that the idle-stack figure showed and this cannot;
//! later that day it read 17.5 ms, then 26.5–28.3 ms, while the stack's cost
//! went from 400 to 387 CPU-µs per request. It does not say whether two
//! reports compare.

use std::time::Duration;

use serde::Serialize;

/// Rounds timed; the median is the figure.
const ROUNDS: usize = 7;

/// Encodes and decodes per round: about 20 ms of CPU on the 2-core machine
/// (release build).
const ITERATIONS: usize = 2_500;

/// The CPU time of [`ROUNDS`] rounds of the reference work.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReferenceWork {
    /// Rounds timed.
    pub rounds: usize,
    /// Milliseconds of CPU, the median round.
    pub median_ms: f64,
    /// The fastest round.
    pub min_ms: f64,
    /// The slowest round.
    pub max_ms: f64,
}

impl ReferenceWork {
    /// Times the work on the calling thread (blocking: [`ROUNDS`] rounds of about 20 ms).
    pub fn measure() -> ReferenceWork {
        let document = document();
        let rounds: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let started = q2o_env::cpu::thread_seconds();
                for _ in 0..ITERATIONS {
                    let bytes = serde_json::to_vec(std::hint::black_box(&document)).expect("a Value encodes");
                    let decoded: serde_json::Value = serde_json::from_slice(&bytes).expect("its own encoding decodes");
                    std::hint::black_box(decoded);
                }
                Duration::from_secs_f64(q2o_env::cpu::thread_seconds() - started)
            })
            .collect();
        ReferenceWork::of(&rounds)
    }

    /// The figures of timed rounds (at least one).
    fn of(rounds: &[Duration]) -> ReferenceWork {
        let mut ms: Vec<f64> = rounds.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        ReferenceWork { rounds: ms.len(), median_ms: ms[ms.len() / 2], min_ms: ms[0], max_ms: ms[ms.len() - 1] }
    }
}

/// A completed task's event as the agents send it: scalars, a few strings
/// that need escaping, and kilobytes of generated code.
fn document() -> serde_json::Value {
    let code: String = (0..60).map(|i| format!("    let value_{i} = compute(\"step {i}\", {i});\n")).collect();
    serde_json::json!({
        "event_id": "5f0c2a4e-8a43-4d55-9c1e-2b7f3f1e9a10",
        "agent_type": "coder",
        "event_type": "task_completed",
        "tenant": "acme",
        "at": 1_765_000_000_123_u64,
        "payload": {
            "duration_ms": 812,
            "prompt_tokens": 1_532,
            "completion_tokens": 4_211,
            "cost_dollars": 0.0734,
            "cache_hit": false,
            "task": { "description": "Write a \"rate limiter\" with a token bucket\nand tests" },
            "result": { "summary": "A token bucket.", "language": "rust", "code": code },
            "project": { "name": "gateway", "tags": ["rust", "api", "limits"], "status": "active" },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figure_is_the_median_round_with_its_spread() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
        let work = ReferenceWork::of(&ms(&[40, 31, 30, 33, 90, 32, 31]));
        assert_eq!(work, ReferenceWork { rounds: 7, median_ms: 32.0, min_ms: 30.0, max_ms: 90.0 });
    }

    #[test]
    fn the_work_takes_cpu_time_in_every_round() {
        let work = ReferenceWork::measure();
        assert_eq!(work.rounds, ROUNDS);
        assert!(work.min_ms > 0.0 && work.min_ms <= work.median_ms && work.median_ms <= work.max_ms, "{work:?}");
    }
}
