//! The local backend: the plan as child processes on 127.0.0.1, each on
//! free ports, with its config, data and log under the run folder, under a
//! [`Supervisor`] that restarts what dies.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::time::Instant;

use crate::backend::{Backend, Recovery};
use crate::binaries::Binaries;
use crate::config_files;
use crate::endpoints::Endpoints;
use crate::error::EnvError;
use crate::plan::{Arg, PortKind, PortRef, Ready, Resolve, ServicePlan, resolve_args};
use crate::ports::free_addr;
use crate::supervisor::{Readiness, ServiceSpec, Supervisor};
use crate::topology::FaultAction;

/// Addresses and folders of the local processes.
#[derive(Debug)]
struct Layout {
    data: PathBuf,
    addrs: BTreeMap<(String, PortKind), SocketAddr>,
    /// The services that listen on a Unix socket as well as their ports.
    sockets: BTreeSet<String>,
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

    /// `<data>/<service>/<service>.sock`, absolute (redis-server changes
    /// into its `--dir`), for the services that listen on one, unless the
    /// path is too long for a socket address: those are reached at their
    /// ports instead.
    fn unix_socket(&self, service: &str) -> Option<String> {
        if !self.sockets.contains(service) {
            return None;
        }
        let path = std::path::absolute(self.dir(service).join(format!("{service}.sock"))).ok()?;
        let path = path.to_str()?.to_owned();
        (path.len() < SUN_PATH_MAX).then_some(path)
    }
}

/// The bytes of a Unix socket's path, its terminating NUL included, that
/// Linux's `sockaddr_un` holds.
const SUN_PATH_MAX: usize = 108;

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
        let sockets = plans
            .iter()
            .filter(|s| s.args.iter().any(|a| matches!(a, Arg::UnixSocket(_))))
            .map(|s| s.name.clone())
            .collect();
        let mut layout = Layout { data: run.join("data"), addrs: BTreeMap::new(), sockets };
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
            args: resolve_args(service, layout),
            env: service.env.iter().map(|(k, v)| ((*k).to_owned(), v.resolve(service, layout))).collect(),
            cwd: service.runs_in_data_dir.then_some(dir),
            ready,
            restart: true,
            nice: service.nice,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(data: &str) -> Layout {
        Layout { data: PathBuf::from(data), addrs: BTreeMap::new(), sockets: BTreeSet::from(["redis".to_owned()]) }
    }

    #[test]
    fn a_socket_whose_path_does_not_fit_an_address_is_not_used() {
        assert_eq!(layout("/run/x/data").unix_socket("redis").as_deref(), Some("/run/x/data/redis/redis.sock"));
        assert_eq!(layout("/run/x/data").unix_socket("gateway-0"), None, "only services planned with one");
        let deep = format!("/{}", "d".repeat(SUN_PATH_MAX));
        assert_eq!(layout(&deep).unix_socket("redis"), None);
        let relative = layout("reports/run/data").unix_socket("redis").unwrap();
        assert!(relative.starts_with('/'), "redis-server changes directory: {relative}");
    }
}
