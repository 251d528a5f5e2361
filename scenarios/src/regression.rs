//! A run held against a baseline run of the same scenario: every criterion
//! and every (protocol, step) latency of the two `summary.json` files side by
//! side, with what got worse by more than a tolerance called out as a
//! regression. `q2o-bench report <run> --baseline <run>` writes it as
//! `baseline.md` into the run's folder.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::RunError;

/// The parts of `summary.json` a comparison reads.
#[derive(Debug, Deserialize)]
pub struct RunSummary {
    /// The scenario.
    pub scenario: String,
    /// The run folder's name.
    pub run_id: String,
    /// GO, NO-GO or ERROR.
    pub verdict: String,
    /// Judged criteria.
    pub criteria: Vec<CriterionRow>,
    /// The loadgen's figures, when the load ran.
    pub load: Option<LoadRow>,
}

/// One criterion as judged.
#[derive(Debug, Deserialize)]
pub struct CriterionRow {
    /// Its name.
    pub name: String,
    /// `<`, `<=`, `>=` or `>`.
    pub op: String,
    /// What was measured, if anything.
    pub measured: Option<f64>,
    /// pass, warn, fail or no_data.
    pub verdict: String,
}

/// The load's figures.
#[derive(Debug, Deserialize)]
pub struct LoadRow {
    /// By (protocol, step).
    pub steps: Vec<StepRow>,
}

/// One (protocol, step).
#[derive(Debug, Deserialize)]
pub struct StepRow {
    /// rest or grpc.
    pub protocol: String,
    /// The step.
    pub step: String,
    /// 95th percentile, ms.
    pub p95_ms: f64,
}

impl RunSummary {
    /// Reads `<dir>/summary.json`.
    pub fn read(dir: &Path) -> Result<RunSummary, RunError> {
        let path = dir.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(RunError::io(&path))?;
        serde_json::from_str(&text)
            .map_err(|e| RunError::Io { source: std::io::Error::other(format!("not a q2o-bench summary: {e}")), path })
    }
}

/// A run held against its baseline, written as `baseline.md` into the run's folder.
#[derive(Debug)]
pub struct Held {
    /// The current run.
    pub current: RunSummary,
    /// The table, in Markdown.
    pub markdown: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Whether anything regressed.
    pub regressed: bool,
}

/// Holds the run in `run` against the one in `baseline` (of the same scenario)
/// and writes `baseline.md` into `run`.
pub fn hold(run: &Path, baseline: &Path, tolerance: f64) -> Result<Held, RunError> {
    if !(0.0..10.0).contains(&tolerance) {
        return Err(crate::scenario::FlagError {
            flag: "--tolerance",
            reason: format!("must be a fraction such as 0.1, got {tolerance}"),
        }
        .into());
    }
    let current = RunSummary::read(run)?;
    let before = RunSummary::read(baseline)?;
    if before.scenario != current.scenario {
        return Err(RunError::Unsupported {
            key: "--baseline".into(),
            reason: format!("{} is a run of {}, not of {}", baseline.display(), before.scenario, current.scenario),
        });
    }
    let regressions = hold_against(&before, &current, tolerance);
    let markdown = regressions.markdown(&before, &current, tolerance);
    let path = run.join("baseline.md");
    std::fs::write(&path, &markdown).map_err(RunError::io(&path))?;
    Ok(Held { current, markdown, path, regressed: regressions.regressed() })
}

/// One figure in both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// What (a criterion's name, or `p95 rest:list_projects`).
    pub what: String,
    /// In the baseline.
    pub baseline: Option<f64>,
    /// In this run.
    pub current: Option<f64>,
    /// Worse beyond the tolerance, or a criterion that passed and now fails.
    pub regression: bool,
}

/// Both runs' figures, and which got worse.
#[derive(Debug)]
pub struct Regressions {
    /// Every figure found in either run.
    pub changes: Vec<Change>,
}

/// Whether `current` is worse than `baseline` by more than `tolerance` (a
/// fraction), where `lower_is_better` says which way is worse. A baseline of
/// zero tolerates nothing above (or below) it.
fn worse(baseline: f64, current: f64, lower_is_better: bool, tolerance: f64) -> bool {
    let allowed = baseline.abs() * tolerance;
    if lower_is_better { current > baseline + allowed } else { current < baseline - allowed }
}

/// Holds `current` against `baseline`.
pub fn hold_against(baseline: &RunSummary, current: &RunSummary, tolerance: f64) -> Regressions {
    let mut changes = Vec::new();
    for c in &current.criteria {
        let before = baseline.criteria.iter().find(|b| b.name == c.name);
        let lower_is_better = c.op.starts_with('<');
        let failing = |v: &str| matches!(v, "fail" | "no_data");
        let newly_failing = failing(&c.verdict) && before.is_some_and(|b| !failing(&b.verdict));
        let got_worse = match (before.and_then(|b| b.measured), c.measured) {
            (Some(b), Some(now)) => worse(b, now, lower_is_better, tolerance),
            (Some(_), None) => true,
            _ => false,
        };
        changes.push(Change {
            what: c.name.clone(),
            baseline: before.and_then(|b| b.measured),
            current: c.measured,
            regression: newly_failing || got_worse,
        });
    }
    let before_steps = baseline.load.as_ref().map_or(&[][..], |l| &l.steps[..]);
    for step in current.load.as_ref().map_or(&[][..], |l| &l.steps[..]) {
        let before = before_steps.iter().find(|b| b.protocol == step.protocol && b.step == step.step);
        changes.push(Change {
            what: format!("p95 ms {}:{}", step.protocol, step.step),
            baseline: before.map(|b| b.p95_ms),
            current: Some(step.p95_ms),
            regression: before.is_some_and(|b| worse(b.p95_ms, step.p95_ms, true, tolerance)),
        });
    }
    Regressions { changes }
}

impl Regressions {
    /// Whether anything got worse.
    pub fn regressed(&self) -> bool {
        self.changes.iter().any(|c| c.regression)
    }

    /// `baseline.md`.
    pub fn markdown(&self, baseline: &RunSummary, current: &RunSummary, tolerance: f64) -> String {
        let mut m = String::new();
        let regressions = self.changes.iter().filter(|c| c.regression).count();
        let _ = writeln!(
            m,
            "# {}: run {} ({}) against baseline {} ({})\n",
            current.scenario, current.run_id, current.verdict, baseline.run_id, baseline.verdict
        );
        let _ = writeln!(
            m,
            "{regressions} regression{} (worse by more than {:.0} %, or a criterion that passed and now fails).\n",
            if regressions == 1 { "" } else { "s" },
            tolerance * 100.0
        );
        m.push_str("| figure | baseline | this run | change | |\n|---|---|---|---|---|\n");
        let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.4}"));
        for c in &self.changes {
            let change = match (c.baseline, c.current) {
                (Some(b), Some(n)) if b != 0.0 => format!("{:+.1} %", (n - b) / b.abs() * 100.0),
                (Some(b), Some(n)) => format!("{:+.4}", n - b),
                _ => "-".into(),
            };
            let _ = writeln!(
                m,
                "| {} | {} | {} | {change} | {} |",
                c.what,
                show(c.baseline),
                show(c.current),
                if c.regression { "REGRESSION" } else { "" }
            );
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(run_id: &str, p95: f64, verdict: &str, step_p95: f64) -> RunSummary {
        serde_json::from_value(serde_json::json!({
            "scenario": "phase2", "run_id": run_id, "verdict": "GO",
            "criteria": [
                {"name": "api_p95", "op": "<", "measured": p95, "verdict": verdict},
                {"name": "users", "op": ">=", "measured": 200.0, "verdict": "pass"}
            ],
            "load": {"steps": [{"protocol": "rest", "step": "list_projects", "p95_ms": step_p95}]}
        }))
        .unwrap()
    }

    #[test]
    fn worse_beyond_the_tolerance_or_newly_failing_is_a_regression() {
        let base = summary("a", 0.020, "pass", 10.0);
        let same = hold_against(&base, &summary("b", 0.021, "pass", 10.5), 0.10);
        assert!(!same.regressed(), "{:?}", same.changes);
        let slower = hold_against(&base, &summary("b", 0.030, "pass", 10.0), 0.10);
        assert_eq!(
            slower.changes.iter().filter(|c| c.regression).map(|c| c.what.as_str()).collect::<Vec<_>>(),
            ["api_p95"]
        );
        let step = hold_against(&base, &summary("b", 0.020, "pass", 12.0), 0.10);
        assert!(step.changes.iter().any(|c| c.regression && c.what == "p95 ms rest:list_projects"));
        let failing = hold_against(&base, &summary("b", 0.020, "fail", 10.0), 0.10);
        assert!(failing.regressed(), "passed before, fails now");
        let faster = hold_against(&base, &summary("b", 0.005, "pass", 2.0), 0.10);
        assert!(!faster.regressed(), "better is never a regression");
    }

    #[test]
    fn higher_is_better_for_at_least_criteria_and_the_table_names_regressions() {
        assert!(worse(200.0, 150.0, false, 0.1));
        assert!(!worse(200.0, 250.0, false, 0.1));
        assert!(worse(0.0, 1.0, true, 0.1), "a zero baseline tolerates nothing");
        let base = summary("a", 0.020, "pass", 10.0);
        let now = summary("b", 0.030, "pass", 10.0);
        let comparison = hold_against(&base, &now, 0.10);
        let md = comparison.markdown(&base, &now, 0.10);
        assert!(md.contains("1 regression (worse by more than 10 %"), "{md}");
        assert!(md.contains("| api_p95 | 0.0200 | 0.0300 | +50.0 % | REGRESSION |"), "{md}");
    }
}
