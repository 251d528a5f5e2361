//! The agents' network face: probes and metrics, and the agent services over
//! both REST (`/internal/v1/...`) and gRPC (`CoderAgent`, `ResearcherAgent`,
//! `QaAgent`), so that either transport can carry inter-agent calls.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use q2o_common::domain::AgentType;
use q2o_common::metrics::track_http;
use q2o_common::telemetry::render_metrics;
use q2o_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use tonic::service::Routes;

use crate::execution::Work;
use crate::inter_agent::{REVIEW_PATH, ReviewRequest};
use crate::review::review;
use crate::templates::render;

/// Largest accepted internal request body (generated code is a few KiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub(crate) struct ServerState {
    pub(crate) work: Arc<Work>,
    pub(crate) registry: prometheus::Registry,
    pub(crate) service_keys: q2o_common::service_key::ServiceKeys,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateRequest {
    task_id: String,
    description: String,
    #[serde(default)]
    language: String,
}

#[derive(Debug, Serialize)]
struct GenerateResponse {
    language: String,
    code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResearchRequest {
    topic: String,
}

#[derive(Debug, Serialize)]
struct ResearchResponse {
    summary: String,
    cache_hit: bool,
}

/// The internal REST API, without a socket.
pub(crate) fn app(state: ServerState) -> Router {
    let keys = state.service_keys.clone();
    Router::new()
        .route(REVIEW_PATH, post(review_code))
        .route("/internal/v1/coder/generate", post(generate_code))
        .route("/internal/v1/researcher/research", post(research))
        .route_layer(axum::middleware::from_fn_with_state(keys, q2o_common::service_key::require))
        .route("/health", get(|| async { Json(serde_json::json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .route("/metrics", get(|State(state): State<ServerState>| async move { render_metrics(&state.registry) }))
        .layer(axum::middleware::from_fn_with_state(state.work.metrics.http.clone(), track_http))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn ready(State(state): State<ServerState>) -> Response {
    match state.work.store.ping().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(%err, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "unavailable" }))).into_response()
        }
    }
}

async fn review_code(Json(request): Json<ReviewRequest>) -> Json<q2o_common::domain::Review> {
    Json(review(&request.language, &request.code, "rest"))
}

async fn generate_code(Json(request): Json<GenerateRequest>) -> Json<GenerateResponse> {
    tracing::debug!(task = %request.task_id, language = %request.language, "generate");
    let artifact = render(AgentType::Coder, &request.description);
    Json(GenerateResponse { language: artifact.language.into(), code: artifact.code })
}

async fn research(State(state): State<ServerState>, Json(request): Json<ResearchRequest>) -> Response {
    match state.work.research(&request.topic).await {
        Ok(r) => Json(ResearchResponse { summary: r.summary, cache_hit: r.cache_hit }).into_response(),
        Err(err) => {
            tracing::error!(%err, "research failed");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": "research failed" }))).into_response()
        }
    }
}

/// The agents' gRPC services, answering only callers with a service key.
pub(crate) fn grpc_routes(state: ServerState) -> Routes {
    let service = AgentService { work: state.work };
    let router = Routes::new(pb::qa_agent_server::QaAgentServer::new(service.clone()))
        .add_service(pb::coder_agent_server::CoderAgentServer::new(service.clone()))
        .add_service(pb::researcher_agent_server::ResearcherAgentServer::new(service))
        .into_axum_router()
        .layer(axum::middleware::from_fn_with_state(state.service_keys, q2o_common::service_key::require));
    Routes::from(router)
}

#[derive(Clone, Debug)]
struct AgentService {
    work: Arc<Work>,
}

#[tonic::async_trait]
impl pb::qa_agent_server::QaAgent for AgentService {
    async fn review_code(
        &self,
        request: tonic::Request<pb::ReviewRequest>,
    ) -> Result<tonic::Response<pb::Review>, tonic::Status> {
        self.work
            .metrics
            .grpc
            .observe("q2o.v1.QaAgent", "ReviewCode", async {
                let r = request.get_ref();
                Ok(tonic::Response::new(review(&r.language, &r.code, "grpc").into()))
            })
            .await
    }
}

#[tonic::async_trait]
impl pb::coder_agent_server::CoderAgent for AgentService {
    async fn generate_code(
        &self,
        request: tonic::Request<pb::CodeRequest>,
    ) -> Result<tonic::Response<pb::CodeResponse>, tonic::Status> {
        self.work
            .metrics
            .grpc
            .observe("q2o.v1.CoderAgent", "GenerateCode", async {
                let artifact = render(AgentType::Coder, &request.get_ref().description);
                Ok(tonic::Response::new(pb::CodeResponse { language: artifact.language.into(), code: artifact.code }))
            })
            .await
    }
}

#[tonic::async_trait]
impl pb::researcher_agent_server::ResearcherAgent for AgentService {
    async fn research(
        &self,
        request: tonic::Request<pb::ResearchRequest>,
    ) -> Result<tonic::Response<pb::ResearchResponse>, tonic::Status> {
        self.work
            .metrics
            .grpc
            .observe("q2o.v1.ResearcherAgent", "Research", async {
                if request.get_ref().topic.trim().is_empty() {
                    return Err(tonic::Status::invalid_argument("topic: must not be empty"));
                }
                let r = self.work.research(&request.get_ref().topic).await.map_err(|err| {
                    tracing::error!(%err, "research failed");
                    tonic::Status::internal("research failed")
                })?;
                Ok(tonic::Response::new(pb::ResearchResponse { summary: r.summary, cache_hit: r.cache_hit }))
            })
            .await
    }
}
