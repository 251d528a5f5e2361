/*!
The q2o load generator.

# Brief overview

* [`journeys::ClosedRun`] is the closed model: goose users log in once and
  walk weighted journeys with think time between steps, over REST or gRPC.

* [`arrival::ArrivalSchedule`] says when each request of an open-model run is
  due: a constant or linearly ramping rate in requests per second.
* [`engine::run`] starts requests on that schedule whether or not earlier ones
  finished and measures each from its *planned* start (the wrk2 method), so
  stalls of the system under test are not hidden by coordinated omission.
* [`target`] holds what a request does: the gateway's operations over REST or
  gRPC ([`target::GatewayTarget`]), the inter-agent review sent straight to an
  agents process ([`inter_agent::ReviewTarget`]), or a plain `GET` ([`target::UrlTarget`]).
* [`recorder::Recorder`] keeps one HDR histogram (µs, 3 significant digits) per
  (protocol, step), outcome counters and a per-second series; [`results`] writes
  them as JSON plus an HdrHistogram interval log and merges several processes'
  results exactly.
* [`metrics::ClientMetrics`] exports `q2o_loadgen_*` for Prometheus.
*/

pub mod arrival;
pub mod command;
pub mod connect;
pub mod engine;
pub mod fanout;
pub mod grpc_channel;
mod http1;
pub mod inter_agent;
pub mod journeys;
pub mod metrics;
pub mod outcome;
pub mod recorder;
pub mod results;
pub mod routed;
pub mod shelf;
pub mod step;
pub mod target;
pub mod weights;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::arrival::ArrivalSchedule;
use crate::engine::EngineSummary;
use crate::metrics::ClientMetrics;
use crate::recorder::Recorder;
use crate::results::{RateSpan, ResultsError, RunResults, write_interval_log};
use crate::step::Mix;
use crate::target::Target;

/// One open-model run.
pub struct OpenRun {
    /// What requests do.
    pub target: Arc<dyn Target>,
    /// Calls and their weights.
    pub mix: Mix,
    /// When requests are due.
    pub schedule: ArrivalSchedule,
    /// Most requests in flight at once; starts beyond it are dropped and counted.
    pub max_in_flight: u64,
    /// Where results go (`results.json`, `latency.hlog`); `None` writes nothing.
    pub out: Option<PathBuf>,
    /// Client-side metrics, when served.
    pub metrics: Option<ClientMetrics>,
    /// Whether to draw a progress bar (on a terminal).
    pub progress: bool,
    /// When the load starts (`--start-at`); at once when `None`.
    pub start_at: Option<SystemTime>,
}

impl std::fmt::Debug for OpenRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenRun").field("schedule", &self.schedule).field("mix", &self.mix).finish_non_exhaustive()
    }
}

impl OpenRun {
    /// Runs until the schedule ends or `stop` resolves (partial results are kept),
    /// then writes the results.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(RunResults, EngineSummary), ResultsError> {
        let keys: Vec<_> = self.mix.0.iter().map(|(call, _)| (call.protocol, call.step)).collect();
        let recorder = Arc::new(Recorder::new(&keys));
        let metrics = self.metrics.as_ref().map(|m| m.with_steps(&keys));
        start_barrier(self.start_at).await;
        let started_at = SystemTime::now();
        let started = std::time::Instant::now();
        if let Some(metrics) = &metrics {
            metrics.set_target_rate(self.schedule.rates().0);
        }
        let bar = self.progress.then(|| progress_bar(self.schedule.duration()));
        let ticker = bar.clone().map(|bar| {
            let recorder = Arc::clone(&recorder);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    every.tick().await;
                    show_progress(&bar, &recorder, started.elapsed(), "");
                }
            })
        });
        let summary = engine::run(
            Arc::clone(&self.target),
            &self.mix.0,
            self.schedule,
            self.max_in_flight,
            Arc::clone(&recorder),
            metrics,
            stop,
        )
        .await;
        if let Some(ticker) = ticker {
            ticker.abort();
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let (start, end) = self.schedule.rates();
        let snapshot = recorder.snapshot();
        let mut results =
            RunResults::from_snapshot(&snapshot, started.elapsed().as_secs_f64(), RateSpan { start, end });
        results.started_at = Some(unix_seconds(started_at));
        if let Some(dir) = &self.out {
            results.write(dir)?;
            write_interval_log(dir, &snapshot, started_at)?;
        }
        Ok((results, summary))
    }
}

/// Waits for `at`, the wall-clock start every shard of one run was given,
/// so that their ramps line up. A start already past by more than a second
/// is said out loud: that shard's load is late by as much (the merge still
/// puts its seconds where they happened).
pub(crate) async fn start_barrier(at: Option<SystemTime>) {
    let Some(at) = at else { return };
    match at.duration_since(SystemTime::now()) {
        Ok(wait) => {
            println!("q2o-loadgen: starting in {:.1} s (--start-at)", wait.as_secs_f64());
            tokio::time::sleep(wait).await;
        }
        Err(late) if late.duration() > Duration::from_secs(1) => {
            tracing::warn!(late_seconds = late.duration().as_secs_f64(), "--start-at is past: starting now");
        }
        Err(_) => {}
    }
}

/// `at` as Unix seconds.
pub(crate) fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Moves the bar to `elapsed` with the live figures: req/s, errors, p95.
pub(crate) fn show_progress(bar: &indicatif::ProgressBar, recorder: &Recorder, elapsed: Duration, prefix: &str) {
    let (requests, errors, p95) = recorder.progress();
    bar.set_position(elapsed.as_secs().min(bar.length().unwrap_or(0)));
    bar.set_message(format!(
        "{prefix}{:.0} req/s, {errors} errors, p95 {:.1} ms",
        requests as f64 / elapsed.as_secs_f64().max(0.001),
        p95 as f64 / 1000.0
    ));
}

pub(crate) fn progress_bar(duration: Duration) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(duration.as_secs());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len}s {msg}")
            .expect("static template is valid")
            .progress_chars("=> "),
    );
    bar
}
