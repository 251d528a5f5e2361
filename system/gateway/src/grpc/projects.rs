use q2o_common::domain::ProjectStatus;
use q2o_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{admit, api};
use crate::operations::{self as ops, NewProject, ProjectPatch, parse_id};
use crate::state::AppState;

const SERVICE: &str = "q2o.v1.Projects";

pub(super) struct ProjectsService {
    pub(super) state: AppState,
}

#[tonic::async_trait]
impl pb::projects_server::Projects for ProjectsService {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "CreateProject", async {
                let caller = admit(&self.state, &request).await?;
                let req = request.into_inner();
                let new = NewProject {
                    name: req.name,
                    description: req.description,
                    objective: req.objective,
                    tags: req.tags,
                };
                let project = api(ops::create_project(&*self.state.store, &caller.tenant, new).await)?;
                Ok(Response::new(project.into()))
            })
            .await
    }

    async fn get_project(&self, request: Request<pb::GetProjectRequest>) -> Result<Response<pb::Project>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "GetProject", async {
                let caller = admit(&self.state, &request).await?;
                let id = api(parse_id("project_id", &request.get_ref().project_id))?;
                let project = api(ops::get_project(&*self.state.store, &caller.tenant, id).await)?;
                Ok(Response::new(project.into()))
            })
            .await
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "ListProjects", async {
                let caller = admit(&self.state, &request).await?;
                let page = api(ops::page(request.get_ref().limit, request.get_ref().offset))?;
                let list = api(ops::list_projects(&*self.state.store, &caller.tenant, page).await)?;
                Ok(Response::new(pb::ListProjectsResponse {
                    projects: list.projects.into_iter().map(Into::into).collect(),
                }))
            })
            .await
    }

    async fn update_project(
        &self,
        request: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "UpdateProject", async {
                let caller = admit(&self.state, &request).await?;
                let req = request.into_inner();
                let id = api(parse_id("project_id", &req.project_id))?;
                let status = match req.status() {
                    pb::ProjectStatus::Unspecified => None,
                    status => Some(ProjectStatus::try_from(status).map_err(Status::invalid_argument)?),
                };
                let patch = ProjectPatch {
                    name: req.name,
                    description: req.description,
                    objective: req.objective,
                    tags: req.set_tags.then_some(req.tags),
                    status,
                };
                let project = api(ops::update_project(&*self.state.store, &caller.tenant, id, patch).await)?;
                Ok(Response::new(project.into()))
            })
            .await
    }

    async fn delete_project(
        &self,
        request: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "DeleteProject", async {
                let caller = admit(&self.state, &request).await?;
                let id = api(parse_id("project_id", &request.get_ref().project_id))?;
                api(ops::delete_project(&*self.state.store, &caller.tenant, id).await)?;
                Ok(Response::new(pb::DeleteProjectResponse {}))
            })
            .await
    }
}
