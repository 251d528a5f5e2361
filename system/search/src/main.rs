use std::process::ExitCode;

use clap::Parser;
use q2o_common::telemetry::{announce_listening, exit_code, init_tracing, shutdown_signal};
use q2o_search::config::Flags;
use q2o_search::{Config, Search};

/// The Q2O search service.
#[derive(Debug, Parser)]
#[command(name = "q2o-search", version)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
}

/// On the runtime `Q2O_WORKER_THREADS` asks for (tokio's per-core default without it).
fn main() -> ExitCode {
    init_tracing("info");
    let cli = Cli::parse();
    q2o_common::runtime::run("q2o-search", async { exit_code("q2o-search", run(cli).await) })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.flags)?;
    let search = Search::bind(config, prometheus::Registry::new()).await?;
    announce_listening("q2o-search", &[("http", search.http_addr())]);
    search.serve(shutdown_signal()).await?;
    Ok(())
}
