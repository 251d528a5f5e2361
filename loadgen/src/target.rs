//! What a request does: the steps of the Q2O API over REST and gRPC, and a
//! plain `GET` of one URL (for any HTTP server).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, Uri, header};
use hyper_util::rt::TokioIo;
use q2o_proto::v1 as pb;
use tonic::transport::{Channel, Endpoint};

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

/// The Q2O operations a run can mix.
pub const Q2O_STEPS: &[&str] = &["list_projects", "get_project", "project_status", "submit_task", "search"];

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
}

/// HTTP/1.1 connections to one server, each carrying one request at a time: a
/// request takes an idle connection (or opens one) and gives it back once the
/// whole answer has arrived. Leaner per request than hyper-util's general pool
/// (no pool keys, no connect races, no spawn per checkout); open connections
/// stay bounded by the requests in flight.
#[derive(Debug)]
struct Http1Pool {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    idle: std::sync::Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

/// Why a request got no answer.
#[derive(Debug)]
enum Failure {
    Connect(String),
    Io(String),
    Timeout,
}

impl Failure {
    fn outcome(&self) -> Outcome {
        match self {
            Failure::Connect(_) => "error_connect".into(),
            Failure::Io(_) => "error_io".into(),
            Failure::Timeout => "error_timeout".into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) | Failure::Io(e) => f.write_str(e),
            Failure::Timeout => write!(f, "no answer within {REQUEST_TIMEOUT:?}"),
        }
    }
}

impl Http1Pool {
    /// A pool for the server of `url` (`http://host:port/...`).
    fn new(flag: &str, url: &str) -> Result<Http1Pool, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{flag} `{url}`: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{flag} `{url}`: only http:// URLs are supported"));
        }
        let authority = uri.authority().ok_or_else(|| format!("{flag} `{url}`: no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Http1Pool { authority: format!("{}:{port}", authority.host()), idle: std::sync::Mutex::default() })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let connect = tokio::net::TcpStream::connect(&self.authority);
        let stream = match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(Failure::Connect(e.to_string())),
            Err(_) => return Err(Failure::Connect("connect timed out".into())),
        };
        stream.set_nodelay(true).map_err(|e| Failure::Connect(e.to_string()))?;
        let (sender, connection) =
            http1::handshake(TokioIo::new(stream)).await.map_err(|e| Failure::Connect(e.to_string()))?;
        // The connection's driver; it ends when the sender is dropped or the peer closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// A sender ready for a request: an idle one that is still open, or a new one.
    async fn checkout(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        loop {
            let idle = self.idle.lock().expect("never poisoned").pop();
            match idle {
                Some(mut sender) => {
                    if sender.ready().await.is_ok() {
                        return Ok(sender);
                    }
                }
                None => return self.connect().await,
            }
        }
    }

    /// `method path` with `body`, and `Authorization: Bearer token` if given.
    fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Bytes>) -> Request<Full<Bytes>> {
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, &self.authority);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        request.body(Full::new(body.unwrap_or_default())).expect("request parts are valid")
    }

    /// Sends `request` and reads the whole answer.
    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<(hyper::StatusCode, Bytes), Failure> {
        let call = async {
            let mut sender = self.checkout().await?;
            let response = sender.send_request(request).await.map_err(|e| Failure::Io(e.to_string()))?;
            let status = response.status();
            // The response is not complete until its body has arrived.
            let body = response.into_body().collect().await.map_err(|e| Failure::Io(e.to_string()))?.to_bytes();
            self.idle.lock().expect("never poisoned").push(sender);
            Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, call).await.unwrap_or(Err(Failure::Timeout))
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Outcome {
        match self.exchange(request).await {
            Ok((status, _)) if status.is_success() => "ok".into(),
            Ok((status, _)) => format!("http_{}", status.as_u16()).into(),
            Err(failure) => failure.outcome(),
        }
    }
}

/// `GET` of one URL, as step `get`.
#[derive(Debug)]
pub struct UrlTarget {
    pool: Http1Pool,
    path: String,
}

impl UrlTarget {
    /// A target for `url`.
    pub fn new(url: &str) -> Result<UrlTarget, String> {
        let pool = Http1Pool::new("--url", url)?;
        let uri: Uri = url.parse().map_err(|e| format!("--url `{url}`: {e}"))?;
        let path = uri.path_and_query().map_or("/".to_owned(), |p| p.as_str().to_owned());
        Ok(UrlTarget { pool, path })
    }
}

#[async_trait]
impl Target for UrlTarget {
    async fn call(&self, _step: &Step) -> Outcome {
        self.pool.send(self.pool.request(Method::GET, &self.path, None, None)).await
    }
}

/// The Q2O gateway over REST and gRPC, with one session and one project made at set-up.
#[derive(Debug)]
pub struct GatewayTarget {
    rest: Http1Pool,
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
        let pool = Http1Pool::new("--rest-url", rest).map_err(SetupError)?;
        let json = |request| async {
            let (status, body) = pool.exchange(request).await.map_err(unreachable)?;
            if !status.is_success() {
                return Err(SetupError(format!("the gateway answered {status}: {}", String::from_utf8_lossy(&body))));
            }
            serde_json::from_slice::<serde_json::Value>(&body)
                .map_err(|e| SetupError(format!("unexpected answer: {e}")))
        };
        let login = serde_json::json!({ "api_key": api_key }).to_string();
        let login = json(pool.request(Method::POST, "/api/v1/auth/login", None, Some(login.into()))).await?;
        let token = login["token"].as_str().ok_or_else(|| SetupError("login returned no token".into()))?.to_owned();
        let project = Bytes::from_static(br#"{"name":"loadgen","tags":["loadgen"]}"#);
        let project = json(pool.request(Method::POST, "/api/v1/projects", Some(&token), Some(project))).await?;
        let project = project["id"].as_str().ok_or_else(|| SetupError("project has no id".into()))?.to_owned();
        let mut pool_of_channels = Vec::new();
        if let Some(grpc) = grpc {
            for _ in 0..channels.max(1) {
                let endpoint = Endpoint::from_shared(grpc.to_owned())
                    .map_err(|e| SetupError(format!("--grpc-url `{grpc}`: {e}")))?
                    .tcp_nodelay(true)
                    .timeout(REQUEST_TIMEOUT);
                let channel = endpoint
                    .connect()
                    .await
                    .map_err(|e| SetupError(format!("cannot reach the gateway's gRPC at {grpc}: {e}")))?;
                pool_of_channels.push(channel);
            }
        }
        Ok(Arc::new(GatewayTarget {
            rest: pool,
            channels: pool_of_channels,
            next_channel: AtomicUsize::new(0),
            token,
            project,
        }))
    }

    fn rest_request(&self, method: Method, path: &str, body: Option<&'static str>) -> Request<Full<Bytes>> {
        self.rest.request(method, path, Some(&self.token), body.map(|b| Bytes::from_static(b.as_bytes())))
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

    async fn grpc(&self, step: &str) -> Result<(), tonic::Status> {
        let channel = self.channel();
        let project_id = self.project.clone();
        match step {
            "list_projects" => {
                let request = self.authed(pb::ListProjectsRequest { limit: 10, offset: 0 });
                pb::projects_client::ProjectsClient::new(channel).list_projects(request).await.map(drop)
            }
            "get_project" => {
                let request = self.authed(pb::GetProjectRequest { project_id });
                pb::projects_client::ProjectsClient::new(channel).get_project(request).await.map(drop)
            }
            "project_status" => {
                let request = self.authed(pb::GetProjectStatusRequest { project_id });
                pb::orchestrator_client::OrchestratorClient::new(channel).get_project_status(request).await.map(drop)
            }
            "submit_task" => {
                let request = self.authed(pb::DistributeTaskRequest {
                    project_id,
                    agent_type: "documentation".into(),
                    description: "load test task".into(),
                });
                pb::orchestrator_client::OrchestratorClient::new(channel).distribute_task(request).await.map(drop)
            }
            other => Err(tonic::Status::unimplemented(format!("no gRPC step {other}"))),
        }
    }
}

fn grpc_outcome(result: Result<(), tonic::Status>) -> Outcome {
    match result {
        Ok(()) => "ok".into(),
        Err(status) => format!("grpc_{:?}", status.code()).to_lowercase().into(),
    }
}

#[async_trait]
impl Target for GatewayTarget {
    async fn call(&self, step: &Step) -> Outcome {
        match step.protocol {
            Protocol::Grpc => grpc_outcome(self.grpc(&step.name).await),
            Protocol::Rest => {
                let p = &self.project;
                let request = match step.name.as_str() {
                    "list_projects" => self.rest_request(Method::GET, "/api/v1/projects?limit=10", None),
                    "get_project" => self.rest_request(Method::GET, &format!("/api/v1/projects/{p}"), None),
                    "project_status" => self.rest_request(Method::GET, &format!("/api/v1/projects/{p}/status"), None),
                    "submit_task" => self.rest_request(
                        Method::POST,
                        &format!("/api/v1/projects/{p}/tasks"),
                        Some(r#"{"agent_type":"documentation","description":"load test task"}"#),
                    ),
                    _ => self.rest_request(Method::GET, "/api/v1/search?q=loadgen", None),
                };
                self.rest.send(request).await
            }
        }
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
