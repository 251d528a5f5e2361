//! The gate: each criterion's measured value, where it came from, and its
//! verdict, decided by [`judge`] from the run's [`Evidence`] alone (no server
//! is asked here). Latency and error figures come from the loadgen's exact
//! HDR histograms and counters when the SLI has them, and from Prometheus
//! otherwise; when both exist and disagree beyond the width of the
//! Prometheus histogram bucket, the criterion says so.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use q2o_common::metrics::LATENCY_BUCKETS;
use q2o_loadgen::recorder::ApiCounts;
use q2o_loadgen::results::{RunResults, StepResult};
use q2o_loadgen::step::Step;
pub use q2o_report::judged::{Judged, Source, Verdict};
use q2o_slo::sli::{Criterion, Sli, Unit, Window};

/// Everything a gate run measured that its criteria are judged by.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The loadgen's merged results (exact histograms and counters).
    pub results: Option<RunResults>,
    /// What Prometheus said of each SLI over the run.
    pub prometheus: BTreeMap<Sli, f64>,
    /// Share of dashboard panel queries that returned data.
    pub dashboard_coverage: Option<f64>,
    /// Share of SLI and SLO recording rules that had data.
    pub sli_coverage: Option<f64>,
    /// Share of the run's alerts that promtool tests fire and keep quiet.
    pub alert_test_coverage: Option<f64>,
    /// Tasks that never reached a final state, asked of Redis.
    pub tasks_unfinished: Option<f64>,
    /// Events proven lost by the census of the log against the audit ledger.
    pub events_lost: Option<f64>,
    /// Every restart's time to ready; `None` for one that never was.
    pub recoveries: Vec<Option<f64>>,
    /// The users' error burst after the first fault, seconds.
    pub error_burst_seconds: Option<f64>,
    /// What was measured over each window a criterion names.
    pub windows: BTreeMap<Window, WindowEvidence>,
}

/// What the loadgen and Prometheus measured over one window of the run.
#[derive(Clone, Debug, Default)]
pub struct WindowEvidence {
    /// The served answers' latency of the API calls, from the interval logs.
    pub api: Option<Histogram<u64>>,
    /// The same of the searches.
    pub search: Option<Histogram<u64>>,
    /// The API calls by how they ended, from the per-second counts.
    pub counts: ApiCounts,
    /// What Prometheus said of each SLI over the window.
    pub prometheus: BTreeMap<Sli, f64>,
}

impl WindowEvidence {
    /// The exact value of `sli` over the window, when the records hold one.
    pub fn exact(&self, sli: Sli) -> Option<f64> {
        let quantile = |h: &Option<Histogram<u64>>, q: f64| {
            h.as_ref().filter(|h| !h.is_empty()).map(|h| h.value_at_quantile(q) as f64 / 1e6)
        };
        let c = &self.counts;
        let share = |n: u64| (c.requests > 0).then(|| n as f64 / c.requests as f64);
        match sli {
            Sli::ApiLatencyP95 => quantile(&self.api, 0.95),
            Sli::ApiLatencyP99 => quantile(&self.api, 0.99),
            Sli::SearchLatencyP95 => quantile(&self.search, 0.95),
            Sli::ErrorRate => share(c.failed),
            Sli::Availability => share(c.shed + c.faults).map(|bad| 1.0 - bad),
            Sli::ShedRate => share(c.shed),
            Sli::ServerFaultRate => share(c.faults),
            _ => None,
        }
    }
}

/// Judges every criterion from `evidence`, in order.
pub fn judge(evidence: &Evidence, criteria: &[Criterion]) -> Vec<Judged> {
    criteria
        .iter()
        .map(|criterion| {
            if let Some(window) = evidence.windows.get(&criterion.window).filter(|_| !criterion.window.is_hold()) {
                let prometheus = window.prometheus.get(&criterion.sli).copied();
                let mut judged = judge_one(criterion, prometheus, window.exact(criterion.sli), None);
                judged.window = Some(criterion.window.to_string());
                return judged;
            }
            let prometheus = evidence.prometheus.get(&criterion.sli).copied();
            // The census proves loss; Prometheus's counters, taken at the
            // cut-off, cannot tell it from lag and are only shown beside it.
            if let (Sli::EventsLost, Some(lost)) = (criterion.sli, evidence.events_lost) {
                let mut judged = judge_one(criterion, None, None, Some((lost, Source::Census)));
                judged.prometheus = prometheus;
                judged.note = prometheus.filter(|p| (p - lost).abs() > 0.5).map(|p| {
                    format!("Prometheus's counters said {p:.0} at the cut-off (delivered minus audited: lag, not loss)")
                });
                return judged;
            }
            if criterion.sli == Sli::ShedLatencyP99 && evidence.results.as_ref().is_some_and(nothing_shed) {
                // It holds (no shed answer was slow), but there is no latency to show.
                let mut judged = judge_one(criterion, None, None, None);
                judged.verdict = if criterion.record_only { Verdict::Recorded } else { Verdict::Pass };
                judged.source = Source::LoadgenHdr;
                judged.note = Some("nothing was shed: no shed answer to be slow".into());
                return judged;
            }
            let exact = match criterion.sli {
                Sli::ErrorBurstSeconds => evidence.error_burst_seconds,
                sli => evidence.results.as_ref().and_then(|r| exact(sli, r)),
            };
            // What neither Prometheus nor the loadgen can say, and who said it.
            let other = match criterion.sli {
                Sli::DashboardCoverage => evidence.dashboard_coverage.map(|v| (v, Source::Prometheus)),
                Sli::SliCoverage => evidence.sli_coverage.map(|v| (v, Source::Prometheus)),
                Sli::TasksUnfinished => evidence.tasks_unfinished.map(|v| (v, Source::Redis)),
                Sli::TaskSuccess => None,
                Sli::AlertTestCoverage => evidence.alert_test_coverage.map(|v| (v, Source::Promtool)),
                // A restart that never became ready counts as never: no value, so NO-GO.
                Sli::RecoverySeconds => evidence
                    .recoveries
                    .iter()
                    .copied()
                    .collect::<Option<Vec<f64>>>()
                    .and_then(|times| times.into_iter().reduce(f64::max))
                    .map(|v| (v, Source::Supervisor)),
                _ => None,
            };
            judge_one(criterion, prometheus, exact, other)
        })
        .collect()
}

/// Whether the loadgen's records hold no shed answer of the API.
fn nothing_shed(results: &RunResults) -> bool {
    results.steps.iter().filter(|s| s.step.is_api()).all(|s| s.outcomes_where(|o| o.is_shed()) == 0)
}

/// The loadgen's exact value of an SLI, when its records hold one.
pub fn exact(sli: Sli, results: &RunResults) -> Option<f64> {
    let api = |s: &StepResult| s.step.is_api();
    let quantile = |keep: &dyn Fn(&StepResult) -> bool, q: f64| {
        let h = results.latency_where(keep).ok()?;
        (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e6)
    };
    let share = |bad: &dyn Fn(q2o_loadgen::outcome::Outcome) -> bool| {
        let steps = results.steps.iter().filter(|s| api(s));
        let (total, bad) = steps.fold((0, 0), |(t, b), s| (t + s.outcomes_where(|_| true), b + s.outcomes_where(bad)));
        (total > 0).then(|| bad as f64 / total as f64)
    };
    match sli {
        Sli::ApiLatencyP95 => quantile(&api, 0.95),
        Sli::ApiLatencyP99 => quantile(&api, 0.99),
        Sli::SearchLatencyP95 => quantile(&|s| s.step == Step::Search, 0.95),
        Sli::ErrorRate => share(&|o| !o.is_ok()),
        Sli::Availability => share(&|o| o.is_unserved()).map(|bad| 1.0 - bad),
        Sli::ShedRate => share(&|o| o.is_shed()),
        Sli::ServerFaultRate => share(&|o| o.is_server_fault()),
        Sli::ShedLatencyP99 => {
            let h = results.shed_latency_where(api).ok()?;
            (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1e6)
        }
        Sli::UsersReached => results.seconds.iter().map(|s| s.users).max().map(|u| u as f64),
        Sli::TaskSuccess => {
            let waits = results.steps.iter().filter(|s| s.step == Step::AwaitTask);
            let (total, ok) =
                waits.fold((0, 0), |(t, k), s| (t + s.outcomes_where(|_| true), k + s.outcomes_where(|o| o.is_ok())));
            (total > 0).then(|| ok as f64 / total as f64)
        }
        _ => None,
    }
}

/// Judges one criterion from what was measured; `other` is a value from
/// neither Prometheus nor the loadgen, with who measured it.
pub fn judge_one(
    criterion: &Criterion,
    prometheus: Option<f64>,
    exact: Option<f64>,
    other: Option<(f64, Source)>,
) -> Judged {
    let (measured, source) = match (exact, prometheus, other) {
        (Some(v), _, _) => (Some(v), Source::LoadgenHdr),
        (None, Some(v), _) => (Some(v), Source::Prometheus),
        (None, None, Some((v, source))) => (Some(v), source),
        (None, None, None) => (None, Source::None),
    };
    let verdict = match measured {
        _ if criterion.record_only => Verdict::Recorded,
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
        window: None,
    }
}

/// Whether Prometheus and the exact value disagree beyond what the histogram
/// buckets (latency) or a scrape's timing (ratios) explain.
fn disagreement(sli: Sli, exact: f64, prometheus: f64) -> Option<String> {
    match sli.unit() {
        Unit::Seconds => {
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
        Unit::Ratio => ((exact - prometheus).abs() > 0.001 + 0.01 * exact.abs()).then(|| {
            format!(
                "Prometheus says {prometheus:.5}, the loadgen's counters {exact:.5} (scrape timing at the run's edges)"
            )
        }),
        Unit::Count => ((exact - prometheus).abs() > 0.5).then(|| {
            format!("Prometheus says {prometheus:.0}, the loadgen's records {exact:.0} (scraped once a second)")
        }),
    }
}

/// GO when every criterion passed, only warned, or was only recorded.
pub fn decide(judged: &[Judged]) -> bool {
    judged.iter().all(|j| matches!(j.verdict, Verdict::Pass | Verdict::Warn | Verdict::Recorded))
}

/// One sentence per criterion that failed or had no data.
pub fn reasons(judged: &[Judged]) -> Vec<String> {
    judged
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::NoData))
        .map(|c| {
            let unit = c.sli.unit();
            match c.measured {
                Some(v) => format!(
                    "{} missed: {} was {}, the target is {} {}",
                    c.title(),
                    c.sli.as_str(),
                    unit.format(v),
                    c.op,
                    unit.format(c.target)
                ),
                None => format!("{}: no data for {}", c.title(), c.sli.as_str()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use q2o_slo::sli::Op;

    use super::*;

    fn criterion(sli: Sli, op: Op, target: f64, warning: Option<f64>) -> Criterion {
        Criterion { name: "c".into(), sli, op, target, warning, record_only: false, window: Default::default() }
    }

    #[test]
    fn verdicts_follow_target_and_warning_and_no_data_fails() {
        let c = criterion(Sli::ApiLatencyP95, Op::Lt, 0.050, Some(0.020));
        assert_eq!(judge_one(&c, None, Some(0.010), None).verdict, Verdict::Pass);
        assert_eq!(judge_one(&c, None, Some(0.030), None).verdict, Verdict::Warn);
        assert_eq!(judge_one(&c, Some(0.010), Some(0.060), None).verdict, Verdict::Fail, "exact wins over Prometheus");
        let none = judge_one(&c, None, None, None);
        assert_eq!(none.verdict, Verdict::NoData);
        assert!(!decide(&[none]));
    }

    #[test]
    fn sources_disagreeing_beyond_a_bucket_are_called_out() {
        let c = criterion(Sli::ApiLatencyP95, Op::Lt, 0.050, None);
        // 4 ms lies in the (3 ms, 5 ms] bucket: Prometheus may interpolate anywhere in it.
        assert!(judge_one(&c, Some(0.0045), Some(0.004), None).note.is_none());
        let note = judge_one(&c, Some(0.020), Some(0.004), None).note.unwrap();
        assert!(note.contains("outside the bucket"), "{note}");
    }

    #[test]
    fn shed_latency_is_judged_from_shed_answers_and_shown_only_when_there_were_some() {
        use std::time::Duration;

        use q2o_loadgen::outcome::Outcome;
        use q2o_loadgen::recorder::{Protocol, Recorder};
        use q2o_loadgen::results::RateSpan;
        use q2o_loadgen::step::Step;

        let results = |shed: bool| {
            let recorder = Recorder::new(&[(Protocol::Rest, Step::Login)]);
            recorder.record(0, Outcome::Ok, Duration::from_millis(40), Duration::from_millis(100));
            if shed {
                recorder.record(0, Outcome::Shed, Duration::from_millis(12), Duration::from_millis(200));
            }
            RunResults::from_snapshot(&recorder.snapshot(), 1.0, RateSpan { start: 0.0, end: 0.0 })
        };
        let fast = criterion(Sli::ShedLatencyP99, Op::Lt, 0.010, None);
        let some = Evidence { results: Some(results(true)), ..Evidence::default() };
        let judged = &judge(&some, std::slice::from_ref(&fast))[0];
        assert_eq!(judged.verdict, Verdict::Fail, "12 ms, the shed answer's own time, not the served 40");
        assert!(judged.measured.is_some_and(|v| (0.0119..0.0121).contains(&v)), "{:?}", judged.measured);
        let none = Evidence { results: Some(results(false)), ..Evidence::default() };
        let judged = &judge(&none, std::slice::from_ref(&fast))[0];
        assert_eq!((judged.verdict, judged.measured), (Verdict::Pass, None), "nothing shed, nothing slow, no figure");
        assert_eq!(judged.note.as_deref(), Some("nothing was shed: no shed answer to be slow"));
    }

    #[test]
    fn evidence_is_judged_without_any_server() {
        let criteria = [
            Criterion { name: "lost".into(), ..criterion(Sli::EventsLost, Op::Le, 0.0, None) },
            Criterion { name: "tasks".into(), ..criterion(Sli::TasksUnfinished, Op::Le, 0.0, None) },
            Criterion { name: "recovery".into(), ..criterion(Sli::RecoverySeconds, Op::Lt, 10.0, None) },
            Criterion { name: "p95".into(), ..criterion(Sli::ApiLatencyP95, Op::Lt, 0.05, None) },
        ];
        let evidence = Evidence {
            prometheus: BTreeMap::from([(Sli::EventsLost, 0.0)]),
            tasks_unfinished: Some(3.0),
            recoveries: vec![Some(1.5), Some(4.0)],
            ..Evidence::default()
        };
        let judged = judge(&evidence, &criteria);
        let verdicts: Vec<_> = judged.iter().map(|j| (j.verdict, j.source)).collect();
        assert_eq!(
            verdicts,
            [
                (Verdict::Pass, Source::Prometheus),
                (Verdict::Fail, Source::Redis),
                (Verdict::Pass, Source::Supervisor),
                (Verdict::NoData, Source::None),
            ]
        );
        assert_eq!(judged[2].measured, Some(4.0), "the slowest recovery");
        let never = Evidence { recoveries: vec![Some(1.0), None], ..Evidence::default() };
        assert_eq!(judge(&never, &criteria[2..3])[0].verdict, Verdict::NoData, "a restart that never came back");
        let reasons = reasons(&judged);
        assert_eq!(reasons[0], "tasks missed: tasks_unfinished was 3, the target is <= 0");
        assert_eq!(reasons[1], "p95: no data for api_latency_p95");
    }

    #[test]
    fn a_windowed_criterion_is_judged_by_its_window_alone() {
        let during: Window = "during:surge".parse().unwrap();
        let after: Window = "after:surge+10s".parse().unwrap();
        let mut slow = q2o_loadgen::recorder::latency_histogram();
        slow.record(80_000).unwrap();
        let mut fast = q2o_loadgen::recorder::latency_histogram();
        fast.record(8_000).unwrap();
        let counts = |requests, shed| ApiCounts { requests, failed: shed, shed, faults: 0 };
        let evidence = Evidence {
            windows: BTreeMap::from([
                (during.clone(), WindowEvidence { api: Some(slow), counts: counts(100, 40), ..Default::default() }),
                (after.clone(), WindowEvidence { api: Some(fast), counts: counts(50, 0), ..Default::default() }),
            ]),
            ..Evidence::default()
        };
        let p95 =
            |window: &Window| Criterion { window: window.clone(), ..criterion(Sli::ApiLatencyP95, Op::Lt, 0.05, None) };
        let shed = Criterion { window: after.clone(), ..criterion(Sli::ShedRate, Op::Le, 0.0, None) };
        let judged = judge(&evidence, &[p95(&during), p95(&after), shed, p95(&Window::Hold)]);
        let got: Vec<_> = judged.iter().map(|j| (j.verdict, j.measured, j.window.as_deref())).collect();
        assert_eq!(
            got,
            [
                (Verdict::Fail, Some(0.080063), Some("during:surge")),
                (Verdict::Pass, Some(0.008003), Some("after:surge+10s")),
                (Verdict::Pass, Some(0.0), Some("after:surge+10s")),
                (Verdict::NoData, None, None),
            ]
        );
        assert_eq!(judged[0].title(), "c (during:surge)");
        assert_eq!(
            WindowEvidence { counts: counts(100, 40), ..Default::default() }.exact(Sli::Availability),
            Some(0.6)
        );
    }
}
