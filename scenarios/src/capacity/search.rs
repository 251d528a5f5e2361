//! `q2o-bench capacity`: the knee of a scenario's topology in users at its
//! own gateway replicas, or at each count `--replicas` names, with the
//! Universal Scalability Law fitted through them and the replicas that 5k,
//! 50k and 100k users need.
//!
//! Each step runs the scenario's own users (its journeys, think time and
//! protocol mix, closed model) through the same loadgen path as a gate run,
//! with a faster ramp and a short hold, and is judged by the scenario's
//! criteria that a step measures exactly: API and search latency, errors,
//! availability and task success, from the loadgen's records, and by
//! whether the agents keep up (the tasks' queue does not grow). The knee is
//! the most users that met them all; what a step cannot judge is listed.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use q2o_common::store::{RedisStore, RedisStoreOptions, Store};
use q2o_env::Environment;
use q2o_env::binaries::Binaries;
use q2o_env::ports::free_addr;
use q2o_env::resources::MachineSample;
use q2o_loadgen::results::RunResults;
use q2o_loadgen::step::Step;
use q2o_slo::sli::{Criterion, Sli};

use crate::capacity::figures::{CapacityReport, MIN_REACHED, NotJudged, ReplicaSearch, Setting, StepFigures, StepLoad};
use crate::capacity::knee;
use crate::error::{RunError, RunFailed};
use crate::gate;
use crate::loadgen::Users;
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
    pub reports: std::path::PathBuf,
    /// Programs.
    pub binaries: Binaries,
    /// Whether to draw a progress bar.
    pub progress: bool,
}

/// How the knees are searched (the flags of `q2o-bench capacity`).
#[derive(Clone, Debug, clap::Args)]
pub struct Search {
    /// Gateway replica counts, comma-separated (agents processes scale
    /// alike); the USL fit needs three (e.g. 1,2,3). Default: the scenario's own.
    #[arg(long, value_delimiter = ',')]
    pub replicas: Vec<usize>,
    /// How long each user count is held after its ramp (e.g. 20s). The
    /// ramp and the first think time of the hold (at most half of it) are
    /// the step's warm-up: counted per second, not judged.
    #[arg(long, value_parser = q2o_common::config::parse_duration, default_value = "20s")]
    pub hold: Duration,
    /// The longest a step's ramp takes: users start at the scenario's ramp
    /// rate, or faster when that would take longer (e.g. 10s).
    #[arg(long, value_parser = q2o_common::config::parse_duration, default_value = "10s")]
    pub ramp: Duration,
    /// The first user count tried (then doubled); default: the scenario's users / 8.
    #[arg(long)]
    pub start_users: Option<u64>,
    /// The most users tried; default: twice the scenario's.
    #[arg(long)]
    pub max_users: Option<u64>,
    /// Stop bisecting when the bracket is narrower than this share of the users.
    #[arg(long, default_value_t = 0.15)]
    pub resolution: f64,
    /// Most steps per replica count.
    #[arg(long, default_value_t = 8)]
    pub max_steps: usize,
    /// Users the largest knee must carry for exit 0.
    #[arg(long)]
    pub target_users: Option<f64>,
}

/// The SLIs a step judges: what the loadgen's records of the step hold exactly.
pub const STEP_SLIS: [Sli; 6] = [
    Sli::ApiLatencyP95,
    Sli::ApiLatencyP99,
    Sli::SearchLatencyP95,
    Sli::ErrorRate,
    Sli::Availability,
    Sli::TaskSuccess,
];

/// Why a step cannot judge `sli`: each needs what only a whole gate run has.
fn not_judged_because(sli: Sli) -> &'static str {
    match sli {
        Sli::InterAgentLatencyP95 => "measured by the agents and read from Prometheus, which a step does not run",
        Sli::EventsLost => "the census runs once the audit consumer has caught up, after a run, not per step",
        Sli::TasksUnfinished => "counts the tasks left in Redis at a run's end; a step's users leave tasks running",
        Sli::UsersReached => "a step sets its own user count (it holds only when 99 % of them were active)",
        Sli::RecoverySeconds | Sli::ErrorBurstSeconds => "measures faults, and a step injects none",
        _ => "computed from Prometheus over a whole run, which a step does not run",
    }
}

/// Splits `criteria` into those a step judges and those it cannot (recorded-only ones are neither).
pub fn step_criteria(criteria: &[Criterion]) -> (Vec<Criterion>, Vec<NotJudged>) {
    let judged = criteria.iter().filter(|c| !c.record_only && STEP_SLIS.contains(&c.sli)).cloned().collect();
    let not_judged = criteria
        .iter()
        .filter(|c| !c.record_only && !STEP_SLIS.contains(&c.sli))
        .map(|c| NotJudged { criterion: c.name.clone(), reason: not_judged_because(c.sli).to_owned() })
        .collect();
    (judged, not_judged)
}

/// Runs the capacity search. `interrupt` ends it: everything is stopped and the run counts as failed.
pub async fn run(
    options: CapacityOptions,
    interrupt: &Interrupt,
) -> Result<(CapacityReport, std::path::PathBuf), RunFailed> {
    let scenario = &options.scenario;
    let search = &options.search;
    search.check().map_err(RunError::from)?;
    if scenario.topology.monolith {
        let reason = "the monolith has no replicas to scale".to_owned();
        return Err(RunError::Unsupported { key: "topology.monolith".into(), reason }.into());
    }
    let (criteria, not_judged) = step_criteria(&scenario.criteria);
    let replicas = search.replica_counts(scenario);
    for n in &replicas {
        let mut programs = vec![options.binaries.q2o("q2o-loadgen")];
        programs.extend(options.binaries.of_topology(&scenario.topology.at_replicas(*n)));
        Binaries::check(&programs).map_err(RunError::from)?;
    }
    let folder = RunFolder::create(&options.reports, &format!("{}-capacity", scenario.name))?;
    let failed = |error: RunError| RunFailed { error, dir: Some(folder.dir.clone()) };
    let bar = crate::progress::bar(options.progress, (replicas.len() * search.max_steps) as u64, " steps");
    let mut searches: Vec<ReplicaSearch> = Vec::new();
    for &n in &replicas {
        // The knee at one replica count is a near guess for the next: start
        // there and grow by a quarter, not from afar by doubling.
        let (start, growth) = match searches.last().and_then(|s| s.knee.knee_users) {
            Some(knee) => (knee, 1.25),
            None => (search.start_users(scenario), 2.0),
        };
        let at = SearchAt { n, start, growth, criteria: &criteria, options: &options, bar: &bar };
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
    let plan = scenario.user_plan();
    let setting = Setting {
        scenario: scenario.name.clone(),
        run_id: folder.id.clone(),
        load: StepLoad {
            model: "closed",
            journeys: q2o_loadgen::weights::Weights(plan.journeys.clone()).to_string(),
            protocols: q2o_loadgen::weights::Weights(plan.protocols.clone()).to_string(),
            think: plan.think.to_string(),
            ramp_rate: scenario.load.ramp_rate,
            ramp_seconds_at_most: search.ramp.as_secs_f64(),
            hold_seconds: search.hold.as_secs_f64(),
            warm_up: "the ramp, then one mean think time (at most half the hold)",
        },
        criteria: criteria
            .iter()
            .map(|c| format!("{} {} {}", c.sli.as_str(), c.op.as_str(), c.sli.unit().format(c.target)))
            .chain([
                format!("users active >= {:.0} % of the step's", MIN_REACHED * 100.0),
                format!(
                    "the tasks' queue grows over the hold by <= {:.0} % of the tasks submitted in it",
                    MAX_BACKLOG_GROWTH * 100.0
                ),
            ])
            .collect(),
        not_judged,
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
        if self.replicas.contains(&0) {
            return bad("--replicas", "needs replica counts of at least 1 (e.g. 1,2,3)");
        }
        if self.start_users == Some(0) || self.max_users == Some(0) {
            return bad("--start-users", "must be at least 1, and --max-users too");
        }
        if let (Some(start), Some(max)) = (self.start_users, self.max_users)
            && start > max
        {
            return bad("--start-users", "must not exceed --max-users");
        }
        if !(self.resolution > 0.0 && self.resolution < 1.0) {
            return bad("--resolution", "must be between 0 and 1 (e.g. 0.15 for 15 %)");
        }
        if self.hold < Duration::from_secs(2) || self.max_steps == 0 {
            return bad("--hold", "must be at least 2s and --max-steps at least 1");
        }
        if self.ramp < Duration::from_secs(1) {
            return bad("--ramp", "must be at least 1s");
        }
        if self.target_users.is_some_and(|u| u.is_nan() || u <= 0.0) {
            return bad("--target-users", "must be positive");
        }
        Ok(())
    }

    /// `--replicas`, or the scenario's own gateway count.
    fn replica_counts(&self, scenario: &Scenario) -> Vec<usize> {
        if self.replicas.is_empty() { vec![scenario.topology.gateways] } else { self.replicas.clone() }
    }

    fn start_users(&self, scenario: &Scenario) -> u64 {
        self.start_users.unwrap_or((scenario.load.users as u64 / 8).max(1)).min(self.max_users(scenario))
    }

    fn max_users(&self, scenario: &Scenario) -> u64 {
        self.max_users.unwrap_or((scenario.load.users as u64 * 2).max(1))
    }

    /// The scenario as one step runs it: `users` at `n` replicas, ramped in
    /// at most `--ramp` and held for `--hold`.
    fn step_scenario(&self, scenario: &Scenario, n: usize, users: u64) -> Scenario {
        let mut step = scenario.clone();
        step.topology = scenario.topology.at_replicas(n);
        step.load.users = users as usize;
        step.load.ramp_rate = scenario.load.ramp_rate.max(users as f64 / self.ramp.as_secs_f64());
        step.load.hold = self.hold;
        step.load.ramp_down = Duration::from_secs(1);
        step
    }

    /// What a step does not judge: its ramp, and then one mean think time
    /// (at most half the hold) in which the users' first requests, made
    /// right after logging in, give way to their steady pace.
    fn warm_up(&self, step: &Scenario) -> Duration {
        step.user_plan().ramp_up() + step.load.think.mean().min(self.hold / 2)
    }
}

/// Judges one step's results: the criteria a step judges, then that its users were active.
pub fn judge_step(results: &RunResults, users: u64, criteria: &[Criterion]) -> StepFigures {
    let mut broke = Vec::new();
    for criterion in criteria {
        let judged = gate::judge_one(criterion, None, gate::exact(criterion.sli, results), None);
        if matches!(judged.verdict, gate::Verdict::Fail | gate::Verdict::NoData) {
            let unit = criterion.sli.unit();
            broke.push(format!(
                "{} {} (target {} {})",
                criterion.name,
                judged.measured.map_or("no data".into(), |v| unit.format(v)),
                criterion.op.as_str(),
                unit.format(criterion.target)
            ));
        }
    }
    let users_reached = results.seconds.iter().map(|s| s.users).max().unwrap_or(0);
    if (users_reached as f64) < MIN_REACHED * users as f64 {
        broke.push(format!("only {users_reached} of {users} users were active at once"));
    }
    let api = results.steps.iter().filter(|s| s.step.is_api());
    let (requests, failed) = api.fold((0, 0), |(r, f), s| (r + s.count, f + s.failed()));
    // The users of each second after the warm-up, the seconds the steps' requests come from.
    let measured = results.seconds.iter().skip(results.warm_up_seconds.ceil() as usize);
    let user_seconds: u64 = measured.map(|s| s.users).sum();
    let p95 = results
        .latency_where(|s| s.step.is_api())
        .ok()
        .filter(|h| !h.is_empty())
        .map(|h| h.value_at_quantile(0.95) as f64 / 1e6);
    StepFigures {
        users,
        users_reached,
        requests,
        failed,
        requests_per_second: requests as f64 / results.measured_seconds().max(1e-9),
        requests_per_user_per_second: if user_seconds > 0 { requests as f64 / user_seconds as f64 } else { 0.0 },
        p95_seconds: p95,
        machine_cpu_busy: None,
        tasks_queued: None,
        settled_seconds: None,
        held: broke.is_empty(),
        broke,
    }
}

/// The search at one replica count.
struct SearchAt<'a> {
    n: usize,
    start: u64,
    growth: f64,
    criteria: &'a [Criterion],
    options: &'a CapacityOptions,
    bar: &'a indicatif::ProgressBar,
}

/// How much CPU the services may still use when the system counts as settled
/// between steps (consumers caught up, indexes written), and for how long
/// the tasks' queues may take to drain (at the agents' pace, not their CPU's:
/// a model call mostly waits).
const QUIET_CORES: f64 = 0.1;
const DRAIN_WITHIN: Duration = Duration::from_secs(120);
/// How much the tasks' queue may grow over a step's measured hold, as a share
/// of the tasks submitted in it (at least 200): past that the agents fall
/// behind, and a longer run would time its tasks out, though a step's own
/// tasks still finish within their deadline.
const MAX_BACKLOG_GROWTH: f64 = 0.05;

impl SearchAt<'_> {
    /// Starts the topology at `n` replicas in `folder/replicas-<n>`, searches its knee, then stops it.
    async fn run(&self, folder: &RunFolder, interrupt: &Interrupt) -> Result<ReplicaSearch, RunError> {
        let topology = self.options.scenario.topology.at_replicas(self.n);
        let dir = folder.dir.join(format!("replicas-{}", self.n));
        self.bar.set_message(format!("{} replicas: starting", self.n));
        let plan = SessionPlan::local(&topology, &self.options.binaries, &dir, &folder.id);
        let knee_search =
            Session::run(plan, interrupt, async |session: &Session| self.search(&session.env, &dir).await);
        let (knee, steps) = knee_search.await?;
        Ok(ReplicaSearch {
            gateways: self.n,
            gateway_processes: topology.host_gateways().0,
            agent_processes: topology.host_agents().0,
            knee,
            steps,
        })
    }

    async fn search(&self, env: &Environment, dir: &Path) -> Result<(knee::Knee, Vec<StepFigures>), RunError> {
        if env.endpoints.rest_urls.is_empty() {
            return Err(RunError::System("the topology has no gateway".into()));
        }
        let (search, scenario, n) = (&self.options.search, &self.options.scenario, self.n);
        // The tasks' queues, watched during and between steps: one connection for the search.
        let store = match &env.endpoints.redis_url {
            Some(url) => Some(RedisStore::connect(RedisStoreOptions::new(url)).await?),
            None => None,
        };
        let store = store.as_ref();
        let figures = Mutex::new(Vec::new());
        let ceiling = search.max_users(scenario);
        let bounds = knee::Bounds {
            start: self.start,
            ceiling,
            growth: self.growth,
            resolution: search.resolution,
            max_steps: search.max_steps,
        };
        let (knee, _) = knee::search(bounds, |users| {
            let figures = &figures;
            async move {
                self.bar.set_message(format!("{n} replicas: {users} users"));
                let step = self.step(env, store, dir, users).await?;
                let held = step.held;
                self.bar.suspend(|| eprintln!("{n} replica{}, {}", if n == 1 { "" } else { "s" }, step_line(&step)));
                figures.lock().expect("never poisoned").push(step);
                self.bar.inc(1);
                Ok::<_, RunError>(held)
            }
        })
        .await?;
        Ok((knee, figures.into_inner().expect("never poisoned")))
    }

    /// One step: `users` of the scenario, run, judged, then let the system settle.
    async fn step(
        &self,
        env: &Environment,
        store: Option<&RedisStore>,
        dir: &Path,
        users: u64,
    ) -> Result<StepFigures, RunError> {
        let scenario = self.options.search.step_scenario(&self.options.scenario, self.n, users);
        let plan = scenario.user_plan();
        let addrs = (0..scenario.loadgen_processes()).map(|_| free_addr()).collect::<Result<Vec<_>, _>>()?;
        let urls = (&env.endpoints.rest_urls[..], &env.endpoints.grpc_urls[..]);
        let out = dir.join(format!("loadgen/users-{users}"));
        let name = format!("loadgen-users-{users}");
        let warm_up = self.options.search.warm_up(&scenario);
        let step_users =
            Users::new(&plan, &scenario.load.api_key, urls, &addrs, &out).named(&name).with_warm_up(warm_up);
        let machine = MachineSample::now();
        step_users.start(env, &self.options.binaries.q2o("q2o-loadgen")).await?;
        let hold_end = plan.ramp_up() + plan.hold;
        let (exited, backlog) =
            tokio::join!(step_users.wait(&env.harness, Duration::from_secs(60)), backlog(store, warm_up, hold_end));
        if !exited {
            tracing::warn!("a loadgen process of the step at {users} users outlived its plan and was stopped");
        }
        let busy = machine.zip(MachineSample::now()).and_then(|(before, after)| after.busy_since(&before));
        let results = step_users.results(&dir.join("logs"))?;
        let mut figures = judge_step(&results, users, self.criteria);
        figures.machine_cpu_busy = busy;
        if let Some((from, to)) = backlog? {
            figures.tasks_queued = Some((from, to));
            let submitted: u64 = results.steps.iter().filter(|s| s.step == Step::SubmitTask).map(|s| s.count).sum();
            if to > from && (to - from) as f64 > MAX_BACKLOG_GROWTH * submitted.max(200) as f64 {
                figures.held = false;
                figures.broke.push(format!(
                    "the tasks' queue grew from {from} to {to} over the hold ({submitted} tasks submitted): the agents fall behind"
                ));
            }
        }
        // The next step starts on a system that has finished this one's work.
        figures.settled_seconds = settle(env, store).await?.map(|d| d.as_secs_f64());
        Ok(figures)
    }
}

/// The tasks waiting or running at the end of the warm-up and at the end of
/// the hold (seconds after the users started), when the topology has Redis.
async fn backlog(
    store: Option<&RedisStore>,
    warm_up: Duration,
    hold_end: Duration,
) -> Result<Option<(u64, u64)>, RunError> {
    let Some(store) = store else { return Ok(None) };
    let started = tokio::time::Instant::now();
    tokio::time::sleep(warm_up).await;
    let from = store.queued_tasks().await?;
    tokio::time::sleep_until(started + hold_end).await;
    Ok(Some((from, store.queued_tasks().await?)))
}

/// Waits until the tasks' queues are empty and then until the services are
/// quiet, for at most [`DRAIN_WITHIN`] in all; how long it took, or `None`.
async fn settle(env: &Environment, store: Option<&RedisStore>) -> Result<Option<Duration>, RunError> {
    let started = tokio::time::Instant::now();
    if let Some(store) = store {
        while store.queued_tasks().await? > 0 {
            if started.elapsed() >= DRAIN_WITHIN {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let left = DRAIN_WITHIN.saturating_sub(started.elapsed()).max(Duration::from_secs(2));
    Ok(env.settle(QUIET_CORES, left).await.map(|_| started.elapsed()))
}

/// "2000 users: held (210 req/s, 0.11 req/s per user, p95 12.3 ms, machine 64 % busy)".
fn step_line(step: &StepFigures) -> String {
    let p95 = step.p95_seconds.map_or("no requests".into(), |p| format!("p95 {:.1} ms", p * 1e3));
    let busy = step.machine_cpu_busy.map_or(String::new(), |b| format!(", machine {:.0} % busy", b * 100.0));
    let verdict = if step.held { "held".to_owned() } else { format!("broke: {}", step.broke.join("; ")) };
    format!(
        "{} users: {verdict} ({:.0} req/s, {:.3} req/s per user, {p95}{busy})",
        step.users, step.requests_per_second, step.requests_per_user_per_second
    )
}
