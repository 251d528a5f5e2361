//! What the gateway does, independent of transport. REST handlers and gRPC
//! methods both call these, so the two APIs cannot drift apart.

use q2o_common::domain::{
    AgentType, Page, Project, ProjectId, ProjectStatus, ProjectStatusSummary, Task, TaskId, TenantId, now,
};
use q2o_common::store::Store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

const MAX_NAME: usize = 200;
const MAX_TEXT: usize = 10_000;
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 50;

/// Body of `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The tenant's API key.
    pub api_key: String,
}

/// A new session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The tenant the token acts for.
    pub tenant: TenantId,
    /// Seconds until the token expires.
    pub expires_in_seconds: u64,
}

/// Body of `POST /api/v1/projects`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// 1-200 characters, not all blank.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Up to 10,000 characters.
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: String,
    /// Up to 10,000 characters.
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub objective: String,
    /// Up to 20 tags of 1-50 characters.
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<TagName>)]
    pub tags: Vec<String>,
}

/// A tag: 1-50 characters, not all blank.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, min_length = 1, max_length = 50, pattern = r"\S")]
#[allow(dead_code)] // a schema only: tags travel as strings
pub struct TagName(String);

/// Body of `PATCH /api/v1/projects/{project_id}`: only the fields present change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    /// New name.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// New description.
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// New objective.
    #[schema(max_length = 10000)]
    pub objective: Option<String>,
    /// New tags (replacing the old ones).
    #[schema(max_items = 20, value_type = Option<Vec<TagName>>)]
    pub tags: Option<Vec<String>>,
    /// New status.
    pub status: Option<ProjectStatus>,
}

/// Body of `POST /api/v1/projects/{project_id}/tasks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// Which agent type should run it.
    pub agent_type: AgentType,
    /// What to do: 1-10,000 characters, not all blank.
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    pub description: String,
}

/// A page of projects.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectList {
    /// The projects, oldest first.
    pub projects: Vec<Project>,
}

/// A page of tasks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskList {
    /// The tasks, oldest first.
    pub tasks: Vec<Task>,
}

/// Parses an id from a path or message field, naming the field when it is not one.
pub fn parse_id<T: std::str::FromStr>(field: &str, text: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError::field(field, format!("`{text}` is not a valid id (expected a UUID)")))
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len < min || (min > 0 && value.trim().is_empty()) {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if len > max {
        return Err(ApiError::field(field, format!("must be at most {max} characters, got {len}")));
    }
    Ok(())
}

fn check_tags(tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::field("tags", format!("at most {MAX_TAGS} tags, got {}", tags.len())));
    }
    for (i, tag) in tags.iter().enumerate() {
        check_len(&format!("tags[{i}]"), tag, 1, MAX_TAG)?;
    }
    Ok(())
}

impl NewProject {
    fn validate(&self) -> Result<(), ApiError> {
        check_len("name", &self.name, 1, MAX_NAME)?;
        check_len("description", &self.description, 0, MAX_TEXT)?;
        check_len("objective", &self.objective, 0, MAX_TEXT)?;
        check_tags(&self.tags)
    }
}

impl ProjectPatch {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(name) = &self.name {
            check_len("name", name, 1, MAX_NAME)?;
        }
        if let Some(description) = &self.description {
            check_len("description", description, 0, MAX_TEXT)?;
        }
        if let Some(objective) = &self.objective {
            check_len("objective", objective, 0, MAX_TEXT)?;
        }
        if let Some(tags) = &self.tags {
            check_tags(tags)?;
        }
        Ok(())
    }
}

/// Creates a project for `tenant`.
pub async fn create_project(store: &dyn Store, tenant: &TenantId, new: NewProject) -> Result<Project, ApiError> {
    new.validate()?;
    let at = now();
    let project = Project {
        id: ProjectId::new(),
        tenant: tenant.clone(),
        name: new.name,
        description: new.description,
        objective: new.objective,
        tags: new.tags,
        status: ProjectStatus::Active,
        created_at: at,
        updated_at: at,
    };
    store.insert_project(&project).await?;
    Ok(project)
}

/// One of the tenant's projects.
pub async fn get_project(store: &dyn Store, tenant: &TenantId, id: ProjectId) -> Result<Project, ApiError> {
    store.project(tenant, id).await?.ok_or(ApiError::NotFound("project"))
}

/// The tenant's projects.
pub async fn list_projects(store: &dyn Store, tenant: &TenantId, page: Page) -> Result<ProjectList, ApiError> {
    Ok(ProjectList { projects: store.projects(tenant, page).await? })
}

/// A JSON answer in its final bytes: what the REST reads of projects and
/// tasks send, the store's documents as they are, with no decode and encode
/// between.
#[derive(Debug, PartialEq, Eq)]
pub struct JsonDocument(pub String);

/// [`get_project`] as its JSON document.
pub async fn get_project_json(store: &dyn Store, tenant: &TenantId, id: ProjectId) -> Result<JsonDocument, ApiError> {
    store.project_json(tenant, id).await?.map(JsonDocument).ok_or(ApiError::NotFound("project"))
}

/// [`list_projects`] as its JSON document: a [`ProjectList`] around the
/// stored documents.
pub async fn list_projects_json(store: &dyn Store, tenant: &TenantId, page: Page) -> Result<JsonDocument, ApiError> {
    let docs = store.projects_json(tenant, page).await?;
    Ok(JsonDocument(format!(r#"{{"projects":[{}]}}"#, docs.join(","))))
}

/// Applies a patch to one of the tenant's projects.
pub async fn update_project(
    store: &dyn Store,
    tenant: &TenantId,
    id: ProjectId,
    patch: ProjectPatch,
) -> Result<Project, ApiError> {
    patch.validate()?;
    let mut project = get_project(store, tenant, id).await?;
    if let Some(name) = patch.name {
        project.name = name;
    }
    if let Some(description) = patch.description {
        project.description = description;
    }
    if let Some(objective) = patch.objective {
        project.objective = objective;
    }
    if let Some(tags) = patch.tags {
        project.tags = tags;
    }
    if let Some(status) = patch.status {
        project.status = status;
    }
    project.updated_at = now();
    if !store.replace_project(&project).await? {
        return Err(ApiError::NotFound("project"));
    }
    Ok(project)
}

/// Deletes one of the tenant's projects and its tasks.
pub async fn delete_project(store: &dyn Store, tenant: &TenantId, id: ProjectId) -> Result<(), ApiError> {
    if store.delete_project(tenant, id).await? { Ok(()) } else { Err(ApiError::NotFound("project")) }
}

/// Queues a task on one of the tenant's projects.
pub async fn submit_task(
    store: &dyn Store,
    tenant: &TenantId,
    project_id: ProjectId,
    new: NewTask,
) -> Result<Task, ApiError> {
    check_len("description", &new.description, 1, MAX_TEXT)?;
    get_project(store, tenant, project_id).await?;
    let task = Task::queued(tenant.clone(), project_id, new.agent_type, new.description);
    store.submit_task(&task).await?;
    Ok(task)
}

/// One of the tenant's tasks.
pub async fn get_task(store: &dyn Store, tenant: &TenantId, id: TaskId) -> Result<Task, ApiError> {
    store.task(tenant, id).await?.ok_or(ApiError::NotFound("task"))
}

/// [`get_task`] as its JSON document (a polled task's generated code is
/// copied, not decoded and encoded again).
pub async fn get_task_json(store: &dyn Store, tenant: &TenantId, id: TaskId) -> Result<JsonDocument, ApiError> {
    store.task_json(tenant, id).await?.map(JsonDocument).ok_or(ApiError::NotFound("task"))
}

/// The tasks of one of the tenant's projects.
pub async fn list_tasks(
    store: &dyn Store,
    tenant: &TenantId,
    project: ProjectId,
    page: Page,
) -> Result<TaskList, ApiError> {
    // Asked together, so that both share one Redis round trip; a missing
    // project's answer is a 404 whatever the list held.
    let (found, tasks) = tokio::join!(get_project(store, tenant, project), store.tasks(tenant, project, page));
    found?;
    Ok(TaskList { tasks: tasks? })
}

/// Task counts of one of the tenant's projects.
pub async fn project_status(
    store: &dyn Store,
    tenant: &TenantId,
    project: ProjectId,
) -> Result<ProjectStatusSummary, ApiError> {
    // As `list_tasks`: one round trip for both.
    let (found, status) = tokio::join!(get_project(store, tenant, project), store.project_status(tenant, project));
    found?;
    Ok(status?)
}

/// Validates a client's page request.
pub fn page(limit: u32, offset: u32) -> Result<Page, ApiError> {
    Page::new(limit, offset).map_err(|reason| ApiError::field("limit", reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use q2o_common::store::MemoryStore;

    fn acme() -> TenantId {
        "acme".parse().unwrap()
    }

    #[tokio::test]
    async fn the_json_reads_of_projects_answer_what_the_typed_ones_encode() {
        let store = MemoryStore::new();
        let page = Page { limit: 10, offset: 0 };
        let empty = list_projects_json(&store, &acme(), page).await.unwrap();
        assert_eq!(empty.0, serde_json::to_string(&ProjectList { projects: Vec::new() }).unwrap());
        for name in ["one", "two"] {
            create_project(&store, &acme(), NewProject { name: name.into(), ..Default::default() }).await.unwrap();
        }
        let typed = list_projects(&store, &acme(), page).await.unwrap();
        assert_eq!(list_projects_json(&store, &acme(), page).await.unwrap().0, serde_json::to_string(&typed).unwrap());
        let one = &typed.projects[0];
        let json = get_project_json(&store, &acme(), one.id).await.unwrap();
        assert_eq!(json.0, serde_json::to_string(one).unwrap());
        let missing = get_project_json(&store, &acme(), ProjectId::new()).await.unwrap_err();
        assert!(matches!(missing, ApiError::NotFound("project")), "{missing:?}");
    }

    #[tokio::test]
    async fn validation_names_the_field() {
        let store = MemoryStore::new();
        let cases = [
            (NewProject { name: " ".into(), ..Default::default() }, "name"),
            (NewProject { name: "x".repeat(201), ..Default::default() }, "name"),
            (NewProject { name: "ok".into(), tags: vec!["a".into(), String::new()], ..Default::default() }, "tags[1]"),
            (NewProject { name: "ok".into(), tags: vec!["t".into(); 21], ..Default::default() }, "tags"),
        ];
        for (input, field) in cases {
            match create_project(&store, &acme(), input).await {
                Err(ApiError::Invalid { field: Some(f), .. }) => assert_eq!(f, field),
                other => panic!("expected an invalid {field}, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_tenant_cannot_reach_another_tenants_records() {
        let store = MemoryStore::new();
        let project =
            create_project(&store, &acme(), NewProject { name: "p".into(), ..Default::default() }).await.unwrap();
        let globex: TenantId = "globex".parse().unwrap();
        assert!(matches!(get_project(&store, &globex, project.id).await, Err(ApiError::NotFound(_))));
        let task = NewTask { agent_type: AgentType::Coder, description: "d".into() };
        assert!(matches!(submit_task(&store, &globex, project.id, task).await, Err(ApiError::NotFound(_))));
        assert!(list_projects(&store, &globex, Page::default()).await.unwrap().projects.is_empty());
    }
}
