//! Which alerts are unit-tested: every alert a run's Prometheus loads must
//! have a promtool test case where it fires and one where it stays quiet,
//! in a test file that passes `promtool test rules`. Phase 3's gate counts
//! them; the runner runs promtool and hands its verdicts to [`coverage`].
//!
//! The rule and test files are Prometheus YAML in the shapes promtool
//! documents; only the few keys needed here are read, by indentation, so that
//! no YAML library joins the build for two keys.

use std::collections::BTreeMap;

use serde::Serialize;

/// What the unit tests cover of the alerts a run loaded.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertTestCoverage {
    /// Alerts in the rule files of the run.
    pub alerts: usize,
    /// Alerts with a firing and a quiet case in a passing test file.
    pub tested: usize,
    /// The others.
    pub untested: Vec<String>,
    /// Test files promtool failed, with its last line.
    pub failed_files: Vec<String>,
}

impl AlertTestCoverage {
    /// `tested / alerts`, when there are alerts.
    pub fn ratio(&self) -> Option<f64> {
        (self.alerts > 0).then(|| self.tested as f64 / self.alerts as f64)
    }
}

/// The alert names a rule file defines (`- alert: Name`).
pub fn alerts_in(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- alert:"))
        .map(|name| unquote(name.trim()).to_owned())
        .collect()
}

/// How a test file exercises each alert it names: (fires in some case, quiet in some case).
pub fn cases_in(tests: &str) -> BTreeMap<String, (bool, bool)> {
    let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut record = |item: &[&str]| {
        let mut name = None;
        let mut expects = None;
        for (i, line) in item.iter().enumerate() {
            let key = line.trim_start().trim_start_matches("- ");
            if let Some(value) = key.strip_prefix("alertname:") {
                name = Some(unquote(value.trim()).to_owned());
            } else if let Some(value) = key.strip_prefix("exp_alerts:") {
                // `exp_alerts: []` (or empty with no list after it) says quiet; a list says fires.
                let listed = value.trim() != "[]" && item[i + 1..].iter().any(|l| l.trim_start().starts_with("- "));
                expects = Some(listed);
            }
        }
        if let (Some(name), Some(fires)) = (name, expects) {
            let entry = cases.entry(name).or_default();
            if fires {
                entry.0 = true;
            } else {
                entry.1 = true;
            }
        }
    };

    let lines: Vec<&str> = tests.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let Some(list_indent) = lines[i].find("alert_rule_test:") else {
            i += 1;
            continue;
        };
        i += 1;
        // Each item is a `- ` line at the list's indentation and everything deeper.
        let mut item: Vec<&str> = Vec::new();
        let mut item_indent = None;
        while i < lines.len() {
            let line = lines[i];
            let indent = line.len() - line.trim_start().len();
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                i += 1;
                continue;
            }
            if indent < list_indent || (indent == list_indent && !line.trim_start().starts_with("- ")) {
                break;
            }
            if line.trim_start().starts_with("- ") && item_indent.is_none_or(|at| indent <= at) {
                record(&item);
                item.clear();
                item_indent = Some(indent);
            }
            item.push(line);
            i += 1;
        }
        record(&item);
    }
    cases
}

fn unquote(s: &str) -> &str {
    s.trim_matches(|c| c == '"' || c == '\'')
}

/// Test files as promtool judged them: each file's name, and its text if it
/// passed or promtool's last line if it failed.
pub type JudgedFiles = Vec<(String, Result<String, String>)>;

/// Which of `alerts` have a firing and a quiet case in a test file that passed.
pub fn coverage(alerts: &[String], files: &JudgedFiles) -> AlertTestCoverage {
    let mut coverage = AlertTestCoverage { alerts: alerts.len(), ..AlertTestCoverage::default() };
    let mut passing: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for (name, judged) in files {
        match judged {
            Err(last) => coverage.failed_files.push(format!("{name}: {last}")),
            Ok(text) => {
                for (alert, (fires, quiet)) in cases_in(text) {
                    let entry = passing.entry(alert).or_default();
                    entry.0 |= fires;
                    entry.1 |= quiet;
                }
            }
        }
    }
    for alert in alerts {
        if passing.get(alert).is_some_and(|&(fires, quiet)| fires && quiet) {
            coverage.tested += 1;
        } else {
            coverage.untested.push(alert.clone());
        }
    }
    coverage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_come_from_alert_keys_only() {
        let rules = "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: x\n      - alert: \"HighAPILatency\"\n        expr: y\n      - alert: AgentDown\n";
        assert_eq!(alerts_in(rules), ["HighAPILatency", "AgentDown"]);
    }

    #[test]
    fn cases_tell_firing_from_quiet_in_any_key_order() {
        let tests = r#"
rule_files: [x.yml]
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="a"}'
        values: '0x5'
    alert_rule_test:
      - eval_time: 5m
        alertname: AgentDown
        exp_alerts:
          - exp_labels: {severity: page}
      - exp_alerts: []
        alertname: AgentDown
        eval_time: 1m
      - eval_time: 2m
        alertname: OnlyFires
        exp_alerts:
          - exp_labels: {}
  - interval: 1m
    input_series: []
    alert_rule_test:
      - eval_time: 1m
        alertname: OnlyQuiet
        exp_alerts: []
"#;
        let cases = cases_in(tests);
        assert_eq!(cases["AgentDown"], (true, true));
        assert_eq!(cases["OnlyFires"], (true, false));
        assert_eq!(cases["OnlyQuiet"], (false, true));
        assert_eq!(cases.len(), 3);
    }

    #[test]
    fn the_committed_tests_cover_every_committed_alert() {
        let alerts_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../alerts");
        let mut alerts = Vec::new();
        let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for entry in std::fs::read_dir(&alerts_dir).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "yml") {
                alerts.extend(alerts_in(&std::fs::read_to_string(entry.path()).unwrap()));
            }
        }
        for entry in std::fs::read_dir(alerts_dir.join("tests")).unwrap().flatten() {
            for (alert, (fires, quiet)) in cases_in(&std::fs::read_to_string(entry.path()).unwrap()) {
                let entry = cases.entry(alert).or_default();
                entry.0 |= fires;
                entry.1 |= quiet;
            }
        }
        assert!(alerts.len() > 20, "found only {} alerts", alerts.len());
        let untested: Vec<_> = alerts.iter().filter(|a| cases.get(*a) != Some(&(true, true))).collect();
        assert!(untested.is_empty(), "alerts without a firing and a quiet case: {untested:?}");
    }
}
