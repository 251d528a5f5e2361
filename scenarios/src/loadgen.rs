//! The load generator as the runner's child: the one place where a loadgen
//! command line is made (from the loadgen's own typed commands).
//!
//! * [`Users`] are the closed model of a gate run and of each capacity step:
//!   `q2o-loadgen users` processes under the harness's supervisor, each with
//!   its share of the users.
//! * An [`OpenStep`] is one open-model round of the comparison: `q2o-loadgen
//!   run` at a fixed rate for a fixed time, bounded, with the CPU time it used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use q2o_env::cpu;
use q2o_env::environment::Environment;
use q2o_env::priority::{self, Tier};
use q2o_env::supervisor::{Readiness, ServiceSpec, Supervisor};
use q2o_loadgen::command::{RunCommand, UsersCommand};
use q2o_loadgen::journeys::plan::UserPlan;
use q2o_loadgen::results::RunResults;

use crate::error::RunError;

/// The closed-model users of a gate run, spread over loadgen processes and gateway addresses.
#[derive(Debug)]
pub struct Users {
    commands: Vec<UsersCommand>,
    name: String,
}

impl Users {
    /// `plan`'s users over one process per entry of `metrics` (each serving
    /// its metrics there), process `i` on gateway `i % rest_urls.len()`,
    /// writing into `out/part-<i>`.
    pub fn new(
        plan: &UserPlan,
        api_key: &str,
        (rest_urls, grpc_urls): (&[String], &[String]),
        metrics: &[SocketAddr],
        out: &Path,
    ) -> Users {
        let processes = metrics.len();
        let commands = metrics
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let gateway = i % rest_urls.len();
                let mut command = UsersCommand::new(rest_urls[gateway].clone(), plan).share(i, processes);
                command.grpc_url = grpc_urls.get(gateway).cloned();
                command.api_key = api_key.to_owned();
                // goose lets its users go in whole seconds.
                command.ramp_down = plan.ramp_down.max(Duration::from_secs(1));
                command.common.out = Some(out.join(format!("part-{i}")));
                command.common.metrics_addr = Some(*addr);
                command
            })
            .collect();
        Users { commands, name: "loadgen".into() }
    }

    /// The same users, their processes named `<name>-<i>` in logs and the
    /// supervisor (a search runs one set of users after another).
    pub fn named(self, name: impl Into<String>) -> Users {
        Users { name: name.into(), ..self }
    }

    /// The same users, each process leaving the requests that finish in
    /// its first `warm_up` out of its results' latencies and outcomes.
    pub fn with_warm_up(mut self, warm_up: Duration) -> Users {
        for command in &mut self.commands {
            command.warm_up = warm_up;
        }
        self
    }

    /// The name of process `i`.
    fn process_name(&self, i: usize) -> String {
        format!("{}-{i}", self.name)
    }

    /// Starts every process under `env`'s harness supervisor, at the load
    /// tier's CPU priority; each is ready once it serves its metrics.
    pub async fn start(&self, env: &Environment, loadgen: &Path) -> Result<(), RunError> {
        for (i, command) in self.commands.iter().enumerate() {
            env.harness
                .start(ServiceSpec {
                    name: self.process_name(i),
                    program: loadgen.to_owned(),
                    args: command.to_args(),
                    env: vec![("Q2O_LOG".into(), "warn".into()), users_runtime()],
                    cwd: None,
                    ready: Readiness::LogLine("q2o-loadgen listening"),
                    restart: false,
                    nice: env.priorities.nice(Tier::Load),
                })
                .await?;
        }
        Ok(())
    }

    /// Waits for every process to exit (each gets `grace` beyond its plan,
    /// then is stopped); whether all exited on their own.
    pub async fn wait(&self, supervisor: &Supervisor, grace: Duration) -> bool {
        let mut all_exited = true;
        for i in 0..self.commands.len() {
            let name = self.process_name(i);
            if supervisor.wait_exit(&name, grace).await.is_none() {
                all_exited = false;
                supervisor.terminate(&name);
                supervisor.wait_exit(&name, Duration::from_secs(15)).await;
            }
        }
        all_exited
    }

    /// Every process's interval log, read; a process that left none is skipped
    /// (its results say why).
    pub fn intervals(&self) -> Vec<q2o_loadgen::results::LoggedInterval> {
        self.commands
            .iter()
            .filter_map(|c| c.common.out.as_ref())
            .filter_map(|out| q2o_loadgen::results::read_interval_log(&out.join("latency.hlog")).ok())
            .flatten()
            .collect()
    }

    /// Every process's results, merged exactly; a process that left none is
    /// named with the last lines of its log.
    pub fn results(&self, logs: &Path) -> Result<RunResults, RunError> {
        let mut parts = Vec::new();
        for (i, command) in self.commands.iter().enumerate() {
            let path = command.common.out.as_ref().expect("set in new").join("results.json");
            let part = RunResults::read(&path).map_err(|e| {
                let log = last_lines(&logs.join(format!("{}.log", self.process_name(i))));
                RunError::Loadgen(format!("{e}; {} said: {log}", self.process_name(i)))
            })?;
            parts.push(part);
        }
        RunResults::merge(&parts).map_err(RunError::Loadgen)
    }
}

/// One open-model step: a `q2o-loadgen run` command and where it writes.
#[derive(Clone, Debug)]
pub struct OpenStep {
    /// The `q2o-loadgen` program.
    pub loadgen: PathBuf,
    /// What to offer, where, how fast, for how long.
    pub command: RunCommand,
    /// Its nice value (the environment's load tier).
    pub nice: i32,
}

/// What one step measured.
#[derive(Debug)]
pub struct StepRun {
    /// The loadgen's results (merged over its processes).
    pub results: RunResults,
    /// CPU seconds the loadgen processes used.
    pub client_cpu_seconds: f64,
}

/// Time a loadgen gets beyond its duration to connect, drain and write.
const GRACE: Duration = Duration::from_secs(60);

impl OpenStep {
    /// `command` with its output in `out`.
    pub fn new(loadgen: PathBuf, mut command: RunCommand, out: PathBuf, nice: i32) -> OpenStep {
        command.common.out = Some(out);
        OpenStep { loadgen, command, nice }
    }

    fn out(&self) -> &Path {
        self.command.common.out.as_deref().expect("set in new")
    }

    /// Runs the step to its end (a bounded wait: the duration plus a minute,
    /// then the loadgen is killed and the step fails). Dropping the future
    /// kills the loadgen.
    pub async fn run(&self) -> Result<StepRun, RunError> {
        let out = self.out();
        std::fs::create_dir_all(out).map_err(RunError::io(out))?;
        let log = |name: &str| std::fs::File::create(out.join(name)).map_err(RunError::io(out.join(name)));
        let mut command = tokio::process::Command::new(&self.loadgen);
        command
            .args(self.command.to_args())
            .env("Q2O_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(log("stdout.log")?)
            .stderr(log("stderr.log")?)
            .kill_on_drop(true);
        priority::start_at(&mut command, self.nice);
        let before = cpu::waited_children_seconds();
        let mut child = command.spawn().map_err(RunError::io(&self.loadgen))?;
        if let Some(pid) = child.id() {
            priority::spawned("q2o-loadgen", pid, self.nice);
        }
        let duration = self.command.duration;
        let status = match tokio::time::timeout(duration + GRACE, child.wait()).await {
            Ok(status) => status.map_err(RunError::io(&self.loadgen))?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(RunError::Loadgen(format!(
                    "the loadgen outlived its {duration:?} step by a minute and was stopped"
                )));
            }
        };
        let client_cpu_seconds = cpu::waited_children_seconds() - before;
        if !status.success() {
            let said = last_lines(&out.join("stderr.log"));
            return Err(RunError::Loadgen(format!("the loadgen failed ({status}): {said}")));
        }
        let results = RunResults::read(&out.join("results.json"))?;
        Ok(StepRun { results, client_cpu_seconds })
    }
}

/// Runs `steps` at once (one per gateway replica when no load balancer
/// spreads the load) and merges their results exactly.
pub async fn run_together(steps: &[OpenStep]) -> Result<StepRun, RunError> {
    if let [one] = steps {
        return one.run().await;
    }
    let before = cpu::waited_children_seconds();
    let runs = futures::future::join_all(steps.iter().map(OpenStep::run)).await;
    let client_cpu_seconds = cpu::waited_children_seconds() - before;
    let parts = runs.into_iter().map(|r| r.map(|run| run.results)).collect::<Result<Vec<_>, _>>()?;
    let results = RunResults::merge(&parts).map_err(RunError::Loadgen)?;
    Ok(StepRun { results, client_cpu_seconds })
}

/// A users process's runtime, named in its environment so that the
/// resource table knows its core limit: the runner's own
/// `Q2O_WORKER_THREADS` if set, else one thread (the loadgen's default).
fn users_runtime() -> (String, String) {
    let var = q2o_common::runtime::WORKER_THREADS_VAR;
    let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "current".into());
    (var.to_owned(), value)
}

fn last_lines(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}
