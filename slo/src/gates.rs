//! The gate alert rules of each scenario, labelled with its phase: an alert
//! per criterion (and per warning threshold) over the SLI's recording rule,
//! and a promtool unit test of each that fires just past its threshold and
//! stays quiet just inside it.

use std::fmt::Write;

use crate::promql::record_name;
use crate::rule_files::{GATES_FILE, HEADER};
use crate::sli::{Criterion, Op, Sli};

/// One scenario's gate, as far as its alerts need it.
#[derive(Clone, Copy, Debug)]
pub struct Gate<'a> {
    /// The scenario's name: the alerts' `phase` label.
    pub phase: &'a str,
    /// Its one line, quoted in the alerts' summaries.
    pub description: &'a str,
    /// Its criteria.
    pub criteria: &'a [Criterion],
}

/// SLIs whose gate criteria become alert rules: the ones that judge the
/// system while it runs (users reached and coverage only make sense at the end).
fn alerting(sli: Sli) -> bool {
    !matches!(
        sli,
        Sli::UsersReached
            | Sli::ScrapeCoverage
            | Sli::RecoverySeconds
            | Sli::DashboardCoverage
            | Sli::SliCoverage
            | Sli::AlertTestCoverage
            | Sli::ErrorBurstSeconds
            | Sli::TasksUnfinished
            // Only in the loadgen's exact records (its Prometheus histogram leaves shed answers out).
            | Sli::ShedLatencyP99
            // Itself made of alerts: an alert on alerts would only echo them.
            | Sli::BurnRateAlerts
            // Counters at a moment cannot tell events in flight from lost
            // ones: the runner's census of the log judges it, after the lag.
            | Sli::EventsLost
    )
}

/// One gate alert: a criterion's target (severity `gate`) or its warning
/// threshold (severity `warning`).
struct GateAlert<'a> {
    name: String,
    scenario: Gate<'a>,
    criterion: &'a Criterion,
    severity: &'static str,
    threshold: f64,
}

impl GateAlert<'_> {
    fn summary(&self) -> String {
        format!(
            "{} must be {} {} ({})",
            self.criterion.sli.as_str(),
            self.criterion.op.as_str(),
            self.threshold,
            self.scenario.description
        )
    }

    /// A value of the SLI that misses the threshold by a hair (`miss`), or meets it by one.
    fn probe(&self, miss: bool) -> f64 {
        let step = (self.threshold.abs() * 0.01).max(1e-6);
        let lower_is_better = matches!(self.criterion.op, Op::Lt | Op::Le);
        if miss == lower_is_better { self.threshold + step } else { self.threshold - step }
    }
}

/// The gate alerts of a scenario, in rule order.
fn gate_alerts(scenario: Gate<'_>) -> Vec<GateAlert<'_>> {
    let mut alerts = Vec::new();
    // A criterion recorded for a baseline is not a gate, so it has no alert.
    // A criterion of one window of the run is the runner's judgement after
    // the fact; an alert watches the whole run as it goes.
    for criterion in scenario.criteria.iter().filter(|c| alerting(c.sli) && !c.record_only && c.window.is_hold()) {
        let name = format!("Q2OGate{}{}", camel(scenario.phase), camel(&criterion.name));
        alerts.push(GateAlert {
            name: name.clone(),
            scenario,
            criterion,
            severity: "gate",
            threshold: criterion.target,
        });
        if let Some(warning) = criterion.warning {
            alerts.push(GateAlert {
                name: format!("{name}Warning"),
                scenario,
                criterion,
                severity: "warning",
                threshold: warning,
            });
        }
    }
    alerts
}

/// The gate alert rules of scenarios: one group per scenario, an alert per
/// criterion (and per warning threshold), labelled with the phase.
pub fn gate_rules(scenarios: &[Gate<'_>]) -> String {
    let mut text = format!("{HEADER}groups:\n");
    for &scenario in scenarios {
        let _ = write!(text, "  - name: q2o-gate-{}\n    interval: 1s\n    rules:\n", scenario.phase);
        let alerts = gate_alerts(scenario);
        if alerts.is_empty() {
            text.push_str("      []\n");
        }
        for alert in alerts {
            let _ = write!(
                text,
                "      - alert: {}\n        expr: '{} {} {}'\n        for: 10s\n        labels:\n          phase: {}\n          criterion: {}\n          severity: {}\n        annotations:\n          summary: '{}'\n",
                alert.name,
                record_name(alert.criterion.sli),
                alert.criterion.op.violated_by(),
                alert.threshold,
                scenario.phase,
                alert.criterion.name,
                alert.severity,
                alert.summary().replace('\'', "''"),
            );
        }
    }
    text
}

/// `alerts/tests/gates.test.yml`: promtool unit tests of every gate alert, one
/// with the SLI a hair past its threshold (it fires, with its labels and
/// summary) and one a hair inside (it does not).
pub fn gate_rule_tests(scenarios: &[Gate<'_>]) -> String {
    let mut text = format!("{HEADER}rule_files:\n  - ../{GATES_FILE}\nevaluation_interval: 1s\ntests:\n");
    for &scenario in scenarios {
        for alert in gate_alerts(scenario) {
            for miss in [true, false] {
                let value = alert.probe(miss);
                let _ = write!(
                    text,
                    "  - name: '{} {} at {value}'\n    interval: 1s\n    input_series:\n      - series: '{}'\n        values: '{value}+0x60'\n    alert_rule_test:\n      - eval_time: 30s\n        alertname: {}\n",
                    alert.name,
                    if miss { "fires" } else { "stays quiet" },
                    record_name(alert.criterion.sli),
                    alert.name,
                );
                if miss {
                    let _ = write!(
                        text,
                        "        exp_alerts:\n          - exp_labels:\n              phase: {}\n              criterion: {}\n              severity: {}\n            exp_annotations:\n              summary: '{}'\n",
                        scenario.phase,
                        alert.criterion.name,
                        alert.severity,
                        alert.summary().replace('\'', "''"),
                    );
                } else {
                    text.push_str("        exp_alerts: []\n");
                }
            }
        }
    }
    text
}

/// `api_latency-p95` -> `ApiLatencyP95`, for alert names.
pub fn camel(name: &str) -> String {
    name.split(['_', '-'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_are_camel_case() {
        assert_eq!(camel("api_latency-p95"), "ApiLatencyP95");
    }
}
