//! One error type for both front-ends, converted to a JSON body (REST) or a
//! `tonic::Status` (gRPC) in one place each.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

use q2o_common::log_storm::LogStorm;
use q2o_common::store::{RateDecision, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// Requests that failed inside the gateway, logged without a line per request under overload.
pub(crate) static FAILURES: LazyLock<LogStorm> = LazyLock::new(|| LogStorm::new("requests"));

/// The gRPC metadata key of retry pushback, in milliseconds.
pub const RETRY_PUSHBACK: &str = "grpc-retry-pushback-ms";

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credential, or one that is unknown or expired.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The request is malformed; `field` names the culprit when there is one.
    #[error("{message}")]
    Invalid {
        /// The offending field (`name`, `tags[2]`, `project_id` ...).
        field: Option<String>,
        /// A sentence for the client.
        message: String,
    },
    /// The body could not be decoded (bad JSON, wrong content type, too large).
    #[error("{message}")]
    Body {
        /// The HTTP status axum chose (400, 413, 415, 422).
        status: StatusCode,
        /// axum's description, which names the field for data errors.
        message: String,
    },
    /// The record does not exist for this tenant (whether or not another tenant has one).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The tenant's token bucket is empty.
    #[error("rate limit exceeded; retry after {} ms", .0.retry_after.as_millis())]
    RateLimited(RateDecision),
    /// Admission control turned the request away; the client may retry after this.
    #[error("the gateway is at its concurrency limit; retry after {} ms", .0.as_millis())]
    Overloaded(std::time::Duration),
    /// The request's deadline passed before it was answered.
    #[error("the request's deadline passed before it was answered")]
    DeadlineExceeded,
    /// A dependency this gateway forwards to is not configured.
    #[error("{0}")]
    Unavailable(&'static str),
    /// A dependency this gateway forwards to failed; the detail is logged.
    #[error("upstream {0} failed")]
    Upstream(&'static str),
    /// Storage failed; the detail is logged, not returned.
    #[error("internal error")]
    Store(#[from] StoreError),
}

impl ApiError {
    /// A malformed field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ApiError::Invalid { message: format!("{field}: {}", message.into()), field: Some(field) }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Invalid { .. } | ApiError::Body { .. } => "invalid_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::DeadlineExceeded => "deadline_exceeded",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Upstream(_) => "upstream",
            ApiError::Store(_) => "internal",
        }
    }

    fn log_if_internal(&self) {
        if let ApiError::Store(err) = self {
            FAILURES.error("storage", err);
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What an error response says.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `unauthenticated`, `invalid_request`, `not_found`, `rate_limited`,
    /// `overloaded`, `deadline_exceeded`, `unavailable`, `upstream`, `internal`.
    pub code: &'static str,
    /// One sentence for a human.
    pub message: String,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Adds `X-RateLimit-*` headers describing `decision` to `response`.
pub(crate) fn rate_limit_headers(response: &mut Response, decision: &RateDecision) {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(decision.reset_after.as_secs_f64().ceil() as u64));
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        let status = match &self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::Body { status, .. } => *status,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let field = match &self {
            ApiError::Invalid { field, .. } => field.clone(),
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code: self.code(), message: self.to_string(), field } };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::RateLimited(decision) = &self {
            rate_limit_headers(&mut response, decision);
            let retry = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
        }
        if let ApiError::Overloaded(retry_after) = &self {
            // Retry-After counts whole seconds (RFC 9110); never 0, which would invite an instant retry.
            let retry = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
        }
        response
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        err.log_if_internal();
        let message = err.to_string();
        match err {
            ApiError::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            ApiError::Invalid { .. } | ApiError::Body { .. } => tonic::Status::invalid_argument(message),
            ApiError::NotFound(_) => tonic::Status::not_found(message),
            ApiError::RateLimited(decision) => {
                let mut status = tonic::Status::resource_exhausted(message);
                let retry = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                status.metadata_mut().insert("retry-after", retry.into());
                status.metadata_mut().insert("x-ratelimit-limit", decision.limit.into());
                status.metadata_mut().insert("x-ratelimit-remaining", decision.remaining.into());
                status
            }
            ApiError::Overloaded(retry_after) => {
                // gRPC's retry pushback (A6): the client waits this long before retrying.
                let mut status = tonic::Status::unavailable(message);
                let pushback = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
                status.metadata_mut().insert(RETRY_PUSHBACK, pushback.into());
                status
            }
            ApiError::DeadlineExceeded => tonic::Status::deadline_exceeded(message),
            ApiError::Unavailable(_) | ApiError::Upstream(_) => tonic::Status::unavailable(message),
            ApiError::Store(_) => tonic::Status::internal(message),
        }
    }
}
