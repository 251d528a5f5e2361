use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use q2o_agents::config::Flags;
use q2o_agents::{Agents, Config};
use q2o_common::store::{RedisStore, RedisStoreOptions};
use q2o_common::telemetry::{announce_listening, init_tracing, shutdown_signal};

/// The Q2O agent workers and agent services.
#[derive(Debug, Parser)]
#[command(name = "q2o-agents", version)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing("info");
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("q2o-agents: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.flags)?;
    let store = RedisStore::connect(RedisStoreOptions::new(&config.redis_url))
        .await
        .with_context(|| format!("cannot connect to Redis at {}", config.redis_url))?;
    let agents = Agents::bind(config, Arc::new(store), prometheus::Registry::new()).await?;
    announce_listening("q2o-agents", &[("http", agents.http_addr()), ("grpc", agents.grpc_addr())]);
    agents.serve(shutdown_signal()).await?;
    Ok(())
}
