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

use q2o_env::binaries::Binaries;
use q2o_env::{EnvKind, Environment};
use q2o_loadgen::command::{Endpoints, RunCommand};
use q2o_loadgen::results::RunResults;
use q2o_loadgen::step::{Call, Mix, Step};
use q2o_loadgen::weights::Weights;
use q2o_slo::sli::{Criterion, Sli};

use crate::capacity::figures::{CapacityReport, MAX_LATE, MIN_ANSWERED, ReplicaSearch, Setting, StepFigures};
use crate::capacity::knee;
use crate::error::{RunError, RunFailed};
use crate::gate;
use crate::loadgen::{OpenStep, run_together};
use crate::run_folder::{RunFolder, rfc3339};
use crate::scenario::{FlagError, Scenario};
use crate::session::{Interrupt, Session, SessionPlan};

/// What to run.
#[derive(Clone, Debug)]
pub struct CapacityOptions {
    /// The scenario, loaded.
    pub scenario: Scenario,
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

/// Runs the capacity search. `interrupt` ends it: everything is stopped and the run counts as failed.
pub async fn run(options: CapacityOptions, interrupt: &Interrupt) -> Result<(CapacityReport, PathBuf), RunFailed> {
    let scenario = &options.scenario;
    options.search.check().map_err(RunError::from)?;
    if scenario.topology.monolith {
        let reason = "the monolith has no replicas to scale".to_owned();
        return Err(RunError::Unsupported { key: "topology.monolith".into(), reason }.into());
    }
    let search = &options.search;
    let mix = open_mix(scenario);
    let think = scenario.user_plan().think.mean().as_secs_f64();
    let criteria: Vec<Criterion> = scenario.criteria.iter().filter(|c| STEP_SLIS.contains(&c.sli)).cloned().collect();
    for n in &search.replicas {
        let mut programs = vec![options.binaries.q2o("q2o-loadgen")];
        programs.extend(options.binaries.of_topology(&scenario.topology.at_replicas(*n)));
        Binaries::check(&programs).map_err(RunError::from)?;
    }
    let folder = RunFolder::create(&options.reports, &format!("{}-capacity", scenario.name))?;
    let failed = |error: RunError| RunFailed { error, dir: Some(folder.dir.clone()) };
    let total_steps = search.replicas.len() * search.max_steps;
    let bar = crate::progress::bar(options.progress, total_steps as u64, " steps (at most)");
    let mut searches = Vec::new();
    for &n in &search.replicas {
        let at = SearchAt { n, mix: &mix, criteria: &criteria, think, options: &options, bar: &bar };
        match at.run(&folder, interrupt).await {
            Ok(found) => searches.push(found),
            Err(error) => {
                bar.finish_and_clear();
                folder.remove_data();
                return Err(failed(error));
            }
        }
    }
    bar.finish_and_clear();
    folder.remove_data();
    let setting = Setting {
        scenario: &scenario.name,
        run_id: &folder.id,
        mix: mix.to_string(),
        think,
        step_seconds: search.step.as_secs_f64(),
        criteria: &criteria,
        target_users: search.target_users,
    };
    let mut report = CapacityReport::new(setting, searches);
    report.started_at = rfc3339(folder.started);
    report.finished_at = rfc3339(SystemTime::now());
    super::report::write_all(&folder.dir, &report, &criteria).map_err(|e| failed(RunError::io(&folder.dir)(e)))?;
    folder.link_latest();
    Ok((report, folder.dir))
}

impl Search {
    fn check(&self) -> Result<(), FlagError> {
        let bad = |flag, reason: &str| Err(FlagError { flag, reason: reason.to_owned() });
        if self.replicas.is_empty() || self.replicas.contains(&0) {
            return bad("--replicas", "needs replica counts of at least 1 (e.g. 1,2,3)");
        }
        if !(self.start_rate > 0.0 && self.ceiling >= self.start_rate && self.ceiling.is_finite()) {
            return bad("--start-rate", "must be positive and --ceiling at least as high");
        }
        if !(self.resolution > 0.0 && self.resolution < 1.0) {
            return bad("--resolution", "must be between 0 and 1 (e.g. 0.1 for 10 %)");
        }
        if self.step < Duration::from_secs(2) || self.max_steps == 0 {
            return bad("--step", "must be at least 2s and --max-steps at least 1");
        }
        if self.target_users.is_some_and(|u| u.is_nan() || u <= 0.0) {
            return bad("--target-users", "must be positive");
        }
        Ok(())
    }
}

/// The open-model mix of a scenario's journeys: each journey's open-model
/// steps (as the loadgen defines them) over each protocol, weighted by
/// journey and protocol; steps without a gRPC route stay on REST.
pub fn open_mix(scenario: &Scenario) -> Mix {
    let mut weights: BTreeMap<(String, Step), (Call, u32)> = BTreeMap::new();
    for (journey, jw) in &scenario.load.journeys {
        for (protocol, pw) in &scenario.load.protocols {
            for step in journey.open_steps() {
                let protocol = if step.has_grpc() { *protocol } else { q2o_loadgen::recorder::Protocol::Rest };
                let entry =
                    weights.entry((protocol.as_str().to_owned(), *step)).or_insert((Call::new(protocol, *step), 0));
                entry.1 += jw * pw;
            }
        }
    }
    Weights(weights.into_values().filter(|(_, w)| *w > 0).collect())
}

/// Judges one step: the exactly measured criteria, then the two of capacity's own.
pub fn judge_step(results: &RunResults, offered: f64, criteria: &[Criterion]) -> StepFigures {
    let mut broke = Vec::new();
    for criterion in criteria {
        let judged = gate::judge_one(criterion, None, gate::exact(criterion.sli, results), None);
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
    let ok: u64 = results.steps.iter().map(|s| s.outcomes_where(|o| o.is_ok())).sum();
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

/// The search at one replica count.
struct SearchAt<'a> {
    n: usize,
    mix: &'a Mix,
    criteria: &'a [Criterion],
    think: f64,
    options: &'a CapacityOptions,
    bar: &'a indicatif::ProgressBar,
}

impl SearchAt<'_> {
    /// Starts the topology at `n` replicas in `folder/replicas-<n>`, searches its knee, then stops it.
    async fn run(&self, folder: &RunFolder, interrupt: &Interrupt) -> Result<ReplicaSearch, RunError> {
        let topology = self.options.scenario.topology.at_replicas(self.n);
        let dir = folder.dir.join(format!("replicas-{}", self.n));
        self.bar.set_message(format!("{} replicas: starting", self.n));
        let plan = SessionPlan {
            topology: &topology,
            kind: EnvKind::Local,
            binaries: &self.options.binaries,
            dir: &dir,
            run_id: &folder.id,
            prometheus: None,
        };
        let knee_search =
            Session::run(plan, interrupt, async |session: &Session| self.search(&session.env, &dir).await);
        let (knee, steps) = knee_search.await?;
        let mut found = ReplicaSearch {
            gateways: self.n,
            agent_processes: topology.agent_processes,
            knee,
            steps,
            users_at_knee: None,
        };
        found.users_at_knee = found.knee_step().map(|s| knee::users_for(s.ok_rate, self.think, s.mean_seconds));
        Ok(found)
    }

    /// One loadgen per address users connect to: the balancer's, or each
    /// replica's with an equal share of the rate.
    fn step(&self, env: &Environment, rate: f64, duration: Duration, out: PathBuf) -> Vec<OpenStep> {
        let urls = &env.endpoints.rest_urls;
        urls.iter()
            .enumerate()
            .map(|(i, rest)| {
                let endpoints = Endpoints {
                    rest_url: Some(rest.clone()),
                    grpc_url: env.endpoints.grpc_urls.get(i).cloned(),
                    ..Endpoints::default()
                };
                let mut command = RunCommand::new(endpoints, self.mix.clone(), rate / urls.len() as f64, duration);
                command.api_key = self.options.scenario.load.api_key.clone();
                command.common.processes = self.options.search.loadgen_processes;
                let out = if urls.len() == 1 { out.clone() } else { out.join(format!("gateway-{i}")) };
                OpenStep::new(self.options.binaries.q2o("q2o-loadgen"), command, out)
            })
            .collect()
    }

    async fn search(&self, env: &Environment, dir: &Path) -> Result<(knee::Knee, Vec<StepFigures>), RunError> {
        if env.endpoints.rest_urls.is_empty() {
            return Err(RunError::System("the topology has no gateway".into()));
        }
        let (search, n) = (&self.options.search, self.n);
        // Warm-up: connections, Redis scripts and caches, not measured.
        run_together(&self.step(env, search.start_rate, Duration::from_secs(3), dir.join("loadgen/warmup"))).await?;
        let figures = Mutex::new(Vec::new());
        let knee = knee::search(search.start_rate, search.ceiling, search.resolution, search.max_steps, |rate| {
            let figures = &figures;
            async move {
                self.bar.set_message(format!("{n} replicas: {rate:.0} req/s"));
                // A step that broke may leave a balancer with its replicas marked
                // down for a moment: each step starts on a system that answers.
                answering(&env.endpoints.rest_urls, RECOVERY, rate).await?;
                let out = dir.join(format!("loadgen/rate-{rate:.0}"));
                let done = run_together(&self.step(env, rate, search.step, out)).await?;
                let judged = judge_step(&done.results, rate, self.criteria);
                let held = judged.held;
                self.bar.suspend(|| {
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
                self.bar.inc(1);
                Ok::<_, RunError>(held)
            }
        })
        .await?;
        Ok((knee, figures.into_inner().expect("never poisoned")))
    }
}

/// How long the system gets to answer again after a step.
const RECOVERY: Duration = Duration::from_secs(30);

/// Waits until `GET <url>/ready` answers 200 at every URL, for up to `within`,
/// before the step at `rate`.
async fn answering(urls: &[String], within: Duration, rate: f64) -> Result<(), RunError> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("static client config");
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
                    return Err(RunError::System(format!(
                        "before the step at {rate:.0} req/s: {ready} did not answer 200 within {within:?} ({why})"
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
    Ok(())
}
