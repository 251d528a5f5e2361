//! The docker environment (`--env docker`): the scenario's topology as
//! containers on a network of the run's own, started through testcontainers
//! from the images `just images` builds (`q2o/<service>:local`, FROM scratch).
//! Each replica is its own container with its own CPU and memory limits, like
//! a pod. Services find each other by container name; the runner reaches them
//! through ports published on 127.0.0.1.
//!
//! Prometheus and the load generator stay on the host, as in the local
//! environment: they are the instruments, and the containers' limits then
//! bound the system under test alone.
//!
//! A killed container is started again by the runner (as a restart policy
//! would, but timed), and every container and the network are removed at the
//! end, on failure and on Ctrl-C; each carries the label `q2o.run=<run id>`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
use testcontainers::bollard::query_parameters::{KillContainerOptions, LogsOptions};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::time::Instant;

use crate::balancer::Balancer;
use crate::local::{Environment, ScrapeTarget, UNTHROTTLED, agents_toml, free_addr};
use crate::scenario::{FaultAction, Scenario};
use crate::supervisor::{READY_TIMEOUT, Recovery};

/// Where the images come from: `q2o/<service>:local` unless
/// `Q2O_IMAGE_<SERVICE>` names another (`Q2O_IMAGE_REDIS=redis:7`).
#[derive(Clone, Debug)]
pub struct Images;

impl Images {
    /// `(name, tag)` of the image for `service` (`gateway`, `redis`, `load-balancer`, ...).
    pub fn of(service: &str) -> (String, String) {
        let key = format!("Q2O_IMAGE_{}", service.to_uppercase().replace('-', "_"));
        let reference = std::env::var(key).unwrap_or_else(|_| format!("q2o/{service}:local"));
        match reference.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
            Some((name, tag)) => (name.to_owned(), tag.to_owned()),
            None => (reference, "latest".to_owned()),
        }
    }
}

/// A container could not be started or used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DockerError(String);

fn err(what: impl std::fmt::Display) -> DockerError {
    DockerError(what.to_string())
}

/// What the runner checks to call a service ready, on the host.
#[derive(Clone, Debug)]
enum Ready {
    Http(String),
    Tcp(SocketAddr),
}

struct Service {
    name: String,
    container: ContainerAsync<GenericImage>,
    ready: Ready,
}

/// The run's containers and network.
pub struct Containers {
    docker: Docker,
    network: String,
    run_id: String,
    logs: PathBuf,
    services: tokio::sync::Mutex<Vec<Service>>,
    recoveries: Mutex<Vec<Recovery>>,
    epoch: Instant,
}

impl std::fmt::Debug for Containers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containers").field("network", &self.network).finish_non_exhaustive()
    }
}

/// One container to start.
struct Spec {
    /// The image's service (`gateway`).
    image: &'static str,
    /// The replica's name in scenarios and reports (`gateway-0`).
    name: String,
    cmd: Vec<String>,
    env: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
    /// (host address, container port) pairs to publish.
    ports: Vec<(SocketAddr, u16)>,
    ready: Ready,
    limited: bool,
}

impl Containers {
    /// Starts the topology of `scenario` and fills in `env`'s endpoints; logs
    /// go to `run/logs` at the end.
    pub async fn start(
        scenario: &Scenario,
        run: &Path,
        run_id: &str,
        env: &mut Environment,
    ) -> Result<Containers, DockerError> {
        let docker = Docker::connect_with_local_defaults().map_err(|e| err(format!("cannot reach docker: {e}")))?;
        docker.ping().await.map_err(|e| err(format!("the docker engine does not answer: {e}")))?;
        let containers = Containers {
            docker,
            network: format!("q2o-{}", run_id.to_lowercase()),
            run_id: run_id.to_owned(),
            logs: run.join("logs"),
            services: tokio::sync::Mutex::default(),
            recoveries: Mutex::default(),
            epoch: Instant::now(),
        };
        // A failure half-way still removes what was started.
        if let Err(e) = containers.start_all(scenario, env).await {
            containers.remove_all().await;
            return Err(e);
        }
        Ok(containers)
    }

    fn limits(scenario: &Scenario) -> (Option<i64>, Option<i64>) {
        let t = &scenario.topology;
        (t.cpus.map(|c| (c * 1e9) as i64), t.memory_mib.map(|m| (m * 1024 * 1024) as i64))
    }

    async fn run(&self, scenario: &Scenario, spec: Spec) -> Result<(), DockerError> {
        let (image, tag) = Images::of(spec.image);
        let container_name = self.container_name(&spec.name);
        let mut request = GenericImage::new(image.clone(), tag.clone())
            .with_wait_for(WaitFor::Nothing)
            .with_cmd(spec.cmd)
            .with_network(self.network.clone())
            .with_container_name(container_name)
            .with_label("q2o.run", self.run_id.clone())
            .with_label("q2o.service", spec.name.clone())
            .with_startup_timeout(READY_TIMEOUT);
        for (key, value) in spec.env {
            request = request.with_env_var(key, value);
        }
        for (target, data) in spec.files {
            request = request.with_copy_to(target, data);
        }
        for (host, port) in &spec.ports {
            request = request.with_mapped_port(host.port(), port.tcp());
        }
        let (nano_cpus, memory) = if spec.limited { Self::limits(scenario) } else { (None, None) };
        request = request.with_host_config_modifier(move |host| {
            host.nano_cpus = nano_cpus;
            host.memory = memory;
            // Publish on loopback only: the host reaches them, nothing else does.
            if let Some(bindings) = host.port_bindings.as_mut() {
                for binding in bindings.values_mut().flatten().flatten() {
                    binding.host_ip = Some("127.0.0.1".into());
                }
            }
        });
        let container = request.start().await.map_err(|e| {
            err(format!(
                "cannot start {} from image {image}:{tag}: {e} (build the images with `just images`)",
                spec.name
            ))
        })?;
        let service = Service { name: spec.name, container, ready: spec.ready };
        let ready = self.wait_ready(&service).await;
        let name = service.name.clone();
        self.services.lock().await.push(service);
        ready.map_err(|why| err(format!("{name} did not become ready within {} s ({why})", READY_TIMEOUT.as_secs())))
    }

    async fn wait_ready(&self, service: &Service) -> Result<(), String> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("static client config");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ready = match &service.ready {
                Ready::Http(url) => client.get(url).send().await.is_ok_and(|r| r.status().is_success()),
                Ready::Tcp(addr) => tokio::net::TcpStream::connect(addr).await.is_ok(),
            };
            if ready {
                return Ok(());
            }
            if !service.container.is_running().await.unwrap_or(false) {
                return Err(format!("it exited; last log lines:\n{}", self.log_tail(service.container.id()).await));
            }
            if Instant::now() > deadline {
                return Err(format!("timed out; last log lines:\n{}", self.log_tail(service.container.id()).await));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn log_text(&self, id: &str) -> String {
        let options = LogsOptions { stdout: true, stderr: true, ..LogsOptions::default() };
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&chunk.to_string());
        }
        text
    }

    async fn log_tail(&self, id: &str) -> String {
        let text = self.log_text(id).await;
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// A replica's container name, which is also its name on the network.
    fn container_name(&self, name: &str) -> String {
        format!("{}-{name}", self.network)
    }

    /// Seconds since the containers started: the clock of the recoveries.
    pub fn elapsed(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Every restart so far.
    pub fn recoveries(&self) -> Vec<Recovery> {
        self.recoveries.lock().expect("never poisoned").clone()
    }

    /// Does `action` to the container of `service`; false if there is none.
    /// A `kill` is followed by a restart, a `start` by a wait until ready; both are timed.
    pub async fn inject(&self, action: FaultAction, service: &str) -> Result<bool, DockerError> {
        let services = self.services.lock().await;
        let Some(s) = services.iter().find(|s| s.name == service) else { return Ok(false) };
        let id = s.container.id().to_owned();
        let docker_error =
            |e: testcontainers::core::error::TestcontainersError| err(format!("{action:?} {service}: {e}"));
        match action {
            FaultAction::Kill => {
                let died_at = self.elapsed();
                let options = KillContainerOptions { signal: "SIGKILL".into() };
                self.docker
                    .kill_container(&id, Some(options))
                    .await
                    .map_err(|e| err(format!("kill {service}: {e}")))?;
                let restarting = Instant::now();
                s.container.start().await.map_err(docker_error)?;
                self.record(
                    service,
                    died_at,
                    self.wait_ready(s).await.ok().map(|()| restarting.elapsed().as_secs_f64()),
                );
            }
            FaultAction::Pause => s.container.pause().await.map_err(docker_error)?,
            FaultAction::Unpause => s.container.unpause().await.map_err(docker_error)?,
            FaultAction::Stop => {
                s.container.stop_with_timeout(Some(10)).await.map_err(docker_error)?;
                self.record(service, self.elapsed(), None);
            }
            FaultAction::Start => {
                let restarting = Instant::now();
                s.container.start().await.map_err(docker_error)?;
                let recovered = self.wait_ready(s).await.ok().map(|()| restarting.elapsed().as_secs_f64());
                // The stop recorded the death; its recovery is this start's.
                let mut recoveries = self.recoveries.lock().expect("never poisoned");
                if let Some(open) =
                    recoveries.iter_mut().rev().find(|r| r.service == service && r.recovered_after.is_none())
                {
                    open.recovered_after = recovered;
                }
            }
            FaultAction::Disconnect => {
                let request = NetworkDisconnectRequest { container: id, force: Some(true) };
                self.docker
                    .disconnect_network(&self.network, request)
                    .await
                    .map_err(|e| err(format!("disconnect {service}: {e}")))?;
            }
            FaultAction::Reconnect => {
                // The network's DNS answers for the container's name again by itself.
                let request =
                    NetworkConnectRequest { container: id, endpoint_config: Some(EndpointSettings::default()) };
                self.docker
                    .connect_network(&self.network, request)
                    .await
                    .map_err(|e| err(format!("reconnect {service}: {e}")))?;
            }
        }
        Ok(true)
    }

    fn record(&self, service: &str, died_at: f64, recovered_after: Option<f64>) {
        self.recoveries.lock().expect("never poisoned").push(Recovery {
            service: service.to_owned(),
            died_at,
            recovered_after,
        });
    }

    /// Writes each container's log into the run's logs, then removes every
    /// container and the network.
    pub async fn remove_all(&self) {
        let services: Vec<Service> = self.services.lock().await.drain(..).collect();
        for service in services.into_iter().rev() {
            let text = self.log_text(service.container.id()).await;
            let _ = std::fs::write(self.logs.join(format!("{}.log", service.name)), text);
            if let Err(e) = service.container.rm().await {
                tracing::warn!(service = %service.name, %e, "cannot remove the container");
            }
        }
        // testcontainers removes a network it made when its last container
        // goes; make sure of it, since a leftover network is a leak.
        let _ = self.docker.remove_network(&self.network).await;
    }
}

impl Containers {
    async fn start_all(&self, scenario: &Scenario, env: &mut Environment) -> Result<(), DockerError> {
        let t = &scenario.topology;
        let dns = |service: &str| self.container_name(service);
        let host = || free_addr().map_err(|e| err(format!("no free port: {e}")));
        let c = self;
        if t.monolith {
            let (http, agents) = (host()?, host()?);
            let config = format!(
                "[gateway]\ngrpc_addr = \"0.0.0.0:9090\"\n{}",
                UNTHROTTLED.replace("[rate_limit]", "[gateway.rate_limit]")
            );
            let spec = Spec {
                image: "monolith",
                name: "monolith".into(),
                cmd: [
                    "--config",
                    "/etc/q2o/monolith.toml",
                    "--http-addr",
                    "0.0.0.0:8080",
                    "--agents-http-addr",
                    "0.0.0.0:8081",
                ]
                .map(str::to_owned)
                .to_vec(),
                env: Vec::new(),
                files: vec![("/etc/q2o/monolith.toml".into(), config.into_bytes())],
                ports: vec![(http, 8080), (agents, 8081)],
                ready: Ready::Http(format!("http://{http}/ready")),
                limited: true,
            };
            c.run(scenario, spec).await?;
            env.targets.push(ScrapeTarget { job: "gateway".into(), addr: http });
            env.targets.push(ScrapeTarget { job: "agents".into(), addr: agents });
            env.rest_urls.push(format!("http://{http}"));
            return Ok(());
        }

        let redis_host = host()?;
        let redis = dns("redis");
        let aof = if t.redis_aof { "yes" } else { "no" };
        let cmd = ["--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", ""]
            .into_iter()
            .chain(["--appendonly", aof, "--appendfsync", "everysec", "--dir", "/data"])
            .map(str::to_owned)
            .collect();
        let spec = Spec {
            image: "redis",
            name: "redis".into(),
            cmd,
            env: Vec::new(),
            files: Vec::new(),
            ports: vec![(redis_host, 6379)],
            ready: Ready::Tcp(redis_host),
            limited: false,
        };
        c.run(scenario, spec).await?;
        env.redis_url = Some(format!("redis://{redis_host}"));
        let redis_url = format!("redis://{redis}:6379");

        let mut kafka = None;
        if t.kafka {
            let broker = dns("broker");
            let broker_host = host()?;
            let advertised = format!("tcp://{broker}:9092");
            let cmd = ["broker", "--listener-url", "tcp://0.0.0.0:9092", "--advertised-listener-url", &advertised]
                .into_iter()
                .chain(["--storage-engine", "sqlite://broker.db"])
                .map(str::to_owned)
                .collect();
            let spec = Spec {
                image: "broker",
                name: "broker".into(),
                cmd,
                env: Vec::new(),
                files: Vec::new(),
                ports: vec![(broker_host, 9092)],
                ready: Ready::Tcp(broker_host),
                limited: false,
            };
            c.run(scenario, spec).await?;
            kafka = Some(format!("{broker}:9092"));
        }

        let mut search_url = String::new();
        if t.search {
            let http = host()?;
            let search = dns("search");
            let spec = Spec {
                image: "search",
                name: "search".into(),
                cmd: vec![
                    "--http-addr".into(),
                    "0.0.0.0:8080".into(),
                    "--data-dir".into(),
                    "/data/search".into(),
                    "--kafka-bootstrap".into(),
                    kafka.clone().unwrap_or_default(),
                ],
                env: Vec::new(),
                files: Vec::new(),
                ports: vec![(http, 8080)],
                ready: Ready::Http(format!("http://{http}/ready")),
                limited: true,
            };
            c.run(scenario, spec).await?;
            env.targets.push(ScrapeTarget { job: "search".into(), addr: http });
            search_url = format!("http://{search}:8080");
        }

        let agents_config = agents_toml(scenario, kafka.as_deref()).into_bytes();
        for i in 0..t.agent_processes {
            let http = host()?;
            let spec = Spec {
                image: "agents",
                name: format!("agents-{i}"),
                cmd: ["--config", "/etc/q2o/agents.toml", "--http-addr", "0.0.0.0:8080", "--grpc-addr", "0.0.0.0:9090"]
                    .map(str::to_owned)
                    .to_vec(),
                env: vec![("Q2O_REDIS_URL".into(), redis_url.clone())],
                files: vec![("/etc/q2o/agents.toml".into(), agents_config.clone())],
                ports: vec![(http, 8080)],
                ready: Ready::Http(format!("http://{http}/ready")),
                limited: true,
            };
            c.run(scenario, spec).await?;
            env.targets.push(ScrapeTarget { job: "agents".into(), addr: http });
        }

        let mut upstreams = (Vec::new(), Vec::new());
        for i in 0..t.gateways {
            let (http, grpc) = (host()?, host()?);
            let gateway = dns(&format!("gateway-{i}"));
            let mut cmd: Vec<String> =
                ["--config", "/etc/q2o/gateway.toml", "--http-addr", "0.0.0.0:8080", "--grpc-addr", "0.0.0.0:9090"]
                    .map(str::to_owned)
                    .to_vec();
            if !search_url.is_empty() {
                cmd.extend(["--search-url".into(), search_url.clone()]);
            }
            let spec = Spec {
                image: "gateway",
                name: format!("gateway-{i}"),
                cmd,
                env: vec![("Q2O_REDIS_URL".into(), redis_url.clone())],
                files: vec![("/etc/q2o/gateway.toml".into(), UNTHROTTLED.as_bytes().to_vec())],
                ports: vec![(http, 8080), (grpc, 9090)],
                ready: Ready::Http(format!("http://{http}/ready")),
                limited: true,
            };
            c.run(scenario, spec).await?;
            env.targets.push(ScrapeTarget { job: "gateway".into(), addr: http });
            env.rest_urls.push(format!("http://{http}"));
            env.grpc_urls.push(format!("http://{grpc}"));
            upstreams.0.push(format!("{gateway}:8080"));
            upstreams.1.push(format!("{gateway}:9090"));
        }

        if t.load_balancer {
            let (rest, grpc) = (host()?, host()?);
            let balancer = Balancer {
                rest: "0.0.0.0:8080".parse().expect("static address"),
                grpc: "0.0.0.0:9090".parse().expect("static address"),
                rest_upstreams: &upstreams.0,
                grpc_upstreams: &upstreams.1,
                work_dir: Path::new("/tmp"),
            };
            let spec = Spec {
                image: "load-balancer",
                name: "load-balancer".into(),
                cmd: ["-c", "/etc/nginx/nginx.conf", "-e", "stderr", "-p", "/tmp"].map(str::to_owned).to_vec(),
                env: Vec::new(),
                files: vec![("/etc/nginx/nginx.conf".into(), balancer.config().into_bytes())],
                ports: vec![(rest, 8080), (grpc, 9090)],
                ready: Ready::Tcp(rest),
                limited: false,
            };
            c.run(scenario, spec).await?;
            env.rest_urls = vec![format!("http://{rest}")];
            env.grpc_urls = vec![format!("http://{grpc}")];
        }
        Ok(())
    }
}
