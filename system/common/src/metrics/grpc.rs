use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::{LATENCY_BUCKETS, names, register};

/// `grpc_server_handled_total` and `grpc_server_handling_seconds`, as go-grpc-prometheus names them.
#[derive(Clone, Debug)]
pub struct GrpcMetrics {
    handled: IntCounterVec,
    handling: HistogramVec,
}

/// The outcome label of a gRPC call, e.g. `OK` or `NOT_FOUND`.
pub trait GrpcCode {
    /// The code's canonical upper-case name.
    fn code_name(&self) -> &'static str;
}

impl GrpcCode for tonic::Code {
    fn code_name(&self) -> &'static str {
        use tonic::Code::*;
        match self {
            Ok => "OK",
            Cancelled => "CANCELLED",
            Unknown => "UNKNOWN",
            InvalidArgument => "INVALID_ARGUMENT",
            DeadlineExceeded => "DEADLINE_EXCEEDED",
            NotFound => "NOT_FOUND",
            AlreadyExists => "ALREADY_EXISTS",
            PermissionDenied => "PERMISSION_DENIED",
            ResourceExhausted => "RESOURCE_EXHAUSTED",
            FailedPrecondition => "FAILED_PRECONDITION",
            Aborted => "ABORTED",
            OutOfRange => "OUT_OF_RANGE",
            Unimplemented => "UNIMPLEMENTED",
            Internal => "INTERNAL",
            Unavailable => "UNAVAILABLE",
            DataLoss => "DATA_LOSS",
            Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl GrpcMetrics {
    /// Creates and registers the gRPC server series.
    pub fn new(registry: &Registry) -> Self {
        let handled = register(
            registry,
            IntCounterVec::new(
                Opts::new(names::GRPC_SERVER_HANDLED_TOTAL, "gRPC calls finished, by status code."),
                &["grpc_service", "grpc_method", "grpc_code"],
            )
            .expect("valid metric"),
        );
        let handling = register(
            registry,
            HistogramVec::new(
                HistogramOpts::new(
                    names::GRPC_SERVER_HANDLING_SECONDS,
                    "gRPC call latency until the response (or stream) starts.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["grpc_service", "grpc_method"],
            )
            .expect("valid metric"),
        );
        Self { handled, handling }
    }

    /// Runs one call and records its latency and status code.
    pub async fn observe<T>(
        &self,
        service: &'static str,
        method: &'static str,
        call: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        let started = Instant::now();
        let result = call.await;
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        self.handled.with_label_values(&[service, method, code.code_name()]).inc();
        self.handling.with_label_values(&[service, method]).observe(started.elapsed().as_secs_f64());
        result
    }
}
