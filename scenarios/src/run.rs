//! One scenario run from start to report: start the topology, start
//! Prometheus, drive the users, inject the faults, let Prometheus and the
//! loadgen's records judge the criteria, stop everything, write the report.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use q2o_common::domain::{Page, TenantId};
use q2o_common::store::{RedisStore, RedisStoreOptions, Store};
use q2o_loadgen::results::RunResults;

use crate::alert_tests;
use crate::dashboards::{self, Dashboard};
use crate::faults::{self, Injected};
use crate::gate::{self, Judged, Verdict};
use crate::local::{Binaries, EnvKind, Environment, ScrapeTarget, free_addr, is_executable};
use crate::prometheus::{self, Prometheus};
use crate::report::charts::Chart;
use crate::report::summary::{
    DashboardCoverage, EmptyPanel, Environment as EnvInfo, FiringAlert, LoadFigures, SCHEMA_VERSION, ScrapeCoverage,
    Sizes, SliCoverage, Summary,
};
use crate::rules;
use crate::scenario::{Overrides, Scenario, Sli};
use crate::supervisor::{Readiness, ServiceSpec};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The scenario file.
    pub scenario: PathBuf,
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

/// The run itself failed: its reason, and the folder if one was made.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct RunFailed {
    /// One sentence.
    pub reason: String,
    /// The run folder, holding the logs and an ERROR summary.
    pub dir: Option<PathBuf>,
}

fn failed(reason: impl std::fmt::Display) -> RunFailed {
    RunFailed { reason: reason.to_string(), dir: None }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn run_id(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Runs a scenario. `stop` (Ctrl-C) ends it early: everything is stopped and
/// the run counts as failed.
pub async fn run(options: RunOptions, stop: impl Future<Output = ()>) -> Result<Finished, RunFailed> {
    let mut scenario = Scenario::load(&options.scenario).map_err(failed)?;
    let users_in_file = scenario.load.users;
    options.overrides.apply(&mut scenario).map_err(failed)?;
    options.binaries.check(&scenario).map_err(failed)?;
    if let Some((i, fault)) =
        scenario.faults.iter().enumerate().find(|(_, f)| f.action.needs_docker() && options.env == EnvKind::Local)
    {
        return Err(failed(format!(
            "faults[{i}].action: `{}` needs the docker environment (--env docker)",
            fault.action.as_str()
        )));
    }

    let started = SystemTime::now();
    let base = options.reports.join(&scenario.name);
    let (dir, id) = new_run_dir(&base, started).map_err(failed)?;
    let sizes = Sizes {
        users: scenario.load.users,
        users_in_file,
        ramp_rate: scenario.load.ramp_rate,
        hold_seconds: scenario.load.hold.as_secs_f64(),
        ramp_down_seconds: scenario.load.ramp_down.as_secs_f64(),
        loadgen_processes: scenario.loadgen_processes(),
        scaled: options.overrides.any(),
        overrides: options.overrides.clone(),
    };
    let mut summary = Summary {
        schema_version: SCHEMA_VERSION,
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        run_id: id.clone(),
        started_at: rfc3339(started),
        finished_at: String::new(),
        verdict: "ERROR".into(),
        reasons: Vec::new(),
        environment: EnvInfo::here(String::new()),
        sizes,
        topology: scenario.topology.clone(),
        criteria: Vec::new(),
        alerts_firing: Vec::new(),
        faults: Vec::new(),
        error_burst: None,
        recoveries: Vec::new(),
        scrape: None,
        slis: None,
        dashboards: None,
        alert_tests: None,
        load: None,
        files: Vec::new(),
    };

    summary.environment.kind = options.env.as_str().into();
    eprintln!(
        "q2o-bench: {} — starting the {} environment (logs in {})",
        scenario.name,
        options.env.as_str(),
        dir.join("logs").display()
    );
    let outcome = match Environment::start(&scenario, &options.binaries, &dir, options.env, &id).await {
        Err(err) => Err(err.to_string()),
        Ok(env) => {
            let result = tokio::select! {
                result = drive(&scenario, &options, &env, &dir, &mut summary) => result,
                () = stop => Err("interrupted: the run was stopped by a signal".to_owned()),
            };
            summary.recoveries = env.recoveries();
            env.stop().await;
            result
        }
    };
    // Configs, Redis, broker, index and TSDB files: only the logs and reports stay.
    let _ = std::fs::remove_dir_all(dir.join("data"));
    summary.finished_at = rfc3339(SystemTime::now());
    let go = match &outcome {
        Ok(charts) => {
            let go = gate::decide(&summary.criteria);
            summary.verdict = if go { "GO" } else { "NO-GO" }.into();
            summary.reasons = reasons(&summary.criteria);
            finish(&dir, &base, &mut summary, charts)?;
            go
        }
        Err(reason) => {
            summary.reasons = vec![reason.clone()];
            finish(&dir, &base, &mut summary, &[])?;
            return Err(RunFailed { reason: reason.clone(), dir: Some(dir) });
        }
    };
    Ok(Finished { go, dir, summary })
}

fn reasons(criteria: &[Judged]) -> Vec<String> {
    criteria
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::NoData))
        .map(|c| {
            let unit = c.sli.unit();
            match c.measured {
                Some(v) => format!(
                    "{} missed: {} was {}, the target is {} {}",
                    c.name,
                    c.sli.as_str(),
                    unit.format(v),
                    c.op,
                    unit.format(c.target)
                ),
                None => format!("{}: no data for {}", c.name, c.sli.as_str()),
            }
        })
        .collect()
}

fn finish(dir: &Path, base: &Path, summary: &mut Summary, charts: &[Chart]) -> Result<(), RunFailed> {
    let mut files = vec!["summary.json".to_owned(), "report.md".into(), "report.html".into(), "junit.xml".into()];
    for sub in ["logs", "loadgen", "rules"] {
        let mut found: Vec<String> = walk(&dir.join(sub))
            .into_iter()
            .filter_map(|p| p.strip_prefix(dir).ok().map(|p| p.display().to_string()))
            .collect();
        found.sort();
        files.extend(found);
    }
    files.push("prometheus.yml".into());
    summary.files = files;
    crate::report::write_all(dir, summary, charts).map_err(|e| RunFailed {
        reason: format!("cannot write the report into {}: {e}", dir.display()),
        dir: Some(dir.to_owned()),
    })?;
    link_latest(base, dir);
    Ok(())
}

/// A new run folder `base/<run-id>/` (with its `data/`), and the run id:
/// the start time, with `-2`, `-3`... when runs start within one second.
pub(crate) fn new_run_dir(base: &Path, started: SystemTime) -> Result<(PathBuf, String), String> {
    let mut id = run_id(started);
    let mut n = 1;
    while base.join(&id).exists() {
        n += 1;
        id = format!("{}-{n}", run_id(started));
    }
    let dir = base.join(&id);
    std::fs::create_dir_all(dir.join("data"))
        .map_err(|e| format!("cannot create the run folder {}: {e}", dir.display()))?;
    Ok((dir.canonicalize().unwrap_or(dir), id))
}

/// Points `base/latest` at `dir`.
pub(crate) fn link_latest(base: &Path, dir: &Path) {
    let latest = base.join("latest");
    let _ = std::fs::remove_file(&latest);
    if let Some(name) = dir.file_name() {
        let _ = std::os::unix::fs::symlink(name, &latest);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Everything between a started environment and a judged gate.
async fn drive(
    scenario: &Scenario,
    options: &RunOptions,
    env: &Environment,
    dir: &Path,
    summary: &mut Summary,
) -> Result<Vec<Chart>, String> {
    let plan = scenario.user_plan().map_err(|(key, reason)| format!("{key}: {reason}"))?;
    let processes = scenario.loadgen_processes();
    let mut loadgen_addrs = Vec::new();
    let mut targets = env.targets.clone();
    for _ in 0..processes {
        let addr = free_addr().map_err(|e| format!("no free port: {e}"))?;
        loadgen_addrs.push(addr);
        targets.push(ScrapeTarget { job: "loadgen".into(), addr });
    }

    // The SLI recording rules from alerts/, and this run's gate rules.
    let rules_dir = dir.join("rules");
    std::fs::create_dir_all(&rules_dir).map_err(|e| e.to_string())?;
    let mut rule_files = Vec::new();
    for entry in std::fs::read_dir(&options.rules_dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.ends_with(".yml") && name != rules::GATES_FILE {
            let copy = rules_dir.join(&name);
            std::fs::copy(&path, &copy).map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
            rule_files.push(copy);
        }
    }
    if rule_files.is_empty() {
        let generated = rules_dir.join(rules::SLIS_FILE);
        std::fs::write(&generated, rules::sli_rules()).map_err(|e| e.to_string())?;
        rule_files.push(generated);
    }
    let gates = rules_dir.join(format!("gate-{}.rules.yml", scenario.name));
    std::fs::write(&gates, rules::gate_rules(std::slice::from_ref(scenario))).map_err(|e| e.to_string())?;
    rule_files.push(gates);
    if is_executable(&options.binaries.promtool) {
        let mut alerts = Vec::new();
        for file in &rule_files {
            alerts.extend(alert_tests::alerts_in(&std::fs::read_to_string(file).map_err(|e| e.to_string())?));
        }
        let tests_dir = options.rules_dir.join("tests");
        summary.alert_tests = Some(alert_tests::coverage(&options.binaries.promtool, &tests_dir, &alerts).await?);
    }

    let prometheus_addr = free_addr().map_err(|e| format!("no free port: {e}"))?;
    let labels = [("phase", scenario.name.as_str()), ("run_id", summary.run_id.as_str())];
    let prometheus = Prometheus::start(
        &env.supervisor,
        &options.binaries.prometheus,
        dir,
        &targets,
        &rule_files,
        &labels,
        prometheus_addr,
    )
    .await
    .map_err(|e| e.to_string())?;
    summary.environment.prometheus = prometheus.url().to_owned();
    let services: Vec<_> = env.targets.iter().map(|t| t.addr).collect();
    prometheus.wait_targets_up(&services, Duration::from_secs(30)).await.map_err(|e| e.to_string())?;

    // The users, spread over the gateway replicas and the loadgen processes.
    let load_started = SystemTime::now();
    let loadgen = options.binaries.q2o.join("q2o-loadgen");
    let join = |weights: &std::collections::BTreeMap<String, u32>| {
        weights.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    };
    for (i, addr) in loadgen_addrs.iter().enumerate() {
        let users = plan.users / processes + usize::from(i < plan.users % processes);
        let gateway = i % env.rest_urls.len();
        let mut args = vec![
            "users".to_owned(),
            "--rest-url".into(),
            env.rest_urls[gateway].clone(),
            "--users".into(),
            users.to_string(),
            "--ramp-rate".into(),
            (plan.ramp_rate / processes as f64).to_string(),
            "--hold".into(),
            format!("{}ms", plan.hold.as_millis()),
            "--ramp-down".into(),
            format!("{}ms", plan.ramp_down.as_millis().max(1000)),
            "--think".into(),
            scenario.load.think.clone(),
            "--journeys".into(),
            join(&scenario.load.journeys),
            "--protocols".into(),
            join(&scenario.load.protocols),
            "--api-key".into(),
            scenario.load.api_key.clone(),
            "--out".into(),
            dir.join(format!("loadgen/part-{i}")).display().to_string(),
            "--metrics-addr".into(),
            addr.to_string(),
        ];
        if let Some(grpc) = env.grpc_urls.get(gateway) {
            args.extend(["--grpc-url".into(), grpc.clone()]);
        }
        env.supervisor
            .start(ServiceSpec {
                name: format!("loadgen-{i}"),
                program: loadgen.clone(),
                args,
                env: vec![("Q2O_LOG".into(), "warn".into())],
                cwd: None,
                ready: Readiness::LogLine("q2o-loadgen listening"),
                restart: false,
            })
            .await
            .map_err(|e| e.to_string())?;
    }

    let total = plan.total();
    let mut injected = watch_load(scenario, env, &prometheus, total, options.progress).await?;
    let mut all_exited = true;
    for i in 0..processes {
        let name = format!("loadgen-{i}");
        // Bounded: the users' own plan plus the time goose needs to let them go.
        if env.supervisor.wait_exit(&name, Duration::from_secs(60)).await.is_none() {
            all_exited = false;
            env.supervisor.terminate(&name);
            env.supervisor.wait_exit(&name, Duration::from_secs(15)).await;
        }
    }
    let load_ended = SystemTime::now();
    if !all_exited {
        tracing::warn!("a loadgen process outlived its plan by a minute and was stopped; its results are partial");
    }

    // One more scrape and rule evaluation after the last request.
    tokio::time::sleep(prometheus::INTERVAL * 3).await;
    if scenario.topology.kafka {
        wait_for_audit(&prometheus).await;
    }
    let at = unix(SystemTime::now());
    let window = format!("{}s", (at - unix(load_started)).ceil() as u64);

    let mut parts = Vec::new();
    for i in 0..processes {
        let path = dir.join(format!("loadgen/part-{i}/results.json"));
        let part = RunResults::read(&path).map_err(|e| {
            let log = std::fs::read_to_string(dir.join(format!("logs/loadgen-{i}.log"))).unwrap_or_default();
            format!("{e}; loadgen-{i} said: {}", log.lines().rev().take(3).collect::<Vec<_>>().join(" / "))
        })?;
        parts.push(part);
    }
    let results = RunResults::merge(&parts)?;
    results.write(&dir.join("loadgen")).map_err(|e| e.to_string())?;
    summary.load = Some(LoadFigures::of(&results));
    faults::attach_recoveries(&mut injected, &env.recoveries());
    // The users' tenant, when they log in with a demo key (`demo-key-<tenant>`).
    let tenant = scenario.load.api_key.strip_prefix("demo-key-").and_then(|t| TenantId::try_from(t.to_owned()).ok());
    let tasks_unfinished = match (&env.redis_url, tenant) {
        (Some(url), Some(tenant)) if scenario.criteria.iter().any(|c| c.sli == Sli::TasksUnfinished) => {
            Some(unfinished_tasks(url, &tenant).await?)
        }
        _ => None,
    };
    let burst = injected.first().map(|first| faults::error_burst(&results.seconds, first.at));

    // Dashboards are asked at the end of the hold, when every loadgen still ran.
    let hold_end = unix(load_started) + (plan.ramp_up() + plan.hold).as_secs_f64() - 2.0;
    let coverage =
        dashboard_coverage(&prometheus, &options.dashboards_dir, scenario, &summary.run_id, hold_end).await?;
    let coverage_ratio = (coverage.queries > 0).then(|| coverage.with_data as f64 / coverage.queries as f64);
    summary.dashboards = Some(coverage);
    let mut scrape = [0; 2];
    for (slot, query) in scrape.iter_mut().zip(["count(up)", "sum(up)"]) {
        *slot = prometheus.scalar(query, hold_end).await.map_err(|e| e.to_string())?.unwrap_or(0.0) as usize;
    }
    summary.scrape = Some(ScrapeCoverage { targets: scrape[0], up: scrape[1] });
    let mut slis = SliCoverage::default();
    let recorded = rules::RECORDED.iter().map(|sli| rules::record_name(*sli)).chain(crate::slo::recorded_one_minute());
    for name in recorded {
        slis.recorded += 1;
        if prometheus.query(&name, hold_end).await.map_err(|e| e.to_string())?.is_empty() {
            slis.empty.push(name);
        } else {
            slis.with_data += 1;
        }
    }
    let sli_ratio = (slis.recorded > 0).then(|| slis.with_data as f64 / slis.recorded as f64);
    summary.slis = Some(slis);

    let recoveries = env.recoveries();
    for criterion in &scenario.criteria {
        let prom = match rules::promql(criterion.sli, &window) {
            Some(query) => prometheus.scalar(&query, at).await.map_err(|e| e.to_string())?,
            None => None,
        };
        // What neither one query nor the loadgen can say, and who said it.
        let other = match criterion.sli {
            Sli::DashboardCoverage => coverage_ratio.map(|v| (v, "prometheus")),
            Sli::SliCoverage => sli_ratio.map(|v| (v, "prometheus")),
            Sli::TasksUnfinished => tasks_unfinished.map(|v| (v, "redis")),
            Sli::AlertTestCoverage => summary.alert_tests.as_ref().and_then(|a| a.ratio()).map(|v| (v, "promtool")),
            // A fault that never recovered counts as never: no value, so NO-GO.
            Sli::RecoverySeconds => recoveries
                .iter()
                .map(|r| r.recovered_after)
                .collect::<Option<Vec<f64>>>()
                .and_then(|times| times.into_iter().reduce(f64::max))
                .map(|v| (v, "supervisor")),
            _ => None,
        };
        let exact = match criterion.sli {
            Sli::ErrorBurstSeconds => burst.as_ref().map(|b| b.seconds),
            sli => gate::exact(sli, &results),
        };
        summary.criteria.push(gate::judge(criterion, prom, exact, other));
    }
    summary.criteria.extend(faults::judge(&injected));
    summary.faults = injected;
    summary.error_burst = burst;
    let load_end_unix = unix(load_ended);
    summary.alerts_firing = prometheus
        .firing(&scenario.name, load_end_unix)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(alert, criterion, severity)| FiringAlert { alert, criterion, severity })
        .collect();
    Ok(charts(&prometheus, &results, unix(load_started), load_end_unix).await)
}

/// Asks every panel query of the dashboards in `dir` for this run at `at`.
async fn dashboard_coverage(
    prometheus: &Prometheus,
    dir: &Path,
    scenario: &Scenario,
    run_id: &str,
    at: f64,
) -> Result<DashboardCoverage, String> {
    let mut coverage = DashboardCoverage::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let dashboard: Dashboard = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        for (panel, query) in dashboards::queries(&dashboard, &scenario.name, run_id, "5m") {
            coverage.queries += 1;
            let answered = prometheus.query(&query, at).await.map_err(|e| e.to_string())?;
            if answered.is_empty() {
                coverage.empty.push(EmptyPanel { dashboard: name.clone(), panel });
            } else {
                coverage.with_data += 1;
            }
        }
    }
    Ok(coverage)
}

/// Waits (up to 30 s) until the audit consumer has counted every event the
/// agents produced, so that `events_lost` judges loss and not lag.
async fn wait_for_audit(prometheus: &Prometheus) {
    let query = rules::promql(Sli::EventsLost, "1m").expect("events_lost has PromQL");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(lost)) = prometheus.scalar(&query, unix(SystemTime::now())).await
            && lost <= 0.0
        {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Tasks of the users' tenant not in a final state once the queues drained
/// (up to 60 s), asked of Redis itself through the store's per-project
/// summaries: a task counts once however many times an agent tried it.
async fn unfinished_tasks(redis_url: &str, tenant: &TenantId) -> Result<f64, String> {
    let store = RedisStore::connect(RedisStoreOptions::new(redis_url))
        .await
        .map_err(|e| format!("cannot count the tasks in Redis: {e}"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut open = 0;
        for offset in (0..).step_by(100) {
            let page = Page { limit: 100, offset };
            let projects = store.projects(tenant, page).await.map_err(|e| e.to_string())?;
            for project in &projects {
                let status = store.project_status(tenant, project.id).await.map_err(|e| e.to_string())?;
                open += status.queued + status.running;
            }
            if projects.len() < 100 {
                break;
            }
        }
        if open == 0 || tokio::time::Instant::now() > deadline {
            return Ok(open as f64);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
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
) -> Result<Vec<Injected>, String> {
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
        let now = unix(SystemTime::now());
        let users = prometheus.scalar("sum(q2o_loadgen_active_users)", now).await.ok().flatten().unwrap_or(0.0);
        let rate =
            prometheus.scalar("sum(rate(q2o_loadgen_requests_total[5s]))", now).await.ok().flatten().unwrap_or(0.0);
        let p95 = prometheus.scalar(LIVE_P95, now).await.ok().flatten();
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
