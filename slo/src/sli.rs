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
}
