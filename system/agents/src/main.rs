use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use q2o_agents::config::Flags;
use q2o_agents::{Agents, Config};
use q2o_common::store::{RedisStore, RedisStoreOptions};
use q2o_common::telemetry::{announce_listening, exit_code, init_tracing, shutdown_signal};

/// The Q2O agent workers and agent services.
#[derive(Debug, Parser)]
#[command(name = "q2o-agents", version)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Re-read the activity log into a consumer group and print what it saw (JSON).
    Replay {
        /// The group to replay into (a new name starts a fresh ledger).
        #[arg(long)]
        group: String,
        /// Read from the first offset, ignoring the group's committed offsets.
        #[arg(long)]
        from_beginning: bool,
        /// Give up after this long.
        #[arg(long, default_value = "5m", value_parser = q2o_common::config::parse_duration)]
        timeout: std::time::Duration,
    },
}

/// mimalloc, not the system's malloc, with transparent huge pages off
/// (`q2o_common::huge_pages`). Counted with callgrind over 50 s of 1,000
/// phase2 users (`q2o-bench cost`, both agents processes wrapped in valgrind,
/// counters zeroed after the warm-up): 297,000 instructions per request on
/// glibc (two runs: 295,696 and 299,183), 278,000 on mimalloc (277,607 and
/// 278,826), 6.5 % fewer.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// On the runtime `Q2O_WORKER_THREADS` asks for (tokio's per-core default without it).
fn main() -> ExitCode {
    init_tracing("info");
    q2o_common::huge_pages::disable_or_warn();
    let cli = Cli::parse();
    q2o_common::runtime::run("q2o-agents", async { exit_code("q2o-agents", run(cli).await) })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.flags)?;
    let store = RedisStore::connect(RedisStoreOptions::new(&config.redis_url))
        .await
        .with_context(|| format!("cannot connect to Redis at {}", config.redis_url))?;
    if let Some(Command::Replay { group, from_beginning, timeout }) = cli.command {
        let summary = q2o_agents::replay(&config, Arc::new(store), &group, from_beginning, timeout).await?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let agents = Agents::bind(config, Arc::new(store), prometheus::Registry::new()).await?;
    announce_listening("q2o-agents", &[("http", agents.http_addr()), ("grpc", agents.grpc_addr())]);
    agents.serve(shutdown_signal()).await?;
    Ok(())
}
