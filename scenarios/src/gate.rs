//! The gate: each criterion's measured value, where it came from, and its
//! verdict. Latency and error figures come from the loadgen's exact HDR
//! histograms and counters when the SLI has them, and from Prometheus
//! otherwise; when both exist and disagree beyond the width of the Prometheus
//! histogram bucket, the criterion says so.

use q2o_common::metrics::LATENCY_BUCKETS;
use q2o_loadgen::results::RunResults;
use serde::Serialize;

use crate::scenario::{Criterion, Sli};

/// A criterion's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Met the target (and the warning threshold, if any).
    Pass,
    /// Met the target but missed the warning threshold.
    Warn,
    /// Missed the target.
    Fail,
    /// Nothing measured it: the gate cannot pass on faith.
    NoData,
}

/// One judged criterion.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    /// Its name.
    pub name: String,
    /// What it measures (serialized by its name).
    pub sli: Sli,
    /// Comparison.
    pub op: &'static str,
    /// The target.
    pub target: f64,
    /// The warning threshold.
    pub warning: Option<f64>,
    /// The value the verdict rests on.
    pub measured: Option<f64>,
    /// `loadgen-hdr`, `prometheus`, `supervisor`, `redis`, `promtool` or `none`.
    pub source: &'static str,
    /// What Prometheus said, when it could.
    pub prometheus: Option<f64>,
    /// What the loadgen's exact records said, when they could.
    pub exact: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// A disagreement between the sources, or why there is no value.
    pub note: Option<String>,
}

/// The loadgen's exact value of an SLI, when its records hold one.
pub fn exact(sli: Sli, results: &RunResults) -> Option<f64> {
    let api = |s: &q2o_loadgen::results::StepResult| s.step != "await_task";
    let quantile = |keep: &dyn Fn(&q2o_loadgen::results::StepResult) -> bool, q: f64| {
        let h = results.latency_where(keep).ok()?;
        (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e6)
    };
    let counts = |fault: &dyn Fn(&str) -> bool| {
        let (mut total, mut bad) = (0u64, 0u64);
        for step in results.steps.iter().filter(|s| api(s)) {
            for (outcome, n) in &step.outcomes {
                total += n;
                if fault(outcome) {
                    bad += n;
                }
            }
        }
        (total > 0).then(|| bad as f64 / total as f64)
    };
    match sli {
        Sli::ApiLatencyP95 => quantile(&api, 0.95),
        Sli::ApiLatencyP99 => quantile(&api, 0.99),
        Sli::SearchLatencyP95 => quantile(&|s| s.step == "search", 0.95),
        Sli::ErrorRate => counts(&|o| o != "ok"),
        Sli::Availability => counts(&server_fault).map(|bad| 1.0 - bad),
        Sli::UsersReached => results.seconds.iter().map(|s| s.users).max().map(|u| u as f64),
        _ => None,
    }
}

/// Outcomes that are the server's failure (not a refusal of bad input).
fn server_fault(outcome: &str) -> bool {
    (outcome.starts_with("http_5"))
        || outcome.starts_with("error_")
        || matches!(outcome, "grpc_unavailable" | "grpc_internal" | "grpc_unknown" | "grpc_deadlineexceeded")
}

/// Judges one criterion from what was measured.
/// `other` is a value from elsewhere with its source (`supervisor`, `redis`, `promtool`).
pub fn judge(
    criterion: &Criterion,
    prometheus: Option<f64>,
    exact: Option<f64>,
    other: Option<(f64, &'static str)>,
) -> Judged {
    let (measured, source) = match (exact, prometheus, other) {
        (Some(v), _, _) => (Some(v), "loadgen-hdr"),
        (None, Some(v), _) => (Some(v), "prometheus"),
        (None, None, Some((v, source))) => (Some(v), source),
        (None, None, None) => (None, "none"),
    };
    let verdict = match measured {
        None => Verdict::NoData,
        Some(v) if !criterion.op.holds(v, criterion.target) => Verdict::Fail,
        Some(v) if criterion.warning.is_some_and(|w| !criterion.op.holds(v, w)) => Verdict::Warn,
        Some(_) => Verdict::Pass,
    };
    let note = match (exact, prometheus) {
        (Some(e), Some(p)) => disagreement(criterion.sli, e, p),
        _ if measured.is_none() => Some("no data: nothing in this run measured it".into()),
        _ => None,
    };
    Judged {
        name: criterion.name.clone(),
        sli: criterion.sli,
        op: criterion.op.as_str(),
        target: criterion.target,
        warning: criterion.warning,
        measured,
        source,
        prometheus,
        exact,
        verdict,
        note,
    }
}

/// Whether Prometheus and the exact value disagree beyond what the histogram
/// buckets (latency) or a scrape's timing (ratios) explain.
fn disagreement(sli: Sli, exact: f64, prometheus: f64) -> Option<String> {
    match sli.unit() {
        crate::scenario::Unit::Seconds => {
            let upper = LATENCY_BUCKETS.iter().copied().find(|b| *b >= exact);
            let lower = LATENCY_BUCKETS.iter().copied().rev().find(|b| *b < exact).unwrap_or(0.0);
            let inside = prometheus >= lower - 1e-9 && upper.is_none_or(|u| prometheus <= u + 1e-9);
            (!inside).then(|| {
                format!(
                    "Prometheus says {:.3} ms, outside the bucket ({:.3} ms, {}] that holds the exact {:.3} ms",
                    prometheus * 1e3,
                    lower * 1e3,
                    upper.map_or("+Inf".into(), |u| format!("{:.3} ms", u * 1e3)),
                    exact * 1e3
                )
            })
        }
        crate::scenario::Unit::Ratio => ((exact - prometheus).abs() > 0.001 + 0.01 * exact.abs()).then(|| {
            format!(
                "Prometheus says {prometheus:.5}, the loadgen's counters {exact:.5} (scrape timing at the run's edges)"
            )
        }),
        crate::scenario::Unit::Count => ((exact - prometheus).abs() > 0.5).then(|| {
            format!("Prometheus says {prometheus:.0}, the loadgen's records {exact:.0} (scraped once a second)")
        }),
    }
}

/// GO when every criterion passed or only warned.
pub fn decide(judged: &[Judged]) -> bool {
    judged.iter().all(|j| matches!(j.verdict, Verdict::Pass | Verdict::Warn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Op;

    fn criterion(sli: Sli, op: Op, target: f64, warning: Option<f64>) -> Criterion {
        Criterion { name: "c".into(), sli, op, target, warning }
    }

    #[test]
    fn verdicts_follow_target_and_warning_and_no_data_fails() {
        let c = criterion(Sli::ApiLatencyP95, Op::Lt, 0.050, Some(0.020));
        assert_eq!(judge(&c, None, Some(0.010), None).verdict, Verdict::Pass);
        assert_eq!(judge(&c, None, Some(0.030), None).verdict, Verdict::Warn);
        assert_eq!(judge(&c, Some(0.010), Some(0.060), None).verdict, Verdict::Fail, "exact wins over Prometheus");
        let none = judge(&c, None, None, None);
        assert_eq!(none.verdict, Verdict::NoData);
        assert!(!decide(&[none]));
    }

    #[test]
    fn sources_disagreeing_beyond_a_bucket_are_called_out() {
        let c = criterion(Sli::ApiLatencyP95, Op::Lt, 0.050, None);
        // 4 ms lies in the (3 ms, 5 ms] bucket: Prometheus may interpolate anywhere in it.
        assert!(judge(&c, Some(0.0045), Some(0.004), None).note.is_none());
        let note = judge(&c, Some(0.020), Some(0.004), None).note.unwrap();
        assert!(note.contains("outside the bucket"), "{note}");
    }
}
