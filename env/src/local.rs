//! The local backend: the plan as child processes on 127.0.0.1, each on
//! free ports, with its config, data and log under the run folder, under a
//! [`Supervisor`] that restarts what dies.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::time::Instant;

use crate::backend::{Backend, Recovery};
use crate::binaries::Binaries;
use crate::config_files;
use crate::endpoints::Endpoints;
use crate::error::EnvError;
use crate::plan::{PortKind, PortRef, Ready, Resolve, ServicePlan};
use crate::ports::free_addr;
use crate::supervisor::{Readiness, ServiceSpec, Supervisor};
use crate::topology::FaultAction;

/// Addresses and folders of the local processes.
#[derive(Debug)]
struct Layout {
    data: PathBuf,
    addrs: BTreeMap<(String, PortKind), SocketAddr>,
}

impl Layout {
    fn addr(&self, service: &str, port: PortKind) -> SocketAddr {
        self.addrs[&(service.to_owned(), port)]
    }

    fn dir(&self, service: &str) -> PathBuf {
        self.data.join(service)
    }
}

impl Resolve for Layout {
    fn listen(&self, service: &str, port: PortKind) -> SocketAddr {
        self.addr(service, port)
    }

    fn peer(&self, to: &PortRef) -> String {
        self.addr(&to.service, to.port).to_string()
    }

    fn config_path(&self, service: &ServicePlan) -> String {
        let name = service.config.as_ref().map_or("config", |c| c.file_name());
        self.dir(&service.name).join(name).display().to_string()
    }

    fn data_dir(&self, service: &str) -> String {
        self.dir(service).display().to_string()
    }

    fn scratch_dir(&self, service: &str) -> String {
        self.data_dir(service)
    }
}

/// The services as local processes.
#[derive(Debug)]
pub struct LocalBackend {
    supervisor: Supervisor,
}

impl LocalBackend {
    /// Starts `plans` in order, each on free ports, with configs and data
    /// under `run/data/<service>` and logs in `run/logs`. A service that does
    /// not become ready stops the ones before it.
    pub async fn start(
        plans: &[ServicePlan],
        binaries: &Binaries,
        run: &Path,
        epoch: Instant,
    ) -> Result<(LocalBackend, Endpoints), EnvError> {
        let mut layout = Layout { data: run.join("data"), addrs: BTreeMap::new() };
        let backend = LocalBackend { supervisor: Supervisor::new(run.join("logs"), epoch)? };
        for service in plans {
            // A service's ports are picked just before it starts (it only
            // refers to services before it): a free port stays free briefly.
            for port in &service.ports {
                layout.addrs.insert((service.name.clone(), *port), free_addr()?);
            }
            if let Err(err) = backend.start_one(service, binaries, &layout).await {
                backend.supervisor.stop().await;
                return Err(err);
            }
        }
        let endpoints = Endpoints::of(plans, |service, port| layout.addr(service, port));
        Ok((backend, endpoints))
    }

    async fn start_one(&self, service: &ServicePlan, binaries: &Binaries, layout: &Layout) -> Result<(), EnvError> {
        let dir = layout.dir(&service.name);
        std::fs::create_dir_all(&dir).map_err(EnvError::io(&dir))?;
        if let Some(config) = &service.config {
            let path = PathBuf::from(layout.config_path(service));
            std::fs::write(&path, config_files::render(config, service, layout)).map_err(EnvError::io(&path))?;
        }
        let addr = |port| layout.addr(&service.name, port);
        let ready = match &service.ready {
            Ready::Http(port, path) => Readiness::Http(format!("http://{}{path}", addr(*port))),
            Ready::Tcp(port) => Readiness::Tcp(addr(*port)),
            Ready::LogLine(text) => Readiness::LogLine(text),
        };
        let spec = ServiceSpec {
            name: service.name.clone(),
            program: binaries.of(service.kind),
            args: service.args.iter().map(|a| a.resolve(service, layout)).collect(),
            env: service.env.iter().map(|(k, v)| ((*k).to_owned(), v.resolve(service, layout))).collect(),
            cwd: service.runs_in_data_dir.then_some(dir),
            ready,
            restart: true,
        };
        self.supervisor.start(spec).await
    }
}

#[async_trait]
impl Backend for LocalBackend {
    async fn inject(&self, action: FaultAction, service: &str) -> Result<bool, EnvError> {
        let s = &self.supervisor;
        Ok(match action {
            FaultAction::Kill => s.kill(service),
            FaultAction::Pause => s.pause(service),
            FaultAction::Unpause => s.unpause(service),
            FaultAction::Stop => s.hold(service),
            FaultAction::Start => s.resume(service),
            FaultAction::Disconnect | FaultAction::Reconnect => {
                return Err(EnvError::NeedsDocker { action, service: service.to_owned() });
            }
        })
    }

    fn recoveries(&self) -> Vec<Recovery> {
        self.supervisor.recoveries()
    }

    async fn pids(&self) -> Vec<(String, u32)> {
        self.supervisor.named_pids()
    }

    async fn stop(&self) {
        self.supervisor.stop().await;
    }
}
