use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;
use q2o_common::huge_pages;
use q2o_common::runtime::Flavor;
use q2o_common::telemetry::{init_tracing, shutdown_signal};
use q2o_loadgen::OpenRun;
use q2o_loadgen::arrival::ArrivalSchedule;
use q2o_loadgen::command::{CommonArgs, RunCommand, StartAt, UsersCommand};
use q2o_loadgen::fanout;
use q2o_loadgen::journeys::ClosedRun;
use q2o_loadgen::metrics::{ClientMetrics, serve};
use q2o_loadgen::recorder::Protocol;
use q2o_loadgen::results::RunResults;
use q2o_loadgen::routed::Routed;
use q2o_loadgen::shelf::Shelf;
use q2o_loadgen::step::{Call, Mix, Step};
use q2o_loadgen::target::{Target, UrlTarget};
use q2o_loadgen::weights::Weights;

/// mimalloc, not the system's malloc: phase2's users cost 121 CPU-µs per
/// request with it and 133 without (`just measure-cost`, two runs each). The
/// loadgen shares the machine with the stack it measures, and CPU is what
/// runs out first. Its 4 KiB more RSS per user (19 -> 23) were huge pages,
/// now turned off (`q2o_common::huge_pages`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The q2o load generator.
#[derive(Debug, Parser)]
#[command(name = "q2o-loadgen", version)]
enum Cli {
    /// Open-model run: requests arrive at a planned rate, latency from the planned start.
    Run(RunCommand),
    /// Closed-model run: goose users log in, then walk journeys with think time.
    Users(UsersCommand),
    /// Merge several processes' results.json into one, exactly (HDR histograms added).
    Merge {
        /// results.json files.
        #[arg(required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
        /// Directory for the merged results.json.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    init_tracing("warn");
    huge_pages::disable_or_warn();
    let cli = Cli::parse();
    // Single-threaded by default: the open-model engine is one task driving
    // every request, and its connections' drivers wake it on the same thread;
    // goose users are many tasks, but a process holds at most
    // `users_per_process` of them, and a scenario runs more processes for more
    // users. A work-stealing pool made the users' tasks wake each other across
    // threads: phase2's users cost 140 CPU-µs per request on two workers per
    // process, 126 on one (`just measure-cost`). `Q2O_WORKER_THREADS` still
    // gives a users process more.
    let flavor = match &cli {
        Cli::Users(_) => Flavor::from_env_or(Flavor::CurrentThread).map_err(anyhow::Error::new),
        Cli::Run(_) | Cli::Merge { .. } => Ok(Flavor::CurrentThread),
    };
    let result = flavor.and_then(Flavor::start).and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("q2o-loadgen: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli {
        Cli::Merge { inputs, out } => {
            let parts = inputs.iter().map(|p| RunResults::read(p)).collect::<Result<Vec<_>, _>>()?;
            let merged = RunResults::merge(&parts).map_err(anyhow::Error::msg)?;
            merged.write(&out)?;
            println!("merged {} results into {}", parts.len(), out.join("results.json").display());
            Ok(ExitCode::SUCCESS)
        }
        Cli::Run(command) => open_run(command).await,
        Cli::Users(command) => users_run(command).await,
    }
}

/// Where `--processes` children write, and whether they serve metrics.
fn split_out(common: &CommonArgs) -> anyhow::Result<Option<&PathBuf>> {
    let (processes, out) = (common.processes, &common.out);
    if processes == 0 {
        bail!("--processes must be at least 1");
    }
    if common.serve_results.is_some() {
        if out.is_none() || common.metrics_addr.is_none() {
            bail!("--serve-results serves --out's files on --metrics-addr: give both");
        }
        if processes > 1 {
            bail!("--serve-results serves one process's results: spread the load with --shards, not --processes");
        }
    }
    if processes == 1 {
        return Ok(None);
    }
    out.as_ref().context("--processes needs --out (the children's results are merged there)").map(Some)
}

async fn users_run(command: UsersCommand) -> anyhow::Result<ExitCode> {
    let (shard, shards) = command.common.shard().map_err(anyhow::Error::msg)?;
    if command.users < shards {
        bail!("--users {} cannot be split over --shards {shards}", command.users);
    }
    // Share 0 of 1 is the whole command.
    let command = command.share(shard, shards);
    let plan = command.plan()?;
    if let Some(out) = split_out(&command.common)? {
        let n = command.common.processes as usize;
        if plan.users < n {
            bail!("--users {} cannot be split over --processes {n}", plan.users);
        }
        let children = (0..n)
            .map(|i| {
                let mut child = command.share(i, n);
                child.common = command.common.child(out, i);
                child.to_args()
            })
            .collect();
        return fan_out(out, children).await;
    }
    let registry = prometheus::Registry::new();
    let metrics = ClientMetrics::new(&registry);
    let shelf = shelf(&command.common);
    let _server = serve_metrics(command.common.metrics_addr, registry, shelf.clone()).await?;
    let run = ClosedRun {
        rest_url: command.rest_url.clone(),
        grpc_url: command.grpc_url.clone(),
        api_key: command.api_key.clone(),
        plan,
        grpc_channels: command.common.grpc_channels,
        out: command.common.out.clone(),
        metrics: Some(metrics),
        progress: true,
        warm_up: command.warm_up,
        start_at: command.common.start_at.map(StartAt::system_time),
    };
    let (results, goose) = run.run(shutdown_signal()).await?;
    let all = results.overall_latency().map_err(anyhow::Error::msg)?;
    println!(
        "{} users (goose's peak {}): {} requests in {:.1} s ({:.1} req/s), {} failed{}",
        command.users,
        goose.max_users,
        all.len(),
        results.duration_seconds,
        results.achieved_rate,
        results.failed(),
        if goose.interrupted { " (interrupted: partial results)" } else { "" }
    );
    print_latency("latency", &all);
    if let Some(out) = &command.common.out {
        println!("results written to {}", out.join("results.json").display());
    }
    serve_results(shelf, command.common.serve_results).await;
    Ok(ExitCode::SUCCESS)
}

async fn open_run(command: RunCommand) -> anyhow::Result<ExitCode> {
    let (shard, shards) = command.common.shard().map_err(anyhow::Error::msg)?;
    // Share 0 of 1 is the whole command.
    let command = command.share(shard, shards);
    // Checked before anything is spawned.
    let schedule = ArrivalSchedule::new(command.rate, command.ramp_to.unwrap_or(command.rate), command.duration)
        .map_err(anyhow::Error::msg)?;
    if let Some(out) = split_out(&command.common)? {
        let n = command.common.processes as usize;
        let children = (0..n)
            .map(|i| {
                let mut child = command.share(i, n);
                child.common = command.common.child(out, i);
                child.to_args()
            })
            .collect();
        return fan_out(out, children).await;
    }
    if command.max_in_flight == 0 {
        bail!("--max-in-flight must be at least 1");
    }
    let (target, mix): (Arc<dyn Target>, Mix) = match &command.url {
        Some(url) => (
            Arc::new(UrlTarget::new(url).map_err(anyhow::Error::msg)?),
            Weights(vec![(Call::new(Protocol::Rest, Step::Get), 1)]),
        ),
        None => (Arc::new(Routed::connect(&command).await?), command.mix.clone()),
    };
    let registry = prometheus::Registry::new();
    let metrics = ClientMetrics::new(&registry);
    let shelf = shelf(&command.common);
    let _server = serve_metrics(command.common.metrics_addr, registry, shelf.clone()).await?;
    let run = OpenRun {
        target,
        mix,
        schedule,
        max_in_flight: command.max_in_flight,
        out: command.common.out.clone(),
        metrics: Some(metrics),
        progress: true,
        start_at: command.common.start_at.map(StartAt::system_time),
    };
    let (results, summary) = run.run(shutdown_signal()).await?;
    let all = results.overall_latency().map_err(anyhow::Error::msg)?;
    println!(
        "{} requests in {:.1} s ({:.1} req/s), {} failed, {} dropped starts{}",
        all.len(),
        results.duration_seconds,
        results.achieved_rate,
        results.failed(),
        summary.dropped,
        if summary.interrupted { " (interrupted: partial results)" } else { "" }
    );
    print_latency("latency from planned start", &all);
    if let Some(out) = &command.common.out {
        println!("results written to {}", out.join("results.json").display());
    }
    serve_results(shelf, command.common.serve_results).await;
    Ok(ExitCode::SUCCESS)
}

/// Runs the children of `--processes` and prints their merged figures.
async fn fan_out(out: &std::path::Path, children: Vec<Vec<String>>) -> anyhow::Result<ExitCode> {
    let n = children.len();
    let exe = std::env::current_exe().context("cannot find this executable")?;
    println!("running {n} q2o-loadgen processes; logs in {}/part-*", out.display());
    let merged = fanout::run(&exe, out, children, shutdown_signal()).await?;
    let all = merged.overall_latency().map_err(anyhow::Error::msg)?;
    println!(
        "{} requests from {n} processes in {:.1} s ({:.1} req/s), {} dropped starts",
        all.len(),
        merged.duration_seconds,
        merged.achieved_rate,
        merged.dropped_starts,
    );
    print_latency("latency", &all);
    println!("merged results written to {}", out.join("results.json").display());
    Ok(ExitCode::SUCCESS)
}

fn print_latency(what: &str, all: &hdrhistogram::Histogram<u64>) {
    println!(
        "{what}: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.value_at_quantile(0.5) as f64 / 1e3,
        all.value_at_quantile(0.95) as f64 / 1e3,
        all.value_at_quantile(0.99) as f64 / 1e3,
        all.max() as f64 / 1e3
    );
}

/// With `--serve-results`, the shelf this run's files are served from.
fn shelf(common: &CommonArgs) -> Option<Arc<Shelf>> {
    common.serve_results.and(common.out.clone()).map(|out| Arc::new(Shelf::new(out)))
}

/// Serves the finished run's files until both were fetched, `linger` is
/// over, or the process is asked to stop.
async fn serve_results(shelf: Option<Arc<Shelf>>, linger: Option<std::time::Duration>) {
    let (Some(shelf), Some(linger)) = (shelf, linger) else { return };
    shelf.open();
    println!("serving the results under /results/ until fetched (at most {} s)", linger.as_secs());
    tokio::select! {
        () = shelf.fetched() => println!("results fetched"),
        () = tokio::time::sleep(linger) => println!("nobody fetched the results within {} s", linger.as_secs()),
        () = shutdown_signal() => {}
    }
}

async fn serve_metrics(
    addr: Option<SocketAddr>,
    registry: prometheus::Registry,
    shelf: Option<Arc<Shelf>>,
) -> anyhow::Result<Option<AbortOnDrop>> {
    let Some(addr) = addr else { return Ok(None) };
    let (bound, task) = serve(addr, registry, shelf).await.with_context(|| format!("--metrics-addr {addr}"))?;
    println!("q2o-loadgen listening: metrics={bound}");
    Ok(Some(AbortOnDrop(task)))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
