//! A stack of real processes for one test.

use std::time::Duration;

use q2o_proto::v1 as pb;
use q2o_testkit::{RedisServer, ScratchDir, Service, eventually};
use serde_json::{Value, json};
use tonic::transport::Channel;

/// Agents whose simulated LLM answers in milliseconds and which take over a dead
/// worker's tasks after one second.
pub(crate) const FAST_AGENTS: &str = r#"
claim_wait = "200ms"
reclaim_after = "1s"
reclaim_every = "200ms"
[[models]]
name = "fast"
latency_median = "3ms"
latency_p99 = "10ms"
prompt_overhead_tokens = 100
completion_tokens_mean = 200
usd_per_1k_prompt = 0.01
usd_per_1k_completion = 0.03
"#;

/// Pools for the agent types the tests use, on the `fast` (or another) model.
pub(crate) fn pools(model: &str) -> String {
    ["coder", "researcher", "qa", "documentation"]
        .iter()
        .map(|a| format!("[[pools]]\nagent_type = \"{a}\"\nworkers = 4\nmodel = \"{model}\"\n"))
        .collect()
}

pub(crate) const GATEWAY: &str = r#"
[[tenants]]
tenant = "acme"
api_key = "key-acme-0001"
[[tenants]]
tenant = "globex"
api_key = "key-globex-0001"
"#;

pub(crate) struct Stack {
    pub(crate) redis: RedisServer,
    pub(crate) gateways: Vec<Service>,
    pub(crate) agents: Vec<Service>,
    pub(crate) dir: ScratchDir,
}

impl Stack {
    /// Redis, `gateways` gateway replicas with `gateway_toml`, and one agents
    /// process with `agents_toml` (none if empty).
    pub(crate) fn start(gateway_toml: &str, gateways: usize, agents_toml: &str) -> Stack {
        let redis = RedisServer::start().expect("redis-server starts");
        let dir = ScratchDir::new("stack").unwrap();
        let mut stack = Stack { redis, gateways: Vec::new(), agents: Vec::new(), dir };
        let config = stack.write("gateway.toml", gateway_toml);
        for _ in 0..gateways {
            let gateway = Service::start(
                "q2o-gateway",
                &["--config", &config, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
                &[("Q2O_REDIS_URL", &stack.redis.url())],
            )
            .expect("gateway starts");
            stack.gateways.push(gateway);
        }
        if !agents_toml.is_empty() {
            let agents = stack.start_agents(agents_toml, &[]);
            stack.agents.push(agents);
        }
        stack
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    pub(crate) fn start_agents(&self, agents_toml: &str, extra: &[&str]) -> Service {
        let name = format!("agents-{}.toml", rand_suffix());
        let config = self.write(&name, agents_toml);
        let mut args = vec!["--config", config.as_str(), "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Service::start("q2o-agents", &args, &[("Q2O_REDIS_URL", &self.redis.url())]).expect("agents start")
    }

    pub(crate) fn rest(&self, replica: usize) -> String {
        self.gateways[replica].url("http")
    }

    pub(crate) async fn grpc(&self, replica: usize) -> Channel {
        Channel::from_shared(self.gateways[replica].url("grpc")).unwrap().connect().await.unwrap()
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// A REST client holding one session.
pub(crate) struct RestClient {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl RestClient {
    pub(crate) async fn login(base: &str, api_key: &str) -> RestClient {
        let http = reqwest::Client::new();
        let response =
            http.post(format!("{base}/api/v1/auth/login")).json(&json!({ "api_key": api_key })).send().await.unwrap();
        assert_eq!(response.status(), 200, "login failed");
        let body: Value = response.json().await.unwrap();
        RestClient { http, base: base.to_owned(), token: body["token"].as_str().unwrap().to_owned() }
    }

    pub(crate) fn on(&self, base: &str) -> RestClient {
        RestClient { http: self.http.clone(), base: base.to_owned(), token: self.token.clone() }
    }

    pub(crate) async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub(crate) async fn create_project(&self, name: &str) -> String {
        let (status, body) = self.post("/api/v1/projects", json!({ "name": name, "tags": ["test"] })).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn submit_task(&self, project: &str, agent_type: &str, description: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/v1/projects/{project}/tasks"),
                json!({ "agent_type": agent_type, "description": description }),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body
    }

    /// Polls the task until it has finished.
    pub(crate) async fn finished_task(&self, task: &str, within: Duration) -> Value {
        eventually(within, "the task to finish", || async {
            let (status, body) = self.get(&format!("/api/v1/tasks/{task}")).await;
            (status == 200 && matches!(body["status"].as_str(), Some("completed" | "failed"))).then_some(body)
        })
        .await
        .unwrap()
    }
}

/// Adds a bearer token to a gRPC request.
pub(crate) fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub(crate) async fn grpc_login(channel: Channel, api_key: &str) -> String {
    let mut auth = pb::auth_client::AuthClient::new(channel);
    auth.login(pb::LoginRequest { api_key: api_key.into() }).await.unwrap().into_inner().token
}

pub(crate) async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap()
}
