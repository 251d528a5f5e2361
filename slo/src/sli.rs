//! The SLI vocabulary: what a gate criterion measures ([`Sli`]), in which
//! unit ([`Unit`]), compared how ([`Op`]), against which target
//! ([`Criterion`]). Scenario files name these; rules, reports and junit print them.

use serde::{Deserialize, Serialize};

/// The service-level indicators a criterion can test.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Sli {
    /// 95th percentile latency of the users' API calls, seconds.
    ApiLatencyP95,
    /// 99th percentile latency of the users' API calls, seconds.
    ApiLatencyP99,
    /// Share of API calls that did not succeed (any non-ok outcome).
    ErrorRate,
    /// Share of API calls the system served (not a 5xx, a transport error, a
    /// timeout, nor turned away by admission control).
    Availability,
    /// Share of API calls turned away by admission control (503 with
    /// `Retry-After`, `UNAVAILABLE` with retry pushback).
    ShedRate,
    /// Share of API calls the server failed, shed ones apart: a 5xx other
    /// than shedding, a transport error, a timeout.
    ServerFaultRate,
    /// 99th percentile latency of the shed answers, seconds: shedding must be quick.
    ShedLatencyP99,
    /// 95th percentile of search requests, seconds.
    SearchLatencyP95,
    /// 95th percentile of coder -> QA calls between agents, seconds.
    InterAgentLatencyP95,
    /// Agent events produced to Kafka but not counted by the audit consumer.
    EventsLost,
    /// Most users active at once.
    UsersReached,
    /// Share of scrape targets up at the end of the run.
    ScrapeCoverage,
    /// Longest time from a fault until the service was ready again, seconds.
    RecoverySeconds,
    /// Share of the dashboards' panel queries that returned data for this run.
    DashboardCoverage,
    /// Share of the SLI and SLO recording rules that had data for this run.
    SliCoverage,
    /// Share of the alerts the run loaded that promtool tests both fire and keep quiet.
    AlertTestCoverage,
    /// SLO burn-rate alerts of the compressed (`bench`) catalogue that fired during the run.
    BurnRateAlerts,
    /// The users' view of a fault: seconds from the first to the last request
    /// that failed in the burst after the first fault (it ends after 10 s without one).
    ErrorBurstSeconds,
    /// Tasks of the users' tenant in Redis that never reached a final state
    /// (completed or failed) once the queues drained: a task lost on the way.
    TasksUnfinished,
    /// Share of the tasks the users followed to their end that completed
    /// within the users' deadline: a failed task and a timeout both count against it.
    TaskSuccess,
}

impl Sli {
    /// The name used in rules, reports and junit.
    pub fn as_str(self) -> &'static str {
        match self {
            Sli::ApiLatencyP95 => "api_latency_p95",
            Sli::ApiLatencyP99 => "api_latency_p99",
            Sli::ErrorRate => "error_rate",
            Sli::Availability => "availability",
            Sli::ShedRate => "shed_rate",
            Sli::ServerFaultRate => "server_fault_rate",
            Sli::ShedLatencyP99 => "shed_latency_p99",
            Sli::SearchLatencyP95 => "search_latency_p95",
            Sli::InterAgentLatencyP95 => "inter_agent_latency_p95",
            Sli::EventsLost => "events_lost",
            Sli::UsersReached => "users_reached",
            Sli::ScrapeCoverage => "scrape_coverage",
            Sli::RecoverySeconds => "recovery_seconds",
            Sli::DashboardCoverage => "dashboard_coverage",
            Sli::SliCoverage => "sli_coverage",
            Sli::AlertTestCoverage => "alert_test_coverage",
            Sli::BurnRateAlerts => "burn_rate_alerts",
            Sli::ErrorBurstSeconds => "error_burst_seconds",
            Sli::TasksUnfinished => "tasks_unfinished",
            Sli::TaskSuccess => "task_success",
        }
    }

    /// The unit the target is written in.
    pub fn unit(self) -> Unit {
        match self {
            Sli::ApiLatencyP95
            | Sli::ApiLatencyP99
            | Sli::SearchLatencyP95
            | Sli::InterAgentLatencyP95
            | Sli::ShedLatencyP99
            | Sli::RecoverySeconds
            | Sli::ErrorBurstSeconds => Unit::Seconds,
            Sli::ErrorRate
            | Sli::Availability
            | Sli::ShedRate
            | Sli::ServerFaultRate
            | Sli::ScrapeCoverage
            | Sli::DashboardCoverage
            | Sli::SliCoverage
            | Sli::AlertTestCoverage
            | Sli::TaskSuccess => Unit::Ratio,
            Sli::EventsLost | Sli::UsersReached | Sli::BurnRateAlerts | Sli::TasksUnfinished => Unit::Count,
        }
    }
}

/// How a value is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Seconds, shown in ms below 10 s.
    Seconds,
    /// 0..1, shown as a percentage.
    Ratio,
    /// A whole number.
    Count,
}

impl Unit {
    /// `value` for people.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Seconds if value < 10.0 => format!("{:.3} ms", value * 1e3),
            Unit::Seconds => format!("{value:.1} s"),
            Unit::Ratio => format!("{:.4} %", value * 100.0),
            Unit::Count => format!("{value:.0}"),
        }
    }
}

/// How the measured value is compared with the target.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Op {
    /// Below.
    #[serde(rename = "<")]
    Lt,
    /// At most.
    #[serde(rename = "<=")]
    Le,
    /// At least.
    #[serde(rename = ">=")]
    Ge,
    /// Above.
    #[serde(rename = ">")]
    Gt,
}

impl Op {
    /// Whether `value op target` holds.
    pub fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Op::Lt => value < target,
            Op::Le => value <= target,
            Op::Ge => value >= target,
            Op::Gt => value > target,
        }
    }

    /// The symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }

    /// The PromQL comparison that is true when the criterion is *missed*.
    pub fn violated_by(self) -> &'static str {
        match self {
            Op::Lt => ">=",
            Op::Le => ">",
            Op::Ge => "<",
            Op::Gt => "<=",
        }
    }
}

/// One gate criterion.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Identifier (junit test case, alert label).
    pub name: String,
    /// What is measured.
    pub sli: Sli,
    /// Comparison with the target.
    pub op: Op,
    /// The target, in the SLI's unit (seconds, ratio 0..1, count).
    pub target: f64,
    /// A softer threshold: missing it warns without failing the gate.
    #[serde(default)]
    pub warning: Option<f64>,
    /// Recorded for the baseline, not judged (phase0's errors and tasks).
    #[serde(default)]
    pub record_only: bool,
    /// The stretch of the run it is judged over: the hold (the default), or
    /// during or after a surge or a fault.
    #[serde(default, skip_serializing_if = "Window::is_hold")]
    pub window: Window,
}

/// The stretch of a run a criterion is judged over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    /// The whole run (after the warm-up), as every criterion without a window.
    #[default]
    Hold,
    /// While the named surge or fault lasts (`during:surge`).
    During(String),
    /// From this long after the named surge or fault ended to the end of the
    /// hold (`after:surge+10s`; without `+`, from its end).
    After(String, std::time::Duration),
}

impl Window {
    /// Whether this is the whole hold.
    pub fn is_hold(&self) -> bool {
        *self == Window::Hold
    }

    /// The surge or fault it names, if any.
    pub fn event(&self) -> Option<&str> {
        match self {
            Window::Hold => None,
            Window::During(name) | Window::After(name, _) => Some(name),
        }
    }

    /// The SLIs a window can be judged by: those whose figures the loadgen
    /// keeps per second (latency histograms and outcome counts).
    pub fn supports(sli: Sli) -> bool {
        matches!(
            sli,
            Sli::ApiLatencyP95
                | Sli::ApiLatencyP99
                | Sli::SearchLatencyP95
                | Sli::ErrorRate
                | Sli::Availability
                | Sli::ShedRate
                | Sli::ServerFaultRate
        )
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Window::Hold => f.write_str("hold"),
            Window::During(name) => write!(f, "during:{name}"),
            Window::After(name, offset) if offset.is_zero() => write!(f, "after:{name}"),
            Window::After(name, offset) => write!(f, "after:{name}+{}", q2o_common::config::format_duration(*offset)),
        }
    }
}

impl std::str::FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> Result<Window, String> {
        let bad = || format!("`{s}` is not a window: hold, during:NAME or after:NAME+10s");
        if s == "hold" {
            return Ok(Window::Hold);
        }
        let name_ok = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if let Some(name) = s.strip_prefix("during:") {
            return name_ok(name).then(|| Window::During(name.to_owned())).ok_or_else(bad);
        }
        let rest = s.strip_prefix("after:").ok_or_else(bad)?;
        let (name, offset) = match rest.split_once('+') {
            Some((name, offset)) => {
                (name, q2o_common::config::parse_duration(offset).map_err(|e| format!("{}: {e}", bad()))?)
            }
            None => (rest, std::time::Duration::ZERO),
        };
        name_ok(name).then(|| Window::After(name.to_owned(), offset)).ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Window, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_print_and_name_what_is_wrong() {
        for (text, window) in [
            ("hold", Window::Hold),
            ("during:surge", Window::During("surge".into())),
            ("after:surge+10s", Window::After("surge".into(), std::time::Duration::from_secs(10))),
            ("after:kill-gateway-0", Window::After("kill-gateway-0".into(), std::time::Duration::ZERO)),
        ] {
            assert_eq!(text.parse::<Window>().unwrap(), window);
            assert_eq!(window.to_string(), text);
        }
        for bad in ["during:", "whenever", "after:surge+soon", "during:a b"] {
            assert!(bad.parse::<Window>().unwrap_err().contains("is not a window"), "{bad}");
        }
    }
}
