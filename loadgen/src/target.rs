//! What a request does: the steps of the Q2O API over REST and gRPC, and a
//! plain `GET` of one URL (for any HTTP server).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hyper::body::Bytes;
use prost::Message;
use q2o_proto::v1 as pb;
use tonic::transport::{Channel, Endpoint};

use crate::http1::{Failure, Pool};
use crate::inter_agent::ReviewTarget;
use crate::recorder::{Outcome, Protocol};

/// How long one request may take before it counts as `error_timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One kind of request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Step {
    /// Which API.
    pub protocol: Protocol,
    /// Which operation (`list_projects`, `submit_task` ...).
    pub name: String,
}

/// The Q2O operations a run can mix: the gateway's, and `review`, the
/// inter-agent call sent straight to an agents process.
pub const Q2O_STEPS: &[&str] = &["list_projects", "get_project", "project_status", "submit_task", "search", "review"];

/// Body bytes of one request and its answer: the JSON bodies over REST, the
/// encoded protobuf messages over gRPC (without HTTP headers or framing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payload {
    /// Request body.
    pub request: usize,
    /// Answer body.
    pub response: usize,
}

impl FromStr for Step {
    type Err = String;

    /// `rest:list_projects`, `grpc:submit_task`, or `get` (the plain-URL target).
    fn from_str(s: &str) -> Result<Step, String> {
        if s == "get" {
            return Ok(Step { protocol: Protocol::Rest, name: "get".into() });
        }
        let (protocol, name) =
            s.split_once(':').ok_or_else(|| format!("`{s}` is not PROTOCOL:STEP (e.g. rest:list_projects)"))?;
        let protocol = match protocol {
            "rest" => Protocol::Rest,
            "grpc" => Protocol::Grpc,
            other => return Err(format!("unknown protocol `{other}` in `{s}` (rest or grpc)")),
        };
        if !Q2O_STEPS.contains(&name) {
            return Err(format!("unknown step `{name}` in `{s}` (one of {})", Q2O_STEPS.join(", ")));
        }
        if protocol == Protocol::Grpc && name == "search" {
            return Err("search has no gRPC route on the gateway; use rest:search".into());
        }
        Ok(Step { protocol, name: name.to_owned() })
    }
}

/// Parses `rest:list_projects=8,grpc:submit_task=2` (a step without `=N` weighs 1).
pub fn parse_mix(text: &str) -> Result<Vec<(Step, u32)>, String> {
    let mut mix = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (step, weight) = match part.split_once('=') {
            Some((step, weight)) => {
                let weight: u32 = weight
                    .parse()
                    .map_err(|_| format!("--mix: weight `{weight}` of `{step}` is not a whole number"))?;
                (step, weight)
            }
            None => (part, 1),
        };
        let step: Step = step.parse().map_err(|e| format!("--mix: {e}"))?;
        if weight > 0 {
            mix.push((step, weight));
        }
    }
    if mix.is_empty() {
        return Err("--mix: no step with a positive weight".into());
    }
    Ok(mix)
}

/// Sends one request of a step and says how it ended.
#[async_trait]
pub trait Target: Send + Sync {
    /// Performs `step`.
    async fn call(&self, step: &Step) -> Outcome;

    /// Performs `step` once and measures its payload; the error is the outcome.
    async fn probe(&self, step: &Step) -> Result<Payload, String>;
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
    async fn call(&self, _step: &Step) -> Outcome {
        self.pool.send(&self.request).await
    }

    async fn probe(&self, _step: &Step) -> Result<Payload, String> {
        let answer = self.pool.exchange(&self.request, true).await.map_err(|f| f.outcome().to_string())?;
        Ok(Payload { request: 0, response: answer.body.len() })
    }
}

/// The Q2O gateway over REST and gRPC, with one session and one project made at set-up.
#[derive(Debug)]
pub struct GatewayTarget {
    rest: Pool,
    /// Each REST step's request, serialized once: (step, bytes, body length).
    rest_requests: Vec<(&'static str, Bytes, usize)>,
    channels: Vec<Channel>,
    next_channel: AtomicUsize,
    token: String,
    project: String,
}

/// Set-up against the gateway failed: the run cannot start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

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
        let project = br#"{"name":"loadgen","tags":["loadgen"]}"#;
        let project = json(pool.request("POST", "/api/v1/projects", Some(&token), Some(project))).await?;
        let project = project["id"].as_str().ok_or_else(|| SetupError("project has no id".into()))?.to_owned();
        let p = &project;
        let task = br#"{"agent_type":"documentation","description":"load test task"}"#;
        let rest_requests = vec![
            ("list_projects", pool.request("GET", "/api/v1/projects?limit=10", Some(&token), None), 0),
            ("get_project", pool.request("GET", &format!("/api/v1/projects/{p}"), Some(&token), None), 0),
            ("project_status", pool.request("GET", &format!("/api/v1/projects/{p}/status"), Some(&token), None), 0),
            (
                "submit_task",
                pool.request("POST", &format!("/api/v1/projects/{p}/tasks"), Some(&token), Some(task)),
                task.len(),
            ),
            ("search", pool.request("GET", "/api/v1/search?q=loadgen", Some(&token), None), 0),
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

    fn channel(&self) -> Channel {
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
    async fn grpc(&self, step: &str) -> Result<Payload, tonic::Status> {
        let channel = self.channel();
        let project_id = self.project.clone();
        let sized = |request: usize, response: usize| Payload { request, response };
        match step {
            "list_projects" => {
                let message = pb::ListProjectsRequest { limit: 10, offset: 0 };
                let len = message.encoded_len();
                let mut client = pb::projects_client::ProjectsClient::new(channel);
                client.list_projects(self.authed(message)).await.map(|r| sized(len, r.get_ref().encoded_len()))
            }
            "get_project" => {
                let message = pb::GetProjectRequest { project_id };
                let len = message.encoded_len();
                let mut client = pb::projects_client::ProjectsClient::new(channel);
                client.get_project(self.authed(message)).await.map(|r| sized(len, r.get_ref().encoded_len()))
            }
            "project_status" => {
                let message = pb::GetProjectStatusRequest { project_id };
                let len = message.encoded_len();
                let mut client = pb::orchestrator_client::OrchestratorClient::new(channel);
                client.get_project_status(self.authed(message)).await.map(|r| sized(len, r.get_ref().encoded_len()))
            }
            "submit_task" => {
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

    async fn rest(&self, step: &str, keep_body: bool) -> Result<Payload, String> {
        let (_, request, body_len) =
            self.rest_requests.iter().find(|(name, ..)| *name == step).ok_or("error_unknown_step")?;
        let answer = self.rest.exchange(request, keep_body).await.map_err(|f| f.outcome().to_string())?;
        if !(200..300).contains(&answer.status) {
            return Err(format!("http_{}", answer.status));
        }
        Ok(Payload { request: *body_len, response: answer.body.len() })
    }
}

/// `n` (at least one) HTTP/2 connections to `url`; `flag` names the URL and
/// `server` the server in errors.
pub(crate) async fn connect_channels(
    flag: &str,
    server: &str,
    url: &str,
    n: usize,
) -> Result<Vec<Channel>, SetupError> {
    let mut channels = Vec::new();
    for _ in 0..n.max(1) {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| SetupError(format!("{flag} `{url}`: {e}")))?
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT);
        let channel =
            endpoint.connect().await.map_err(|e| SetupError(format!("cannot reach {server} at {url}: {e}")))?;
        channels.push(channel);
    }
    Ok(channels)
}

pub(crate) fn grpc_outcome<T>(result: Result<T, tonic::Status>) -> Outcome {
    match result {
        Ok(_) => "ok".into(),
        Err(status) => format!("grpc_{:?}", status.code()).to_lowercase().into(),
    }
}

#[async_trait]
impl Target for GatewayTarget {
    async fn call(&self, step: &Step) -> Outcome {
        match step.protocol {
            Protocol::Grpc => grpc_outcome(self.grpc(&step.name).await),
            Protocol::Rest => {
                let request = self.rest_requests.iter().find(|(name, ..)| *name == step.name).map(|(_, r, _)| r);
                match request {
                    Some(request) => self.rest.send(request).await,
                    None => "error_unknown_step".into(),
                }
            }
        }
    }

    async fn probe(&self, step: &Step) -> Result<Payload, String> {
        match step.protocol {
            Protocol::Grpc => self.grpc(&step.name).await.map_err(|s| grpc_outcome::<()>(Err(s)).to_string()),
            Protocol::Rest => self.rest(&step.name, true).await,
        }
    }
}

#[async_trait]
impl Target for ReviewTarget {
    async fn call(&self, step: &Step) -> Outcome {
        match self.review(step.protocol, false).await {
            Ok(_) => "ok".into(),
            Err(outcome) => outcome.into(),
        }
    }

    async fn probe(&self, step: &Step) -> Result<Payload, String> {
        self.review(step.protocol, true).await
    }
}

/// The gateway's steps and the agents' `review`, each sent where it belongs.
#[derive(Debug)]
pub struct Routed {
    /// The gateway, when the mix has its steps.
    pub gateway: Option<Arc<GatewayTarget>>,
    /// An agents process, when the mix has `review`.
    pub agents: Option<ReviewTarget>,
}

impl Routed {
    fn route(&self, step: &Step) -> Result<&dyn Target, Outcome> {
        let target: Option<&dyn Target> = if step.name == "review" {
            self.agents.as_ref().map(|a| a as &dyn Target)
        } else {
            self.gateway.as_deref().map(|g| g as &dyn Target)
        };
        target.ok_or_else(|| "error_no_target".into())
    }
}

#[async_trait]
impl Target for Routed {
    async fn call(&self, step: &Step) -> Outcome {
        match self.route(step) {
            Ok(target) => target.call(step).await,
            Err(outcome) => outcome,
        }
    }

    async fn probe(&self, step: &Step) -> Result<Payload, String> {
        self.route(step).map_err(|o| o.to_string())?.probe(step).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_with_weights_and_reject_nonsense() {
        let mix = parse_mix("rest:list_projects=8, grpc:submit_task=2,rest:search").unwrap();
        assert_eq!(mix.len(), 3);
        assert_eq!((mix[0].0.protocol, mix[0].1), (Protocol::Rest, 8));
        assert_eq!((mix[1].0.name.as_str(), mix[1].1), ("submit_task", 2));
        assert_eq!(mix[2].1, 1);
        assert!(parse_mix("rest:dance").unwrap_err().contains("unknown step `dance`"));
        assert!(parse_mix("soap:list_projects").unwrap_err().contains("unknown protocol"));
        assert!(parse_mix("rest:list_projects=x").unwrap_err().contains("whole number"));
        assert!(parse_mix("rest:list_projects=0").unwrap_err().contains("positive weight"));
        assert!(parse_mix("grpc:search").is_err());
    }
}
