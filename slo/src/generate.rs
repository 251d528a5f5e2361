//! What `just rules` writes, and where: every generated rule file, its
//! promtool tests, the `PrometheusRule` manifest and the Grafana dashboards,
//! as (path, text) pairs; [`write`] puts them in place and [`stale`] says
//! which differ from what is on disk.

use std::path::{Path, PathBuf};

use crate::dashboards;
use crate::gates::{Gate, gate_rule_tests, gate_rules};
use crate::promql::sli_rules;
use crate::rule_files::{GATE_TESTS_FILE, GATES_FILE, HEADER, SLIS_FILE, SLO_TESTS_FILE, SLOS_FILE};
use crate::slos::{prometheus_rule, slo_rule_tests, slo_rules};

/// Where the generated files go.
#[derive(Clone, Debug)]
pub struct Destinations {
    /// The rule files and their tests (`alerts/`).
    pub alerts: PathBuf,
    /// The dashboards and their provisioning (`dashboards/grafana/`).
    pub dashboards: PathBuf,
    /// The `PrometheusRule` manifest; the dashboards' ConfigMaps go beside it.
    pub manifest: PathBuf,
}

/// Every generated file for `gates` (one per scenario), with its text.
pub fn generated(gates: &[Gate<'_>], to: &Destinations) -> Vec<(PathBuf, String)> {
    let (slis, slos, gate_alerts) = (sli_rules(), slo_rules(HEADER), gate_rules(gates));
    let manifest = prometheus_rule(HEADER, &[slis.clone(), slos.clone(), gate_alerts.clone()]);
    let mut files = vec![
        (to.alerts.join(SLIS_FILE), slis),
        (to.alerts.join(SLOS_FILE), slos),
        (to.alerts.join(GATES_FILE), gate_alerts),
        (to.alerts.join(GATE_TESTS_FILE), gate_rule_tests(gates)),
        (to.alerts.join(SLO_TESTS_FILE), slo_rule_tests(HEADER, SLOS_FILE)),
        (to.manifest.clone(), manifest),
    ];
    let dashboards: Vec<(String, String)> = dashboards::dashboards()
        .into_iter()
        .map(|(name, dashboard)| (name, serde_json::to_string_pretty(&dashboard).expect("dashboards serialize") + "\n"))
        .collect();
    files.push((to.manifest.with_file_name(DASHBOARDS_MANIFEST), dashboard_config_maps(&dashboards)));
    for (name, json) in dashboards {
        files.push((to.dashboards.join(name), json));
    }
    for (name, text) in dashboards::provisioning() {
        files.push((to.dashboards.join(name), text.to_owned()));
    }
    files
}

/// The name of the dashboards' manifest, beside the `PrometheusRule`.
pub const DASHBOARDS_MANIFEST: &str = "grafana-dashboards.yaml";

/// One ConfigMap per dashboard, labelled for the Grafana sidecar of the
/// Prometheus Operator's stack (`grafana_dashboard: "1"`), which loads every
/// ConfigMap so labelled into Grafana.
fn dashboard_config_maps(dashboards: &[(String, String)]) -> String {
    use std::fmt::Write;
    let mut text = HEADER.to_owned();
    for (file, json) in dashboards {
        let name = file.trim_end_matches(".json");
        let _ = write!(
            text,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: grafana-dashboard-{name}\n  labels:\n    app.kubernetes.io/part-of: q2o\n    grafana_dashboard: \"1\"\ndata:\n  {file}: |\n"
        );
        for line in json.lines() {
            let _ = writeln!(text, "    {line}");
        }
    }
    text
}

/// Writes `files`, creating their folders.
pub fn write(files: &[(PathBuf, String)]) -> std::io::Result<()> {
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

/// The files whose text on disk differs from `files` (or that are missing).
pub fn stale(files: &[(PathBuf, String)]) -> Vec<&Path> {
    files
        .iter()
        .filter(|(path, text)| std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()))
        .map(|(path, _)| path.as_path())
        .collect()
}
