//! The SLIs as PromQL over the load generator's and the services' series,
//! and their recording rules (one per SLI over a 1-minute window, for
//! dashboards and alerts): `alerts/slis.rules.yml`.

use std::fmt::Write;

use q2o_loadgen::outcome::Outcome;
use q2o_loadgen::step::Step;

use crate::rule_files::HEADER;
use crate::sli::Sli;

/// Steps of the users that are API calls (everything but the wait for a task).
fn api() -> String {
    let not_api: Vec<&str> = Step::ALL.iter().filter(|s| !s.is_api()).map(|s| s.as_label()).collect();
    match not_api.as_slice() {
        [one] => format!("step!=\"{one}\""),
        many => format!("step!~\"{}\"", many.join("|")),
    }
}

/// Outcomes that count against availability: the server failed or shed, not the user.
fn unserved() -> String {
    format!("outcome=~\"{}\"", Outcome::unserved_regex())
}

/// The SLI over a window (`1m`, `347s`) as PromQL, or `None` for what one
/// query cannot say (recovery times come from the supervisor, dashboard
/// coverage from asking every panel's query).
pub fn promql(sli: Sli, window: &str) -> Option<String> {
    let loadgen_quantile = |q: f64, selector: &str| {
        format!(
            "histogram_quantile({q}, sum by (le) (increase(q2o_loadgen_request_duration_seconds_bucket{{{selector}}}[{window}])))"
        )
    };
    let requests = |extra: &str| {
        let selector = if extra.is_empty() { api() } else { format!("{},{extra}", api()) };
        format!("sum(increase(q2o_loadgen_requests_total{{{selector}}}[{window}]))")
    };
    Some(match sli {
        Sli::ApiLatencyP95 => loadgen_quantile(0.95, &api()),
        Sli::ApiLatencyP99 => loadgen_quantile(0.99, &api()),
        Sli::SearchLatencyP95 => loadgen_quantile(0.95, &format!("step=\"{}\"", Step::Search)),
        Sli::ErrorRate => format!(
            "({} or vector(0)) / {}",
            requests(&format!("outcome!=\"{}\"", Outcome::Ok)),
            requests("")
        ),
        Sli::Availability => format!("1 - ({} or vector(0)) / {}", requests(&unserved()), requests("")),
        Sli::ShedRate => format!("({} or vector(0)) / {}", requests(&format!("outcome=\"{}\"", Outcome::Shed)), requests("")),
        Sli::ServerFaultRate => format!(
            "({} or vector(0)) / {}",
            requests(&format!("outcome=~\"{}\"", Outcome::server_fault_regex())),
            requests("")
        ),
        Sli::TaskSuccess => {
            let tasks = |extra: &str| {
                format!("sum(increase(q2o_loadgen_requests_total{{step=\"{}\"{extra}}}[{window}]))", Step::AwaitTask)
            };
            format!("({} or vector(0)) / {}", tasks(&format!(",outcome=\"{}\"", Outcome::Ok)), tasks(""))
        }
        Sli::InterAgentLatencyP95 => format!(
            "histogram_quantile(0.95, sum by (le) (increase(q2o_inter_agent_request_duration_seconds_bucket[{window}])))"
        ),
        // Counters since the services started: a whole-run figure, no window.
        // Every event the agents produced counts, delivered or given up on:
        // one the producer dropped (a broker down too long) is lost too.
        // Counters cannot tell loss from lag (nor see a duplicate delivery):
        // this is a bound at the moment asked, never below zero; the gate's
        // figure is the runner's census of the log against the ledger.
        Sli::EventsLost => {
            r#"clamp_min(sum(q2o_kafka_messages_sent_total{topic="agent_activity"}) - (sum(q2o_audit_events_total{group="audit",outcome="unique"}) or vector(0)), 0)"#.to_owned()
        }
        Sli::UsersReached => format!("max_over_time(sum(q2o_loadgen_active_users)[{window}:1s])"),
        Sli::ScrapeCoverage => format!("avg(max_over_time(up[{window}]))"),
        // Alerts of the compressed SLO catalogue that were firing at any moment of the window.
        Sli::BurnRateAlerts => format!(
            r#"count(max_over_time(ALERTS{{alertstate="firing",catalogue="bench"}}[{window}])) or vector(0)"#
        ),
        Sli::RecoverySeconds
        | Sli::DashboardCoverage
        | Sli::SliCoverage
        | Sli::AlertTestCoverage
        | Sli::ErrorBurstSeconds
        // The loadgen's duration histogram leaves shed answers out; their
        // latency is only in its exact records.
        | Sli::ShedLatencyP99
        // Asked of Redis, the tasks' own record.
        | Sli::TasksUnfinished => return None,
    })
}

/// The recording rule's name for an SLI.
pub fn record_name(sli: Sli) -> String {
    format!("q2o:{}:1m", sli.as_str())
}

/// Every SLI Prometheus can compute.
pub const RECORDED: &[Sli] = &[
    Sli::ApiLatencyP95,
    Sli::ApiLatencyP99,
    Sli::ErrorRate,
    Sli::Availability,
    Sli::ShedRate,
    Sli::ServerFaultRate,
    Sli::SearchLatencyP95,
    Sli::InterAgentLatencyP95,
    Sli::EventsLost,
    Sli::UsersReached,
    Sli::ScrapeCoverage,
    Sli::TaskSuccess,
];

/// `alerts/slis.rules.yml`: one recording rule per SLI over 1 minute.
pub fn sli_rules() -> String {
    let mut text = format!("{HEADER}groups:\n  - name: q2o-slis\n    interval: 1s\n    rules:\n");
    for sli in RECORDED {
        let expr = promql(*sli, "1m").expect("recorded SLIs have PromQL");
        let _ = write!(text, "      - record: {}\n        expr: '{}'\n", record_name(*sli), expr.replace('\'', "''"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slis_have_windows_and_rest_on_the_loadgen_series() {
        let p95 = promql(Sli::ApiLatencyP95, "90s").unwrap();
        assert!(p95.contains("q2o_loadgen_request_duration_seconds_bucket{step!=\"await_task\"}[90s]"), "{p95}");
        assert!(promql(Sli::ErrorRate, "1m").unwrap().contains("or vector(0)"));
        assert!(promql(Sli::RecoverySeconds, "1m").is_none());
    }
}
