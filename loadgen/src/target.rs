//! What a request does: the steps of the Q2O API over REST and gRPC, and a
//! plain `GET` of one URL (for any HTTP server).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::grpc_channel::GrpcChannel;
use async_trait::async_trait;
use hyper::body::Bytes;
use prost::Message;
use q2o_proto::v1 as pb;

use crate::connect::{SetupError, connect_channels};
use crate::http1::{Failure, Pool};
use crate::outcome::{Outcome, Transport};
use crate::recorder::Protocol;
use crate::step::{Call, Step};

/// Body bytes of one request and its answer: the JSON bodies over REST, the
/// encoded protobuf messages over gRPC (without HTTP headers or framing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payload {
    /// Request body.
    pub request: usize,
    /// Answer body.
    pub response: usize,
}

/// Sends one request of a call and says how it ended.
#[async_trait]
pub trait Target: Send + Sync {
    /// Performs `call`.
    async fn call(&self, call: Call) -> Outcome;

    /// Performs `call` once and measures its payload; the error is the outcome.
    async fn probe(&self, call: Call) -> Result<Payload, Outcome>;
}

/// `GET` of one URL, as step `get`.
#[derive(Debug)]
pub struct UrlTarget {
    pool: Pool,
    request: Bytes,
}

impl UrlTarget {
    /// A target for `url`.
    pub fn new(url: &str) -> Result<UrlTarget, String> {
        let (pool, path) = Pool::new("--url", url)?;
        let request = pool.request("GET", &path, None, None);
        Ok(UrlTarget { pool, request })
    }
}

#[async_trait]
impl Target for UrlTarget {
    async fn call(&self, _call: Call) -> Outcome {
        self.pool.send(&self.request).await
    }

    async fn probe(&self, _call: Call) -> Result<Payload, Outcome> {
        let answer = self.pool.exchange(&self.request, true).await.map_err(|f| f.outcome())?;
        Ok(Payload { request: 0, response: answer.body.len() })
    }
}

/// The Q2O gateway over REST and gRPC, with one session and one project made at set-up.
#[derive(Debug)]
pub struct GatewayTarget {
    rest: Pool,
    /// Each REST step's request, serialized once: (step, bytes, body length).
    rest_requests: Vec<(Step, Bytes, usize)>,
    channels: Vec<GrpcChannel>,
    next_channel: AtomicUsize,
    token: String,
    project: String,
}

impl GatewayTarget {
    /// Logs in with `api_key` and creates the project the run works on. `grpc`
    /// is needed only if the mix has gRPC steps.
    pub async fn connect(
        rest: &str,
        grpc: Option<&str>,
        api_key: &str,
        channels: usize,
    ) -> Result<Arc<GatewayTarget>, SetupError> {
        let unreachable = |e: Failure| SetupError(format!("cannot reach the gateway at {rest}: {e}"));
        let (pool, _) = Pool::new("--rest-url", rest).map_err(SetupError)?;
        let (pool_ref, unreachable) = (&pool, &unreachable);
        let json = |request: Bytes| async move {
            let pool = pool_ref;
            let answer = pool.exchange(&request, true).await.map_err(unreachable)?;
            if !(200..300).contains(&answer.status) {
                let body = String::from_utf8_lossy(&answer.body);
                return Err(SetupError(format!("the gateway answered {}: {body}", answer.status)));
            }
            serde_json::from_slice::<serde_json::Value>(&answer.body)
                .map_err(|e| SetupError(format!("unexpected answer: {e}")))
        };
        let login = serde_json::json!({ "api_key": api_key }).to_string();
        let login = json(pool.request("POST", "/api/v1/auth/login", None, Some(login.as_bytes()))).await?;
        let token = login["token"].as_str().ok_or_else(|| SetupError("login returned no token".into()))?.to_owned();
        let bearer = format!("Bearer {token}");
        let project = br#"{"name":"loadgen","tags":["loadgen"]}"#;
        let project =
            json(pool.request("POST", "/api/v1/projects", Some(("authorization", &bearer)), Some(project))).await?;
        let project = project["id"].as_str().ok_or_else(|| SetupError("project has no id".into()))?.to_owned();
        let p = &project;
        let task = br#"{"agent_type":"documentation","description":"load test task"}"#;
        let rest_requests = vec![
            (
                Step::ListProjects,
                pool.request("GET", "/api/v1/projects?limit=10", Some(("authorization", &bearer)), None),
                0,
            ),
            (
                Step::GetProject,
                pool.request("GET", &format!("/api/v1/projects/{p}"), Some(("authorization", &bearer)), None),
                0,
            ),
            (
                Step::ProjectStatus,
                pool.request("GET", &format!("/api/v1/projects/{p}/status"), Some(("authorization", &bearer)), None),
                0,
            ),
            (
                Step::SubmitTask,
                pool.request(
                    "POST",
                    &format!("/api/v1/projects/{p}/tasks"),
                    Some(("authorization", &bearer)),
                    Some(task),
                ),
                task.len(),
            ),
            (Step::Search, pool.request("GET", "/api/v1/search?q=loadgen", Some(("authorization", &bearer)), None), 0),
        ];
        let pool_of_channels = match grpc {
            Some(grpc) => connect_channels("--grpc-url", "the gateway's gRPC", grpc, channels).await?,
            None => Vec::new(),
        };
        Ok(Arc::new(GatewayTarget {
            rest: pool,
            rest_requests,
            channels: pool_of_channels,
            next_channel: AtomicUsize::new(0),
            token,
            project,
        }))
    }

    fn channel(&self) -> GrpcChannel {
        let i = self.next_channel.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }

    fn authed<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let bearer = format!("Bearer {}", self.token).parse().expect("tokens are header-safe");
        request.metadata_mut().insert("authorization", bearer);
        request
    }

    /// One gRPC call of `step`, and its payload (the messages' encoded lengths).
    async fn grpc(&self, step: Step) -> Result<Payload, tonic::Status> {
        let channel = self.channel();
        let project_id = self.project.clone();
        let sized = |request: usize, response: usize| Payload { request, response };
        match step {
            Step::ListProjects => {
                let message = pb::ListProjectsRequest { limit: 10, offset: 0 };
                let len = message.encoded_len();
                let mut client = pb::projects_client::ProjectsClient::new(channel);
                client.list_projects(self.authed(message)).await.map(|r| sized(len, r.get_ref().encoded_len()))
            }
            Step::GetProject => {
                let message = pb::GetProjectRequest { project_id };
                let len = message.encoded_len();
                let mut client = pb::projects_client::ProjectsClient::new(channel);
                client.get_project(self.authed(message)).await.map(|r| sized(len, r.get_ref().encoded_len()))
            }
            Step::ProjectStatus => {
                let message = pb::GetProjectStatusRequest { project_id };
                let len = message.encoded_len();
                let mut client = pb::orchestrator_client::OrchestratorClient::new(channel);
                client.get_project_status(self.authed(message)).await.map(|r| sized(len, r.get_ref().encoded_len()))
            }
            Step::SubmitTask => {
                let message = pb::DistributeTaskRequest {
                    project_id,
                    agent_type: "documentation".into(),
                    description: "load test task".into(),
                };
                let len = message.encoded_len();
                let mut client = pb::orchestrator_client::OrchestratorClient::new(channel);
                client.distribute_task(self.authed(message)).await.map(|r| sized(len, r.get_ref().encoded_len()))
            }
            other => Err(tonic::Status::unimplemented(format!("no gRPC step {other}"))),
        }
    }

    async fn rest(&self, step: Step, keep_body: bool) -> Result<Payload, Outcome> {
        let (_, request, body_len) = self
            .rest_requests
            .iter()
            .find(|(name, ..)| *name == step)
            .ok_or(Outcome::Transport(Transport::NoTarget))?;
        let answer = self.rest.exchange(request, keep_body).await.map_err(|f| f.outcome())?;
        match answer.outcome() {
            Outcome::Ok => Ok(Payload { request: *body_len, response: answer.body.len() }),
            failed => Err(failed),
        }
    }
}

#[async_trait]
impl Target for GatewayTarget {
    async fn call(&self, call: Call) -> Outcome {
        match call.protocol {
            Protocol::Grpc => Outcome::of_grpc(&self.grpc(call.step).await),
            Protocol::Rest => {
                let request = self.rest_requests.iter().find(|(step, ..)| *step == call.step).map(|(_, r, _)| r);
                match request {
                    Some(request) => self.rest.send(request).await,
                    None => Outcome::Transport(Transport::NoTarget),
                }
            }
        }
    }

    async fn probe(&self, call: Call) -> Result<Payload, Outcome> {
        match call.protocol {
            Protocol::Grpc => self.grpc(call.step).await.map_err(|s| Outcome::of_grpc::<()>(&Err(s))),
            Protocol::Rest => self.rest(call.step, true).await,
        }
    }
}
