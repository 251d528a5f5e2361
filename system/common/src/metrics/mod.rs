//! The metric contract: every name the dashboards and alert rules quote, and the
//! instrumentation shared by the services.
//!
//! Each service creates its own [`prometheus::Registry`] and passes it through its
//! state; nothing here registers into the crate's global default registry.

mod grpc;
mod http;
pub mod names;

pub use grpc::{GrpcCode, GrpcMetrics};
pub use http::{HttpMetrics, track_http};

/// Latency buckets in seconds, fine around the 5 ms inter-agent and 50 ms API targets.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
    0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for work that takes seconds (agent tasks, simulated LLM calls).
pub const TASK_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Registers `collector`, panicking on a duplicate or malformed name.
///
/// Metric definitions are static, so a failure here is a programming error that
/// every test run would hit at once.
pub fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &prometheus::Registry, collector: C) -> C {
    registry.register(Box::new(collector.clone())).expect("metric definitions are static and registered once");
    collector
}
