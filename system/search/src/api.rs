//! The query API.
//!
//! | route | |
//! |---|---|
//! | `GET /api/v1/search?tenant=&q=&page=&size=&agent_type=&status=&month=` | ranked hits, highlights, facets |
//! | `GET /api/v1/search/autocomplete?tenant=&prefix=&limit=` | project names by prefix |
//! | `GET /health`, `/ready`, `/metrics` | probes and Prometheus |
//!
//! `tenant` is set by the gateway from the caller's credential; this service is
//! internal and trusts it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use q2o_common::domain::TenantId;
use q2o_common::metrics::{HttpMetrics, track_http};
use q2o_common::telemetry::render_metrics;
use serde::Deserialize;

use crate::index::{Filters, MAX_PAGE, MAX_PAGE_SIZE, SearchIndex};
use crate::query_plan::QueryPlan;

#[derive(Clone, Debug)]
pub(crate) struct ApiState {
    pub(crate) index: Arc<SearchIndex>,
    pub(crate) registry: prometheus::Registry,
    pub(crate) http: HttpMetrics,
    pub(crate) service_keys: q2o_common::service_key::ServiceKeys,
}

/// A rejected request: 400 with the gateway's error shape.
#[derive(Debug)]
struct BadRequest {
    field: &'static str,
    message: String,
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": "invalid_request", "message": self.message, "field": self.field }
        });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

fn bad(field: &'static str, message: impl Into<String>) -> BadRequest {
    let message = message.into();
    BadRequest { field, message: if message.starts_with(field) { message } else { format!("{field}: {message}") } }
}

/// Searches that failed, logged without a line per request under overload.
static FAILURES: std::sync::LazyLock<q2o_common::log_storm::LogStorm> =
    std::sync::LazyLock::new(|| q2o_common::log_storm::LogStorm::new("searches"));

fn internal(err: impl std::fmt::Display) -> Response {
    FAILURES.error("internal", &err);
    let body = serde_json::json!({ "error": { "code": "internal", "message": "internal error" } });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    tenant: Option<String>,
    q: Option<String>,
    page: Option<usize>,
    size: Option<usize>,
    agent_type: Option<String>,
    status: Option<String>,
    month: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutocompleteParams {
    tenant: Option<String>,
    prefix: Option<String>,
    limit: Option<usize>,
}

fn tenant(value: Option<String>) -> Result<TenantId, BadRequest> {
    value.ok_or_else(|| bad("tenant", "is required"))?.parse().map_err(|e: String| bad("tenant", e))
}

pub(crate) fn app(state: ApiState) -> Router {
    let keys = state.service_keys.clone();
    Router::new()
        .route("/api/v1/search", get(search))
        .route("/api/v1/search/autocomplete", get(autocomplete))
        .route_layer(axum::middleware::from_fn_with_state(keys, q2o_common::service_key::require))
        .route("/health", get(|| async { Json(serde_json::json!({ "status": "ok" })) }))
        .route("/ready", get(|| async { Json(serde_json::json!({ "status": "ready" })) }))
        .route("/metrics", get(|State(state): State<ApiState>| async move { render_metrics(&state.registry) }))
        .layer(axum::middleware::from_fn_with_state(state.http.clone(), track_http))
        .with_state(state)
}

fn query_rejection(err: axum::extract::rejection::QueryRejection) -> Response {
    let body = serde_json::json!({ "error": { "code": "invalid_request", "message": err.body_text() } });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// `YYYY-MM` as the schema's pattern `^[0-9]{4}-(0[1-9]|1[0-2])$` says.
fn is_month(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 7
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && matches!((b[5], b[6]), (b'0', b'1'..=b'9') | (b'1', b'0'..=b'2'))
}

async fn search(
    State(state): State<ApiState>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(err) => return query_rejection(err),
    };
    let checked = (|| {
        let tenant = tenant(params.tenant)?;
        let plan = QueryPlan::parse(params.q.as_deref().unwrap_or_default()).map_err(|e| bad("q", e.to_string()))?;
        let size = params.size.unwrap_or(10);
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(bad("size", format!("must be between 1 and {MAX_PAGE_SIZE}, got {size}")));
        }
        let page = params.page.unwrap_or(1);
        if page == 0 || page > MAX_PAGE {
            return Err(bad("page", format!("must be between 1 and {MAX_PAGE}, got {page}")));
        }
        if let Some(month) = &params.month
            && !is_month(month)
        {
            return Err(bad("month", "must be YYYY-MM, with a month from 01 to 12"));
        }
        let filters = Filters { agent_type: params.agent_type, status: params.status, month: params.month };
        Ok((tenant, plan, filters, page, size))
    })();
    let (tenant, plan, filters, page, size) = match checked {
        Ok(checked) => checked,
        Err(bad) => return bad.into_response(),
    };
    let index = Arc::clone(&state.index);
    in_index(move || index.search(tenant.as_str(), &plan, &filters, page, size)).await
}

/// Runs a (CPU-bound, blocking) index call off the runtime and answers with its result.
async fn in_index<T: serde::Serialize + Send + 'static>(
    call: impl FnOnce() -> Result<T, crate::index::IndexError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(call).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(err)) => internal(err),
        Err(err) => internal(err),
    }
}

async fn autocomplete(
    State(state): State<ApiState>,
    params: Result<Query<AutocompleteParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(err) => return query_rejection(err),
    };
    let checked = (|| {
        let tenant = tenant(params.tenant)?;
        let prefix = params.prefix.unwrap_or_default();
        // Only an empty prefix is refused, as the schema says (minLength 1);
        // one of spaces alone suggests nothing.
        if prefix.is_empty() {
            return Err(bad("prefix", "must not be empty"));
        }
        if prefix.chars().count() > 64 {
            return Err(bad("prefix", "must be at most 64 characters"));
        }
        let limit = params.limit.unwrap_or(10);
        if limit == 0 || limit > 25 {
            return Err(bad("limit", "must be between 1 and 25"));
        }
        Ok((tenant, prefix, limit))
    })();
    let (tenant, prefix, limit) = match checked {
        Ok(checked) => checked,
        Err(bad) => return bad.into_response(),
    };
    let index = Arc::clone(&state.index);
    in_index(move || Ok(serde_json::json!({ "suggestions": index.autocomplete(tenant.as_str(), &prefix, limit)? })))
        .await
}
