//! `q2o-bench collect` and `q2o-bench judge`: a run whose load came from
//! elsewhere (the pods of a cluster's Indexed Job) judged as a local run is.
//! `collect` fetches each pod's `results.json` and interval log from where
//! it serves them (`--serve-results`); `judge` merges them exactly (the
//! histograms are added, never their percentiles averaged), asks the
//! cluster's Prometheus for the rest, and writes the same report, criteria,
//! reasons, JUnit and exit code. The thresholds are judged once, over the
//! merged histograms.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use q2o_env::prometheus::Prometheus;
use q2o_loadgen::results::{LoggedInterval, RunResults, read_interval_log};
use q2o_loadgen::shelf::FILES;
use q2o_report::summary::{LoadFigures, Sizes, Summary};

use crate::error::{RunError, RunFailed};
use crate::gate;
use crate::gate_run::{self, LoadSpan, Stores};
use crate::run_folder::{RunFolder, rfc3339};
use crate::scenario::{Overrides, Scenario};

/// What to judge.
#[derive(Clone, Debug)]
pub struct JudgeOptions {
    /// The scenario as it was run (its sizes already applied).
    pub scenario: Scenario,
    /// The sizes the run was rendered with, for the report.
    pub overrides: Overrides,
    /// The users in the scenario file, before the overrides.
    pub users_in_file: usize,
    /// The collected results: `results.json` here or in its subfolders.
    pub results: PathBuf,
    /// The Prometheus that scraped the run.
    pub prometheus: String,
    /// The run's Redis, when reachable from here (for `tasks_unfinished`).
    pub redis_url: Option<String>,
    /// The run's broker, when reachable from here (for the census behind `events_lost`).
    pub kafka: Option<String>,
    /// Where `<scenario>/<run-id>/` goes.
    pub reports: PathBuf,
    /// Grafana dashboards whose queries are checked against the run.
    pub dashboards_dir: PathBuf,
    /// The environment the report names.
    pub env: &'static str,
}

/// How the judged run came out.
#[derive(Debug)]
pub struct Judgement {
    /// Every criterion passed (or only warned).
    pub go: bool,
    /// The report's folder.
    pub dir: PathBuf,
    /// The summary written there.
    pub summary: Summary,
    /// The parts merged.
    pub parts: usize,
}

/// Fetches every url's `/results/{results.json,latency.hlog}` into
/// `dir/part-<i>/`; a pod still running answers 503 and is asked again
/// (every 5 s, for at most `wait`).
pub async fn collect(urls: &[String], dir: &Path, wait: Duration) -> Result<Vec<PathBuf>, RunError> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("static client config");
    let deadline = tokio::time::Instant::now() + wait;
    let mut parts = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let part = dir.join(format!("part-{i}"));
        std::fs::create_dir_all(&part).map_err(RunError::io(&part))?;
        for file in FILES {
            let address = format!("{}/results/{file}", url.trim_end_matches('/'));
            let body = loop {
                let failed = |reason: String| RunError::Loadgen(format!("cannot fetch {address}: {reason}"));
                let response = client.get(&address).send().await.map_err(|e| failed(e.to_string()))?;
                if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
                if !response.status().is_success() {
                    return Err(failed(format!("it answered {}", response.status())));
                }
                break response.bytes().await.map_err(|e| failed(e.to_string()))?;
            };
            let path = part.join(file);
            std::fs::write(&path, &body).map_err(RunError::io(&path))?;
        }
        parts.push(part);
    }
    Ok(parts)
}

/// The folders under `dir` (and `dir` itself) holding a `results.json`, sorted.
fn part_dirs(dir: &Path) -> Result<Vec<PathBuf>, RunError> {
    if dir.join("results.json").is_file() {
        return Ok(vec![dir.to_owned()]);
    }
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(RunError::io(dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("results.json").is_file())
        .collect();
    parts.sort();
    if parts.is_empty() {
        return Err(RunError::Loadgen(format!(
            "--results {}: no results.json in it or in its folders (q2o-bench collect puts them there)",
            dir.display()
        )));
    }
    Ok(parts)
}

/// The parts' results merged exactly, and their interval logs.
pub fn merged(dir: &Path) -> Result<(RunResults, Vec<LoggedInterval>, usize), RunError> {
    let parts = part_dirs(dir)?;
    let mut results = Vec::new();
    let mut logs = Vec::new();
    for part in &parts {
        let path = part.join("results.json");
        results.push(RunResults::read(&path).map_err(|e| RunError::Loadgen(format!("{}: {e}", path.display())))?);
        let log = part.join("latency.hlog");
        let read = if log.is_file() {
            read_interval_log(&log).map_err(|e| RunError::Loadgen(format!("{}: {e}", log.display())))?
        } else {
            Vec::new()
        };
        logs.push(read);
    }
    let merged = RunResults::merge(&results).map_err(RunError::Loadgen)?;
    // Each log counts from its own part's start: put its intervals on the merged clock.
    let mut intervals = Vec::new();
    for (part, log) in results.iter().zip(logs) {
        let offset = match (part.started_at, merged.started_at) {
            (Some(start), Some(first)) => start - first,
            _ => 0.0,
        };
        intervals.extend(log.into_iter().map(|mut i| {
            i.start += offset;
            i.end += offset;
            i
        }));
    }
    Ok((merged, intervals, parts.len()))
}

/// Judges the collected results of `options` and writes the report.
pub async fn judge(options: JudgeOptions) -> Result<Judgement, RunFailed> {
    let scenario = &options.scenario;
    let (results, intervals, parts) = merged(&options.results)?;
    let Some(started) = results.started_at else {
        let reason = "the results do not say when their load started (written by a q2o-loadgen before --start-at)";
        return Err(RunError::Loadgen(reason.into()).into());
    };
    let load = LoadSpan { started, ended: started + results.duration_seconds };
    let folder = RunFolder::create(&options.reports, &scenario.name)?;
    let sizes = Sizes {
        users: scenario.load.users,
        users_in_file: options.users_in_file,
        ramp_rate: scenario.load.ramp_rate,
        hold_seconds: scenario.load.hold.as_secs_f64(),
        ramp_down_seconds: scenario.load.ramp_down.as_secs_f64(),
        loadgen_processes: parts,
        scaled: options.overrides.any(),
        overrides: options.overrides.clone(),
    };
    let started_at = UNIX_EPOCH + Duration::from_secs_f64(started);
    let mut summary = Summary::started(
        (&scenario.name, &scenario.description),
        (&folder.id, rfc3339(started_at)),
        options.env,
        sizes,
        scenario.topology.clone(),
    );
    let prometheus = Prometheus::at(&options.prometheus);
    let stores = Stores { redis_url: options.redis_url.as_deref(), kafka: options.kafka.as_deref() };
    let assessed = gate_run::assess(
        scenario,
        &prometheus,
        &options.dashboards_dir,
        &folder.id,
        (&results, &intervals),
        load,
        stores,
    )
    .await;
    summary.finished_at = rfc3339(UNIX_EPOCH + Duration::from_secs_f64(load.ended));
    let assessed = match assessed {
        Ok(assessed) => assessed,
        Err(error) => {
            summary.reasons = vec![error.to_string()];
            folder.remove_data();
            gate_run::write(&folder, &mut summary, &[])?;
            return Err(RunFailed { error, dir: Some(folder.dir) });
        }
    };
    let go = gate_run::record_verdict(&mut summary, gate::judge(&assessed.evidence, &scenario.criteria));
    summary.environment.prometheus = options.prometheus.clone();
    if options.env == "kubernetes" {
        // The cluster's machines ran the load; the judge's own are beside the point.
        summary.environment.os = "a cluster (its machines are not measured by the judge)".into();
        summary.environment.cpus = 0;
        summary.environment.memory_bytes = 0;
    }
    summary.load = Some(LoadFigures::of(&results));
    let charts = assessed.record(&mut summary);
    results.write(&folder.dir.join("loadgen")).map_err(RunError::from)?;
    folder.remove_data();
    gate_run::write(&folder, &mut summary, &charts)?;
    Ok(Judgement { go, dir: folder.dir, summary, parts })
}
