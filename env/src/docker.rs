//! The docker backend (`--env docker`): the plan as containers on a network
//! of the run's own, started through testcontainers from the images `just
//! images` builds (`q2o/<service>:local`, FROM scratch). Each replica is its
//! own container with the topology's CPU and memory limits, like a pod.
//! Services find each other by container name; the harness reaches them
//! through ports published on 127.0.0.1.
//!
//! A killed container is started again by the backend (as a restart policy
//! would, but timed), and every container and the network are removed at the
//! end, on failure and on Ctrl-C; each carries the label `q2o.run=<run id>`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
use testcontainers::bollard::query_parameters::{InspectContainerOptions, KillContainerOptions, LogsOptions};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::time::Instant;

use crate::backend::{Backend, Recovery};
use crate::config_files;
use crate::endpoints::Endpoints;
use crate::error::EnvError;
use crate::plan::{PortKind, PortRef, Ready, Resolve, ServicePlan, resolve_args};
use crate::ports::free_addr;
use crate::supervisor::READY_TIMEOUT;
use crate::topology::{FaultAction, Topology};

/// Where the images come from: `q2o/<service>:local` unless
/// `Q2O_IMAGE_<SERVICE>` names another (`Q2O_IMAGE_REDIS=redis:7`).
#[derive(Clone, Copy, Debug)]
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

fn docker_error(what: impl std::fmt::Display) -> EnvError {
    EnvError::Docker(what.to_string())
}

/// Addresses inside the run's network, and the host's published ones.
#[derive(Debug)]
struct Layout {
    network: String,
    hosts: BTreeMap<(String, PortKind), SocketAddr>,
}

impl Layout {
    /// A replica's container name, which is also its name on the network.
    fn container_name(&self, service: &str) -> String {
        format!("{}-{service}", self.network)
    }

    fn host(&self, service: &str, port: PortKind) -> SocketAddr {
        self.hosts[&(service.to_owned(), port)]
    }
}

impl Resolve for Layout {
    fn listen(&self, _service: &str, port: PortKind) -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], port.container_port()))
    }

    fn peer(&self, to: &PortRef) -> String {
        format!("{}:{}", self.container_name(&to.service), to.port.container_port())
    }

    fn config_path(&self, service: &ServicePlan) -> String {
        service.config.as_ref().map_or("/etc/q2o/config", |c| c.container_path()).to_owned()
    }

    // Each container has its own file system: the image's /data, and /tmp
    // (writable by nginx's unprivileged workers).
    fn data_dir(&self, _service: &str) -> String {
        "/data".into()
    }

    fn scratch_dir(&self, _service: &str) -> String {
        "/tmp".into()
    }
}

/// What the backend checks, on the host, to call a container ready.
#[derive(Clone, Debug)]
enum HostReady {
    Http(String),
    Tcp(SocketAddr),
    LogLine(&'static str),
}

#[derive(Debug)]
struct Service {
    name: String,
    container: ContainerAsync<GenericImage>,
    ready: HostReady,
}

/// The run's containers and network.
pub struct DockerBackend {
    docker: Docker,
    network: String,
    logs: PathBuf,
    services: tokio::sync::Mutex<Vec<Arc<Service>>>,
    recoveries: Arc<Mutex<Vec<Recovery>>>,
    restarts: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    epoch: Instant,
}

impl std::fmt::Debug for DockerBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerBackend").field("network", &self.network).finish_non_exhaustive()
    }
}

impl DockerBackend {
    /// Starts `plans` as containers on a network named after `run_id`; their
    /// logs go to `run/logs` when they are removed. A failure half-way removes
    /// what was started.
    pub async fn start(
        plans: &[ServicePlan],
        topology: &Topology,
        run: &Path,
        run_id: &str,
        epoch: Instant,
    ) -> Result<(DockerBackend, Endpoints), EnvError> {
        let docker =
            Docker::connect_with_local_defaults().map_err(|e| docker_error(format!("cannot reach docker: {e}")))?;
        docker.ping().await.map_err(|e| docker_error(format!("the docker engine does not answer: {e}")))?;
        let logs = run.join("logs");
        std::fs::create_dir_all(&logs).map_err(EnvError::io(&logs))?;
        let mut layout = Layout { network: format!("q2o-{}", run_id.to_lowercase()), hosts: BTreeMap::new() };
        let backend = DockerBackend {
            docker,
            network: layout.network.clone(),
            logs,
            services: tokio::sync::Mutex::default(),
            recoveries: Arc::default(),
            restarts: Mutex::default(),
            epoch,
        };
        let limits = (topology.cpus.map(|c| (c * 1e9) as i64), topology.memory_mib.map(|m| (m * 1024 * 1024) as i64));
        for service in plans {
            if let Err(err) = backend.run_with_free_ports(service, &mut layout, run_id, limits).await {
                backend.stop().await;
                return Err(err);
            }
        }
        let mut endpoints = Endpoints::of(plans, |service, port| layout.host(service, port));
        // The broker advertises its container's name, which only the run's network resolves.
        endpoints.kafka = None;
        Ok((backend, endpoints))
    }

    /// Picks host ports for `plan` just before starting it; a port another
    /// process took in between is picked again (twice at most).
    async fn run_with_free_ports(
        &self,
        plan: &ServicePlan,
        layout: &mut Layout,
        run_id: &str,
        limits: (Option<i64>, Option<i64>),
    ) -> Result<(), EnvError> {
        let mut tries = 0;
        loop {
            for port in &plan.ports {
                layout.hosts.insert((plan.name.clone(), *port), free_addr()?);
            }
            match self.run(plan, layout, run_id, limits).await {
                Err(EnvError::Docker(why)) if why.contains("address already in use") && tries < 2 => {
                    tries += 1;
                    // The container was made but not started: it goes before its name is used again.
                    let options = testcontainers::bollard::query_parameters::RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    };
                    let _ = self.docker.remove_container(&layout.container_name(&plan.name), Some(options)).await;
                }
                done => return done,
            }
        }
    }

    async fn run(
        &self,
        plan: &ServicePlan,
        layout: &Layout,
        run_id: &str,
        (nano_cpus, memory): (Option<i64>, Option<i64>),
    ) -> Result<(), EnvError> {
        let (image, tag) = Images::of(plan.kind.image());
        let args: Vec<String> = resolve_args(plan, layout);
        let mut request = GenericImage::new(image.clone(), tag.clone())
            .with_wait_for(WaitFor::Nothing)
            .with_cmd(args)
            .with_network(self.network.clone())
            .with_container_name(layout.container_name(&plan.name))
            .with_label("q2o.run", run_id.to_owned())
            .with_label("q2o.service", plan.name.clone())
            .with_startup_timeout(READY_TIMEOUT);
        for (key, value) in &plan.env {
            request = request.with_env_var(*key, value.resolve(plan, layout));
        }
        if let Some(config) = &plan.config {
            request =
                request.with_copy_to(config.container_path(), config_files::render(config, plan, layout).into_bytes());
        }
        for port in &plan.ports {
            request = request.with_mapped_port(layout.host(&plan.name, *port).port(), port.container_port().tcp());
        }
        let (nano_cpus, memory) = if plan.limited { (nano_cpus, memory) } else { (None, None) };
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
            docker_error(format!(
                "cannot start {} from image {image}:{tag}: {e} (build the images with `just images`)",
                plan.name
            ))
        })?;
        let host = |port| layout.host(&plan.name, port);
        let ready = match &plan.ready {
            Ready::Http(port, path) => HostReady::Http(format!("http://{}{path}", host(*port))),
            Ready::Tcp(port) => HostReady::Tcp(host(*port)),
            Ready::LogLine(text) => HostReady::LogLine(text),
        };
        let service = Arc::new(Service { name: plan.name.clone(), container, ready });
        self.services.lock().await.push(Arc::clone(&service));
        wait_ready(&self.docker, &service, 0).await.map_err(|why| {
            docker_error(format!("{} did not become ready within {} s ({why})", plan.name, READY_TIMEOUT.as_secs()))
        })
    }

    fn elapsed(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    async fn find(&self, service: &str) -> Option<Arc<Service>> {
        self.services.lock().await.iter().find(|s| s.name == service).cloned()
    }

    /// Starts `service` again in the background and records when it was ready:
    /// as a new recovery (after a kill) or as the end of the open one (after a stop).
    fn restart_in_background(&self, service: Arc<Service>, died_at: Option<f64>) {
        let (docker, recoveries) = (self.docker.clone(), Arc::clone(&self.recoveries));
        let task = tokio::spawn(async move {
            let logged = ready_lines(&docker, &service).await;
            let restarting = Instant::now();
            let recovered = match service.container.start().await {
                Ok(()) => wait_ready(&docker, &service, logged).await.ok().map(|()| restarting.elapsed().as_secs_f64()),
                Err(e) => {
                    tracing::warn!(service = %service.name, %e, "cannot start the container again");
                    None
                }
            };
            let mut recoveries = recoveries.lock().expect("never poisoned");
            match died_at {
                Some(died_at) => {
                    recoveries.push(Recovery { service: service.name.clone(), died_at, recovered_after: recovered })
                }
                None => {
                    if let Some(open) =
                        recoveries.iter_mut().rev().find(|r| r.service == service.name && r.recovered_after.is_none())
                    {
                        open.recovered_after = recovered;
                    }
                }
            }
        });
        self.restarts.lock().expect("never poisoned").push(task);
    }
}

/// How often the readiness line is in `service`'s log so far.
async fn ready_lines(docker: &Docker, service: &Service) -> usize {
    match service.ready {
        HostReady::LogLine(text) => log_text(docker, service.container.id()).await.matches(text).count(),
        _ => 0,
    }
}

/// Waits until `service` answers (for a log line: until it appears more than
/// `logged` times, so that a restart is not taken for ready by the line of its first start).
async fn wait_ready(docker: &Docker, service: &Service, logged: usize) -> Result<(), String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("static client config");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let ready = match &service.ready {
            HostReady::Http(url) => client.get(url).send().await.is_ok_and(|r| r.status().is_success()),
            HostReady::Tcp(addr) => accepts(*addr).await,
            HostReady::LogLine(text) => log_text(docker, service.container.id()).await.matches(text).count() > logged,
        };
        if ready {
            return Ok(());
        }
        if !service.container.is_running().await.unwrap_or(false) {
            return Err(format!("it exited; last log lines:\n{}", log_tail(docker, service.container.id()).await));
        }
        if Instant::now() > deadline {
            return Err(format!("timed out; last log lines:\n{}", log_tail(docker, service.container.id()).await));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a server listens behind a published port. Docker's proxy accepts
/// on the host before the container listens, then closes the connection: a
/// server keeps it open (or greets), the proxy alone ends it at once.
async fn accepts(addr: SocketAddr) -> bool {
    use tokio::io::AsyncReadExt;
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { return false };
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await {
        Err(_) => true,
        Ok(read) => read.is_ok_and(|n| n > 0),
    }
}

async fn log_text(docker: &Docker, id: &str) -> String {
    let options = LogsOptions { stdout: true, stderr: true, ..LogsOptions::default() };
    let mut stream = docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&chunk.to_string());
    }
    text
}

async fn log_tail(docker: &Docker, id: &str) -> String {
    let text = log_text(docker, id).await;
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

#[async_trait]
impl Backend for DockerBackend {
    async fn inject(&self, action: FaultAction, service: &str) -> Result<bool, EnvError> {
        // The lock is held only to find the container, never across a wait.
        let Some(s) = self.find(service).await else { return Ok(false) };
        let id = s.container.id().to_owned();
        let failed = |e: &dyn std::fmt::Display| docker_error(format!("{} {service}: {e}", action.as_str()));
        match action {
            FaultAction::Kill => {
                let died_at = self.elapsed();
                let options = KillContainerOptions { signal: "SIGKILL".into() };
                self.docker.kill_container(&id, Some(options)).await.map_err(|e| failed(&e))?;
                self.restart_in_background(s, Some(died_at));
            }
            FaultAction::Pause => s.container.pause().await.map_err(|e| failed(&e))?,
            FaultAction::Unpause => s.container.unpause().await.map_err(|e| failed(&e))?,
            FaultAction::Stop => {
                let died_at = self.elapsed();
                s.container.stop_with_timeout(Some(10)).await.map_err(|e| failed(&e))?;
                let stopped = Recovery { service: service.to_owned(), died_at, recovered_after: None };
                self.recoveries.lock().expect("never poisoned").push(stopped);
            }
            FaultAction::Start => self.restart_in_background(s, None),
            FaultAction::Disconnect => {
                let request = NetworkDisconnectRequest { container: id, force: Some(true) };
                self.docker.disconnect_network(&self.network, request).await.map_err(|e| failed(&e))?;
            }
            FaultAction::Reconnect => {
                // The network's DNS answers for the container's name again by itself.
                let request =
                    NetworkConnectRequest { container: id, endpoint_config: Some(EndpointSettings::default()) };
                self.docker.connect_network(&self.network, request).await.map_err(|e| failed(&e))?;
            }
        }
        Ok(true)
    }

    fn recoveries(&self) -> Vec<Recovery> {
        self.recoveries.lock().expect("never poisoned").clone()
    }

    async fn pids(&self) -> Vec<(String, u32)> {
        let services: Vec<Arc<Service>> = self.services.lock().await.clone();
        let mut pids = Vec::new();
        for service in services {
            let inspected =
                self.docker.inspect_container(service.container.id(), None::<InspectContainerOptions>).await;
            if let Some(pid) = inspected.ok().and_then(|c| c.state?.pid).filter(|pid| *pid > 0) {
                pids.push((service.name.clone(), pid as u32));
            }
        }
        pids
    }

    /// Writes each container's log into the run's logs, then removes every
    /// container and the network.
    async fn stop(&self) {
        let restarts: Vec<_> = self.restarts.lock().expect("never poisoned").drain(..).collect();
        for restart in restarts {
            restart.abort();
            // Waited for, so that the task's hold on its container is gone.
            let _ = restart.await;
        }
        let services: Vec<Arc<Service>> = self.services.lock().await.drain(..).collect();
        for service in services.into_iter().rev() {
            let text = log_text(&self.docker, service.container.id()).await;
            let _ = std::fs::write(self.logs.join(format!("{}.log", service.name)), text);
            let id = service.container.id().to_owned();
            // Our Arc is the last one once the restart tasks are aborted; if
            // not, the engine is asked directly.
            match Arc::try_unwrap(service) {
                Ok(service) => {
                    if let Err(e) = service.container.rm().await {
                        tracing::warn!(service = %service.name, %e, "cannot remove the container");
                    }
                }
                Err(_) => {
                    let options = testcontainers::bollard::query_parameters::RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    };
                    let _ = self.docker.remove_container(&id, Some(options)).await;
                }
            }
        }
        // testcontainers removes a network it made when its last container
        // goes; make sure of it, since a leftover network is a leak.
        let _ = self.docker.remove_network(&self.network).await;
    }
}
