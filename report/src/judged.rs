//! A gate criterion as judged: the value its verdict rests on, who measured
//! it, what the other source said, and the verdict.

use q2o_slo::sli::Sli;
use serde::Serialize;

/// A criterion's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Met the target (and the warning threshold, if any).
    Pass,
    /// Met the target but missed the warning threshold.
    Warn,
    /// Missed the target.
    Fail,
    /// Nothing measured it: the gate cannot pass on faith.
    NoData,
    /// Measured for the baseline and not judged (a `record_only` criterion).
    Recorded,
}

/// Who measured the value a verdict rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Source {
    /// The loadgen's exact histograms and counters.
    #[serde(rename = "loadgen-hdr")]
    LoadgenHdr,
    /// A query of the run's Prometheus.
    #[serde(rename = "prometheus")]
    Prometheus,
    /// The environment's record of deaths and restarts.
    #[serde(rename = "supervisor")]
    Supervisor,
    /// The tasks' own record in Redis.
    #[serde(rename = "redis")]
    Redis,
    /// promtool's unit tests.
    #[serde(rename = "promtool")]
    Promtool,
    /// The event log's census: the broker's log against the audit ledger.
    #[serde(rename = "census")]
    Census,
    /// Nothing.
    #[serde(rename = "none")]
    None,
}

impl Source {
    /// The name in `summary.json` and the reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::LoadgenHdr => "loadgen-hdr",
            Source::Prometheus => "prometheus",
            Source::Supervisor => "supervisor",
            Source::Redis => "redis",
            Source::Promtool => "promtool",
            Source::Census => "census",
            Source::None => "none",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One judged criterion.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    /// Its name.
    pub name: String,
    /// What it measures (serialized by its name).
    pub sli: Sli,
    /// Comparison.
    pub op: &'static str,
    /// The target.
    pub target: f64,
    /// The warning threshold.
    pub warning: Option<f64>,
    /// The value the verdict rests on.
    pub measured: Option<f64>,
    /// Who measured it.
    pub source: Source,
    /// What Prometheus said, when it could.
    pub prometheus: Option<f64>,
    /// What the loadgen's exact records said, when they could.
    pub exact: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// A disagreement between the sources, or why there is no value.
    pub note: Option<String>,
    /// The stretch of the run it was judged over (`during:surge`,
    /// `after:surge+10s`); absent for the hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

impl Judged {
    /// Its name, with its window when it has one: `api_p95 (during:surge)`.
    pub fn title(&self) -> String {
        match &self.window {
            Some(window) => format!("{} ({window})", self.name),
            None => self.name.clone(),
        }
    }
}
