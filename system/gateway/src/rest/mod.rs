//! The REST API (axum).
//!
//! | route | |
//! |---|---|
//! | `POST /api/v1/auth/login` | API key -> session token |
//! | `GET, POST /api/v1/projects` | list, create |
//! | `GET, PATCH, DELETE /api/v1/projects/{project_id}` | read, update, delete |
//! | `GET, POST /api/v1/projects/{project_id}/tasks` | list, submit |
//! | `GET /api/v1/projects/{project_id}/status` | task counts by status |
//! | `GET /api/v1/tasks/{task_id}` | read a task and its result |
//! | `GET /api/v1/search`, `/api/v1/search/autocomplete` | forwarded to q2o-search with the caller's tenant |
//! | `GET /api/v1/openapi.json` | this API as OpenAPI 3.1 |
//! | `GET /health`, `/ready`, `/metrics` | probes and Prometheus |
//!
//! Every `/api/v1` route but login and the OpenAPI document needs a credential
//! and takes a rate-limit token. Every `/api/v1` request first passes
//! admission control (503 with `Retry-After` when the gateway is at its
//! limit) and runs under its deadline: the `X-Request-Timeout` header
//! (`250ms`, `2s`; at most the configured `request_timeout`, which is also the
//! default), after which it is answered 504 and its Redis and search calls are
//! dropped.

mod extract;
mod handlers;
pub mod openapi;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use q2o_common::metrics::track_http;

use crate::admission::Front;
use crate::error::{ApiError, rate_limit_headers};
use crate::state::AppState;

/// The REST application, without a socket (tests drive it with `oneshot`).
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    let protected = Router::new()
        .route("/projects", get(handlers::list_projects).post(handlers::create_project))
        .route(
            "/projects/{project_id}",
            get(handlers::get_project).patch(handlers::update_project).delete(handlers::delete_project),
        )
        .route("/projects/{project_id}/tasks", get(handlers::list_tasks).post(handlers::submit_task))
        .route("/projects/{project_id}/status", get(handlers::project_status))
        .route("/tasks/{task_id}", get(handlers::get_task))
        .route("/search", get(handlers::search))
        .route("/search/autocomplete", get(handlers::autocomplete))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit));
    let public = Router::new().route("/auth/login", post(handlers::login)).route("/openapi.json", get(openapi::serve));
    Router::new()
        .nest("/api/v1", protected.merge(public).layer(middleware::from_fn_with_state(state.clone(), guard)))
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.metrics.http.clone(), track_http))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// The header a REST caller sets its deadline with.
pub const REQUEST_TIMEOUT_HEADER: &str = "x-request-timeout";

/// Admission control, then the request under its deadline. Runs before
/// authentication, so that a request turned away costs no Redis call.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let deadline = match deadline(request.headers(), state.request_timeout) {
        Ok(deadline) => deadline,
        Err(err) => return err.into_response(),
    };
    let Ok(permit) = state.admission.try_acquire(Front::Rest) else {
        return ApiError::Overloaded(state.admission.retry_after()).into_response();
    };
    // Dropping the handler's future at the deadline drops its Redis and search
    // calls with it: no work goes on for a caller that has gone.
    let response = match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::DeadlineExceeded.into_response(),
    };
    drop(permit);
    response
}

/// The shortest deadline a caller may set: less leaves no time for a Redis
/// round trip, and would only turn requests into 504s.
pub const SHORTEST_DEADLINE: Duration = Duration::from_millis(10);

/// The request's deadline: its `X-Request-Timeout`, at most `longest`, or `longest`.
fn deadline(headers: &HeaderMap, longest: Duration) -> Result<Duration, ApiError> {
    let Some(value) = headers.get(REQUEST_TIMEOUT_HEADER) else { return Ok(longest) };
    let asked = value
        .to_str()
        .map_err(|_| "is not text".to_owned())
        .and_then(q2o_common::config::parse_duration)
        .and_then(|d| (d >= SHORTEST_DEADLINE).then_some(d).ok_or_else(|| "must be at least 10ms".to_owned()))
        .map_err(|reason| ApiError::field("X-Request-Timeout", reason))?;
    Ok(asked.min(longest))
}

/// Authenticates and rate-limits, then passes the [`Caller`](crate::auth::Caller)
/// to the handler and the limit headers to the client.
async fn admit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // Owned copies: the request (whose body is not Sync) must not be borrowed across the await.
    let (authorization, api_key) = {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        (header(header::AUTHORIZATION.as_str()), header("x-api-key"))
    };
    match state.gate.admit(authorization.as_deref(), api_key.as_deref()).await {
        Ok(caller) => {
            let rate = caller.rate;
            request.extensions_mut().insert(caller);
            let mut response = next.run(request).await;
            if let Some(decision) = rate {
                rate_limit_headers(&mut response, &decision);
            }
            response
        }
        Err(err) => err.into_response(),
    }
}
