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

/// mimalloc, not the system's malloc, with transparent huge pages off
/// (`q2o_common::huge_pages`). Counted with callgrind over 50 s of 1,000
/// phase2 users (`q2o-bench cost`, this process wrapped in valgrind, counters
/// zeroed after the warm-up): 486,000 instructions per request on glibc (two
/// runs: 483,850 and 487,747), 455,000 on mimalloc (461,816 and 448,819), 6 %
/// fewer. Most of this process's work is tantivy writing and merging segments.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// On the runtime `Q2O_WORKER_THREADS` asks for (tokio's per-core default without it).
fn main() -> ExitCode {
    init_tracing("info");
    q2o_common::huge_pages::disable_or_warn();
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
