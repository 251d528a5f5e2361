//! The SLOs, declared once, and everything made from them: Sloth-style
//! recording rules (`slo:sli_error:ratio_rate<window>{service, slo}`),
//! multi-window multi-burn-rate alerts after the SRE workbook, the roadmap's
//! operational alerts, promtool unit tests for every alert, and the same
//! groups as a Kubernetes `PrometheusRule`.
//!
//! Two burn-rate catalogues share the same budget shares: the workbook's for a
//! 30-day objective (page 14.4x over 1h/5m and 6x over 6h/30m; ticket 3x over
//! 1d/2h and 1x over 3d/6h), and a compressed one for a benchmark run of
//! minutes (page 14.4x over 1m/10s and 6x over 5m/30s), whose alerts carry
//! `catalogue="bench"`.

use std::fmt::Write;

use crate::gates::camel;

/// One SLO: the ratio of bad events to all events over a window.
#[derive(Debug)]
pub struct Slo {
    /// `gateway`, `search`, ...
    pub service: &'static str,
    /// `availability`, `latency`, ...
    pub name: &'static str,
    /// Share of good events promised, e.g. 0.999.
    pub objective: f64,
    /// Bad events per second over `{w}`.
    pub bad: &'static str,
    /// All events per second over `{w}`.
    pub total: &'static str,
}

/// Every SLO. Adding one is one entry here and `just rules`.
pub const SLOS: &[Slo] = &[
    Slo {
        service: "gateway",
        name: "availability",
        objective: 0.999,
        bad: r#"sum(rate(http_requests_total{job="gateway",status=~"5.."}[{w}]))"#,
        total: r#"sum(rate(http_requests_total{job="gateway"}[{w}]))"#,
    },
    Slo {
        service: "gateway",
        name: "latency",
        // p95 < 50 ms: at most 5 % of requests slower than 50 ms.
        objective: 0.95,
        bad: r#"(sum(rate(http_request_duration_seconds_count{job="gateway"}[{w}])) - sum(rate(http_request_duration_seconds_bucket{job="gateway",le="0.05"}[{w}])))"#,
        total: r#"sum(rate(http_request_duration_seconds_count{job="gateway"}[{w}]))"#,
    },
    Slo {
        service: "search",
        name: "latency",
        objective: 0.95,
        bad: r#"(sum(rate(q2o_search_query_duration_seconds_count[{w}])) - sum(rate(q2o_search_query_duration_seconds_bucket{le="0.05"}[{w}])))"#,
        total: r#"sum(rate(q2o_search_query_duration_seconds_count[{w}]))"#,
    },
    Slo {
        service: "agents",
        name: "inter-agent-latency",
        objective: 0.95,
        bad: r#"(sum(rate(q2o_inter_agent_request_duration_seconds_count[{w}])) - sum(rate(q2o_inter_agent_request_duration_seconds_bucket{le="0.005"}[{w}])))"#,
        total: r#"sum(rate(q2o_inter_agent_request_duration_seconds_count[{w}]))"#,
    },
    Slo {
        service: "agents",
        name: "task-success",
        objective: 0.99,
        bad: r#"sum(rate(q2o_agent_tasks_total{status="failed"}[{w}]))"#,
        total: r#"sum(rate(q2o_agent_tasks_total{status=~"completed|failed"}[{w}]))"#,
    },
    Slo {
        service: "kafka",
        name: "delivery",
        objective: 0.999,
        bad: r#"sum(rate(q2o_kafka_messages_sent_total{status="failed"}[{w}]))"#,
        total: r#"sum(rate(q2o_kafka_messages_sent_total[{w}]))"#,
    },
];

/// The SLO recording rules over one minute, one selector per SLO: what a run
/// checks for data.
pub fn recorded_one_minute() -> Vec<String> {
    SLOS.iter().map(|slo| format!("{}{}", record("1m"), labels(slo))).collect()
}

/// One burn-rate alert level: (severity, catalogue, factor, long window, short window, for).
type Level = (&'static str, &'static str, f64, &'static str, &'static str, &'static str);

/// The SRE workbook's catalogue for 30 days, and the compressed one for a run.
const LEVELS: &[Level] = &[
    ("page", "30d", 14.4, "1h", "5m", "2m"),
    ("page", "30d", 6.0, "6h", "30m", "15m"),
    ("ticket", "30d", 3.0, "1d", "2h", "1h"),
    ("ticket", "30d", 1.0, "3d", "6h", "3h"),
    ("page", "bench", 14.4, "1m", "10s", "0s"),
    ("page", "bench", 6.0, "5m", "30s", "0s"),
];

/// Every window a level uses, once.
fn windows() -> Vec<&'static str> {
    let mut windows: Vec<&'static str> = Vec::new();
    for (_, _, _, long, short, _) in LEVELS {
        for w in [*short, *long] {
            if !windows.contains(&w) {
                windows.push(w);
            }
        }
    }
    windows
}

fn record(window: &str) -> String {
    format!("slo:sli_error:ratio_rate{window}")
}

fn labels(slo: &Slo) -> String {
    format!("{{service=\"{}\",slo=\"{}\"}}", slo.service, slo.name)
}

/// One alert rule in our YAML layout.
#[derive(Debug)]
struct Alert {
    name: String,
    expr: String,
    for_: String,
    labels: Vec<(String, String)>,
    summary: String,
    /// For the tests: an input that fires it and one that does not, as
    /// (series, value) lists; `None` when it has no such test.
    fire: Vec<(String, String)>,
    quiet: Vec<(String, String)>,
}

fn slo_alerts() -> Vec<Alert> {
    let mut alerts = Vec::new();
    for slo in SLOS {
        let budget = 1.0 - slo.objective;
        for (severity, catalogue, factor, long, short, for_) in LEVELS {
            let threshold = factor * budget;
            let name = format!(
                "SLO{}{}BurnRate{}{}",
                camel(slo.service),
                camel(slo.name),
                camel(severity),
                if *catalogue == "bench" { format!("Bench{long}") } else { (*long).to_owned() }
            );
            let sel = labels(slo);
            let expr = format!(
                "({long_r}{sel} > ({factor} * {budget:.4})) and ({short_r}{sel} > ({factor} * {budget:.4}))",
                long_r = record(long),
                short_r = record(short)
            );
            let series = |w: &str| format!("{}{}", record(w), sel);
            let over = format!("{:.8}", threshold * 1.05);
            let under = format!("{:.8}", threshold * 0.95);
            alerts.push(Alert {
                name,
                expr,
                for_: (*for_).to_owned(),
                labels: vec![
                    ("severity".into(), (*severity).into()),
                    ("catalogue".into(), (*catalogue).into()),
                    ("service".into(), slo.service.into()),
                    ("slo".into(), slo.name.into()),
                ],
                summary: format!(
                    "{} {} is burning its {:.1} % error budget at {factor}x over {long} and {short}",
                    slo.service,
                    slo.name,
                    budget * 100.0
                ),
                fire: vec![(series(long), over.clone()), (series(short), over.clone())],
                // Only the short window is hot: a burst that has passed does not page.
                quiet: vec![(series(long), under), (series(short), over)],
            });
        }
    }
    alerts
}

/// The roadmap's operational alerts, each with raw series that fire it and
/// series that do not.
fn operational_alerts() -> Vec<Alert> {
    let s = |series: &str, values: &str| (series.to_owned(), values.to_owned());
    let alert = |name: &str,
                 expr: &str,
                 for_: &str,
                 summary: &str,
                 fire: Vec<(String, String)>,
                 quiet: Vec<(String, String)>| Alert {
        name: name.into(),
        expr: expr.into(),
        for_: for_.into(),
        labels: vec![("severity".into(), "warning".into())],
        summary: summary.into(),
        fire,
        quiet,
    };
    vec![
        alert(
            "HighTaskErrorRate",
            r#"sum(rate(q2o_agent_tasks_total{status="failed"}[5m])) / sum(rate(q2o_agent_tasks_total[5m])) > 0.05"#,
            "5m",
            "more than 5 % of agent tasks fail",
            vec![
                s(r#"q2o_agent_tasks_total{agent_type="coder",status="completed"}"#, "0+90x300"),
                s(r#"q2o_agent_tasks_total{agent_type="coder",status="failed"}"#, "0+10x300"),
            ],
            vec![
                s(r#"q2o_agent_tasks_total{agent_type="coder",status="completed"}"#, "0+99x300"),
                s(r#"q2o_agent_tasks_total{agent_type="coder",status="failed"}"#, "0+1x300"),
            ],
        ),
        alert(
            "AgentDown",
            r#"up{job="agents"} == 0"#,
            "1m",
            "an agents process does not answer its scrape",
            vec![s(r#"up{job="agents",instance="a:1"}"#, "0+0x300")],
            vec![s(r#"up{job="agents",instance="a:1"}"#, "1+0x300")],
        ),
        alert(
            "HighAPILatency",
            r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="gateway"}[5m]))) > 0.1"#,
            "5m",
            "gateway p95 above 100 ms",
            vec![
                s(r#"http_request_duration_seconds_bucket{job="gateway",le="0.1"}"#, "0+10x300"),
                s(r#"http_request_duration_seconds_bucket{job="gateway",le="0.5"}"#, "0+100x300"),
                s(r#"http_request_duration_seconds_bucket{job="gateway",le="+Inf"}"#, "0+100x300"),
            ],
            vec![
                s(r#"http_request_duration_seconds_bucket{job="gateway",le="0.1"}"#, "0+99x300"),
                s(r#"http_request_duration_seconds_bucket{job="gateway",le="0.5"}"#, "0+100x300"),
                s(r#"http_request_duration_seconds_bucket{job="gateway",le="+Inf"}"#, "0+100x300"),
            ],
        ),
        alert(
            "LLMCostSpike",
            r#"sum(rate(q2o_llm_cost_dollars_total[5m])) * 3600 > 50"#,
            "10m",
            "simulated LLM spend above 50 USD an hour",
            vec![s(r#"q2o_llm_cost_dollars_total{agent_type="coder",model="sim-large"}"#, "0+1x300")],
            vec![s(r#"q2o_llm_cost_dollars_total{agent_type="coder",model="sim-large"}"#, "0+0.5x300")],
        ),
        alert(
            "KafkaConsumerLagHigh",
            r#"sum by (group) (q2o_kafka_consumer_lag_messages) > 1000"#,
            "5m",
            "a consumer group is more than 1000 events behind",
            vec![s(
                r#"q2o_kafka_consumer_lag_messages{group="audit",topic="agent_activity",partition="0"}"#,
                "5000+0x300",
            )],
            vec![s(
                r#"q2o_kafka_consumer_lag_messages{group="audit",topic="agent_activity",partition="0"}"#,
                "10+0x300",
            )],
        ),
    ]
}

fn write_alerts(text: &mut String, group: &str, alerts: &[Alert]) {
    let _ = write!(text, "  - name: {group}\n    rules:\n");
    for a in alerts {
        let _ = write!(
            text,
            "      - alert: {}\n        expr: '{}'\n        for: {}\n        labels:\n",
            a.name,
            a.expr.replace('\'', "''"),
            a.for_
        );
        for (k, v) in &a.labels {
            let _ = writeln!(text, "          {k}: {v}");
        }
        let _ = write!(text, "        annotations:\n          summary: '{}'\n", a.summary.replace('\'', "''"));
    }
}

/// `alerts/slos.rules.yml`: the SLO recording rules, burn-rate and operational alerts.
pub fn slo_rules(header: &str) -> String {
    let mut text = format!("{header}groups:\n  - name: q2o-slo-recording\n    interval: 10s\n    rules:\n");
    for slo in SLOS {
        for window in windows() {
            // No bad event is a ratio of zero, not no data.
            let ratio =
                format!("({} or vector(0)) / ({})", slo.bad.replace("{w}", window), slo.total.replace("{w}", window));
            let _ = write!(
                text,
                "      - record: {}\n        expr: '{}'\n        labels:\n          service: {}\n          slo: {}\n",
                record(window),
                ratio.replace('\'', "''"),
                slo.service,
                slo.name
            );
        }
    }
    write_alerts(&mut text, "q2o-slo-burn-rate", &slo_alerts());
    write_alerts(&mut text, "q2o-operational", &operational_alerts());
    text
}

/// `alerts/tests/slos.test.yml`: each alert fed a hair past its threshold
/// (fires) and a hair inside it, or with only its short window hot (quiet).
pub fn slo_rule_tests(header: &str, rules_file: &str) -> String {
    let mut text = format!("{header}rule_files:\n  - ../{rules_file}\nevaluation_interval: 1m\ntests:\n");
    for alert in slo_alerts().iter().chain(operational_alerts().iter()) {
        for (fires, inputs) in [(true, &alert.fire), (false, &alert.quiet)] {
            let _ = write!(
                text,
                "  - name: '{} {}'\n    interval: 1m\n    input_series:\n",
                alert.name,
                if fires { "fires" } else { "stays quiet" }
            );
            // Just long enough for the alert's `for` to pass: promtool evaluates every minute up to it.
            let minutes = minutes(&alert.for_) + 10;
            for (series, value) in inputs {
                // A bare number is a constant level; otherwise it is promtool's own notation.
                let values = if value.contains('x') {
                    value.replace("x300", &format!("x{minutes}"))
                } else {
                    format!("{value}+0x{minutes}")
                };
                let _ = write!(text, "      - series: '{}'\n        values: '{values}'\n", series.replace('\'', "''"));
            }
            let _ = write!(
                text,
                "    alert_rule_test:\n      - eval_time: {}m\n        alertname: {}\n",
                minutes - 2,
                alert.name
            );
            if fires {
                text.push_str("        exp_alerts:\n          - exp_labels:\n");
                for (k, v) in &alert.labels {
                    let _ = writeln!(text, "              {k}: {v}");
                }
                // Raw-series alerts keep the labels their expression leaves.
                for (k, v) in result_labels(alert) {
                    let _ = writeln!(text, "              {k}: {v}");
                }
                let _ = write!(
                    text,
                    "            exp_annotations:\n              summary: '{}'\n",
                    alert.summary.replace('\'', "''")
                );
            } else {
                text.push_str("        exp_alerts: []\n");
            }
        }
    }
    text
}

/// `2m`, `1h`, `0s` in whole minutes.
fn minutes(duration: &str) -> u64 {
    let (number, unit) = duration.split_at(duration.len() - 1);
    let n: u64 = number.parse().unwrap_or(0);
    match unit {
        "h" => n * 60,
        "m" => n,
        _ => 0,
    }
}

/// Labels an operational alert's result series carries besides the rule's own.
fn result_labels(alert: &Alert) -> Vec<(&'static str, &'static str)> {
    match alert.name.as_str() {
        "AgentDown" => vec![("job", "agents"), ("instance", "a:1")],
        "KafkaConsumerLagHigh" => vec![("group", "audit")],
        _ => Vec::new(),
    }
}

/// `deploy/kubernetes/base/monitoring/prometheus-rules.yaml`: every group of `files` (our rule
/// files' text) in one `PrometheusRule` for the Prometheus Operator.
pub fn prometheus_rule(header: &str, files: &[String]) -> String {
    prometheus_rule_named("q2o-slos", header, files)
}

/// The same, named `name` (a cluster run's gate rules are `q2o-gate-<scenario>`).
pub fn prometheus_rule_named(name: &str, header: &str, files: &[String]) -> String {
    let mut text = format!(
        "{header}apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/part-of: q2o\n    release: kube-prometheus-stack\nspec:\n  groups:\n"
    );
    for file in files {
        let groups = file.split_once("groups:\n").map_or("", |(_, g)| g);
        for line in groups.lines() {
            let _ = writeln!(text, "  {line}");
        }
    }
    text
}
