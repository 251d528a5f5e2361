//! The gateway's own series (the HTTP and gRPC ones come from `q2o_common::metrics`).

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use q2o_common::metrics::{GrpcMetrics, HttpMetrics, names, register};

/// Every series the gateway exports.
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    /// HTTP requests by route template.
    pub http: HttpMetrics,
    /// gRPC calls by method and code.
    pub grpc: GrpcMetrics,
    rate_limit: IntCounterVec,
    active_streams: IntGauge,
}

impl GatewayMetrics {
    /// Creates and registers the gateway's series.
    pub fn new(registry: &Registry) -> Self {
        GatewayMetrics {
            http: HttpMetrics::new(registry),
            grpc: GrpcMetrics::new(registry),
            rate_limit: register(
                registry,
                IntCounterVec::new(
                    Opts::new(names::GATEWAY_RATE_LIMIT_DECISIONS_TOTAL, "Rate-limit decisions by outcome."),
                    &["outcome"],
                )
                .expect("valid metric"),
            ),
            active_streams: register(
                registry,
                IntGauge::new(names::GATEWAY_ACTIVE_STREAMS, "Open gRPC update and activity streams.")
                    .expect("valid metric"),
            ),
        }
    }

    pub(crate) fn rate_limit_decision(&self, allowed: bool) {
        let outcome = if allowed { "allowed" } else { "limited" };
        self.rate_limit.with_label_values(&[outcome]).inc();
    }

    /// Counts a stream as open until the guard is dropped.
    pub(crate) fn stream_opened(&self) -> StreamGuard {
        self.active_streams.inc();
        StreamGuard(self.active_streams.clone())
    }
}

/// Decrements the open-stream gauge when the stream ends.
#[derive(Debug)]
pub(crate) struct StreamGuard(IntGauge);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
