//! One open-model step: `q2o-loadgen run` at a fixed arrival rate for a fixed
//! time, as a child process, with its results and the CPU time it used. The
//! REST-versus-gRPC rounds and the capacity search are made of these.

use std::path::{Path, PathBuf};
use std::time::Duration;

use q2o_loadgen::results::RunResults;

use crate::cpu;

/// What to offer, where.
#[derive(Clone, Debug)]
pub struct OpenStep {
    /// The `q2o-loadgen` program.
    pub loadgen: PathBuf,
    /// Where to send requests: `--rest-url`, `--grpc-url`, `--agent-url`... and their values.
    pub target: Vec<String>,
    /// Steps and weights (`rest:list_projects=6,rest:review=2`).
    pub mix: String,
    /// Requests per second.
    pub rate: f64,
    /// How long.
    pub duration: Duration,
    /// Most requests in flight (the loadgen's default when `None`).
    pub max_in_flight: Option<u64>,
    /// Loadgen processes sharing the rate.
    pub processes: u32,
    /// Directory for `results.json` and the loadgen's output.
    pub out: PathBuf,
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
    /// Runs the step to its end (a bounded wait: the duration plus a minute,
    /// then the loadgen is killed and the step fails). Dropping the future
    /// kills the loadgen.
    pub async fn run(&self) -> Result<StepRun, String> {
        std::fs::create_dir_all(&self.out).map_err(|e| format!("cannot create {}: {e}", self.out.display()))?;
        let log = |name: &str| {
            std::fs::File::create(self.out.join(name))
                .map_err(|e| format!("cannot create a log in {}: {e}", self.out.display()))
        };
        let mut command = tokio::process::Command::new(&self.loadgen);
        command
            .arg("run")
            .args(&self.target)
            .args(["--mix", &self.mix, "--rate", &self.rate.to_string()])
            .args(["--duration", &format!("{}ms", self.duration.as_millis())])
            .args(["--processes", &self.processes.to_string()])
            .arg("--out")
            .arg(&self.out)
            .env("Q2O_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(log("stdout.log")?)
            .stderr(log("stderr.log")?)
            .kill_on_drop(true);
        if let Some(most) = self.max_in_flight {
            command.args(["--max-in-flight", &most.to_string()]);
        }
        let before = cpu::waited_children_seconds();
        let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", self.loadgen.display()))?;
        let status = match tokio::time::timeout(self.duration + GRACE, child.wait()).await {
            Ok(status) => status.map_err(|e| format!("waiting for the loadgen: {e}"))?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(format!("the loadgen outlived its {:?} step by a minute and was stopped", self.duration));
            }
        };
        let client_cpu_seconds = cpu::waited_children_seconds() - before;
        if !status.success() {
            return Err(format!("the loadgen failed ({status}): {}", last_lines(&self.out.join("stderr.log"))));
        }
        let results = RunResults::read(&self.out.join("results.json")).map_err(|e| e.to_string())?;
        Ok(StepRun { results, client_cpu_seconds })
    }
}

/// Runs `steps` at once (one per gateway replica when no load balancer
/// spreads the load) and merges their results exactly.
pub async fn run_together(steps: &[OpenStep]) -> Result<StepRun, String> {
    if let [one] = steps {
        return one.run().await;
    }
    let before = cpu::waited_children_seconds();
    let runs = futures::future::join_all(steps.iter().map(OpenStep::run)).await;
    let client_cpu_seconds = cpu::waited_children_seconds() - before;
    let parts = runs.into_iter().map(|r| r.map(|run| run.results)).collect::<Result<Vec<_>, _>>()?;
    let results = RunResults::merge(&parts)?;
    Ok(StepRun { results, client_cpu_seconds })
}

fn last_lines(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}
