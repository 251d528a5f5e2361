//! The Grafana dashboards in `dashboards/grafana/`, generated from the panel
//! lists below by `q2o-bench rules` (so that a panel is one line here), and
//! read back through a typed model of Grafana's dashboard JSON.
//!
//! Every series carries `phase` and `run_id` (the runner's scrape labels), so
//! the dashboards' template variables pick a run. At the end of a run the
//! runner asks its Prometheus every panel query, with the variables set to that
//! run, and counts the queries that returned data (`dashboard_coverage`).

use serde::{Deserialize, Serialize};

/// A dashboard, as far as we write and check it. Unknown top-level keys are refused.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Dashboard {
    /// Stable identifier.
    pub uid: String,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// `browser`.
    pub timezone: String,
    /// Grafana's schema version.
    pub schema_version: u32,
    /// Auto-refresh.
    pub refresh: String,
    /// Default range.
    pub time: TimeRange,
    /// Template variables.
    pub templating: Templating,
    /// Panels.
    pub panels: Vec<Panel>,
}

/// The default time range.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// From.
    pub from: String,
    /// To.
    pub to: String,
}

/// The template variables.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Templating {
    /// Variables.
    pub list: Vec<Variable>,
}

/// One template variable.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Variable {
    /// Name (`datasource`, `phase`, `run_id`).
    pub name: String,
    /// `datasource` or `query`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Datasource type or label query.
    pub query: String,
    /// The datasource a query variable asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasource: Option<DatasourceRef>,
    /// Refresh on load.
    pub refresh: u32,
    /// Offer "All".
    pub include_all: bool,
}

/// Which datasource.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasourceRef {
    /// `prometheus`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `${datasource}`.
    pub uid: String,
}

/// One panel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Panel {
    /// Unique within the dashboard.
    pub id: u32,
    /// Title.
    pub title: String,
    /// `timeseries` or `stat`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it sits.
    pub grid_pos: GridPos,
    /// Its datasource.
    pub datasource: DatasourceRef,
    /// Its queries.
    pub targets: Vec<Target>,
    /// Units.
    pub field_config: FieldConfig,
}

/// Panel geometry on Grafana's 24-column grid.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GridPos {
    /// Column.
    pub x: u32,
    /// Row.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// One query.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    /// `A`, `B`, ...
    pub ref_id: String,
    /// PromQL with template variables.
    pub expr: String,
    /// Legend.
    pub legend_format: String,
}

/// Units of a panel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    /// Defaults.
    pub defaults: FieldDefaults,
}

/// The unit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldDefaults {
    /// Grafana unit id (`s`, `percentunit`, `reqps`, `short`, `currencyUSD`).
    pub unit: String,
}

/// Selector of every series of the chosen run.
const RUN: &str = r#"phase=~"$phase",run_id=~"$run_id""#;

/// (title, kind, unit, [(expr, legend)]): `{run}` stands for the run selector.
type PanelSpec = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

const SLO: &[PanelSpec] = &[
    ("API latency p95 (objective < 50 ms)", "timeseries", "s", &[("q2o:api_latency_p95:1m", "p95")]),
    ("API error rate", "timeseries", "percentunit", &[("q2o:error_rate:1m", "error rate")]),
    ("Availability (objective 99.9 %)", "stat", "percentunit", &[("q2o:availability:1m", "availability")]),
    (
        "Error budget left (99.9 %)",
        "stat",
        "percentunit",
        &[("clamp_min(1 - (1 - q2o:availability:1m) / 0.001, 0)", "budget left")],
    ),
    ("Burn rate (99.9 %)", "timeseries", "short", &[("(1 - q2o:availability:1m) / 0.001", "burn rate")]),
    ("Search p95 (objective < 50 ms)", "timeseries", "s", &[("q2o:search_latency_p95:1m", "p95")]),
    ("Inter-agent p95 (objective <= 5 ms)", "timeseries", "s", &[("q2o:inter_agent_latency_p95:1m", "p95")]),
    ("Events lost", "stat", "short", &[("q2o:events_lost:1m", "lost")]),
];

const EXECUTIVE: &[PanelSpec] = &[
    (
        "Tasks completed per second",
        "timeseries",
        "short",
        &[(r#"sum(rate(q2o_agent_tasks_total{status="completed",{run}}[$__rate_interval]))"#, "completed")],
    ),
    (
        "Task success rate",
        "stat",
        "percentunit",
        &[(
            r#"sum(rate(q2o_agent_tasks_total{status="completed",{run}}[$__rate_interval])) / sum(rate(q2o_agent_tasks_total{{run}}[$__rate_interval]))"#,
            "success",
        )],
    ),
    (
        "Average task duration",
        "timeseries",
        "s",
        &[(
            r#"sum(rate(q2o_agent_task_duration_seconds_sum{{run}}[$__rate_interval])) / sum(rate(q2o_agent_task_duration_seconds_count{{run}}[$__rate_interval]))"#,
            "mean",
        )],
    ),
    (
        "LLM cost over the range",
        "stat",
        "currencyUSD",
        &[(r#"sum(increase(q2o_llm_cost_dollars_total{{run}}[$__range]))"#, "cost")],
    ),
];

const TECHNICAL: &[PanelSpec] = &[
    (
        "Gateway requests by route",
        "timeseries",
        "reqps",
        &[(r#"sum by (route) (rate(http_requests_total{job="gateway",{run}}[$__rate_interval]))"#, "{{route}}")],
    ),
    (
        "Gateway p95 by route",
        "timeseries",
        "s",
        &[(
            r#"histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{job="gateway",{run}}[$__rate_interval])))"#,
            "{{route}}",
        )],
    ),
    (
        "gRPC calls by method",
        "timeseries",
        "reqps",
        &[(r#"sum by (grpc_method) (rate(grpc_server_handled_total{{run}}[$__rate_interval]))"#, "{{grpc_method}}")],
    ),
    (
        "Gateway 5xx share",
        "timeseries",
        "percentunit",
        &[(
            r#"(sum(rate(http_requests_total{status=~"5..",{run}}[$__rate_interval])) or vector(0)) / sum(rate(http_requests_total{{run}}[$__rate_interval]))"#,
            "5xx",
        )],
    ),
    (
        "Research cache hit rate (Redis)",
        "timeseries",
        "percentunit",
        &[(
            r#"sum(rate(q2o_cache_hits_total{{run}}[$__rate_interval])) / (sum(rate(q2o_cache_hits_total{{run}}[$__rate_interval])) + sum(rate(q2o_cache_misses_total{{run}}[$__rate_interval])))"#,
            "hit rate",
        )],
    ),
    (
        "Kafka messages produced",
        "timeseries",
        "short",
        &[(r#"sum by (status) (rate(q2o_kafka_messages_sent_total{{run}}[$__rate_interval]))"#, "{{status}}")],
    ),
    (
        "Kafka consumer lag",
        "timeseries",
        "short",
        &[(r#"sum by (group) (q2o_kafka_consumer_lag_messages{{run}})"#, "{{group}}")],
    ),
    (
        "Search queries and p95",
        "timeseries",
        "s",
        &[(
            r#"histogram_quantile(0.95, sum by (le, kind) (rate(q2o_search_query_duration_seconds_bucket{{run}}[$__rate_interval])))"#,
            "{{kind}} p95",
        )],
    ),
];

const AGENTS: &[PanelSpec] = &[
    (
        "Tasks by agent type",
        "timeseries",
        "short",
        &[(r#"sum by (agent_type) (rate(q2o_agent_tasks_total{{run}}[$__rate_interval]))"#, "{{agent_type}}")],
    ),
    (
        "Active tasks",
        "timeseries",
        "short",
        &[(r#"sum by (agent_type) (q2o_agent_active_tasks{{run}})"#, "{{agent_type}}")],
    ),
    (
        "Inter-agent p95 by protocol",
        "timeseries",
        "s",
        &[(
            r#"histogram_quantile(0.95, sum by (le, protocol) (rate(q2o_inter_agent_request_duration_seconds_bucket{{run}}[$__rate_interval])))"#,
            "{{protocol}}",
        )],
    ),
    (
        "LLM tokens per second",
        "timeseries",
        "short",
        &[(r#"sum(rate(q2o_llm_tokens_used_total{{run}}[$__rate_interval]))"#, "tokens")],
    ),
];

const LOADGEN: &[PanelSpec] = &[
    (
        "Client requests by outcome",
        "timeseries",
        "reqps",
        &[(r#"sum by (outcome) (rate(q2o_loadgen_requests_total{{run}}[$__rate_interval]))"#, "{{outcome}}")],
    ),
    (
        "Client p95 by step",
        "timeseries",
        "s",
        &[(
            r#"histogram_quantile(0.95, sum by (le, protocol, step) (rate(q2o_loadgen_request_duration_seconds_bucket{{run}}[$__rate_interval])))"#,
            "{{protocol}} {{step}}",
        )],
    ),
    ("Active users", "timeseries", "short", &[(r#"sum(q2o_loadgen_active_users{{run}})"#, "users")]),
    ("Dropped starts (open model)", "stat", "short", &[(r#"sum(q2o_loadgen_dropped_starts_total{{run}})"#, "dropped")]),
];

/// Every dashboard: (uid, title, panels).
const DASHBOARDS: &[(&str, &str, &[PanelSpec])] = &[
    ("q2o-slo", "Q2O SLO overview", SLO),
    ("q2o-executive", "Q2O executive view", EXECUTIVE),
    ("q2o-technical", "Q2O technical view", TECHNICAL),
    ("q2o-agents", "Q2O agents", AGENTS),
    ("q2o-loadgen", "Q2O load generator (client side)", LOADGEN),
];

fn datasource() -> DatasourceRef {
    DatasourceRef { kind: "prometheus".into(), uid: "${datasource}".into() }
}

fn variables() -> Vec<Variable> {
    let query = |name: &str, query: &str| Variable {
        name: name.into(),
        kind: "query".into(),
        query: query.into(),
        datasource: Some(datasource()),
        refresh: 2,
        include_all: true,
    };
    vec![
        Variable {
            name: "datasource".into(),
            kind: "datasource".into(),
            query: "prometheus".into(),
            datasource: None,
            refresh: 1,
            include_all: false,
        },
        query("phase", "label_values(up, phase)"),
        query("run_id", r#"label_values(up{phase=~"$phase"}, run_id)"#),
    ]
}

/// Every dashboard, as the files in `dashboards/grafana/` hold them: (file name, dashboard).
pub fn dashboards() -> Vec<(String, Dashboard)> {
    DASHBOARDS
        .iter()
        .map(|(uid, title, specs)| {
            let panels = specs
                .iter()
                .enumerate()
                .map(|(i, (title, kind, unit, queries))| Panel {
                    id: i as u32 + 1,
                    title: (*title).into(),
                    kind: (*kind).into(),
                    grid_pos: GridPos { x: (i as u32 % 2) * 12, y: (i as u32 / 2) * 8, w: 12, h: 8 },
                    datasource: datasource(),
                    targets: queries
                        .iter()
                        .enumerate()
                        .map(|(j, (expr, legend))| Target {
                            ref_id: char::from(b'A' + j as u8).to_string(),
                            expr: expr.replace("{run}", RUN),
                            legend_format: (*legend).into(),
                        })
                        .collect(),
                    field_config: FieldConfig { defaults: FieldDefaults { unit: (*unit).into() } },
                })
                .collect();
            let dashboard = Dashboard {
                uid: (*uid).into(),
                title: (*title).into(),
                tags: vec!["q2o".into()],
                timezone: "browser".into(),
                schema_version: 39,
                refresh: "10s".into(),
                time: TimeRange { from: "now-30m".into(), to: "now".into() },
                templating: Templating { list: variables() },
                panels,
            };
            (format!("{uid}.json"), dashboard)
        })
        .collect()
}

/// Grafana's provisioning: the Prometheus datasource and the dashboards folder.
pub fn provisioning() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "provisioning/datasources/q2o.yml",
            "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    type: prometheus\n    access: proxy\n    url: http://localhost:9090\n    isDefault: true\n",
        ),
        (
            "provisioning/dashboards/q2o.yml",
            "apiVersion: 1\nproviders:\n  - name: q2o\n    folder: Q2O\n    type: file\n    options:\n      path: /var/lib/grafana/dashboards/q2o\n",
        ),
    ]
}

/// Every panel query of `dashboard`, with the template variables of one run
/// and a rate window: (panel title, PromQL).
pub fn queries(dashboard: &Dashboard, phase: &str, run_id: &str, window: &str) -> Vec<(String, String)> {
    dashboard
        .panels
        .iter()
        .flat_map(|panel| {
            panel.targets.iter().map(move |target| {
                let expr = target
                    .expr
                    .replace("$phase", phase)
                    .replace("$run_id", run_id)
                    .replace("$__rate_interval", "30s")
                    .replace("$__range", window);
                (panel.title.clone(), expr)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboards_have_unique_panel_ids_placed_panels_and_run_variables() {
        for (file, dashboard) in dashboards() {
            let mut ids: Vec<u32> = dashboard.panels.iter().map(|p| p.id).collect();
            ids.dedup();
            assert_eq!(ids.len(), dashboard.panels.len(), "{file}: panel ids repeat");
            assert!(
                dashboard
                    .panels
                    .iter()
                    .all(|p| p.grid_pos.w > 0 && p.grid_pos.h > 0 && p.grid_pos.x + p.grid_pos.w <= 24)
            );
            let names: Vec<&str> = dashboard.templating.list.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(names, ["datasource", "phase", "run_id"], "{file}");
            let json = serde_json::to_string(&dashboard).unwrap();
            assert_eq!(serde_json::from_str::<Dashboard>(&json).unwrap(), dashboard, "{file} round-trips");
        }
        let unknown = r#"{"uid":"x","title":"x","tags":[],"timezone":"browser","schemaVersion":39,"refresh":"10s",
            "time":{"from":"now-1h","to":"now"},"templating":{"list":[]},"panels":[],"annotationz":{}}"#;
        assert!(serde_json::from_str::<Dashboard>(unknown).unwrap_err().to_string().contains("annotationz"));
    }

    #[test]
    fn queries_carry_the_run_they_are_asked_for() {
        let (_, technical) = dashboards().into_iter().find(|(f, _)| f == "q2o-technical.json").unwrap();
        let queries = queries(&technical, "phase2", "20261122T000000Z", "300s");
        assert!(queries.iter().all(|(_, q)| !q.contains('$')), "{queries:?}");
        assert!(queries[0].1.contains(r#"phase=~"phase2",run_id=~"20261122T000000Z""#), "{}", queries[0].1);
    }
}
