use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use q2o_common::store::{RedisStore, RedisStoreOptions};
use q2o_common::telemetry::{announce_listening, exit_code, init_tracing, shutdown_signal};
use q2o_gateway::{Config, Gateway, config::Flags};

/// The Q2O API gateway: REST and gRPC over Redis.
#[derive(Debug, Parser)]
#[command(name = "q2o-gateway", version)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
}

/// On the runtime `Q2O_WORKER_THREADS` asks for (tokio's per-core default without it).
fn main() -> ExitCode {
    init_tracing("info");
    let cli = Cli::parse();
    q2o_common::runtime::run("q2o-gateway", async { exit_code("q2o-gateway", run(cli).await) })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.flags)?;
    let store = RedisStore::connect(RedisStoreOptions::new(&config.redis_url))
        .await
        .with_context(|| format!("cannot connect to Redis at {}", config.redis_url))?;
    let gateway = Gateway::bind(&config, Arc::new(store), prometheus::Registry::new()).await?;
    announce_listening("q2o-gateway", &[("http", gateway.http_addr()), ("grpc", gateway.grpc_addr())]);
    gateway.serve(shutdown_signal()).await?;
    Ok(())
}
