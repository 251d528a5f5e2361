use std::pin::Pin;

use futures::{Stream, StreamExt};
use q2o_common::domain::AgentType;
use q2o_proto::v1 as pb;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::{Request, Response, Status};

use super::{admit, api};
use crate::error::ApiError;
use crate::operations::{self as ops, NewTask, parse_id};
use crate::state::AppState;

const SERVICE: &str = "q2o.v1.Orchestrator";

/// How many of a project's most recent tasks open an update stream.
const SNAPSHOT_TASKS: u32 = 100;

pub(super) struct OrchestratorService {
    pub(super) state: AppState,
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<pb::TaskUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl pb::orchestrator_server::Orchestrator for OrchestratorService {
    async fn distribute_task(&self, request: Request<pb::DistributeTaskRequest>) -> Result<Response<pb::Task>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "DistributeTask", async {
                let caller = admit(&self.state, &request).await?;
                let req = request.into_inner();
                let project = api(parse_id("project_id", &req.project_id))?;
                let agent_type: AgentType = req
                    .agent_type
                    .parse()
                    .map_err(|reason: String| Status::from(ApiError::field("agent_type", reason)))?;
                let new = NewTask { agent_type, description: req.description };
                let task = api(ops::submit_task(&*self.state.store, &caller.tenant, project, new).await)?;
                Ok(Response::new(task.into()))
            })
            .await
    }

    async fn get_task(&self, request: Request<pb::GetTaskRequest>) -> Result<Response<pb::Task>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "GetTask", async {
                let caller = admit(&self.state, &request).await?;
                let id = api(parse_id("task_id", &request.get_ref().task_id))?;
                let task = api(ops::get_task(&*self.state.store, &caller.tenant, id).await)?;
                Ok(Response::new(task.into()))
            })
            .await
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "ListTasks", async {
                let caller = admit(&self.state, &request).await?;
                let req = request.get_ref();
                let project = api(parse_id("project_id", &req.project_id))?;
                let page = api(ops::page(req.limit, req.offset))?;
                let list = api(ops::list_tasks(&*self.state.store, &caller.tenant, project, page).await)?;
                Ok(Response::new(pb::ListTasksResponse { tasks: list.tasks.into_iter().map(Into::into).collect() }))
            })
            .await
    }

    async fn get_project_status(
        &self,
        request: Request<pb::GetProjectStatusRequest>,
    ) -> Result<Response<pb::ProjectStatusSummary>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "GetProjectStatus", async {
                let caller = admit(&self.state, &request).await?;
                let project = api(parse_id("project_id", &request.get_ref().project_id))?;
                let summary = api(ops::project_status(&*self.state.store, &caller.tenant, project).await)?;
                Ok(Response::new(summary.into()))
            })
            .await
    }

    type StreamProjectUpdatesStream = UpdateStream;

    async fn stream_project_updates(
        &self,
        request: Request<pb::StreamProjectUpdatesRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        self.state
            .metrics
            .grpc
            .observe(SERVICE, "StreamProjectUpdates", async {
                let caller = admit(&self.state, &request).await?;
                let project = api(parse_id("project_id", &request.get_ref().project_id))?;
                let store = &*self.state.store;
                api(ops::get_project(store, &caller.tenant, project).await)?;
                // Subscribe before reading the snapshot: a change in between then
                // arrives twice (harmless) instead of never.
                let live = store.subscribe_project(&caller.tenant, project).await.map_err(ApiError::from)?;
                let snapshot =
                    store.recent_task_updates(&caller.tenant, project, SNAPSHOT_TASKS).await.map_err(ApiError::from)?;
                let guard = self.state.metrics.stream_opened();
                let snapshot = futures::stream::iter(snapshot).map(|update| Ok(update.into()));
                let live = BroadcastStream::new(live).map(move |update| {
                    let _open = &guard;
                    match update {
                        Ok(update) => Ok(update.into()),
                        Err(BroadcastStreamRecvError::Lagged(n)) => {
                            Err(Status::aborted(format!("the stream fell {n} updates behind; reopen it")))
                        }
                    }
                });
                let stream = snapshot.chain(live).take_until(self.state.draining());
                Ok(Response::new(Box::pin(stream) as UpdateStream))
            })
            .await
    }
}
