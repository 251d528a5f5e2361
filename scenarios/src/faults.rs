//! Faults as scenario steps: injecting them on time, and what followed —
//! each fault's recovery as the supervisor saw it, and the users' view: the
//! burst of requests that failed after the first fault.

use q2o_env::Environment;
use q2o_env::backend::Recovery;
use q2o_loadgen::recorder::Second;
pub use q2o_report::faults::{ErrorBurst, Injected};
use q2o_slo::sli::{Criterion, Op, Sli};

use crate::error::RunError;
use crate::gate::{self, Judged, Source};
use crate::scenario::Fault;

/// Does `fault` to the environment now.
pub async fn inject(env: &Environment, fault: &Fault, load_elapsed: f64) -> Result<Injected, RunError> {
    let clock_at = env.clock();
    let done = env.inject(fault.action, &fault.service).await?;
    Ok(Injected {
        action: fault.action.as_str(),
        service: fault.service.clone(),
        at: load_elapsed,
        done,
        recovered_after: None,
        expected_within: fault.recover_within.map(|d| d.as_secs_f64()),
        clock_at,
    })
}

/// Matches each `kill` and `start` with the restart that followed it.
pub fn attach_recoveries(injected: &mut [Injected], recoveries: &[Recovery]) {
    for i in 0..injected.len() {
        let since = match injected[i].action {
            "kill" => injected[i].clock_at,
            // The restart of a stopped service is recorded from its stop.
            "start" => {
                match injected[..i].iter().rev().find(|f| f.action == "stop" && f.service == injected[i].service) {
                    Some(stop) => stop.clock_at,
                    None => continue,
                }
            }
            _ => continue,
        };
        // A death is noticed within the watcher's poll of the signal.
        injected[i].recovered_after = recoveries
            .iter()
            .find(|r| r.service == injected[i].service && r.died_at >= since - 0.5)
            .and_then(|r| r.recovered_after);
    }
}

/// One gate criterion per fault that states its expected recovery.
pub fn judge(injected: &[Injected]) -> Vec<Judged> {
    injected
        .iter()
        .filter_map(|f| {
            let within = f.expected_within?;
            let criterion = Criterion {
                name: format!("{}_recovers_after_{}", f.service, f.action),
                sli: Sli::RecoverySeconds,
                op: Op::Lt,
                target: within,
                warning: None,
                record_only: false,
                window: Default::default(),
            };
            Some(gate::judge_one(&criterion, None, None, f.recovered_after.map(|v| (v, Source::Supervisor))))
        })
        .collect()
}

/// Seconds without a failure that end a burst.
pub const QUIET: usize = 10;

/// The burst of failed requests from `from` (seconds after the load started)
/// on, at the one-second resolution of the loadgen's records.
pub fn error_burst(seconds: &[Second], from: f64) -> ErrorBurst {
    let mut burst = ErrorBurst::default();
    let first_second = from.floor() as usize;
    for (i, second) in seconds.iter().enumerate().skip(first_second) {
        if second.errors == 0 {
            continue;
        }
        if burst.last_failure_at.is_some_and(|last| i - last as usize > QUIET) {
            break;
        }
        burst.failed_requests += second.errors;
        burst.first_failure_at.get_or_insert(i as f64);
        burst.last_failure_at = Some(i as f64);
    }
    if let (Some(first), Some(last)) = (burst.first_failure_at, burst.last_failure_at) {
        burst.seconds = last - first + 1.0;
    }
    burst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injected(action: &'static str, service: &str, supervisor_at: f64) -> Injected {
        Injected {
            action,
            service: service.into(),
            at: supervisor_at,
            done: true,
            recovered_after: None,
            expected_within: Some(10.0),
            clock_at: supervisor_at,
        }
    }

    #[test]
    fn restarts_are_matched_to_the_fault_that_caused_them() {
        let recoveries = [
            Recovery { service: "gateway-0".into(), died_at: 3.0, recovered_after: Some(9.0) },
            Recovery { service: "gateway-0".into(), died_at: 40.1, recovered_after: Some(1.5) },
            Recovery { service: "redis".into(), died_at: 50.0, recovered_after: Some(0.3) },
        ];
        let mut faults = vec![
            injected("kill", "gateway-0", 40.0),
            injected("stop", "redis", 50.0),
            injected("start", "redis", 60.0),
            injected("pause", "gateway-1", 70.0),
        ];
        attach_recoveries(&mut faults, &recoveries);
        let after: Vec<_> = faults.iter().map(|f| f.recovered_after).collect();
        assert_eq!(after, [Some(1.5), None, Some(0.3), None]);
        let judged = judge(&faults);
        assert_eq!(judged.len(), 4, "every fault stating recover_within is judged");
        assert_eq!(judged[0].name, "gateway-0_recovers_after_kill");
        assert_eq!(judged[0].verdict, gate::Verdict::Pass);
        assert_eq!(judged[1].verdict, gate::Verdict::NoData, "a stop alone is not a recovery");
    }

    #[test]
    fn the_burst_spans_the_failing_seconds_after_the_fault() {
        let mut errors = vec![2, 0, 0, 0, 5, 1, 0, 3, 0, 0];
        // A lone failure well after the burst is not the fault's.
        errors.extend([0; QUIET]);
        errors.push(1);
        let seconds: Vec<Second> =
            errors.iter().map(|&e| Second { requests: 100, errors: e, ..Second::default() }).collect();
        let burst = error_burst(&seconds, 3.5);
        assert_eq!(burst.failed_requests, 9, "errors before the fault or after the burst are not the fault's");
        assert_eq!((burst.first_failure_at, burst.last_failure_at), (Some(4.0), Some(7.0)));
        assert_eq!(burst.seconds, 4.0);
        assert_eq!(error_burst(&seconds[..10], 8.0), ErrorBurst::default());
    }
}
