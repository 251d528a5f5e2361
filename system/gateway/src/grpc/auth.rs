use q2o_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::state::AppState;

pub(super) struct AuthService {
    pub(super) state: AppState,
}

#[tonic::async_trait]
impl pb::auth_server::Auth for AuthService {
    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        self.state
            .metrics
            .grpc
            .observe("q2o.v1.Auth", "Login", async {
                let session = self.state.gate.login(&request.get_ref().api_key).await?;
                Ok(Response::new(pb::LoginResponse {
                    token: session.token,
                    tenant: session.tenant.into(),
                    expires_in_seconds: session.ttl.as_secs(),
                }))
            })
            .await
    }
}
