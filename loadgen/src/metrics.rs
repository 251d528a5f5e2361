//! The load generator's own `/metrics`, so that Prometheus can evaluate
//! client-side SLIs during a run.

use std::net::SocketAddr;
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use q2o_common::metrics::{LATENCY_BUCKETS, names, register};
use tokio::net::TcpListener;

use crate::outcome::Outcome;
use crate::recorder::Protocol;
use crate::step::Step;

/// The `q2o_loadgen_*` series.
#[derive(Clone, Debug)]
pub struct ClientMetrics {
    /// Per step of the run (by index): its latency histogram and `ok` counter,
    /// resolved once so that recording does no label lookups.
    steps: Vec<(prometheus::Histogram, IntCounter, Protocol, Step)>,
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
    active_users: IntGauge,
    dropped: IntCounter,
    target_rate: IntGauge,
}

impl ClientMetrics {
    /// Creates and registers the series.
    pub fn new(registry: &Registry) -> ClientMetrics {
        ClientMetrics {
            steps: Vec::new(),
            requests: register(
                registry,
                IntCounterVec::new(
                    Opts::new(names::LOADGEN_REQUESTS_TOTAL, "Requests finished by the load generator, by outcome."),
                    &["protocol", "step", "outcome"],
                )
                .expect("valid metric"),
            ),
            duration: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        names::LOADGEN_REQUEST_DURATION_SECONDS,
                        "Request latency from the planned start, as the client saw it.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["protocol", "step"],
                )
                .expect("valid metric"),
            ),
            in_flight: register(
                registry,
                IntGauge::new(names::LOADGEN_IN_FLIGHT_REQUESTS, "Requests sent and not yet answered.")
                    .expect("valid metric"),
            ),
            active_users: register(
                registry,
                IntGauge::new(
                    names::LOADGEN_ACTIVE_USERS,
                    "Simulated users active now (open model: each arrival is a user with one request in flight).",
                )
                .expect("valid metric"),
            ),
            dropped: register(
                registry,
                IntCounter::new(
                    names::LOADGEN_DROPPED_STARTS_TOTAL,
                    "Planned starts not made on time (in-flight cap).",
                )
                .expect("valid metric"),
            ),
            target_rate: register(
                registry,
                IntGauge::new(names::LOADGEN_TARGET_RATE, "Planned arrival rate, requests per second.")
                    .expect("valid metric"),
            ),
        }
    }

    /// These metrics, addressing the given steps by index (as the recorder does).
    pub fn with_steps(&self, steps: &[(Protocol, Step)]) -> ClientMetrics {
        let steps = steps
            .iter()
            .map(|(protocol, step)| {
                let labels = [protocol.as_str(), step.as_label()];
                let ok = self.requests.with_label_values(&[protocol.as_str(), step.as_label(), "ok"]);
                (self.duration.with_label_values(&labels), ok, *protocol, *step)
            })
            .collect();
        ClientMetrics { steps, ..self.clone() }
    }

    pub(crate) fn record(&self, slot: usize, outcome: Outcome, latency: Duration) {
        let (duration, ok, protocol, step) = &self.steps[slot];
        // As in the recorder: the duration histogram is of the answers the
        // system took on; a shed answer is only counted, by its outcome.
        if !outcome.is_shed() {
            duration.observe(latency.as_secs_f64());
        }
        if outcome.is_ok() {
            ok.inc();
        } else {
            self.requests.with_label_values(&[protocol.as_str(), step.as_label(), &outcome.as_label()]).inc();
        }
    }

    pub(crate) fn set_in_flight(&self, n: u64) {
        self.in_flight.set(n as i64);
        self.active_users.set(n as i64);
    }

    pub(crate) fn set_active_users(&self, n: u64) {
        self.active_users.set(n as i64);
    }

    pub(crate) fn dropped(&self) {
        self.dropped.inc();
    }

    /// Publishes the planned rate.
    pub fn set_target_rate(&self, rate: f64) {
        self.target_rate.set(rate.round() as i64);
    }
}

/// Serves `registry` on `/metrics` at `addr`, and a finished run's files on
/// `/results/{file}` when given a `shelf`, until the returned handle is dropped
/// or aborted; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    shelf: Option<std::sync::Arc<crate::shelf::Shelf>>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let mut app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move { q2o_common::telemetry::render_metrics(&registry) }
        }),
    );
    if let Some(shelf) = shelf {
        app = app.route("/results/{file}", axum::routing::get(crate::shelf::get).with_state(shelf));
    }
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(%err, "metrics server stopped");
        }
    });
    Ok((bound, task))
}
