//! The gRPC API (tonic): `Auth`, `Projects`, `Orchestrator` and `AgentMonitor`
//! from `q2o.proto`, over the same operations as REST.
//!
//! Credentials travel in the `authorization` (`Bearer <token>`) or `x-api-key`
//! metadata; rate limiting answers `RESOURCE_EXHAUSTED` with `retry-after`.

mod auth;
mod monitor;
mod orchestrator;
mod projects;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use q2o_proto::v1::agent_monitor_server::AgentMonitorServer;
use q2o_proto::v1::auth_server::AuthServer;
use q2o_proto::v1::orchestrator_server::OrchestratorServer;
use q2o_proto::v1::projects_server::ProjectsServer;
use tonic::service::Routes;

use crate::admission::{Admission, Front};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Every gateway gRPC service behind admission control, ready for
/// `Server::builder().add_routes(..)`.
pub fn routes(state: AppState) -> Routes {
    let admission = Arc::clone(&state.admission);
    let router = Routes::new(AuthServer::new(auth::AuthService { state: state.clone() }))
        .add_service(ProjectsServer::new(projects::ProjectsService { state: state.clone() }))
        .add_service(OrchestratorServer::new(orchestrator::OrchestratorService { state: state.clone() }))
        .add_service(AgentMonitorServer::new(monitor::MonitorService { state }))
        .into_axum_router()
        .layer(middleware::from_fn_with_state(admission, guard));
    Routes::from(router)
}

/// Admission control for a call: `UNAVAILABLE` with retry pushback when the
/// gateway is at its limit. A stream holds its place only until it is open:
/// the limit is on work, and an open stream waiting for updates is not work.
async fn guard(State(admission): State<Arc<Admission>>, request: Request, next: Next) -> Response {
    let Ok(permit) = admission.try_acquire(Front::Grpc) else {
        return tonic::Status::from(ApiError::Overloaded(admission.retry_after())).into_http();
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

/// Authenticates and rate-limits a call from its metadata.
async fn admit<T>(state: &AppState, request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
    let metadata = request.metadata();
    let value = |key| metadata.get(key).and_then(|v| v.to_str().ok());
    Ok(state.gate.admit(value("authorization"), value("x-api-key")).await?)
}

fn api<T>(result: Result<T, ApiError>) -> Result<T, tonic::Status> {
    result.map_err(Into::into)
}
