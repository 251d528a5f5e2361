//! `q2o-bench capacity`: the knee of a scenario's topology at 1, 2, 3...
//! gateway replicas, the Universal Scalability Law fitted through them, and
//! the replicas that 5k, 50k and 100k users need.
//!
//! Each step offers the scenario's operations at one open-model rate for a
//! fixed time on a running topology and is judged by the scenario's criteria
//! that the loadgen measures exactly (API latency percentiles, error rate,
//! availability), plus two of its own: the system answered at least 95 % of
//! the offered rate, and the loadgen started 99 % of its requests on time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use q2o_loadgen::results::RunResults;
use serde::Serialize;

use crate::capacity::knee::{self, Knee};
use crate::capacity::usl::{self, Fit};
use crate::gate;
use crate::local::{Binaries, EnvKind, Environment};
use crate::open_load::{OpenStep, run_together};
use crate::report::summary::Environment as Machine;
use crate::run::{RunFailed, link_latest, new_run_dir, rfc3339};
use crate::scenario::{Criterion, Scenario, Sli};

/// What to run.
#[derive(Clone, Debug)]
pub struct CapacityOptions {
    /// The scenario file.
    pub scenario: PathBuf,
    /// How to search.
    pub search: Search,
    /// Where `<scenario>-capacity/<run-id>/` goes.
    pub reports: PathBuf,
    /// Programs.
    pub binaries: Binaries,
    /// Whether to draw a progress bar.
    pub progress: bool,
}

/// How the knees are searched (the flags of `q2o-bench capacity`).
#[derive(Clone, Debug, clap::Args)]
pub struct Search {
    /// Gateway replica counts, comma-separated (agents processes scale alike).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub replicas: Vec<usize>,
    /// How long each rate is held (e.g. 10s).
    #[arg(long, value_parser = q2o_common::config::parse_duration, default_value = "10s")]
    pub step: Duration,
    /// The first rate tried, requests per second (then doubled).
    #[arg(long, default_value_t = 100.0)]
    pub start_rate: f64,
    /// The highest rate tried.
    #[arg(long, default_value_t = 20_000.0)]
    pub ceiling: f64,
    /// Stop bisecting when the bracket is narrower than this share of the rate.
    #[arg(long, default_value_t = 0.1)]
    pub resolution: f64,
    /// Most steps per replica count.
    #[arg(long, default_value_t = 12)]
    pub max_steps: usize,
    /// Users the largest replica count must carry for exit 0.
    #[arg(long)]
    pub target_users: Option<f64>,
    /// Loadgen processes sharing each step's rate.
    #[arg(long, default_value_t = 1)]
    pub loadgen_processes: u32,
}

/// Judged from each step's loadgen results.
pub const STEP_SLIS: [Sli; 4] = [Sli::ApiLatencyP95, Sli::ApiLatencyP99, Sli::ErrorRate, Sli::Availability];

/// Share of the offered rate a step must answer to hold.
pub const MIN_ANSWERED: f64 = 0.95;
/// Share of planned starts that may be late (dropped) in a step that holds.
pub const MAX_LATE: f64 = 0.01;

/// One rate tried.
#[derive(Clone, Debug, Serialize)]
pub struct StepFigures {
    /// Requests per second offered.
    pub offered_rate: f64,
    /// Requests per second answered `ok`.
    pub ok_rate: f64,
    /// Mean latency, seconds (Little's law's R).
    pub mean_seconds: f64,
    /// 95th percentile latency, seconds.
    pub p95_seconds: f64,
    /// Every criterion held.
    pub held: bool,
    /// What broke, when something did.
    pub broke: Vec<String>,
}

/// The search at one replica count.
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaSearch {
    /// Gateway replicas.
    pub gateways: usize,
    /// Agents processes.
    pub agent_processes: usize,
    /// The highest rate that held, and the lowest that broke.
    pub knee: Knee,
    /// Each step, in the order tried.
    pub steps: Vec<StepFigures>,
    /// Users the knee carries by Little's law, N = X (Z + R).
    pub users_at_knee: Option<f64>,
}

impl ReplicaSearch {
    /// The step at the knee: the highest rate that held.
    pub fn knee_step(&self) -> Option<&StepFigures> {
        self.knee.rate.and_then(|r| self.steps.iter().find(|s| s.offered_rate == r))
    }
}

/// Replicas for a number of users.
#[derive(Clone, Debug, Serialize)]
pub struct Needed {
    /// Concurrent users.
    pub users: f64,
    /// Requests per second they make (Little's law).
    pub rate: f64,
    /// Replicas by the fit through the knees (`None`: no replica count reaches it).
    pub replicas: Option<u64>,
    /// Replicas by the fit through the first rates that broke (the optimistic end).
    pub replicas_optimistic: Option<u64>,
}

/// `capacity.json`.
#[derive(Clone, Debug, Serialize)]
pub struct CapacityReport {
    /// 1.
    pub schema_version: u32,
    /// The scenario.
    pub scenario: String,
    /// Run folder name.
    pub run_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Where it ran.
    pub environment: Machine,
    /// The open-model mix the steps offer (from the scenario's journeys and protocols).
    pub mix: String,
    /// Mean think time Z, seconds.
    pub think_seconds: f64,
    /// Seconds each rate was held.
    pub step_seconds: f64,
    /// The criteria each step is judged by.
    pub criteria: Vec<String>,
    /// Per replica count.
    pub searches: Vec<ReplicaSearch>,
    /// The USL through (replicas, knee rate), with (σ, κ, λ) standard errors when over-determined.
    pub fit: Option<Fit>,
    /// The USL through (replicas, first rate that broke): the other end of the knees' brackets.
    pub fit_optimistic: Option<Fit>,
    /// Where the fitted throughput peaks, replicas, and its rate.
    pub peak: Option<(f64, f64)>,
    /// Replicas for 5k, 50k and 100k users (and the target, if given).
    pub needed: Vec<Needed>,
    /// Users asked for with `--target-users`.
    pub target_users: Option<f64>,
    /// Whether the largest replica count carries the target (true without a target when a knee was found).
    pub met: bool,
    /// One line per finding.
    pub reasons: Vec<String>,
}

/// Runs the capacity search. `stop` ends it: everything is stopped and the run counts as failed.
pub async fn capacity(
    options: CapacityOptions,
    stop: impl Future<Output = ()>,
) -> Result<(CapacityReport, PathBuf), RunFailed> {
    let failed = |reason: String| RunFailed { reason, dir: None };
    let scenario = Scenario::load(&options.scenario).map_err(|e| failed(e.to_string()))?;
    options.search.check().map_err(failed)?;
    let search = &options.search;
    if scenario.topology.monolith {
        return Err(failed(format!("{}: the monolith has no replicas to scale", options.scenario.display())));
    }
    let mix = open_mix(&scenario);
    let think = scenario.user_plan().map_err(|(k, r)| failed(format!("{k}: {r}")))?.think.mean().as_secs_f64();
    let criteria: Vec<Criterion> = scenario.criteria.iter().filter(|c| STEP_SLIS.contains(&c.sli)).cloned().collect();
    for n in &search.replicas {
        options.binaries.check(&at_replicas(&scenario, *n)).map_err(failed)?;
    }
    let started = SystemTime::now();
    let base = options.reports.join(format!("{}-capacity", scenario.name));
    let (dir, run_id) = new_run_dir(&base, started).map_err(failed)?;
    let failed_in = |reason: String| RunFailed { reason, dir: Some(dir.clone()) };
    let total_steps = search.replicas.len() * search.max_steps;
    let bar = crate::progress::bar(options.progress, total_steps as u64, " steps (at most)");
    let searches = async {
        let mut searches = Vec::new();
        for &n in &search.replicas {
            searches.push(search_at(&scenario, n, &mix, &criteria, think, &options, &dir, &run_id, &bar).await?);
        }
        Ok::<_, String>(searches)
    };
    let searches = tokio::select! {
        result = searches => result,
        () = stop => Err("interrupted: the run was stopped by a signal".to_owned()),
    };
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(dir.join("data"));
    let searches = searches.map_err(failed_in)?;
    let mut report = CapacityReport::new(&scenario, search, mix, think, &criteria, searches, &run_id);
    report.started_at = rfc3339(started);
    report.finished_at = rfc3339(SystemTime::now());
    super::report::write_all(&dir, &report, &criteria)
        .map_err(|e| failed_in(format!("cannot write the report into {}: {e}", dir.display())))?;
    link_latest(&base, &dir);
    Ok((report, dir))
}

impl Search {
    fn check(&self) -> Result<(), String> {
        if self.replicas.is_empty() || self.replicas.contains(&0) {
            return Err("--replicas: give replica counts of at least 1 (e.g. 1,2,3)".into());
        }
        if !(self.start_rate > 0.0 && self.ceiling >= self.start_rate && self.ceiling.is_finite()) {
            return Err("--start-rate must be positive and --ceiling at least as high".into());
        }
        if !(self.resolution > 0.0 && self.resolution < 1.0) {
            return Err("--resolution must be between 0 and 1 (e.g. 0.1 for 10 %)".into());
        }
        if self.step < Duration::from_secs(2) || self.max_steps == 0 {
            return Err("--step must be at least 2s and --max-steps at least 1".into());
        }
        if self.target_users.is_some_and(|u| u.is_nan() || u <= 0.0) {
            return Err("--target-users must be positive".into());
        }
        Ok(())
    }
}

/// The scenario's topology at `n` gateway replicas, its agents processes
/// scaled alike; with the scenario's load balancer, if it has one.
pub fn at_replicas(scenario: &Scenario, n: usize) -> Scenario {
    let mut scaled = scenario.clone();
    let t = &mut scaled.topology;
    let per_gateway = t.agent_processes as f64 / t.gateways as f64;
    t.agent_processes = ((per_gateway * n as f64).round() as usize).max(1);
    t.gateways = n;
    scaled.name = format!("{}-capacity", scenario.name);
    scaled
}

/// The open-model mix of a scenario's journeys: each journey's API calls over
/// each protocol, weighted by journey and protocol. `create_project` has no
/// open-model step and counts as the `get_project` that follows it; search
/// has no gRPC route and stays on REST; the closed model's task polls are left out.
pub fn open_mix(scenario: &Scenario) -> String {
    let mut weights: BTreeMap<String, u32> = BTreeMap::new();
    for (journey, jw) in &scenario.load.journeys {
        let steps: &[&str] = match journey.as_str() {
            "browse" => &["list_projects", "get_project", "project_status"],
            "create_project" => &["get_project"],
            "submit_task" => &["submit_task"],
            "search" => &["search"],
            _ => &[],
        };
        for (protocol, pw) in &scenario.load.protocols {
            for step in steps {
                let protocol = if *step == "search" { "rest" } else { protocol.as_str() };
                *weights.entry(format!("{protocol}:{step}")).or_default() += jw * pw;
            }
        }
    }
    weights.iter().filter(|(_, w)| **w > 0).map(|(s, w)| format!("{s}={w}")).collect::<Vec<_>>().join(",")
}

/// Judges one step: the exactly measured criteria, then the two of capacity's own.
pub fn judge_step(results: &RunResults, offered: f64, criteria: &[Criterion]) -> StepFigures {
    let mut broke = Vec::new();
    for criterion in criteria {
        let judged = gate::judge(criterion, None, gate::exact(criterion.sli, results), None);
        if matches!(judged.verdict, gate::Verdict::Fail | gate::Verdict::NoData) {
            let unit = criterion.sli.unit();
            broke.push(format!(
                "{} {} (target {} {})",
                criterion.sli.as_str(),
                judged.measured.map_or("no data".into(), |v| unit.format(v)),
                criterion.op.as_str(),
                unit.format(criterion.target)
            ));
        }
    }
    let ok: u64 = results.steps.iter().filter_map(|s| s.outcomes.get("ok")).sum();
    let ok_rate = ok as f64 / results.duration_seconds.max(1e-9);
    if ok_rate < MIN_ANSWERED * offered {
        broke.push(format!("answered {ok_rate:.0} req/s of {offered:.0} offered"));
    }
    let planned = offered * results.duration_seconds;
    if results.dropped_starts as f64 > MAX_LATE * planned.max(1.0) {
        broke.push(format!("{} of {planned:.0} planned starts were late", results.dropped_starts));
    }
    let all = results.overall_latency().ok().filter(|h| !h.is_empty());
    StepFigures {
        offered_rate: offered,
        ok_rate,
        mean_seconds: all.as_ref().map_or(0.0, |h| h.mean() / 1e6),
        p95_seconds: all.as_ref().map_or(0.0, |h| h.value_at_quantile(0.95) as f64 / 1e6),
        held: broke.is_empty(),
        broke,
    }
}

/// Searches the knee on a topology started at `n` replicas, then stops it.
#[allow(clippy::too_many_arguments)]
async fn search_at(
    scenario: &Scenario,
    n: usize,
    mix: &str,
    criteria: &[Criterion],
    think: f64,
    options: &CapacityOptions,
    dir: &Path,
    run_id: &str,
    bar: &indicatif::ProgressBar,
) -> Result<ReplicaSearch, String> {
    let scaled = at_replicas(scenario, n);
    let run = dir.join(format!("replicas-{n}"));
    bar.set_message(format!("{n} replicas: starting"));
    let env = Environment::start(&scaled, &options.binaries, &run, EnvKind::Local, run_id)
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        // One loadgen per address users connect to: the balancer's, or each
        // replica's with an equal share of the rate.
        let targets: Vec<Vec<String>> = env
            .rest_urls
            .iter()
            .enumerate()
            .map(|(i, rest)| {
                let mut target = vec!["--rest-url".to_owned(), rest.clone()];
                if let Some(grpc) = env.grpc_urls.get(i) {
                    target.extend(["--grpc-url".to_owned(), grpc.clone()]);
                }
                target.extend(["--api-key".to_owned(), scenario.load.api_key.clone()]);
                target
            })
            .collect();
        if targets.is_empty() {
            return Err("the topology has no gateway".to_owned());
        }
        let step = |rate: f64, duration: Duration, out: PathBuf| {
            let steps: Vec<OpenStep> = targets
                .iter()
                .enumerate()
                .map(|(i, target)| OpenStep {
                    loadgen: options.binaries.q2o("q2o-loadgen"),
                    target: target.clone(),
                    mix: mix.to_owned(),
                    rate: rate / targets.len() as f64,
                    duration,
                    max_in_flight: None,
                    processes: options.search.loadgen_processes,
                    out: if targets.len() == 1 { out.clone() } else { out.join(format!("gateway-{i}")) },
                })
                .collect();
            async move { run_together(&steps).await }
        };
        // Warm-up: connections, Redis scripts and caches, not measured.
        let search = &options.search;
        step(search.start_rate, Duration::from_secs(3), run.join("loadgen/warmup")).await?;
        let figures = Mutex::new(Vec::new());
        let knee = knee::search(search.start_rate, search.ceiling, search.resolution, search.max_steps, |rate| {
            let (figures, step, run, urls) = (&figures, &step, &run, &env.rest_urls);
            async move {
                bar.set_message(format!("{n} replicas: {rate:.0} req/s"));
                // A step that broke may leave a balancer with its replicas marked
                // down for a moment: each step starts on a system that answers.
                answering(urls, RECOVERY).await.map_err(|e| format!("before the step at {rate:.0} req/s: {e}"))?;
                let done = step(rate, search.step, run.join(format!("loadgen/rate-{rate:.0}"))).await?;
                let judged = judge_step(&done.results, rate, criteria);
                let held = judged.held;
                bar.suspend(|| {
                    eprintln!(
                        "{n} replica{}, {rate:.0} req/s: {} ({:.0} ok/s, p95 {:.1} ms){}",
                        if n == 1 { "" } else { "s" },
                        if held { "held" } else { "broke" },
                        judged.ok_rate,
                        judged.p95_seconds * 1e3,
                        if held { String::new() } else { format!(": {}", judged.broke.join("; ")) }
                    )
                });
                figures.lock().expect("never poisoned").push(judged);
                bar.inc(1);
                Ok::<_, String>(held)
            }
        })
        .await?;
        let steps = figures.into_inner().expect("never poisoned");
        let mut search = ReplicaSearch {
            gateways: n,
            agent_processes: scaled.topology.agent_processes,
            knee,
            steps,
            users_at_knee: None,
        };
        search.users_at_knee = search.knee_step().map(|s| knee::users_for(s.ok_rate, think, s.mean_seconds));
        Ok(search)
    }
    .await;
    env.stop().await;
    result
}

/// How long the system gets to answer again after a step.
const RECOVERY: Duration = Duration::from_secs(30);

/// Waits until `GET <url>/ready` answers 200 at every URL, for up to `within`.
async fn answering(urls: &[String], within: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + within;
    for url in urls {
        let ready = format!("{url}/ready");
        loop {
            match client.get(&ready).send().await {
                Ok(answer) if answer.status().is_success() => break,
                last if tokio::time::Instant::now() >= deadline => {
                    let why = match last {
                        Ok(answer) => format!("it answered {}", answer.status()),
                        Err(e) => e.to_string(),
                    };
                    return Err(format!("{ready} did not answer 200 within {within:?} ({why})"));
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
    Ok(())
}

/// Users → requests per second, at the mean response time measured at the knees.
fn rate_for_users(users: f64, think: f64, response: f64) -> f64 {
    users / (think + response).max(1e-9)
}

impl CapacityReport {
    fn new(
        scenario: &Scenario,
        options: &Search,
        mix: String,
        think: f64,
        criteria: &[Criterion],
        searches: Vec<ReplicaSearch>,
        run_id: &str,
    ) -> CapacityReport {
        let knees: Vec<(f64, f64)> =
            searches.iter().filter_map(|s| s.knee.rate.map(|r| (s.gateways as f64, r))).collect();
        let broke: Vec<(f64, f64)> =
            searches.iter().filter_map(|s| s.knee.broke_at.map(|r| (s.gateways as f64, r))).collect();
        let fit = usl::fit(&knees);
        let fit_optimistic = usl::fit(&broke);
        let peak = fit.and_then(|f| f.model.peak_units().map(|n| (n, f.model.throughput(n))));
        // R at the knees (the response time users see at capacity), averaged.
        let at_knees: Vec<f64> = searches.iter().filter_map(ReplicaSearch::knee_step).map(|f| f.mean_seconds).collect();
        let response = if at_knees.is_empty() { 0.0 } else { at_knees.iter().sum::<f64>() / at_knees.len() as f64 };
        let mut wanted = vec![5_000.0, 50_000.0, 100_000.0];
        if let Some(target) = options.target_users.filter(|t| !wanted.contains(t)) {
            wanted.push(target);
        }
        let needed = wanted
            .into_iter()
            .map(|users| {
                let rate = rate_for_users(users, think, response);
                Needed {
                    users,
                    rate,
                    replicas: fit.and_then(|f| f.model.units_for(rate)),
                    replicas_optimistic: fit_optimistic.and_then(|f| f.model.units_for(rate)),
                }
            })
            .collect();
        let best = searches
            .iter()
            .filter_map(|s| s.users_at_knee)
            .fold(None, |m: Option<f64>, u| Some(m.map_or(u, |m| m.max(u))));
        let met = match (options.target_users, best) {
            (Some(target), Some(best)) => best >= target,
            (Some(_), None) => false,
            (None, best) => best.is_some(),
        };
        let mut reasons = Vec::new();
        for s in &searches {
            match (s.knee.rate, s.users_at_knee) {
                (Some(rate), Some(users)) => reasons.push(format!(
                    "{} gateway replica{}: knee {rate:.0} req/s = {users:.0} users (Z {think:.1} s)",
                    s.gateways,
                    if s.gateways == 1 { "" } else { "s" }
                )),
                _ => reasons.push(format!(
                    "{} gateway replica{}: no rate held, down to {:.0} req/s",
                    s.gateways,
                    if s.gateways == 1 { "" } else { "s" },
                    s.knee.steps.iter().map(|k| k.rate).fold(f64::INFINITY, f64::min)
                )),
            }
        }
        if let (Some(target), Some(best)) = (options.target_users, best)
            && best < target
        {
            reasons
                .push(format!("the target of {target:.0} users is not met: at most {best:.0} at the replicas tried"));
        }
        CapacityReport {
            schema_version: 1,
            scenario: scenario.name.clone(),
            run_id: run_id.to_owned(),
            started_at: String::new(),
            finished_at: String::new(),
            environment: Machine::here(String::new()),
            mix,
            think_seconds: think,
            step_seconds: options.step.as_secs_f64(),
            criteria: criteria
                .iter()
                .map(|c| format!("{} {} {}", c.sli.as_str(), c.op.as_str(), c.sli.unit().format(c.target)))
                .chain([
                    format!("answered >= {:.0} % of the offered rate", MIN_ANSWERED * 100.0),
                    format!("late starts <= {:.0} %", MAX_LATE * 100.0),
                ])
                .collect(),
            searches,
            fit,
            fit_optimistic,
            peak,
            needed,
            target_users: options.target_users,
            met,
            reasons,
        }
    }
}
