//! A real Prometheus for each run: its config (every service and every loadgen
//! process scraped each second, the rule files loaded), its lifecycle under the
//! supervisor, and the HTTP API queries the gate and the charts use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::endpoints::ScrapeTarget;
use crate::error::EnvError;
use crate::ports::free_addr;
use crate::supervisor::{Readiness, ServiceSpec, Supervisor};

/// `t` in the seconds since the epoch that Prometheus's API speaks.
pub fn unix(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Now, in Prometheus's seconds.
pub fn unix_now() -> f64 {
    unix(std::time::SystemTime::now())
}

/// Scrape and rule evaluation interval.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A query could not be answered.
#[derive(Debug, thiserror::Error)]
#[error("Prometheus query `{query}`: {reason}")]
pub struct QueryError {
    /// The PromQL.
    pub query: String,
    /// Why.
    pub reason: String,
}

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    base: String,
    client: reqwest::Client,
}

/// The Prometheus config for `targets` with `rule_files`; every series gets `labels`
/// (the run's `phase` and `run_id`, which the dashboards select on).
pub fn config(targets: &[ScrapeTarget], rule_files: &[PathBuf], labels: &[(&str, &str)]) -> String {
    let mut text = format!(
        "global:\n  scrape_interval: {s}s\n  scrape_timeout: {s}s\n  evaluation_interval: {s}s\n",
        s = INTERVAL.as_secs()
    );
    text.push_str("rule_files:\n");
    for file in rule_files {
        text.push_str(&format!("  - '{}'\n", file.display()));
    }
    text.push_str("scrape_configs:\n");
    let mut jobs: Vec<&str> = targets.iter().map(|t| t.job.as_str()).collect();
    jobs.dedup();
    jobs.sort_unstable();
    jobs.dedup();
    for job in jobs {
        text.push_str(&format!("  - job_name: '{job}'\n    static_configs:\n      - targets:\n"));
        for target in targets.iter().filter(|t| t.job == job) {
            text.push_str(&format!("          - '{}'\n", target.addr));
        }
        if !labels.is_empty() {
            text.push_str("        labels:\n");
            for (name, value) in labels {
                text.push_str(&format!("          {name}: '{value}'\n"));
            }
        }
    }
    text
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: serde::de::DeserializeOwned"))]
struct Answer<T> {
    status: String,
    #[serde(default = "none")]
    data: Option<T>,
    #[serde(default)]
    error: Option<String>,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Deserialize)]
struct QueryData {
    result: Vec<Sample>,
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct TargetsData {
    #[serde(rename = "activeTargets")]
    active: Vec<TargetState>,
}

#[derive(Deserialize)]
struct TargetState {
    #[serde(rename = "scrapeUrl")]
    url: String,
    health: String,
}

/// One labelled series of a range query: (labels, [(unix seconds, value)]).
pub type Series = (std::collections::BTreeMap<String, String>, Vec<(f64, f64)>);

impl Prometheus {
    /// Writes the config into `dir` and starts Prometheus under `supervisor`, on a free port.
    pub async fn start(
        supervisor: &Supervisor,
        program: &Path,
        dir: &Path,
        targets: &[ScrapeTarget],
        rule_files: &[PathBuf],
        labels: &[(&str, &str)],
        nice: i32,
    ) -> Result<Prometheus, EnvError> {
        let addr: SocketAddr = free_addr()?;
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config(targets, rule_files, labels))
            .map_err(|source| EnvError::Io { path: config_path.display().to_string(), source })?;
        let args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.join("data/prometheus").display()),
            format!("--web.listen-address={addr}"),
            "--log.level=warn".into(),
        ];
        let base = format!("http://{addr}");
        supervisor
            .start(ServiceSpec {
                name: "prometheus".into(),
                program: program.to_owned(),
                args,
                env: Vec::new(),
                cwd: Some(dir.to_owned()),
                ready: Readiness::Http(format!("{base}/-/ready")),
                restart: true,
                nice,
            })
            .await?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("static client config");
        Ok(Prometheus { base, client })
    }

    /// A Prometheus someone else runs (a cluster's), at its base URL.
    pub fn at(url: &str) -> Prometheus {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("static client config");
        Prometheus { base: url.trim_end_matches('/').to_owned(), client }
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        query: &str,
    ) -> Result<T, QueryError> {
        let err = |reason: String| QueryError { query: query.to_owned(), reason };
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .query(params)
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        let answer: Answer<T> = response.json().await.map_err(|e| err(e.to_string()))?;
        if answer.status != "success" {
            return Err(err(answer.error.unwrap_or(answer.status)));
        }
        answer.data.ok_or_else(|| err("no data".into()))
    }

    /// Instant query at `at` (unix seconds): each series' labels and value.
    pub async fn query(
        &self,
        query: &str,
        at: f64,
    ) -> Result<Vec<(std::collections::BTreeMap<String, String>, f64)>, QueryError> {
        let data: QueryData =
            self.get("/api/v1/query", &[("query", query.to_owned()), ("time", format!("{at:.3}"))], query).await?;
        Ok(data
            .result
            .into_iter()
            .filter_map(|s| {
                let value = s.value?.1.parse::<f64>().ok()?;
                Some((s.metric, value))
            })
            .collect())
    }

    /// Instant query expected to give one number; `None` when it gives no series or NaN.
    pub async fn scalar(&self, query: &str, at: f64) -> Result<Option<f64>, QueryError> {
        Ok(self.query(query, at).await?.first().map(|(_, v)| *v).filter(|v| v.is_finite()))
    }

    /// Range query from `start` to `end` (unix seconds) every `step` seconds.
    pub async fn range(&self, query: &str, start: f64, end: f64, step: f64) -> Result<Vec<Series>, QueryError> {
        let params = [
            ("query", query.to_owned()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step}")),
        ];
        let data: QueryData = self.get("/api/v1/query_range", &params, query).await?;
        Ok(data
            .result
            .into_iter()
            .map(|s| {
                let points = s
                    .values
                    .into_iter()
                    .filter_map(|(t, v)| v.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| (t, v)))
                    .collect();
                (s.metric, points)
            })
            .collect())
    }

    /// Waits until every target whose address is in `addrs` has been scraped successfully.
    pub async fn wait_targets_up(&self, addrs: &[SocketAddr], within: Duration) -> Result<(), QueryError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let data: TargetsData = self.get("/api/v1/targets", &[("state", "active".into())], "targets").await?;
            let down: Vec<String> = addrs
                .iter()
                .filter(|addr| !data.active.iter().any(|t| t.url.contains(&addr.to_string()) && t.health == "up"))
                .map(ToString::to_string)
                .collect();
            if down.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(QueryError {
                    query: "targets".into(),
                    reason: format!("not up after {within:?}: {}", down.join(", ")),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Alerts firing at `at` with this `phase` label: (alertname, criterion, severity).
    pub async fn firing(&self, phase: &str, at: f64) -> Result<Vec<(String, String, String)>, QueryError> {
        let query = format!("ALERTS{{alertstate=\"firing\",phase=\"{phase}\"}}");
        let series = self.query(&query, at).await?;
        Ok(series
            .into_iter()
            .map(|(labels, _)| {
                let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
                (get("alertname"), get("criterion"), get("severity"))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_groups_targets_by_job_and_loads_every_rule_file() {
        let t = |job: &str, port: u16| ScrapeTarget { job: job.into(), addr: SocketAddr::from(([127, 0, 0, 1], port)) };
        let targets = [t("gateway", 1), t("agents", 2), t("gateway", 3)];
        let text = config(&targets, &[PathBuf::from("/a/slis.yml")], &[("phase", "phase2")]);
        assert!(text.contains("        labels:\n          phase: 'phase2'\n"));
        assert!(text.contains("scrape_interval: 1s"));
        assert!(text.contains("  - '/a/slis.yml'"));
        assert_eq!(text.matches("job_name: 'gateway'").count(), 1);
        assert!(text.contains("'127.0.0.1:1'") && text.contains("'127.0.0.1:3'"));
    }
}
