//! One gate run from start to report: a session (the topology, and a
//! Prometheus that loads the SLI rules and this run's gate rules), the users,
//! the faults on time, then the evidence ([`measure`]), the verdicts
//! ([`gate::judge`]) and the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use q2o_env::binaries::Binaries;
use q2o_env::endpoints::ScrapeTarget;
use q2o_env::ports::free_addr;
use q2o_env::resources::{Resources, Saturation};
use q2o_env::{EnvKind, Environment};
use q2o_loadgen::recorder::{ApiCounts, latency_histogram};
use q2o_loadgen::results::{LoggedInterval, RunResults};
use q2o_loadgen::step::Step;
use q2o_slo::alert_tests::{AlertTestCoverage, alerts_in};
use q2o_slo::gates::{Gate, gate_rules};
use q2o_slo::promql::sli_rules;
use q2o_slo::rule_files::{GATES_FILE, SLIS_FILE};
use q2o_slo::sli::{Criterion, Sli, Window};

use crate::error::{RunError, RunFailed};
use crate::evidence;
use crate::faults::{self, ErrorBurst, Injected};
use crate::gate::{self, Evidence, WindowEvidence};
use crate::loadgen::Users;
use crate::run_folder::{RunFolder, rfc3339};
use crate::scenario::{Overrides, Scenario};
use crate::session::{Interrupt, PrometheusPlan, Session, SessionPlan};
use q2o_env::prometheus::{self, Prometheus, unix, unix_now};
use q2o_report::charts::Chart;
use q2o_report::summary::{
    DashboardCoverage, EventCensus, FiringAlert, LoadFigures, ScrapeCoverage, Sizes, SliCoverage, Summary,
};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The scenario, loaded.
    pub scenario: Scenario,
    /// Processes or containers.
    pub env: EnvKind,
    /// Sizes from the command line.
    pub overrides: Overrides,
    /// Where `<scenario>/<run-id>/` goes.
    pub reports: PathBuf,
    /// Rule files Prometheus loads (every `*.yml` but the generated gates of all phases).
    pub rules_dir: PathBuf,
    /// Grafana dashboards whose queries are checked against the run.
    pub dashboards_dir: PathBuf,
    /// Programs.
    pub binaries: Binaries,
    /// Whether to draw a progress bar.
    pub progress: bool,
}

/// How a run ended, when it ran.
#[derive(Debug)]
pub struct Finished {
    /// Every criterion passed (or only warned).
    pub go: bool,
    /// The run folder.
    pub dir: PathBuf,
    /// The summary written there.
    pub summary: Summary,
}

/// Everything a run measured, before any verdict.
#[derive(Debug)]
struct Measured {
    /// What the servers said of the load, as a cluster run's judge asks too.
    assessed: Assessed,
    results: RunResults,
    faults: Vec<Injected>,
    error_burst: Option<ErrorBurst>,
    resources: Resources,
    saturation: Option<Saturation>,
    alert_tests: Option<AlertTestCoverage>,
    prometheus: String,
}

/// Runs a scenario. `interrupt` (Ctrl-C) ends it early: everything is stopped
/// and the run counts as failed.
pub async fn run(options: RunOptions, interrupt: &Interrupt) -> Result<Finished, RunFailed> {
    let mut scenario = options.scenario.clone();
    let users_in_file = scenario.load.users;
    scenario.apply(&options.overrides).map_err(RunError::from)?;
    check_programs(&scenario, &options.binaries)?;
    if let Some((i, fault)) =
        scenario.faults.iter().enumerate().find(|(_, f)| f.action.needs_docker() && options.env == EnvKind::Local)
    {
        let reason = format!("`{}` needs the docker environment (--env docker)", fault.action.as_str());
        return Err(RunError::Unsupported { key: format!("faults[{i}].action"), reason }.into());
    }

    let folder = RunFolder::create(&options.reports, &scenario.name)?;
    let mut summary = Summary::started(
        (&scenario.name, &scenario.description),
        (&folder.id, rfc3339(folder.started)),
        options.env.as_str(),
        sizes(&scenario, users_in_file, &options),
        scenario.topology.clone(),
    );
    eprintln!(
        "q2o-bench: {} — starting the {} environment (logs in {})",
        scenario.name,
        options.env.as_str(),
        folder.dir.join("logs").display()
    );
    let outcome = measure(&scenario, &options, &folder, interrupt).await;
    folder.remove_data();
    summary.finished_at = rfc3339(SystemTime::now());
    match outcome {
        Ok((measured, recoveries)) => {
            let mut judged = gate::judge(&measured.assessed.evidence, &scenario.criteria);
            judged.extend(faults::judge(&measured.faults));
            let go = record_verdict(&mut summary, judged);
            summary.recoveries = recoveries;
            summary.environment.prometheus = measured.prometheus;
            summary.load = Some(LoadFigures::of(&measured.results));
            summary.faults = measured.faults;
            summary.error_burst = measured.error_burst;
            if !go && let Some(sat) = &measured.saturation {
                let knee = latest_knee(&options.reports, &scenario);
                summary.reasons.insert(0, q2o_report::lines::saturated_reason(sat, knee.as_ref()));
            }
            summary.warnings = warnings(measured.saturation.as_ref(), &scenario, &measured.results);
            summary.resources = Some(measured.resources);
            summary.saturation = measured.saturation;
            summary.alert_tests = measured.alert_tests;
            let charts = measured.assessed.record(&mut summary);
            write(&folder, &mut summary, &charts)?;
            Ok(Finished { go, dir: folder.dir, summary })
        }
        Err(error) => {
            summary.reasons = vec![error.to_string()];
            write(&folder, &mut summary, &[])?;
            Err(RunFailed { error, dir: Some(folder.dir) })
        }
    }
}

/// Names the first program the run needs that is missing, before anything starts.
fn check_programs(scenario: &Scenario, binaries: &Binaries) -> Result<(), RunError> {
    let mut programs = vec![binaries.q2o("q2o-loadgen"), binaries.prometheus.clone()];
    programs.extend(binaries.of_topology(&scenario.topology));
    if scenario.criteria.iter().any(|c| c.sli == Sli::AlertTestCoverage) {
        programs.push(binaries.promtool.clone());
    }
    Ok(Binaries::check(&programs)?)
}

fn sizes(scenario: &Scenario, users_in_file: usize, options: &RunOptions) -> Sizes {
    Sizes {
        users: scenario.load.users,
        users_in_file,
        ramp_rate: scenario.load.ramp_rate,
        hold_seconds: scenario.load.hold.as_secs_f64(),
        ramp_down_seconds: scenario.load.ramp_down.as_secs_f64(),
        loadgen_processes: scenario.loadgen_processes(),
        scaled: options.overrides.any(),
        overrides: options.overrides.clone(),
    }
}

/// Writes the report files and points `latest` at the run.
pub(crate) fn write(folder: &RunFolder, summary: &mut Summary, charts: &[Chart]) -> Result<(), RunFailed> {
    summary.files = q2o_report::files_in(&folder.dir);
    q2o_report::write_all(&folder.dir, summary, charts).map_err(|source| RunFailed {
        error: RunError::Io { path: folder.dir.clone(), source },
        dir: Some(folder.dir.clone()),
    })?;
    folder.link_latest();
    Ok(())
}

/// The rule files this run's Prometheus loads: the SLI and SLO rules from
/// `alerts/`, and the gate rules of the scenario as run (a custom or
/// overridden scenario has its own targets).
fn rule_files(scenario: &Scenario, rules_dir: &Path, run: &Path) -> Result<Vec<PathBuf>, RunError> {
    let dir = run.join("rules");
    std::fs::create_dir_all(&dir).map_err(RunError::io(&dir))?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(rules_dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.ends_with(".yml") && name != GATES_FILE {
            let copy = dir.join(&name);
            std::fs::copy(&path, &copy).map_err(RunError::io(&path))?;
            files.push(copy);
        }
    }
    if files.is_empty() {
        let generated = dir.join(SLIS_FILE);
        std::fs::write(&generated, sli_rules()).map_err(RunError::io(&generated))?;
        files.push(generated);
    }
    let gates = dir.join(format!("gate-{}.rules.yml", scenario.name));
    let gate = Gate { phase: &scenario.name, description: &scenario.description, criteria: &scenario.criteria };
    std::fs::write(&gates, gate_rules(&[gate])).map_err(RunError::io(&gates))?;
    files.push(gates);
    Ok(files)
}

/// The session of one run and everything it measured, with the recoveries the environment saw.
async fn measure(
    scenario: &Scenario,
    options: &RunOptions,
    folder: &RunFolder,
    interrupt: &Interrupt,
) -> Result<(Measured, Vec<q2o_env::backend::Recovery>), RunError> {
    let rule_files = rule_files(scenario, &options.rules_dir, &folder.dir)?;
    let alert_tests = if q2o_env::binaries::is_executable(&options.binaries.promtool) {
        let mut alerts = Vec::new();
        for file in &rule_files {
            alerts.extend(alerts_in(&std::fs::read_to_string(file).map_err(RunError::io(file))?));
        }
        Some(evidence::alert_tests(&options.binaries.promtool, &options.rules_dir.join("tests"), &alerts).await?)
    } else {
        None
    };
    let loadgen_addrs = (0..scenario.loadgen_processes()).map(|_| free_addr()).collect::<Result<Vec<_>, _>>()?;
    let plan = SessionPlan {
        topology: &scenario.topology,
        kind: options.env,
        binaries: &options.binaries,
        dir: &folder.dir,
        run_id: &folder.id,
        prometheus: Some(PrometheusPlan {
            extra_targets: loadgen_addrs
                .iter()
                .map(|addr| ScrapeTarget { job: "loadgen".into(), addr: *addr })
                .collect(),
            rule_files,
            labels: vec![("phase".into(), scenario.name.clone()), ("run_id".into(), folder.id.clone())],
        }),
    };
    Session::run(plan, interrupt, async |session: &Session| {
        let mut measured = drive(scenario, options, folder, session, &loadgen_addrs).await?;
        measured.assessed.evidence.alert_test_coverage = alert_tests.as_ref().and_then(AlertTestCoverage::ratio);
        measured.alert_tests = alert_tests;
        Ok((measured, session.env.recoveries()))
    })
    .await
}

/// Users, faults and evidence on a started session.
async fn drive(
    scenario: &Scenario,
    options: &RunOptions,
    folder: &RunFolder,
    session: &Session,
    loadgen_addrs: &[std::net::SocketAddr],
) -> Result<Measured, RunError> {
    let (env, prometheus) = (&session.env, session.prometheus());
    let plan = scenario.user_plan();
    let endpoints = &env.endpoints;
    let users = Users::new(
        &plan,
        &scenario.load.api_key,
        (&endpoints.rest_urls, &endpoints.grpc_urls),
        loadgen_addrs,
        &folder.dir.join("loadgen"),
    );
    let load_started = SystemTime::now();
    users.start(env, &options.binaries.q2o("q2o-loadgen")).await?;
    let (stop_sampling, sampling_stopped) = tokio::sync::oneshot::channel();
    let load = async {
        let injected = watch_load(scenario, env, prometheus, plan.total(), options.progress).await;
        // Bounded: the users' own plan plus the time goose needs to let them go.
        if !users.wait(&env.harness, Duration::from_secs(60)).await {
            tracing::warn!("a loadgen process outlived its plan by a minute and was stopped; its results are partial");
        }
        let _ = stop_sampling.send(());
        injected
    };
    let (injected, timeline) = tokio::join!(load, env.sample_resources(&scenario.topology, sampling_stopped));
    let mut injected = injected?;
    let load_ended = SystemTime::now();

    // One more scrape and rule evaluation after the last request.
    tokio::time::sleep(prometheus::INTERVAL * 3).await;
    let results = users.results(&folder.dir.join("logs"))?;
    results.write(&folder.dir.join("loadgen"))?;
    let stores = Stores { redis_url: endpoints.redis_url.as_deref(), kafka: endpoints.kafka.as_deref() };
    let load = LoadSpan { started: unix(load_started), ended: unix(load_ended) };
    let mut assessed =
        assess(scenario, prometheus, &options.dashboards_dir, &folder.id, (&results, &users.intervals()), load, stores)
            .await?;

    let recoveries = env.recoveries();
    faults::attach_recoveries(&mut injected, &recoveries);
    let error_burst = injected.first().map(|first| faults::error_burst(&results.seconds, first.at));
    let per_second = |f: fn(&q2o_loadgen::recorder::Second) -> u64| results.seconds.iter().map(f).collect::<Vec<_>>();
    let hold = plan.ramp_up().as_secs() as usize..(plan.ramp_up() + plan.hold).as_secs() as usize;
    let resources = timeline.figures(hold, &per_second(|s| s.requests));
    let saturation = timeline.saturation(&per_second(|s| s.users));
    assessed.evidence.recoveries = recoveries.iter().map(|r| r.recovered_after).collect();
    assessed.evidence.error_burst_seconds = error_burst.as_ref().map(|b| b.seconds);
    assessed.charts.push(Chart::cpu_by_process(&timeline));
    Ok(Measured {
        assessed,
        resources,
        saturation,
        results,
        faults: injected,
        error_burst,
        alert_tests: None,
        prometheus: prometheus.url().to_owned(),
    })
}

/// Puts the verdicts of `judged` into `summary`; whether the run is GO.
pub(crate) fn record_verdict(summary: &mut Summary, judged: Vec<gate::Judged>) -> bool {
    let go = gate::decide(&judged);
    summary.verdict = if go { "GO" } else { "NO-GO" }.into();
    summary.reasons = gate::reasons(&judged);
    summary.criteria = judged;
    go
}

/// When a run's load started and ended (Unix seconds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadSpan {
    pub started: f64,
    pub ended: f64,
}

/// Where the run's Redis and broker are reached from here, when they are.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stores<'a> {
    pub redis_url: Option<&'a str>,
    pub kafka: Option<&'a str>,
}

/// What the servers said of a finished load, before any verdict.
#[derive(Debug)]
pub(crate) struct Assessed {
    pub evidence: Evidence,
    pub events: Option<EventCensus>,
    pub scrape: ScrapeCoverage,
    pub slis: SliCoverage,
    pub dashboards: DashboardCoverage,
    pub alerts_firing: Vec<FiringAlert>,
    pub charts: Vec<Chart>,
}

impl Assessed {
    /// Puts what was assessed into `summary`; the charts, for the report.
    pub(crate) fn record(self, summary: &mut Summary) -> Vec<Chart> {
        summary.events = self.events;
        summary.scrape = Some(self.scrape);
        summary.slis = Some(self.slis);
        summary.dashboards = Some(self.dashboards);
        summary.alerts_firing = self.alerts_firing;
        self.charts
    }
}

/// Asks Prometheus, and Redis and the broker where `stores` reach them,
/// what became of a finished load whose merged `results` and interval logs
/// are given: the same for a local run and for a cluster's (`q2o-bench judge`).
pub(crate) async fn assess(
    scenario: &Scenario,
    prometheus: &Prometheus,
    dashboards_dir: &Path,
    run_id: &str,
    (results, intervals): (&RunResults, &[LoggedInterval]),
    load: LoadSpan,
    stores: Stores<'_>,
) -> Result<Assessed, RunError> {
    let plan = scenario.user_plan();
    // Where the broker can be read, the census waits for the audit group
    // itself; elsewhere (docker) Prometheus's counters are waited on.
    let events = match (stores.kafka, stores.redis_url) {
        (Some(kafka), Some(redis)) => {
            let mut census = evidence::event_census(kafka, redis, evidence::CENSUS_LAG_BOUND).await?;
            // Asked after the wait: a producer gives up on an event only after retrying it for a minute.
            census.given_up = evidence::events_given_up(prometheus).await?;
            census.lost = census.missing_from_ledger + census.given_up;
            Some(census)
        }
        _ if scenario.topology.kafka => {
            evidence::wait_for_audit(prometheus).await;
            None
        }
        _ => None,
    };
    let at = unix_now().max(load.ended);
    let window = format!("{}s", (at - load.started).ceil() as u64);
    let tasks_unfinished = match (stores.redis_url, evidence::tenant_of(&scenario.load.api_key)) {
        (Some(url), Some(tenant)) if scenario.criteria.iter().any(|c| c.sli == Sli::TasksUnfinished) => {
            Some(evidence::tasks_unfinished(url, &tenant).await?)
        }
        _ => None,
    };
    // Coverage is asked at the end of the hold, when every loadgen still ran.
    let hold_end = load.started + (plan.ramp_up() + plan.hold).as_secs_f64() - 2.0;
    let dashboards = evidence::dashboard_coverage(prometheus, dashboards_dir, &scenario.name, run_id, hold_end).await?;
    let slis = evidence::sli_coverage(prometheus, hold_end).await?;
    let ratio = |n: usize, of: usize| (of > 0).then(|| n as f64 / of as f64);
    let evidence = Evidence {
        prometheus: evidence::slis(prometheus, &scenario.criteria, &window, at).await?,
        dashboard_coverage: ratio(dashboards.with_data, dashboards.queries),
        sli_coverage: ratio(slis.with_data, slis.recorded),
        alert_test_coverage: None,
        tasks_unfinished,
        events_lost: events.as_ref().map(|e| e.lost as f64),
        recoveries: Vec::new(),
        error_burst_seconds: None,
        windows: windows(scenario, intervals, results, prometheus, load.started).await?,
        results: Some(results.clone()),
    };
    let alerts_firing = prometheus
        .firing(&scenario.name, load.ended)
        .await?
        .into_iter()
        .map(|(alert, criterion, severity)| FiringAlert { alert, criterion, severity })
        .collect();
    Ok(Assessed {
        charts: charts(prometheus, results, load.started, load.ended).await,
        scrape: evidence::scrape_coverage(prometheus, hold_end).await?,
        evidence,
        events,
        slis,
        dashboards,
        alerts_firing,
    })
}

/// The figures of every window the scenario's criteria name: the served
/// latencies from the processes' interval logs (an interval counts when its
/// middle lies in the window; they are a second long), the API calls'
/// outcomes from the per-second counts, and Prometheus over the window.
async fn windows(
    scenario: &Scenario,
    intervals: &[LoggedInterval],
    results: &RunResults,
    prometheus: &Prometheus,
    load_started: f64,
) -> Result<BTreeMap<Window, WindowEvidence>, RunError> {
    let named: BTreeSet<&Window> = scenario.criteria.iter().map(|c| &c.window).filter(|w| !w.is_hold()).collect();
    let mut windows = BTreeMap::new();
    if named.is_empty() {
        return Ok(windows);
    }
    let active: Vec<u64> = results.seconds.iter().map(|s| s.users).collect();
    for window in named {
        let (from, to) = match scenario.window_span(window, Some(&active)) {
            Some(Ok(span)) => span,
            // The surge's users never left within the hold: nothing to judge
            // after it, and its criteria say "no data".
            _ => continue,
        };
        let (from, to) = (from.as_secs_f64(), to.as_secs_f64());
        let inside = |start: f64, end: f64| (from..to).contains(&((start + end) / 2.0));
        let (mut api, mut search) = (latency_histogram(), latency_histogram());
        for interval in intervals.iter().filter(|i| inside(i.start, i.end)) {
            let step = interval.key.1;
            if step.is_api() {
                api.add(&interval.histogram).map_err(|e| RunError::Loadgen(format!("{e:?}")))?;
            }
            if step == Step::Search {
                search.add(&interval.histogram).map_err(|e| RunError::Loadgen(format!("{e:?}")))?;
            }
        }
        let mut counts = ApiCounts::default();
        for (i, second) in results.seconds.iter().enumerate() {
            if inside(i as f64, i as f64 + 1.0) {
                counts.add(&second.api);
            }
        }
        let criteria: Vec<Criterion> = scenario.criteria.iter().filter(|c| &c.window == window).cloned().collect();
        let length = format!("{}s", (to - from).ceil().max(1.0) as u64);
        let prometheus = evidence::slis(prometheus, &criteria, &length, load_started + to).await?;
        windows.insert(window.clone(), WindowEvidence { api: Some(api), search: Some(search), counts, prometheus });
    }
    Ok(windows)
}

/// What makes a run's figures less than they seem: the load generator was
/// the resource that saturated, or its users were not all active 5 s after
/// the ramp should have started the last of them.
fn warnings(saturation: Option<&Saturation>, scenario: &Scenario, results: &RunResults) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(sat) = saturation.filter(|s| s.resource.starts_with("cpu of loadgen")) {
        warnings.push(format!(
            "the load generator itself saturated at {:.0} s ({}); latencies past that point measure it as much as the system",
            sat.at_seconds, sat.detail
        ));
    }
    let plan = scenario.user_plan();
    let due = (plan.ramp_up() + Duration::from_secs(5)).as_secs() as usize;
    if due < (plan.ramp_up() + plan.hold).as_secs() as usize
        && let Some(active) = results.seconds.get(due).map(|s| s.users)
        && (active as f64) < 0.95 * plan.users as f64
    {
        warnings.push(format!(
            "the users fell behind their schedule: {active} of {} were active at {due} s, 5 s after the ramp's end",
            plan.users
        ));
    }
    warnings
}

/// The knee in users of the scenario's latest capacity run at its own
/// gateway replicas, and its file, when there is one.
fn latest_knee(reports: &Path, scenario: &Scenario) -> Option<(f64, PathBuf)> {
    let capacity = reports.join(format!("{}-capacity/latest/capacity.json", scenario.name));
    let found: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&capacity).ok()?).ok()?;
    let at_own = found["searches"].as_array()?.iter().find(|s| s["gateways"] == scenario.topology.gateways)?;
    Some((at_own["knee_users"].as_f64()?, capacity))
}

/// The live p95 the progress bar shows: the last 10 seconds of API calls.
const LIVE_P95: &str = r#"histogram_quantile(0.95, sum by (le) (rate(q2o_loadgen_request_duration_seconds_bucket{step!="await_task"}[10s])))"#;

/// The load phase: a progress bar with live figures from Prometheus, and the faults on time.
async fn watch_load(
    scenario: &Scenario,
    env: &Environment,
    prometheus: &Prometheus,
    total: Duration,
    progress: bool,
) -> Result<Vec<Injected>, RunError> {
    let bar = crate::progress::bar(progress, total.as_secs(), "s");
    let started = tokio::time::Instant::now();
    let mut pending: Vec<_> = scenario.faults.iter().collect();
    pending.sort_by_key(|f| f.at);
    let mut pending = pending.into_iter().peekable();
    let mut injected = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < total {
        // Faults are due to the second; the figures refresh every second.
        let next_fault = pending.peek().map(|f| started + f.at);
        tokio::select! {
            _ = tick.tick() => {}
            () = async { tokio::time::sleep_until(next_fault.expect("guarded")).await }, if next_fault.is_some() => {}
        }
        let elapsed = started.elapsed();
        while let Some(fault) = pending.next_if(|f| f.at <= elapsed) {
            let done = faults::inject(env, fault, elapsed.as_secs_f64()).await?;
            bar.suspend(|| {
                eprintln!(
                    "fault at {:.1} s: {} {} ({})",
                    elapsed.as_secs_f64(),
                    fault.action.as_str(),
                    fault.service,
                    if done.done { "done" } else { "not running" }
                )
            });
            injected.push(done);
        }
        let now = unix_now();
        let live = async |query: &str| prometheus.scalar(query, now).await.ok().flatten();
        let users = live("sum(q2o_loadgen_active_users)").await.unwrap_or(0.0);
        let rate = live("sum(rate(q2o_loadgen_requests_total[5s]))").await.unwrap_or(0.0);
        let p95 = live(LIVE_P95).await;
        bar.set_position(elapsed.as_secs().min(total.as_secs()));
        bar.set_message(format!(
            "{users:.0} users, {rate:.0} req/s, p95 {}",
            p95.map_or("-".into(), |p| format!("{:.1} ms", p * 1e3))
        ));
    }
    bar.finish_and_clear();
    Ok(injected)
}

/// The report's charts: latency percentiles and agent task rates from
/// Prometheus, throughput, errors and users from the loadgen's per-second records.
async fn charts(prometheus: &Prometheus, results: &RunResults, start: f64, end: f64) -> Vec<Chart> {
    let step = ((end - start) / 300.0).max(1.0).ceil();
    let mut latency = Vec::new();
    for q in ["0.5", "0.95", "0.99"] {
        let query = format!(
            "histogram_quantile({q}, sum by (le) (rate(q2o_loadgen_request_duration_seconds_bucket{{step!=\"await_task\"}}[5s]))) * 1000"
        );
        if let Ok(series) = prometheus.range(&query, start, end, step).await {
            for (_, points) in series {
                latency.push((format!("p{}", &q[2..]), points.into_iter().map(|(t, v)| (t - start, v)).collect()));
            }
        }
    }
    let mut agents = Vec::new();
    let query = "sum by (agent_type) (rate(q2o_agent_tasks_total{status=\"completed\"}[5s]))";
    if let Ok(series) = prometheus.range(query, start, end, step).await {
        for (labels, points) in series {
            let name = labels.get("agent_type").cloned().unwrap_or_default();
            agents.push((name, points.into_iter().map(|(t, v)| (t - start, v)).collect()));
        }
    }
    let per_second = |f: &dyn Fn(&q2o_loadgen::recorder::Second) -> u64| -> Vec<(f64, f64)> {
        results.seconds.iter().enumerate().map(|(i, s)| (i as f64, f(s) as f64)).collect()
    };
    vec![
        Chart::over_time("API latency percentiles (client side)", "ms", latency),
        Chart::over_time("Throughput", "requests/s", vec![("requests".into(), per_second(&|s| s.requests))]),
        Chart::over_time("Errors", "failed requests/s", vec![("errors".into(), per_second(&|s| s.errors))]),
        Chart::over_time("Users", "active users", vec![("users".into(), per_second(&|s| s.users))]),
        Chart::over_time("Agent tasks completed", "tasks/s", agents),
    ]
}
