//! Every metric name that `alerts/` and `dashboards/grafana/` quote is one the
//! services or the load generator export (`q2o_common::metrics::names`), a
//! series Prometheus makes itself, or a recording rule defined in `alerts/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use q2o_common::metrics::names;

/// Series Prometheus makes itself.
const BUILT_IN: &[&str] = &["up", "ALERTS", "ALERTS_FOR_STATE"];

/// PromQL words that are not series: operators, modifiers, and the
/// aggregations (which may be followed by `by (...)` rather than their argument).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The series names a PromQL expression selects: identifiers that are not
/// functions, keywords, label names or values, durations or numbers.
fn series_in(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    // Skips from an opening bracket to its match, quotes included.
    let skip_group = |mut i: usize, open: char, close: char| {
        let mut depth = 0;
        while i < chars.len() {
            match chars[i] {
                '"' | '\'' | '`' => {
                    let quote = chars[i];
                    i += 1;
                    while i < chars.len() && chars[i] != quote {
                        i += usize::from(chars[i] == '\\') + 1;
                    }
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    let mut after_grouping_keyword = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' => i = skip_group(i, '{', '}'),
            '[' => i = skip_group(i, '[', ']'),
            '(' if after_grouping_keyword => {
                i = skip_group(i, '(', ')');
                after_grouping_keyword = false;
            }
            '"' | '\'' | '`' => i = skip_group(i, c, c).max(i + 1),
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                // A preceding digit makes it part of a number (`1e3`, `5m`).
                let in_number = start > 0 && chars[start - 1].is_ascii_digit();
                if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&word.as_str()) {
                    after_grouping_keyword = true;
                } else if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) && !in_number {
                    found.push(word);
                }
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    found
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// The value of a YAML `key: '...'` line, unquoted (our generated files quote with `'`, doubling inner ones).
fn yaml_value(line: &str, key: &str) -> Option<String> {
    let rest = line.trim_start().trim_start_matches("- ").strip_prefix(key)?.trim();
    let unquoted = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')).unwrap_or(rest);
    Some(unquoted.replace("''", "'"))
}

/// Every PromQL expression of `alerts/` (rules and test inputs) and of the dashboards, with where it is.
fn expressions() -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    let alerts = repo().join("alerts");
    for file in files(&alerts, "yml").into_iter().chain(files(&alerts.join("tests"), "yml")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for key in ["expr:", "series:"] {
                if let Some(expr) = yaml_value(line, key) {
                    exprs.push((format!("{}:{}", file.display(), n + 1), expr));
                }
            }
        }
    }
    for file in files(&repo().join("dashboards/grafana"), "json") {
        let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    exprs.push((format!("{} / {}", file.display(), panel["title"]), expr.to_owned()));
                }
            }
        }
    }
    exprs
}

/// Recording rules defined in `alerts/`.
fn recorded() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in files(&repo().join("alerts"), "yml") {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            if let Some(name) = yaml_value(line, "record:") {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn alerts_and_dashboards_quote_only_metrics_that_exist() {
    let recorded = recorded();
    let exported: BTreeSet<&str> = names::ALL.iter().copied().collect();
    let exists = |name: &str| {
        let base = ["_bucket", "_count", "_sum"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(name);
        exported.contains(name) || exported.contains(base) || BUILT_IN.contains(&name) || recorded.contains(name)
    };
    let exprs = expressions();
    assert!(exprs.len() > 100, "found only {} expressions", exprs.len());
    let mut quoted = BTreeSet::new();
    let mut unknown = Vec::new();
    for (place, expr) in &exprs {
        for name in series_in(expr) {
            if !exists(&name) {
                unknown.push(format!("{place}: `{name}` in {expr}"));
            }
            quoted.insert(name);
        }
    }
    assert!(unknown.is_empty(), "names that no service exports:\n{}", unknown.join("\n"));
    assert!(quoted.contains("q2o_loadgen_requests_total") && quoted.contains("http_requests_total"), "{quoted:?}");
}

#[test]
fn series_are_told_from_functions_labels_and_durations() {
    let expr = r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="gateway",le="0.1"}[5m]))) > 0.1 and on(job) up == 0 or vector(1e3)"#;
    assert_eq!(series_in(expr), ["http_request_duration_seconds_bucket", "up"]);
    assert_eq!(
        series_in("slo:sli_error:ratio_rate5m{service=\"gateway\"} > (14.4 * 0.0010)"),
        ["slo:sli_error:ratio_rate5m"]
    );
    assert!(series_in("q2o_made_up_total").contains(&"q2o_made_up_total".to_owned()));
}
