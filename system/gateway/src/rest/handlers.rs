use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use q2o_common::domain::{Project, ProjectId, ProjectStatusSummary, Task, TaskId};
use q2o_common::telemetry::render_metrics;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::operations::{
    self as ops, JsonDocument, LoginRequest, LoginResponse, NewProject, NewTask, ProjectList, ProjectPatch, TaskList,
    parse_id,
};
use crate::state::AppState;

/// `?limit=&offset=` of a listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// 1-100; 0 or absent: 20.
    #[param(nullable = false, minimum = 0, maximum = 100)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 4294967295_u64)]
    offset: Option<u32>,
}

impl PageQuery {
    fn page(&self) -> Result<q2o_common::domain::Page, ApiError> {
        ops::page(self.limit.unwrap_or(0), self.offset.unwrap_or(0))
    }
}

fn project_id(text: &str) -> Result<ProjectId, ApiError> {
    parse_id("project_id", text)
}

impl IntoResponse for JsonDocument {
    fn into_response(self) -> Response {
        ([(axum::http::header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

/// Exchange an API key for a session token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let session = state.gate.login(&body.api_key).await?;
    Ok(Json(LoginResponse { token: session.token, tenant: session.tenant, expires_in_seconds: session.ttl.as_secs() }))
}

/// List the caller's projects.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(PageQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = ProjectList), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn list_projects(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<JsonDocument, ApiError> {
    ops::list_projects_json(&*state.store, &caller.tenant, query.page()?).await
}

/// Create a project.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = NewProject,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, body = Project), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn create_project(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewProject>,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    let project = ops::create_project(&*state.store, &caller.tenant, body).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// Read a project.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}", tag = "projects",
    params(("project_id" = String, Path, description = "Project id (UUID)")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn get_project(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<JsonDocument, ApiError> {
    ops::get_project_json(&*state.store, &caller.tenant, project_id(&id)?).await
}

/// Change some fields of a project.
#[utoipa::path(patch, path = "/api/v1/projects/{project_id}", tag = "projects", request_body = ProjectPatch,
    params(("project_id" = String, Path, description = "Project id (UUID)")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Project), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn update_project(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ProjectPatch>,
) -> Result<Json<Project>, ApiError> {
    Ok(Json(ops::update_project(&*state.store, &caller.tenant, project_id(&id)?, patch).await?))
}

/// Delete a project and its tasks.
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}", tag = "projects",
    params(("project_id" = String, Path, description = "Project id (UUID)")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_project(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::delete_project(&*state.store, &caller.tenant, project_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Submit a task to an agent type; it runs asynchronously.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/tasks", tag = "tasks", request_body = NewTask,
    params(("project_id" = String, Path, description = "Project id (UUID)")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 202, body = Task), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn submit_task(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let task = ops::submit_task(&*state.store, &caller.tenant, project_id(&id)?, body).await?;
    Ok((StatusCode::ACCEPTED, Json(task)))
}

/// List a project's tasks.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/tasks", tag = "tasks",
    params(("project_id" = String, Path, description = "Project id (UUID)"), PageQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = TaskList), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<TaskList>, ApiError> {
    Ok(Json(ops::list_tasks(&*state.store, &caller.tenant, project_id(&id)?, query.page()?).await?))
}

/// Count a project's tasks by status.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/status", tag = "tasks",
    params(("project_id" = String, Path, description = "Project id (UUID)")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = ProjectStatusSummary), (status = 404, body = ErrorBody)))]
pub(crate) async fn project_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ProjectStatusSummary>, ApiError> {
    Ok(Json(ops::project_status(&*state.store, &caller.tenant, project_id(&id)?).await?))
}

/// Read a task, with its result once completed.
#[utoipa::path(get, path = "/api/v1/tasks/{task_id}", tag = "tasks",
    params(("task_id" = String, Path, description = "Task id (UUID)")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Task), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_task(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<JsonDocument, ApiError> {
    let id: TaskId = parse_id("task_id", &id)?;
    ops::get_task_json(&*state.store, &caller.tenant, id).await
}

/// What q2o-search takes, as the schema states it (the gateway forwards the
/// query as it came and sets the tenant; q2o-search checks it): documentation only.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SearchQuery {
    /// Words, "phrases", -exclusions and field:value filters (name, tags,
    /// language, agent_type, status). Never refused for its syntax: what is
    /// not understood is left out, and the answer lists it under `ignored`.
    #[param(min_length = 1, max_length = 256)]
    q: String,
    /// The page, from 1 (default 1); as deep as result 1,000 at the largest page.
    #[param(nullable = false, minimum = 1, maximum = 20)]
    page: Option<u32>,
    /// Hits per page (default 10).
    #[param(nullable = false, minimum = 1, maximum = 50)]
    size: Option<u32>,
    /// Only this agent type's documents.
    #[param(nullable = false)]
    agent_type: Option<String>,
    /// Only documents with this status.
    #[param(nullable = false)]
    status: Option<String>,
    /// Only this month's documents.
    #[param(nullable = false, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    month: Option<String>,
}

/// What q2o-search's autocomplete takes: documentation only, as [`SearchQuery`].
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct AutocompleteQuery {
    /// The start of a project's name (spaces alone suggest nothing).
    #[param(min_length = 1, max_length = 64)]
    prefix: String,
    /// Most suggestions (default 10).
    #[param(nullable = false, minimum = 1, maximum = 25)]
    limit: Option<u32>,
}

/// Search the caller's projects and generated code (forwarded to q2o-search).
#[utoipa::path(get, path = "/api/v1/search", tag = "search",
    params(SearchQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Hits, facets and highlights"), (status = 400, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(params): ApiQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    state.search.forward("/api/v1/search", params, &caller.tenant).await
}

/// Project names starting with a prefix (forwarded to q2o-search).
#[utoipa::path(get, path = "/api/v1/search/autocomplete", tag = "search",
    params(AutocompleteQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Suggestions"), (status = 400, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn autocomplete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(params): ApiQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    state.search.forward("/api/v1/search/autocomplete", params, &caller.tenant).await
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/health", tag = "probes", responses((status = 200)))]
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the store answers, so requests can succeed.
#[utoipa::path(get, path = "/ready", tag = "probes", responses((status = 200), (status = 503)))]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready", "store": state.store.backend() })).into_response(),
        Err(err) => {
            tracing::warn!(%err, "not ready");
            let body = serde_json::json!({ "status": "unavailable", "store": state.store.backend() });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "probes", responses((status = 200, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    render_metrics(&state.registry)
}
