use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use q2o_common::config::parse_duration;
use q2o_common::telemetry::{init_tracing, shutdown_signal};
use q2o_loadgen::OpenRun;
use q2o_loadgen::arrival::ArrivalSchedule;
use q2o_loadgen::inter_agent::ReviewTarget;
use q2o_loadgen::journeys::ClosedRun;
use q2o_loadgen::journeys::plan::{ProtocolName, ThinkTime, UserPlan, parse_weights};
use q2o_loadgen::metrics::{ClientMetrics, serve};
use q2o_loadgen::recorder::Protocol;
use q2o_loadgen::results::RunResults;
use q2o_loadgen::target::{GatewayTarget, Routed, Step, Target, UrlTarget, parse_mix};

/// The q2o load generator.
#[derive(Debug, Parser)]
#[command(name = "q2o-loadgen", version)]
enum Cli {
    /// Open-model run: requests arrive at a planned rate, latency from the planned start.
    Run(RunArgs),
    /// Closed-model run: goose users log in, then walk journeys with think time.
    Users(UsersArgs),
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

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Gateway REST base URL (e.g. http://127.0.0.1:8080).
    #[arg(long, conflicts_with = "url")]
    rest_url: Option<String>,
    /// Gateway gRPC URL (needed when the mix has grpc: steps).
    #[arg(long)]
    grpc_url: Option<String>,
    /// GET this URL instead of the gateway's operations (step `get`).
    #[arg(long)]
    url: Option<String>,
    /// An agents process's REST base URL, for `rest:review` steps (the inter-agent call).
    #[arg(long, conflicts_with = "url")]
    agent_url: Option<String>,
    /// An agents process's gRPC URL, for `grpc:review` steps.
    #[arg(long, conflicts_with = "url")]
    agent_grpc_url: Option<String>,
    /// API key to log in with.
    #[arg(long, default_value = "demo-key-acme", env = "Q2O_LOADGEN_API_KEY")]
    api_key: String,
    /// Steps and weights, e.g. rest:list_projects=8,grpc:submit_task=2.
    #[arg(long, default_value = "rest:list_projects=6,rest:get_project=2,rest:submit_task=1,rest:project_status=1")]
    mix: String,
    /// Arrival rate in requests per second (at the start, with --ramp-to).
    #[arg(long, allow_negative_numbers = true)]
    rate: f64,
    /// Ramp linearly to this rate by the end of the run.
    #[arg(long, allow_negative_numbers = true)]
    ramp_to: Option<f64>,
    /// How long to run (e.g. 30s, 5m).
    #[arg(long, value_parser = parse_duration)]
    duration: Duration,
    /// Most requests in flight; planned starts beyond it are dropped and counted.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: u64,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, clap::Args)]
struct UsersArgs {
    /// Gateway REST base URL (e.g. http://127.0.0.1:8080).
    #[arg(long)]
    rest_url: String,
    /// Gateway gRPC URL (needed when --protocols has grpc).
    #[arg(long)]
    grpc_url: Option<String>,
    /// API key users log in with.
    #[arg(long, default_value = "demo-key-acme", env = "Q2O_LOADGEN_API_KEY")]
    api_key: String,
    /// Users at the top of the ramp.
    #[arg(long)]
    users: usize,
    /// Users started per second while ramping up.
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    ramp_rate: f64,
    /// How long all users stay (e.g. 60s, 5m).
    #[arg(long, value_parser = parse_duration)]
    hold: Duration,
    /// How long users take to leave at the end.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    ramp_down: Duration,
    /// Pause between steps: exp:MEAN, uniform:LOW..HIGH, const:D or none.
    #[arg(long, default_value = "exp:10s")]
    think: ThinkTime,
    /// Journeys and weights (browse, create_project, submit_task, search).
    #[arg(long, default_value = "browse=5,submit_task=3,search=2,create_project=1")]
    journeys: String,
    /// Protocols and weights, e.g. rest=1,grpc=1.
    #[arg(long, default_value = "rest=1")]
    protocols: String,
    #[command(flatten)]
    common: CommonArgs,
}

/// Flags both models take.
#[derive(Debug, clap::Args)]
struct CommonArgs {
    /// gRPC channels (HTTP/2 connections) the requests share.
    #[arg(long, default_value_t = 4)]
    grpc_channels: usize,
    /// Directory for results.json and latency.hlog.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Serve client-side metrics on this address (port 0 picks one).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Split the run over this many processes (each with 1/N of the rate or the
    /// users) and merge their results exactly into --out. Needs --out.
    #[arg(long, default_value_t = 1)]
    processes: u32,
}

fn main() -> ExitCode {
    init_tracing("warn");
    let cli = Cli::parse();
    // The open-model engine is one task driving every request, and its
    // connections' drivers wake it on the same thread: a single-threaded runtime
    // spares it the cross-thread wake-ups (`--processes` uses more cores). goose
    // users are many tasks and use every core.
    let runtime = match &cli {
        Cli::Users(_) => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        Cli::Run(_) | Cli::Merge { .. } => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(err) => Err(anyhow::Error::new(err).context("cannot start the async runtime")),
    };
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
        Cli::Run(args) => open_run(args).await,
        Cli::Users(args) => users_run(args).await,
    }
}

fn user_plan(args: &UsersArgs) -> anyhow::Result<UserPlan> {
    let plan = UserPlan {
        users: args.users,
        ramp_rate: args.ramp_rate,
        hold: args.hold,
        ramp_down: args.ramp_down,
        think: args.think,
        journeys: parse_weights("--journeys", &args.journeys).map_err(anyhow::Error::msg)?,
        protocols: parse_weights::<ProtocolName>("--protocols", &args.protocols)
            .map_err(anyhow::Error::msg)?
            .into_iter()
            .map(|(p, w)| (p.0, w))
            .collect(),
    };
    plan.validate().map_err(anyhow::Error::msg)?;
    Ok(plan)
}

async fn users_run(args: UsersArgs) -> anyhow::Result<ExitCode> {
    let plan = user_plan(&args)?;
    if args.common.processes == 0 {
        bail!("--processes must be at least 1");
    }
    if args.common.processes > 1 {
        let n = args.common.processes as usize;
        if plan.users < n {
            bail!("--users {} cannot be split over --processes {n}", plan.users);
        }
        let out =
            args.common.out.as_ref().context("--processes needs --out (the children's results are merged there)")?;
        let users = plan.users;
        let split = Split {
            out,
            processes: args.common.processes,
            metrics: args.common.metrics_addr.is_some(),
            scaled: &["--users"],
        };
        return split
            .run(|i, command| {
                // Spread the remainder over the first processes.
                let share = users / n + usize::from(i < users % n);
                command.arg("--users").arg(share.to_string());
            })
            .await;
    }
    let registry = prometheus::Registry::new();
    let metrics = ClientMetrics::new(&registry);
    let _server = serve_metrics(args.common.metrics_addr, registry).await?;
    let run = ClosedRun {
        rest_url: args.rest_url.clone(),
        grpc_url: args.grpc_url.clone(),
        api_key: args.api_key.clone(),
        plan,
        grpc_channels: args.common.grpc_channels,
        out: args.common.out.clone(),
        metrics: Some(metrics),
        progress: true,
    };
    let (results, goose) = run.run(shutdown_signal()).await?;
    let all = results.overall_latency().map_err(anyhow::Error::msg)?;
    let failed: u64 =
        results.steps.iter().flat_map(|s| s.outcomes.iter()).filter(|(o, _)| *o != "ok").map(|(_, n)| n).sum();
    println!(
        "{} users (goose's peak {}): {} requests in {:.1} s ({:.1} req/s), {failed} failed; goose counted {} requests, {} failed{}",
        args.users,
        goose.max_users,
        all.len(),
        results.duration_seconds,
        results.achieved_rate,
        goose.requests,
        goose.failures,
        if goose.interrupted { " (interrupted: partial results)" } else { "" }
    );
    print_latency("latency", &all);
    if let Some(out) = &args.common.out {
        println!("results written to {}", out.join("results.json").display());
    }
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

async fn serve_metrics(
    addr: Option<SocketAddr>,
    registry: prometheus::Registry,
) -> anyhow::Result<Option<AbortOnDrop>> {
    let Some(addr) = addr else { return Ok(None) };
    let (bound, task) = serve(addr, registry).await.with_context(|| format!("--metrics-addr {addr}"))?;
    println!("q2o-loadgen listening: metrics={bound}");
    Ok(Some(AbortOnDrop(task)))
}

async fn open_run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.common.processes == 0 {
        bail!("--processes must be at least 1");
    }
    if args.common.processes > 1 {
        let out =
            args.common.out.as_ref().context("--processes needs --out (the children's results are merged there)")?;
        let n = args.common.processes;
        // Validate before spawning anything.
        ArrivalSchedule::new(args.rate, args.ramp_to.unwrap_or(args.rate), args.duration)
            .map_err(anyhow::Error::msg)?;
        let (rate, ramp_to) = (args.rate, args.ramp_to);
        let split =
            Split { out, processes: n, metrics: args.common.metrics_addr.is_some(), scaled: &["--rate", "--ramp-to"] };
        return split
            .run(|_, command| {
                command.arg("--rate").arg((rate / f64::from(n)).to_string());
                if let Some(end) = ramp_to {
                    command.arg("--ramp-to").arg((end / f64::from(n)).to_string());
                }
            })
            .await;
    }
    let schedule = ArrivalSchedule::new(args.rate, args.ramp_to.unwrap_or(args.rate), args.duration)
        .map_err(anyhow::Error::msg)?;
    if args.max_in_flight == 0 {
        bail!("--max-in-flight must be at least 1");
    }
    let (target, mix): (Arc<dyn Target>, Vec<(Step, u32)>) = match &args.url {
        Some(url) => {
            (Arc::new(UrlTarget::new(url).map_err(anyhow::Error::msg)?), vec![("get".parse().expect("valid"), 1)])
        }
        None => {
            let mix = parse_mix(&args.mix).map_err(anyhow::Error::msg)?;
            (Arc::new(routed(&args, &mix).await?), mix)
        }
    };
    let registry = prometheus::Registry::new();
    let metrics = ClientMetrics::new(&registry);
    let _server = serve_metrics(args.common.metrics_addr, registry).await?;
    let run = OpenRun {
        target,
        mix,
        schedule,
        max_in_flight: args.max_in_flight,
        out: args.common.out.clone(),
        metrics: Some(metrics),
        progress: true,
    };
    let (results, summary) = run.run(shutdown_signal()).await?;
    let all = results.overall_latency().map_err(anyhow::Error::msg)?;
    let failed: u64 =
        results.steps.iter().flat_map(|s| s.outcomes.iter()).filter(|(o, _)| *o != "ok").map(|(_, n)| n).sum();
    println!(
        "{} requests in {:.1} s ({:.1} req/s), {failed} failed, {} dropped starts{}",
        all.len(),
        results.duration_seconds,
        results.achieved_rate,
        summary.dropped,
        if summary.interrupted { " (interrupted: partial results)" } else { "" }
    );
    print_latency("latency from planned start", &all);
    if let Some(out) = &args.common.out {
        println!("results written to {}", out.join("results.json").display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The gateway and the agents, each connected only if the mix has steps for it.
async fn routed(args: &RunArgs, mix: &[(Step, u32)]) -> anyhow::Result<Routed> {
    let has = |review: bool, protocol: Protocol| {
        mix.iter().any(|(s, _)| (s.name == "review") == review && s.protocol == protocol)
    };
    let channels = args.common.grpc_channels;
    let gateway = if has(false, Protocol::Rest) || has(false, Protocol::Grpc) {
        let rest = args.rest_url.as_deref().context("--mix has gateway steps; give --rest-url (or --url)")?;
        if has(false, Protocol::Grpc) && args.grpc_url.is_none() {
            bail!("--mix has grpc: steps; give --grpc-url");
        }
        let grpc = args.grpc_url.as_deref().filter(|_| has(false, Protocol::Grpc));
        Some(GatewayTarget::connect(rest, grpc, &args.api_key, channels).await?)
    } else {
        None
    };
    let agents = if has(true, Protocol::Rest) || has(true, Protocol::Grpc) {
        let rest = args.agent_url.as_deref().filter(|_| has(true, Protocol::Rest));
        let grpc = args.agent_grpc_url.as_deref().filter(|_| has(true, Protocol::Grpc));
        if has(true, Protocol::Rest) && rest.is_none() {
            bail!("--mix has rest:review; give --agent-url");
        }
        if has(true, Protocol::Grpc) && grpc.is_none() {
            bail!("--mix has grpc:review; give --agent-grpc-url");
        }
        Some(ReviewTarget::connect(rest, grpc, channels).await?)
    } else {
        None
    };
    Ok(Routed { gateway, agents })
}

/// Runs this same command in `--processes` child processes, each with its
/// share of the load and its own results directory, then merges their results.
struct Split<'a> {
    out: &'a PathBuf,
    processes: u32,
    /// Whether children serve metrics (each on a port of its own).
    metrics: bool,
    /// Flags whose values each child gets its own share of.
    scaled: &'a [&'a str],
}

impl Split<'_> {
    async fn run(&self, share: impl Fn(usize, &mut tokio::process::Command)) -> anyhow::Result<ExitCode> {
        let (out, n) = (self.out, self.processes);
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let dropped: Vec<&str> =
            ["--processes", "--out", "--metrics-addr"].into_iter().chain(self.scaled.iter().copied()).collect();
        let mut args = std::env::args().skip(1);
        let subcommand = args.next().unwrap_or_default();
        let mut passed: Vec<String> = Vec::new();
        let mut skip = false;
        for arg in args {
            if skip {
                skip = false;
                continue;
            }
            let flag = arg.split('=').next().unwrap_or_default();
            if dropped.contains(&flag) {
                skip = !arg.contains('=');
                continue;
            }
            passed.push(arg);
        }
        let mut children = Vec::new();
        for i in 0..n {
            let dir = out.join(format!("part-{i}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let mut command = tokio::process::Command::new(&exe);
            command.arg(&subcommand).args(&passed);
            share(i as usize, &mut command);
            if self.metrics {
                command.args(["--metrics-addr", "127.0.0.1:0"]);
            }
            command.arg("--out").arg(&dir).kill_on_drop(true);
            command.stdout(std::fs::File::create(dir.join("stdout.log"))?);
            command.stderr(std::fs::File::create(dir.join("stderr.log"))?);
            children.push((dir, command.spawn().context("cannot start a loadgen process")?));
        }
        println!("running {n} q2o-loadgen processes; logs in {}/part-*", out.display());
        let pids: Vec<u32> = children.iter().filter_map(|(_, child)| child.id()).collect();
        let mut interrupted = false;
        for (_, child) in &mut children {
            tokio::select! {
                status = child.wait() => { status?; }
                () = shutdown_signal(), if !interrupted => {
                    interrupted = true;
                    // Ask every child to stop and write its partial results.
                    for pid in &pids {
                        // SAFETY: kill(2) on our own children's pids.
                        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGTERM) };
                    }
                    child.wait().await?;
                }
            }
        }
        let mut parts = Vec::new();
        for (dir, _) in &children {
            match RunResults::read(&dir.join("results.json")) {
                Ok(part) => parts.push(part),
                Err(err) => {
                    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                    bail!("{err}; that process said: {}", stderr.trim());
                }
            }
        }
        let merged = RunResults::merge(&parts).map_err(anyhow::Error::msg)?;
        merged.write(out)?;
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
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
