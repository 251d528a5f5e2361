//! REST/JSON versus gRPC/protobuf on one running stack: the same operations
//! and the same inter-agent review call, at the same open-model arrival rate,
//! in short rounds that alternate between the protocols (REST then gRPC, then
//! gRPC then REST...) so that whatever else the machine does hits both alike.
//! Then one saturation round per protocol for the most each can carry.
//!
//! The result is `comparison.json`, `report.md` and `report.html` in the
//! usual run folder; exit 0 when every round was clean enough to compare
//! (errors and late starts under the file's bound), 1 when not.

pub mod file;
mod measure;
pub mod report;
pub mod rounds;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use q2o_env::binaries::Binaries;
use q2o_env::priority::Tier;
use q2o_env::{Environment, cpu};
use q2o_loadgen::command::{Endpoints, RunCommand};
use q2o_loadgen::recorder::Protocol;

use crate::error::{RunError, RunFailed};
use crate::loadgen::OpenStep;
use crate::run_folder::{RunFolder, rfc3339};
use crate::scenario::default_api_key;
use crate::session::{Interrupt, Session, SessionPlan};
use file::ComparisonFile;
use q2o_report::summary::Machine;
use report::ComparisonReport;
use rounds::{Measured, Round};

/// What to run.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// The comparison, loaded.
    pub file: ComparisonFile,
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

/// Runs a comparison. `interrupt` (Ctrl-C) ends it: the services and the
/// loadgen are stopped and the run counts as failed.
pub async fn run(options: CompareOptions, interrupt: &Interrupt) -> Result<Compared, RunFailed> {
    let mut comparison = options.file.clone();
    if let Some(scale) = options.time_scale {
        comparison.compare.scale_time(scale).map_err(RunError::from)?;
    }
    let mut programs = vec![options.binaries.q2o("q2o-loadgen")];
    programs.extend(options.binaries.of_topology(&comparison.topology));
    Binaries::check(&programs).map_err(RunError::from)?;
    let folder = RunFolder::create(&options.reports, &comparison.name)?;
    let failed = |error: RunError| RunFailed { error, dir: Some(folder.dir.clone()) };
    eprintln!(
        "q2o-bench: {} — starting the local environment (logs in {})",
        comparison.name,
        folder.dir.join("logs").display()
    );
    let plan = SessionPlan::local(&comparison.topology, &options.binaries, &folder.dir, &folder.id);
    let measured = Session::run(plan, interrupt, async |session: &Session| {
        drive(&comparison, &options, &session.env, &folder).await
    })
    .await;
    folder.remove_data();
    let measured = measured.map_err(failed)?;
    let mut report = ComparisonReport::new(&comparison, &measured, &folder.id, Machine::here(String::new()));
    report.started_at = rfc3339(folder.started);
    report.finished_at = rfc3339(SystemTime::now());
    report::write_all(&folder.dir, &report).map_err(|e| failed(RunError::io(&folder.dir)(e)))?;
    folder.link_latest();
    Ok(Compared { valid: report.valid, dir: folder.dir, report })
}

async fn drive(
    comparison: &ComparisonFile,
    options: &CompareOptions,
    env: &Environment,
    folder: &RunFolder,
) -> Result<Measured, RunError> {
    let c = &comparison.compare;
    let missing = |what: &str| RunError::System(format!("the topology started no {what}"));
    let e = &env.endpoints;
    let agent = e.agents.first().ok_or_else(|| missing("agents process"))?;
    let gateway_rest = e.rest_urls.first().ok_or_else(|| missing("gateway"))?;
    let gateway_grpc = e.grpc_urls.first().ok_or_else(|| missing("gateway gRPC"))?;
    let api_key = default_api_key();
    let endpoints = Endpoints {
        rest_url: Some(gateway_rest.clone()),
        grpc_url: Some(gateway_grpc.clone()),
        agent_url: Some(agent.rest.clone()),
        agent_grpc_url: Some(agent.grpc.clone()),
    };
    let loadgen_dir = folder.dir.join("loadgen");
    let step = |protocol: Protocol, rate: f64, duration: Duration, out: &str| {
        let mut command = RunCommand::new(endpoints.clone(), c.mix(protocol), rate, duration);
        command.api_key = api_key.clone();
        command.common.processes = c.loadgen_processes;
        let nice = env.priorities.nice(Tier::Load);
        OpenStep::new(options.binaries.q2o("q2o-loadgen"), command, loadgen_dir.join(out), nice)
    };
    let total = 2 + 2 * c.rounds + 2;
    let bar = crate::progress::bar(options.progress, total as u64, " steps");

    // Warm-up: connections, caches and the JIT-free but allocation-heavy first seconds.
    for protocol in [Protocol::Rest, Protocol::Grpc] {
        bar.set_message(format!("warm-up, {protocol}"));
        step(protocol, c.rate, c.warmup, &format!("warmup-{protocol}")).run().await?;
        bar.inc(1);
    }
    let payloads =
        measure::payloads(&c.operations, &api_key, [gateway_rest, gateway_grpc], [&agent.rest, &agent.grpc]).await?;

    let mut rounds = Vec::new();
    for r in 0..c.rounds {
        let order = if r % 2 == 0 { [Protocol::Rest, Protocol::Grpc] } else { [Protocol::Grpc, Protocol::Rest] };
        for protocol in order {
            bar.set_message(format!("round {} of {}, {protocol} at {} req/s", r + 1, c.rounds, c.rate));
            let run = step(protocol, c.rate, c.round, &format!("round-{r}-{protocol}"));
            rounds.push(measured_round(env, protocol, run).await?);
            bar.inc(1);
        }
    }
    let mut saturation = Vec::new();
    for protocol in [Protocol::Rest, Protocol::Grpc] {
        bar.set_message(format!("saturation, {protocol} offered {} req/s", c.saturation_rate));
        let mut run = step(protocol, c.saturation_rate, c.saturation, &format!("saturation-{protocol}"));
        run.command.max_in_flight = c.saturation_in_flight;
        saturation.push(measured_round(env, protocol, run).await?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Measured { rounds, saturation, payloads })
}

/// Runs `step`, with the CPU time of every service process across it.
async fn measured_round(env: &Environment, protocol: Protocol, step: OpenStep) -> Result<Round, RunError> {
    let services = env.service_pids().await;
    let cpu_now = || services.iter().map(|(name, pid)| (name.clone(), cpu::process_seconds(*pid))).collect::<Vec<_>>();
    let before = cpu_now();
    let run = step.run().await?;
    let after = cpu_now();
    let server_cpu_seconds =
        before.into_iter().zip(after).filter_map(|((name, b), (_, a))| Some((name, (a? - b?).max(0.0)))).collect();
    Ok(Round { protocol, results: run.results, client_cpu_seconds: run.client_cpu_seconds, server_cpu_seconds })
}
