//! `q2o-bench cost` (`just measure-cost`): what the stack and the load
//! generator spend per request, process by process, under one fixed load.
//!
//! The load is the scenario's own users (journeys, protocol mix, think time,
//! closed model) at a fixed count, so that its rate is fixed too: a user
//! whose responses take milliseconds against a think time of seconds makes
//! requests at `1 / think` whatever the system does, and two runs of the
//! same count are comparable before and after a change. Before the load, the
//! idle stack is measured the same way. Nothing is judged: this measures.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use q2o_common::store::{RedisStore, RedisStoreOptions};
use q2o_env::Environment;
use q2o_env::binaries::Binaries;
use q2o_env::ports::free_addr;
use q2o_env::resources::{ProcessFigures, Resources, Role};
use q2o_loadgen::results::RunResults;
use serde::Serialize;

use crate::error::{RunError, RunFailed};
use crate::loadgen::Users;
use crate::reference_work::ReferenceWork;
use crate::run_folder::{RunFolder, rfc3339};
use crate::scenario::{FlagError, Scenario};
use crate::session::{Interrupt, Session, SessionPlan};

/// How much load, and for how long (the flags of `q2o-bench cost`).
#[derive(Clone, Debug, clap::Args)]
pub struct Load {
    /// Users of the scenario's journeys, held at once.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// How long they are measured, after their ramp and one mean think time.
    #[arg(long, value_parser = q2o_common::config::parse_duration, default_value = "60s")]
    pub hold: Duration,
    /// How long the idle stack is measured before the load.
    #[arg(long, value_parser = q2o_common::config::parse_duration, default_value = "10s")]
    pub idle: Duration,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct CostOptions {
    /// The scenario, loaded: its topology and users.
    pub scenario: Scenario,
    /// The load.
    pub load: Load,
    /// Where `<scenario>-cost/<run-id>/` goes.
    pub reports: PathBuf,
    /// Programs.
    pub binaries: Binaries,
    /// Whether to draw a progress bar.
    pub progress: bool,
}

/// `cost.json`: one measurement.
#[derive(Clone, Debug, Serialize)]
pub struct CostReport {
    /// Schema version.
    pub schema: u32,
    /// The scenario whose topology and users ran.
    pub scenario: String,
    /// The run's id.
    pub run_id: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Users held.
    pub users: usize,
    /// Seconds measured.
    pub measured_seconds: f64,
    /// Requests finished in those seconds.
    pub requests: u64,
    /// Their rate.
    pub requests_per_second: f64,
    /// Requests that failed in them.
    pub failed: u64,
    /// CPU-µs per request of the whole machine (every process on it).
    pub machine_cpu_us_per_request: f64,
    /// Of the services alone.
    pub services_cpu_us_per_request: f64,
    /// Of the load generator's processes alone.
    pub loadgen_cpu_us_per_request: f64,
    /// The load generator's resident memory per user, bytes (its processes' peaks summed).
    pub loadgen_rss_bytes_per_user: f64,
    /// Times the threads of every process above were put on a core, per
    /// request: each wake-up and each return from preemption (null where
    /// the kernel keeps no schedstat or nothing was measured).
    pub runs_per_request: Option<f64>,
    /// Commands Redis ran per request over the measured seconds, in all and
    /// by command, most first; none without Redis in the topology.
    pub redis_commands_per_request: Option<RedisCommands>,
    /// Tasks the agents finished over the measured seconds and what the
    /// task path spent on each; none without Redis in the topology.
    pub tasks: Option<TaskCost>,
    /// Every process under load.
    pub processes: Vec<ProcessFigures>,
    /// The services' cores before the load, all together.
    pub idle_cores: f64,
    /// Each service idle.
    pub idle: Vec<ProcessFigures>,
    /// How fast the machine computed, timed before the stack started: a
    /// note beside the CPU-µs, not a correction of them (it has moved
    /// without the stack's cost moving, and the other way round).
    pub reference_work: Option<ReferenceWork>,
}

/// What Redis ran per request: `INFO commandstats` read as the measured
/// seconds start and end, over the requests finished in them.
#[derive(Clone, Debug, Serialize)]
pub struct RedisCommands {
    /// Every command.
    pub total: f64,
    /// By command name, most first.
    pub by_command: Vec<(String, f64)>,
}

impl RedisCommands {
    /// Calls between two `INFO commandstats` readings, `seconds` apart, per
    /// request of a load making `requests_per_second`.
    fn between(
        before: &BTreeMap<String, u64>,
        after: &BTreeMap<String, u64>,
        seconds: f64,
        requests_per_second: f64,
    ) -> Option<RedisCommands> {
        if seconds <= 0.0 || requests_per_second <= 0.0 {
            return None;
        }
        let per_request = |calls: u64| calls as f64 / seconds / requests_per_second;
        let mut by_command: Vec<(String, f64)> = after
            .iter()
            .map(|(name, calls)| (name.clone(), calls.saturating_sub(before.get(name).copied().unwrap_or(0))))
            .filter(|(_, calls)| *calls > 0)
            .map(|(name, calls)| (name, per_request(calls)))
            .collect();
        by_command.sort_by(|a, b| b.1.total_cmp(&a.1));
        Some(RedisCommands { total: by_command.iter().map(|(_, n)| n).sum(), by_command })
    }
}

/// The task path's cost: what the agents and the broker spent per task
/// they finished (the budget is per task, not per request: a
/// request that submits a task sets off the work, a poll sets off none).
///
/// Tasks are counted by Redis's `XACK` calls between the two readings:
/// each task's Stream entry is acknowledged once when its worker is done
/// with it (a re-delivered one is acknowledged again, rarely). A task
/// started before the first reading and acknowledged after it counts whole,
/// so over a hold of a minute and tasks of about a second the edges move
/// the figure by a few percent at most.
#[derive(Clone, Debug, Serialize)]
pub struct TaskCost {
    /// Stream entries acknowledged over the measured seconds.
    pub tasks: u64,
    /// Their rate.
    pub tasks_per_second: f64,
    /// CPU-µs of the agents' processes and the broker per task.
    pub agents_and_broker_cpu_us_per_task: f64,
}

impl TaskCost {
    /// From two `INFO commandstats` readings `seconds` apart, and the
    /// processes' mean cores over the same seconds.
    fn between(
        before: &BTreeMap<String, u64>,
        after: &BTreeMap<String, u64>,
        seconds: f64,
        processes: &[ProcessFigures],
    ) -> Option<TaskCost> {
        let acks = |reading: &BTreeMap<String, u64>| reading.get("xack").copied().unwrap_or(0);
        let tasks = acks(after).saturating_sub(acks(before));
        if seconds <= 0.0 || tasks == 0 {
            return None;
        }
        let task_path = |p: &&ProcessFigures| p.name.starts_with("agents") || p.name == "broker";
        let cores: f64 = processes.iter().filter(task_path).map(|p| p.cpu_cores_mean).sum();
        Some(TaskCost {
            tasks,
            tasks_per_second: tasks as f64 / seconds,
            agents_and_broker_cpu_us_per_task: cores * seconds * 1e6 / tasks as f64,
        })
    }
}

/// A finished measurement and where it was written.
#[derive(Debug)]
pub struct Measured {
    /// The figures.
    pub report: CostReport,
    /// Its folder.
    pub dir: PathBuf,
}

/// Measures `options.scenario`'s topology under `options.load`.
pub async fn run(options: CostOptions, interrupt: &Interrupt) -> Result<Measured, RunFailed> {
    options.load.check().map_err(RunError::from)?;
    let scenario = options.load.scenario(&options.scenario);
    let mut programs = vec![options.binaries.q2o("q2o-loadgen")];
    programs.extend(options.binaries.of_topology(&scenario.topology));
    Binaries::check(&programs).map_err(RunError::from)?;
    // Before anything of the run is started, so that the machine is as quiet as it gets.
    let reference_work = tokio::task::spawn_blocking(ReferenceWork::measure).await.ok();
    let folder = RunFolder::create(&options.reports, &format!("{}-cost", scenario.name))?;
    let failed = |error: RunError| RunFailed { error, dir: Some(folder.dir.clone()) };
    let plan = SessionPlan::local(&scenario.topology, &options.binaries, &folder.dir, &folder.id);
    let measured = Session::run(plan, interrupt, async |session: &Session| {
        measure(&scenario, &options, &session.env, &folder.dir).await
    })
    .await;
    folder.remove_data();
    let Loaded { idle, results, span, figures, redis } = measured.map_err(failed)?;
    let mut report = CostReport::new(&scenario, &folder, &results, span, figures, idle);
    report.reference_work = reference_work;
    if let Some(r) = &redis {
        report.redis_commands_per_request =
            RedisCommands::between(&r.before, &r.after, r.seconds, report.requests_per_second);
        report.tasks = TaskCost::between(&r.before, &r.after, r.seconds, &report.processes);
    }
    write(&folder.dir, &report).map_err(|e| failed(RunError::io(&folder.dir)(e)))?;
    folder.link_latest();
    Ok(Measured { report, dir: folder.dir })
}

impl Load {
    fn check(&self) -> Result<(), FlagError> {
        let bad = |flag, reason: &str| Err(FlagError { flag, reason: reason.to_owned() });
        if self.users == 0 {
            return bad("--users", "must be at least 1");
        }
        if self.hold < Duration::from_secs(5) {
            return bad("--hold", "must be at least 5s: CPU is sampled once a second");
        }
        if self.idle < Duration::from_secs(2) {
            return bad("--idle", "must be at least 2s");
        }
        Ok(())
    }

    /// The scenario as measured: its users at this count, ramped in at
    /// most 30 s, held for the warm-up and the hold.
    fn scenario(&self, scenario: &Scenario) -> Scenario {
        let mut measured = scenario.clone();
        measured.load.users = self.users;
        measured.load.ramp_rate = scenario.load.ramp_rate.max(self.users as f64 / 30.0);
        measured.load.hold = self.warm_up_after_ramp(scenario) + self.hold;
        measured.load.ramp_down = Duration::from_secs(1);
        measured
    }

    /// One mean think time: users that just logged in make their first calls at once.
    fn warm_up_after_ramp(&self, scenario: &Scenario) -> Duration {
        scenario.load.think.mean().min(Duration::from_secs(30))
    }
}

/// What [`measure`] took.
struct Loaded {
    /// The idle services.
    idle: Resources,
    /// The users' results.
    results: RunResults,
    /// The seconds of the load measured: after the ramp and one think time.
    span: Range<usize>,
    /// Every process over `span`.
    figures: Resources,
    /// Redis's command counts as `span` started and ended.
    redis: Option<Readings>,
}

/// Two `INFO commandstats` readings and the seconds between them.
struct Readings {
    before: BTreeMap<String, u64>,
    after: BTreeMap<String, u64>,
    seconds: f64,
}

/// The idle services, then the load.
async fn measure(
    scenario: &Scenario,
    options: &CostOptions,
    env: &Environment,
    dir: &Path,
) -> Result<Loaded, RunError> {
    let bar = crate::progress::bar(options.progress, 0, "s");
    bar.set_message("letting the stack settle");
    env.settle(0.1, Duration::from_secs(60)).await;
    bar.set_message(format!("measuring the idle stack for {:?}", options.load.idle));
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let idle = async {
        tokio::time::sleep(options.load.idle).await;
        let _ = stop.send(());
    };
    let ((), timeline) = tokio::join!(idle, env.sample_resources(&scenario.topology, stopped));
    let idle = timeline.figures(0..usize::MAX, &[]);

    let plan = scenario.user_plan();
    let addrs = (0..scenario.loadgen_processes()).map(|_| free_addr()).collect::<Result<Vec<_>, _>>()?;
    let urls = (&env.endpoints.rest_urls[..], &env.endpoints.grpc_urls[..]);
    let users = Users::new(&plan, &scenario.load.api_key, urls, &addrs, &dir.join("loadgen"));
    let skipped = plan.ramp_up() + options.load.warm_up_after_ramp(&options.scenario);
    bar.set_message(format!("{} users: ramp, then {:?} measured", plan.users, options.load.hold));
    users.start(env, &options.binaries.q2o("q2o-loadgen")).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    // The command census is one figure of many: without it the rest still stands.
    let redis = match &env.endpoints.redis_url {
        Some(url) => RedisStore::connect(RedisStoreOptions::new(url.as_str()))
            .await
            .inspect_err(|err| tracing::warn!(%err, "cannot reach Redis to count its commands"))
            .ok(),
        None => None,
    };
    let load = async {
        bar.set_length(plan.total().as_secs());
        let started = tokio::time::Instant::now();
        let mut readings = Vec::new();
        for at in [skipped, skipped + options.load.hold] {
            tokio::time::sleep_until(started + at).await;
            bar.set_position(started.elapsed().as_secs());
            if let Some(redis) = &redis {
                match redis.commands_served().await {
                    Ok(calls) => readings.push((tokio::time::Instant::now(), calls)),
                    Err(err) => tracing::warn!(%err, "cannot read Redis's command counts"),
                }
            }
        }
        while started.elapsed() < plan.total() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            bar.set_position(started.elapsed().as_secs());
        }
        // Bounded: the users' plan, then a minute for goose to let them go.
        let exited = users.wait(&env.harness, Duration::from_secs(60)).await;
        let _ = stop.send(());
        let redis = match <[_; 2]>::try_from(readings) {
            Ok([(from, before), (to, after)]) => Some(Readings { before, after, seconds: (to - from).as_secs_f64() }),
            Err(_) => None,
        };
        (exited, redis)
    };
    let ((exited, redis), timeline) = tokio::join!(load, env.sample_resources(&scenario.topology, stopped));
    bar.finish_and_clear();
    if !exited {
        tracing::warn!("a loadgen process outlived its plan by a minute and was stopped");
    }
    let results = users.results(&dir.join("logs"))?;
    let requests: Vec<u64> = results.seconds.iter().map(|s| s.requests).collect();
    let span = skipped.as_secs() as usize..(skipped + options.load.hold).as_secs() as usize;
    let figures = timeline.figures(span.clone(), &requests);
    Ok(Loaded { idle, results, span, figures, redis })
}

impl CostReport {
    /// The figures of seconds `span` of the load (those `loaded` covers).
    fn new(
        scenario: &Scenario,
        folder: &RunFolder,
        results: &RunResults,
        span: Range<usize>,
        loaded: Resources,
        idle: Resources,
    ) -> Self {
        let seconds = results.seconds.get(span.start.min(results.seconds.len())..span.end.min(results.seconds.len()));
        let seconds = seconds.unwrap_or_default();
        let measured_seconds = seconds.len() as f64;
        let requests: u64 = seconds.iter().map(|s| s.requests).sum();
        let failed: u64 = seconds.iter().map(|s| s.errors).sum();
        let per_request =
            |cores: f64| if requests == 0 { 0.0 } else { cores * measured_seconds * 1e6 / requests as f64 };
        let cores_of = |keep: &dyn Fn(&ProcessFigures) -> bool| -> f64 {
            loaded.processes.iter().filter(|p| keep(p)).map(|p| p.cpu_cores_mean).sum()
        };
        let is_loadgen = |p: &ProcessFigures| p.name.starts_with("loadgen");
        let loadgen_rss: u64 = loaded.processes.iter().filter(|p| is_loadgen(p)).map(|p| p.rss_peak_bytes).sum();
        let services: Vec<ProcessFigures> = idle.processes.into_iter().filter(|p| p.role == Role::Service).collect();
        CostReport {
            schema: 1,
            scenario: scenario.name.clone(),
            run_id: folder.id.clone(),
            started_at: rfc3339(folder.started),
            users: scenario.load.users,
            measured_seconds,
            requests,
            requests_per_second: if measured_seconds > 0.0 { requests as f64 / measured_seconds } else { 0.0 },
            failed,
            machine_cpu_us_per_request: per_request(loaded.machine.cpu_busy_mean * loaded.machine.cores as f64),
            services_cpu_us_per_request: per_request(cores_of(&|p| p.role == Role::Service)),
            loadgen_cpu_us_per_request: per_request(cores_of(&is_loadgen)),
            loadgen_rss_bytes_per_user: loadgen_rss as f64 / scenario.load.users.max(1) as f64,
            runs_per_request: loaded.processes.iter().map(|p| p.runs_per_request).sum(),
            redis_commands_per_request: None,
            tasks: None,
            processes: loaded.processes,
            idle_cores: services.iter().map(|p| p.cpu_cores_mean).sum(),
            idle: services,
            reference_work: None,
        }
    }

    /// The figures as a Markdown page.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# Cost of {}: {} users\n\nRun {} ({}). {} requests in {:.0} s measured ({:.0}/s), {} failed.\n\n",
            self.scenario,
            self.users,
            self.run_id,
            self.started_at,
            self.requests,
            self.measured_seconds,
            self.requests_per_second,
            self.failed
        );
        md.push_str(
            "| process | role | cores | CPU-µs/request | runs/request | wait µs/run | RSS peak MiB | idle cores |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for p in &self.processes {
            let idle =
                self.idle.iter().find(|i| i.name == p.name).map_or("-".into(), |i| format!("{:.3}", i.cpu_cores_mean));
            let us = p.cpu_us_per_request.map_or("-".into(), |us| format!("{us:.1}"));
            let runs = p.runs_per_request.map_or("-".into(), |runs| format!("{runs:.2}"));
            let wait = p.wait_us_per_run.map_or("-".into(), |us| format!("{us:.0}"));
            let role = if p.role == Role::Service { "service" } else { "harness" };
            let rss = p.rss_peak_bytes as f64 / (1 << 20) as f64;
            md.push_str(&format!(
                "| {} | {role} | {:.3} | {us} | {runs} | {wait} | {rss:.0} | {idle} |\n",
                p.name, p.cpu_cores_mean
            ));
        }
        md.push_str(&format!(
            "\n- machine: {:.1} CPU-µs per request\n- services: {:.1} CPU-µs per request\n- loadgen: {:.1} CPU-µs per request, {:.1} KiB of RSS per user\n- idle stack: {:.3} cores\n",
            self.machine_cpu_us_per_request,
            self.services_cpu_us_per_request,
            self.loadgen_cpu_us_per_request,
            self.loadgen_rss_bytes_per_user / 1024.0,
            self.idle_cores
        ));
        if let Some(runs) = self.runs_per_request {
            md.push_str(&format!(
                "- runs on a core: {runs:.2} per request, the processes above together (each wake-up, and each return after being preempted)\n"
            ));
        }
        if let Some(redis) = &self.redis_commands_per_request {
            let top: Vec<String> = redis.by_command.iter().take(8).map(|(name, n)| format!("{name} {n:.2}")).collect();
            md.push_str(&format!("- redis: {:.2} commands per request ({})\n", redis.total, top.join(", ")));
        }
        if let Some(tasks) = &self.tasks {
            md.push_str(&format!(
                "- tasks: {} finished ({:.1}/s, Redis's XACK calls); the agents and the broker spent {:.1} CPU-µs per task\n",
                tasks.tasks, tasks.tasks_per_second, tasks.agents_and_broker_cpu_us_per_task
            ));
        }
        if let Some(work) = &self.reference_work {
            md.push_str(&format!(
                "- machine speed: the reference work took {:.1} ms of CPU (median of {} rounds, {:.1}–{:.1}), \
                 timed before the stack started (compute only: it does not track wake-ups or system calls)\n",
                work.median_ms, work.rounds, work.min_ms, work.max_ms
            ));
        }
        md
    }
}

fn write(dir: &Path, report: &CostReport) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("cost.json"), json + "\n")?;
    std::fs::write(dir.join("cost.md"), report.markdown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_commands_are_counted_per_request_most_first() {
        let reading = |pairs: &[(&str, u64)]| pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        let before = reading(&[("get", 100), ("set", 50)]);
        let after = reading(&[("get", 700), ("set", 50), ("evalsha", 1_200)]);
        // 10 s at 60 requests/s: 600 requests.
        let redis = RedisCommands::between(&before, &after, 10.0, 60.0).unwrap();
        assert_eq!(redis.by_command, [("evalsha".to_owned(), 2.0), ("get".to_owned(), 1.0)]);
        assert_eq!(redis.total, 3.0);
        assert!(RedisCommands::between(&before, &after, 10.0, 0.0).is_none(), "no requests, no ratio");
    }

    #[test]
    fn the_task_path_is_charged_per_acknowledged_task() {
        let reading = |pairs: &[(&str, u64)]| pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        let process = |name: &str, cores: f64| ProcessFigures {
            name: name.into(),
            role: Role::Service,
            cpu_cores_mean: cores,
            cpu_cores_peak: cores,
            cpu_us_per_request: None,
            runs_per_request: None,
            wait_us_per_run: None,
            rss_peak_bytes: 0,
            open_files_peak: 0,
        };
        let processes =
            [process("agents-0", 0.1), process("agents-1", 0.1), process("broker", 0.05), process("gateway-0", 0.5)];
        // 1,000 tasks in 10 s on 0.25 cores of agents and broker: 2.5 s of CPU.
        let before = reading(&[("xack", 500), ("get", 9)]);
        let after = reading(&[("xack", 1_500), ("get", 90_000)]);
        let tasks = TaskCost::between(&before, &after, 10.0, &processes).unwrap();
        assert_eq!((tasks.tasks, tasks.tasks_per_second), (1_000, 100.0));
        assert!((tasks.agents_and_broker_cpu_us_per_task - 2_500.0).abs() < 1e-6, "{tasks:?}");
        assert!(TaskCost::between(&before, &before, 10.0, &processes).is_none(), "no tasks, no ratio");
        assert!(TaskCost::between(&reading(&[]), &reading(&[]), 10.0, &processes).is_none());
    }
}
