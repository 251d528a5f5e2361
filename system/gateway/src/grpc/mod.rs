//! The gRPC API (tonic): `Auth`, `Projects`, `Orchestrator` and `AgentMonitor`
//! from `q2o.proto`, over the same operations as REST.
//!
//! Credentials travel in the `authorization` (`Bearer <token>`) or `x-api-key`
//! metadata; rate limiting answers `RESOURCE_EXHAUSTED` with `retry-after`.

mod auth;
mod monitor;
mod orchestrator;
mod projects;

use q2o_proto::v1::agent_monitor_server::AgentMonitorServer;
use q2o_proto::v1::auth_server::AuthServer;
use q2o_proto::v1::orchestrator_server::OrchestratorServer;
use q2o_proto::v1::projects_server::ProjectsServer;
use tonic::service::Routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Every gateway gRPC service, ready for `Server::builder().add_routes(..)`.
pub fn routes(state: AppState) -> Routes {
    Routes::new(AuthServer::new(auth::AuthService { state: state.clone() }))
        .add_service(ProjectsServer::new(projects::ProjectsService { state: state.clone() }))
        .add_service(OrchestratorServer::new(orchestrator::OrchestratorService { state: state.clone() }))
        .add_service(AgentMonitorServer::new(monitor::MonitorService { state }))
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
