use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::{LATENCY_BUCKETS, names, register};

/// `http_requests_total` and `http_request_duration_seconds`, labelled by route template.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Creates and registers the HTTP series.
    pub fn new(registry: &Registry) -> Self {
        let requests = register(
            registry,
            IntCounterVec::new(
                Opts::new(names::HTTP_REQUESTS_TOTAL, "HTTP requests served."),
                &["method", "route", "status"],
            )
            .expect("valid metric"),
        );
        let duration = register(
            registry,
            HistogramVec::new(
                HistogramOpts::new(names::HTTP_REQUEST_DURATION_SECONDS, "HTTP request latency.")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                &["method", "route"],
            )
            .expect("valid metric"),
        );
        Self { requests, duration }
    }
}

/// Middleware recording every request under its route template (never the raw path).
pub async fn track_http(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Unmatched paths share one label value so that scanners cannot blow up cardinality.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    metrics.requests.with_label_values(&[method.as_str(), route.as_str(), status.as_str()]).inc();
    metrics.duration.with_label_values(&[method.as_str(), route.as_str()]).observe(started.elapsed().as_secs_f64());
    response
}
