//! `q2o-monolith`: the phase0 baseline — today's single-server architecture.
//!
//! One process runs the gateway and the agents over an in-memory store and queue
//! (no Redis), with REST inter-agent calls. It runs the same gateway and agent
//! code as the replicated stack; only the [`Store`](q2o_common::store::Store)
//! differs. This crate is a composition root: it links both services so that
//! they can share one process, which is exactly what the baseline measures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use q2o_agents::Agents;
use q2o_agents::config::InterAgentProtocol;
use q2o_common::config::load_file;
use q2o_common::store::{MemoryStore, Store};
use q2o_common::telemetry::{announce_listening, exit_code, init_tracing, shutdown_signal};
use q2o_gateway::Gateway;
use serde::Deserialize;

/// The phase0 baseline: gateway and agents in one process, no Redis.
#[derive(Debug, Parser)]
#[command(name = "q2o-monolith", version)]
struct Cli {
    /// TOML file with `[gateway]` and `[agents]` sections (as for the separate binaries).
    #[arg(long, env = "Q2O_MONOLITH_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the gateway's REST API (port 0 picks a free one).
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// Address of the agents' probes and metrics (port 0 picks a free one).
    #[arg(long)]
    agents_http_addr: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    gateway: q2o_gateway::Config,
    agents: q2o_agents::Config,
}

/// On the runtime `Q2O_WORKER_THREADS` asks for (tokio's per-core default without it).
fn main() -> ExitCode {
    init_tracing("info");
    let cli = Cli::parse();
    q2o_common::runtime::run("q2o-monolith", async { exit_code("q2o-monolith", run(cli).await) })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config: Config = load_file(cli.config.as_deref())?;
    if let Some(addr) = cli.http_addr {
        config.gateway.http_addr = addr;
    }
    if let Some(addr) = cli.agents_http_addr {
        config.agents.http_addr = addr;
    }
    // Today's architecture has no gRPC: inter-agent calls are REST.
    config.agents.inter_agent = InterAgentProtocol::Rest;
    config.gateway.validate()?;
    config.agents.validate()?;

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let gateway = Gateway::bind(&config.gateway, Arc::clone(&store), prometheus::Registry::new()).await?;
    let agents = Agents::bind(config.agents, store, prometheus::Registry::new()).await?;
    announce_listening(
        "q2o-monolith",
        &[("http", gateway.http_addr()), ("grpc", gateway.grpc_addr()), ("agents_http", agents.http_addr())],
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let signal = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let (gateway, agents) = tokio::join!(gateway.serve(signal(stopped.clone())), agents.serve(signal(stopped)));
    gateway?;
    agents?;
    Ok(())
}
