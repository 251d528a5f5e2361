//! A started topology, whichever backend runs it: the endpoints the harness
//! uses, a supervisor for the harness's own processes (Prometheus, the load
//! generator), and the backend behind one interface.

use std::collections::HashMap;
use std::path::Path;

use tokio::time::Instant;

use std::time::Duration;

use crate::backend::{Backend, Recovery};
use crate::binaries::Binaries;
use crate::docker::DockerBackend;
use crate::endpoints::Endpoints;
use crate::error::EnvError;
use crate::local::LocalBackend;
use crate::plan::plan;
use crate::priority::CpuPriorities;
use crate::resources::{Role, Scope, Timeline, Watched};
use crate::supervisor::Supervisor;
use crate::topology::{FaultAction, Topology};

/// Where the services run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvKind {
    /// Child processes on 127.0.0.1.
    Local,
    /// Containers on a network of the run's own.
    Docker,
}

impl EnvKind {
    /// `local` or `docker`.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvKind::Local => "local",
            EnvKind::Docker => "docker",
        }
    }
}

/// A running topology.
#[derive(Debug)]
pub struct Environment {
    /// Which backend runs the services.
    pub kind: EnvKind,
    /// Where the harness reaches them.
    pub endpoints: Endpoints,
    /// The harness's own processes, in both environments: they measure, so
    /// they stay on the host (and outside the containers' limits).
    pub harness: Supervisor,
    /// How the harness's processes and the local services share the CPU.
    pub priorities: CpuPriorities,
    backend: Box<dyn Backend>,
    epoch: Instant,
}

impl Environment {
    /// Starts `topology` as `kind` says, with logs in `run/logs` and local
    /// configs and data under `run/data`. Nothing is left running on failure.
    pub async fn start(
        topology: &Topology,
        kind: EnvKind,
        binaries: &Binaries,
        run: &Path,
        run_id: &str,
    ) -> Result<Environment, EnvError> {
        let epoch = Instant::now();
        let harness = Supervisor::new(run.join("logs"), epoch)?;
        let plans = plan(topology);
        let (backend, endpoints): (Box<dyn Backend>, Endpoints) = match kind {
            EnvKind::Local => {
                let (backend, endpoints) = LocalBackend::start(&plans, binaries, run, epoch).await?;
                (Box::new(backend), endpoints)
            }
            EnvKind::Docker => {
                let (backend, endpoints) = DockerBackend::start(&plans, topology, run, run_id, epoch).await?;
                (Box::new(backend), endpoints)
            }
        };
        Ok(Environment { kind, endpoints, harness, priorities: topology.cpu_priorities, backend, epoch })
    }

    /// Does `action` to `service` (a service of the topology, not of the
    /// harness); `false` if it does not run.
    pub async fn inject(&self, action: FaultAction, service: &str) -> Result<bool, EnvError> {
        self.backend.inject(action, service).await
    }

    /// Every death and restart so far, of the services and of the harness's processes.
    pub fn recoveries(&self) -> Vec<Recovery> {
        let mut all = self.harness.recoveries();
        all.extend(self.backend.recoveries());
        all
    }

    /// Seconds since the environment started: the clock of [`Recovery::died_at`].
    pub fn clock(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// The host process of each running service, by name.
    pub async fn service_pids(&self) -> Vec<(String, u32)> {
        self.backend.pids().await
    }

    /// Waits until the services, all together, use less than `quiet_cores`
    /// of CPU over a second (queues drained, consumers caught up), for at
    /// most `within`; how long that took, or `None` if they never did.
    pub async fn settle(&self, quiet_cores: f64, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        let pids: Vec<u32> = self.service_pids().await.into_iter().map(|(_, pid)| pid).collect();
        // Reading /proc is blocking work: off the runtime's threads.
        let used = || {
            let pids = pids.clone();
            tokio::task::spawn_blocking(move || {
                crate::resources::sample_trees(&pids).iter().flatten().map(|tree| tree.cpu_seconds).sum::<f64>()
            })
        };
        let mut before = used().await.ok()?;
        while started.elapsed() < within {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = used().await.ok()?;
            if now - before < quiet_cores {
                return Some(started.elapsed());
            }
            before = now;
        }
        None
    }

    /// Samples every service and harness process (and this process, without
    /// the children it started) once a second until `stop`.
    pub async fn sample_resources(&self, topology: &Topology, stop: tokio::sync::oneshot::Receiver<()>) -> Timeline {
        let env = self;
        let cores = crate::resources::cores() as f64;
        let limited = env.kind == EnvKind::Docker;
        // What a service can use: a container's limit, one core for the
        // single-threaded redis-server and nginx's one worker, what its
        // runtime's workers can use for a q2o process, else the machine.
        let runtime_cores: HashMap<String, f64> = plan(topology)
            .into_iter()
            .filter_map(|s| Some((s.name.clone(), s.runtime()?.cores().unwrap_or(cores).min(cores))))
            .collect();
        let limit = |name: &str| {
            let runtime = runtime_cores.get(name).copied().unwrap_or(cores);
            match name {
                "redis" | "load-balancer" => 1.0,
                "broker" if limited => topology.cpus.unwrap_or(cores),
                "broker" => cores,
                _ if limited => topology.cpus.unwrap_or(cores).min(runtime),
                _ => runtime,
            }
        };
        let mut timeline = Timeline::default();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop => break,
            }
            let watched =
                |name: &str, role, core_limit, scope| Watched { name: name.to_owned(), role, core_limit, scope };
            // A container is measured by its control group, as its limits are.
            let service_scope = if limited { Scope::Cgroup } else { Scope::Tree };
            let mut now: Vec<(Watched, u32)> = env
                .service_pids()
                .await
                .into_iter()
                .map(|(name, pid)| (watched(&name, Role::Service, limit(&name), service_scope), pid))
                .collect();
            let harness_limits = env.harness.core_limits();
            now.extend(env.harness.named_pids().into_iter().map(|(name, pid)| {
                let limit = harness_limits.get(&name).map_or(cores, |c| c.min(cores));
                (watched(&name, Role::Harness, limit, Scope::Tree), pid)
            }));
            now.push((watched("runner", Role::Harness, cores, Scope::Process), std::process::id()));
            // Reading /proc is blocking work: off the runtime's threads.
            timeline = match tokio::task::spawn_blocking(move || {
                timeline.sample(&now);
                timeline
            })
            .await
            {
                Ok(timeline) => timeline,
                // The sampling task panicked: the figures are gone, and the report will say none were taken.
                Err(_) => return Timeline::default(),
            };
        }
        timeline
    }

    /// Stops the harness's processes, then the services; removes what the backend made.
    pub async fn stop(&self) {
        self.harness.stop().await;
        self.backend.stop().await;
    }
}
