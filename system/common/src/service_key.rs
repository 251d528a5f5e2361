//! The credential the services present to each other. q2o-search and the
//! agents' own APIs answer only callers that hold it (the gateway, the agents,
//! and the harness's measurements of the inter-agent call), not whoever
//! reaches their port: the search API takes the tenant as a parameter, which
//! only the gateway may set.
//!
//! Keys are configured like the API keys: each service lists the keys it
//! accepts (`service_keys`) and holds the one it presents (`service_key`);
//! `Q2O_SERVICE_KEY` sets both. Every default is [`DEMO`], so that a laptop's
//! `just up` works as it is; a deployment sets its own (a Secret).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The header (and gRPC metadata key) that carries the key.
pub const HEADER: &str = "x-service-key";

/// The environment variable that sets the key a process presents and accepts.
pub const ENV: &str = "Q2O_SERVICE_KEY";

/// The key of every default configuration.
pub const DEMO: &str = "demo-service-key";

/// The key of this process's environment ([`ENV`]), else [`DEMO`]: what a
/// harness presents to the services it started, which inherit the same.
pub fn from_env() -> String {
    std::env::var(ENV).unwrap_or_else(|_| DEMO.to_owned())
}

/// The keys a service accepts, shared by its routes.
pub type ServiceKeys = Arc<[String]>;

/// Whether `presented` is one of `keys`, in time that does not depend on
/// where the first difference lies.
pub fn accepts(keys: &[String], presented: &[u8]) -> bool {
    keys.iter().fold(false, |found, key| {
        let key = key.as_bytes();
        let same = key.len() == presented.len() && key.iter().zip(presented).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
        found | same
    })
}

/// Refuses a request without an accepted key: 401 with a JSON error over
/// REST, `UNAUTHENTICATED` over gRPC. Put in front of the API's routes only,
/// so that probes and `/metrics` stay open to the orchestrator and Prometheus.
pub async fn require(State(keys): State<ServiceKeys>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if accepts(&keys, presented) {
        return next.run(request).await;
    }
    let message = "this API answers the Q2O services only: send their X-Service-Key";
    let grpc =
        request.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        return tonic::Status::unauthenticated(message).into_http();
    }
    let body = serde_json::json!({ "error": { "code": "unauthenticated", "message": message } });
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

/// Checks the keys of a configuration file's `service_keys`.
pub fn validate(field: &str, keys: &[String]) -> Result<(), crate::config::ConfigError> {
    if keys.is_empty() {
        return Err(crate::config::ConfigError::value(field, "at least one key is needed"));
    }
    if let Some(i) = keys.iter().position(|k| k.len() < 8) {
        return Err(crate::config::ConfigError::value(format!("{field}[{i}]"), "must be at least 8 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listed_key_is_accepted() {
        let keys = vec!["first-key-1".to_owned(), "second-key-2".to_owned()];
        assert!(accepts(&keys, b"second-key-2"));
        for wrong in [&b""[..], b"second-key-", b"second-key-22", b"SECOND-KEY-2"] {
            assert!(!accepts(&keys, wrong), "{wrong:?}");
        }
        assert!(validate("service_keys", &[]).unwrap_err().to_string().contains("service_keys"));
        assert!(validate("service_keys", &["short".into()]).unwrap_err().to_string().contains("service_keys[0]"));
    }
}
