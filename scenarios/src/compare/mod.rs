//! REST/JSON versus gRPC/protobuf on one running stack: the same operations
//! and the same inter-agent review call, at the same open-model arrival rate,
//! in short rounds that alternate between the protocols (REST then gRPC, then
//! gRPC then REST...) so that whatever else the machine does hits both alike.
//! Then one saturation round per protocol for the most each can carry.
//!
//! The result is `comparison.json`, `report.md` and `report.html` in the
//! usual run folder; exit 0 when every round was clean enough to compare
//! (errors and late starts under the file's bound), 1 when not.

mod file;
mod measure;
pub mod report;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use file::{Comparison, Rounds};
use q2o_loadgen::recorder::Protocol;
use q2o_loadgen::results::RunResults;

use crate::cpu;
use crate::local::{Binaries, EnvKind, Environment};
use crate::open_load::OpenStep;
use crate::report::summary::{Environment as Machine, LoadFigures};
use crate::run::{RunFailed, link_latest, new_run_dir, rfc3339};
use report::{ComparisonReport, RoundFigures};

/// What to run.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// The comparison file.
    pub file: PathBuf,
    /// Where `<name>/<run-id>/` goes.
    pub reports: PathBuf,
    /// Programs.
    pub binaries: Binaries,
    /// Multiplies every round's and the saturation step's length (0.2 for a quick look).
    pub time_scale: Option<f64>,
    /// Whether to draw a progress bar.
    pub progress: bool,
}

/// A finished comparison: whether its rounds were clean, its folder and report.
#[derive(Debug)]
pub struct Compared {
    /// Every round within the file's error and late-start bounds.
    pub valid: bool,
    /// The run folder.
    pub dir: PathBuf,
    /// What was written there.
    pub report: ComparisonReport,
}

/// One round as measured.
#[derive(Debug)]
pub(crate) struct Round {
    pub(crate) protocol: Protocol,
    pub(crate) results: RunResults,
    pub(crate) client_cpu_seconds: f64,
    /// CPU seconds of every service process over the round, by service.
    pub(crate) server_cpu_seconds: Vec<(String, f64)>,
}

/// Runs a comparison. `stop` (Ctrl-C) ends it: the services and the loadgen
/// are stopped and the run counts as failed.
pub async fn compare(options: CompareOptions, stop: impl Future<Output = ()>) -> Result<Compared, RunFailed> {
    let failed = |reason: String| RunFailed { reason, dir: None };
    let mut comparison = Comparison::load(&options.file).map_err(|e| failed(e.to_string()))?;
    if let Some(scale) = options.time_scale {
        comparison.compare.scale_time(scale).map_err(failed)?;
    }
    let scenario = comparison.scenario();
    options.binaries.check(&scenario).map_err(failed)?;
    let started = SystemTime::now();
    let base = options.reports.join(&comparison.name);
    let (dir, run_id) = new_run_dir(&base, started).map_err(failed)?;
    let failed_in = |reason: String| RunFailed { reason, dir: Some(dir.clone()) };
    eprintln!(
        "q2o-bench: {} — starting the local environment (logs in {})",
        comparison.name,
        dir.join("logs").display()
    );
    let env = Environment::start(&scenario, &options.binaries, &dir, EnvKind::Local, &run_id).await;
    let outcome = match env {
        Err(err) => Err(err.to_string()),
        Ok(env) => {
            let result = tokio::select! {
                result = drive(&comparison, &options, &env, &dir) => result,
                () = stop => Err("interrupted: the run was stopped by a signal".to_owned()),
            };
            env.stop().await;
            result
        }
    };
    let _ = std::fs::remove_dir_all(dir.join("data"));
    let measured = outcome.map_err(failed_in)?;
    let mut report = ComparisonReport::new(&comparison, &measured, &run_id, Machine::here(String::new()));
    report.started_at = rfc3339(started);
    report.finished_at = rfc3339(SystemTime::now());
    report::write_all(&dir, &report).map_err(|e| failed_in(format!("cannot write the report: {e}")))?;
    link_latest(&base, &dir);
    Ok(Compared { valid: report.valid, dir, report })
}

/// Everything the report is made from.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) rounds: Vec<Round>,
    pub(crate) saturation: Vec<Round>,
    pub(crate) payloads: Vec<measure::PayloadRow>,
}

async fn drive(
    comparison: &Comparison,
    options: &CompareOptions,
    env: &Environment,
    dir: &std::path::Path,
) -> Result<Measured, String> {
    let c = &comparison.compare;
    let (agent_rest, agent_grpc) = env.agent_urls.first().cloned().ok_or("the topology started no agents process")?;
    let gateway_rest = env.rest_urls.first().cloned().ok_or("the topology started no gateway")?;
    let gateway_grpc = env.grpc_urls.first().cloned().ok_or("the topology started no gateway gRPC")?;
    let api_key = crate::scenario::default_api_key();
    let target = vec![
        "--rest-url".to_owned(),
        gateway_rest.clone(),
        "--grpc-url".into(),
        gateway_grpc.clone(),
        "--agent-url".into(),
        agent_rest.clone(),
        "--agent-grpc-url".into(),
        agent_grpc.clone(),
        "--api-key".into(),
        api_key.clone(),
    ];
    let step = |protocol: Protocol, rate: f64, duration: Duration, out: PathBuf| OpenStep {
        loadgen: options.binaries.q2o("q2o-loadgen"),
        target: target.clone(),
        mix: c.mix(protocol),
        rate,
        duration,
        max_in_flight: None,
        processes: c.loadgen_processes,
        out,
    };
    let total = 2 + 2 * c.rounds + 2;
    let bar = crate::progress::bar(options.progress, total as u64, " steps");
    let loadgen_dir = dir.join("loadgen");

    // Warm-up: connections, caches and the JIT-free but allocation-heavy first seconds.
    for protocol in [Protocol::Rest, Protocol::Grpc] {
        bar.set_message(format!("warm-up, {}", protocol.as_str()));
        let out = loadgen_dir.join(format!("warmup-{}", protocol.as_str()));
        step(protocol, c.rate, c.warmup, out).run().await?;
        bar.inc(1);
    }
    let payloads =
        measure::payloads(&c.operations, &api_key, [&gateway_rest, &gateway_grpc], [&agent_rest, &agent_grpc]).await?;

    let mut rounds = Vec::new();
    for r in 0..c.rounds {
        let order = if r % 2 == 0 { [Protocol::Rest, Protocol::Grpc] } else { [Protocol::Grpc, Protocol::Rest] };
        for protocol in order {
            bar.set_message(format!("round {} of {}, {} at {} req/s", r + 1, c.rounds, protocol.as_str(), c.rate));
            let out = loadgen_dir.join(format!("round-{r}-{}", protocol.as_str()));
            rounds.push(measured_round(env, protocol, step(protocol, c.rate, c.round, out)).await?);
            bar.inc(1);
        }
    }
    let mut saturation = Vec::new();
    for protocol in [Protocol::Rest, Protocol::Grpc] {
        bar.set_message(format!("saturation, {} offered {} req/s", protocol.as_str(), c.saturation_rate));
        let out = loadgen_dir.join(format!("saturation-{}", protocol.as_str()));
        let mut run = step(protocol, c.saturation_rate, c.saturation, out);
        run.max_in_flight = Some(c.saturation_in_flight);
        saturation.push(measured_round(env, protocol, run).await?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Measured { rounds, saturation, payloads })
}

/// Runs `step`, with the CPU time of every service process across it.
async fn measured_round(env: &Environment, protocol: Protocol, step: OpenStep) -> Result<Round, String> {
    let services = env.supervisor.named_pids();
    let cpu_now = || services.iter().map(|(name, pid)| (name.clone(), cpu::process_seconds(*pid))).collect::<Vec<_>>();
    let before = cpu_now();
    let run = step.run().await?;
    let after = cpu_now();
    let server_cpu_seconds =
        before.into_iter().zip(after).filter_map(|((name, b), (_, a))| Some((name, (a? - b?).max(0.0)))).collect();
    Ok(Round { protocol, results: run.results, client_cpu_seconds: run.client_cpu_seconds, server_cpu_seconds })
}

impl Round {
    pub(crate) fn figures(&self, index: usize) -> RoundFigures {
        let r = &self.results;
        let load = LoadFigures::of(r);
        RoundFigures {
            round: index,
            protocol: self.protocol,
            offered_rate: r.target_rate.start,
            achieved_rate: r.achieved_rate,
            requests: load.requests,
            failed: load.failed,
            dropped_starts: r.dropped_starts,
            client_cpu_seconds: self.client_cpu_seconds,
            server_cpu_seconds: self.server_cpu_seconds.iter().map(|(_, s)| s).sum(),
        }
    }
}
