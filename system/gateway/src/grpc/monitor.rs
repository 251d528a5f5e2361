use std::pin::Pin;

use futures::{Stream, StreamExt};
use q2o_common::domain::AgentType;
use q2o_proto::v1 as pb;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::{Request, Response, Status};

use super::admit;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) struct MonitorService {
    pub(super) state: AppState,
}

type ActivityStream = Pin<Box<dyn Stream<Item = Result<pb::AgentEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::agent_monitor_server::AgentMonitor for MonitorService {
    type StreamAgentActivityStream = ActivityStream;

    async fn stream_agent_activity(
        &self,
        request: Request<pb::StreamAgentActivityRequest>,
    ) -> Result<Response<ActivityStream>, Status> {
        self.state
            .metrics
            .grpc
            .observe("q2o.v1.AgentMonitor", "StreamAgentActivity", async {
                let caller = admit(&self.state, &request).await?;
                let only: Option<AgentType> = match request.get_ref().agent_type.as_str() {
                    "" => None,
                    name => Some(
                        name.parse().map_err(|reason: String| Status::from(ApiError::field("agent_type", reason)))?,
                    ),
                };
                let events = self.state.store.subscribe_activity(&caller.tenant).await.map_err(ApiError::from)?;
                let guard = self.state.metrics.stream_opened();
                let stream = BroadcastStream::new(events).filter_map(move |event| {
                    let _open = &guard;
                    let item = match event {
                        Ok(event) if only.is_none_or(|t| t == event.agent_type) => Some(Ok(event.into())),
                        Ok(_) => None,
                        Err(BroadcastStreamRecvError::Lagged(n)) => {
                            Some(Err(Status::aborted(format!("the stream fell {n} events behind; reopen it"))))
                        }
                    };
                    std::future::ready(item)
                });
                Ok(Response::new(Box::pin(stream.take_until(self.state.draining())) as ActivityStream))
            })
            .await
    }
}
