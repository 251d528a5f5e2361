//! What a run starts: the services of a phase ([`Topology`], a scenario's
//! `[topology]` table) and what a fault does to one of them ([`FaultAction`]).

use q2o_common::runtime::Flavor;
use serde::{Deserialize, Serialize};

use crate::priority::CpuPriorities;

/// The services a phase runs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Phase 0: gateway and agents in one process over an in-memory queue.
    #[serde(default)]
    pub monolith: bool,
    /// Gateway replicas (the users are spread over them): the replicas of
    /// the Kubernetes overlay, and the processes on one machine unless
    /// `host_gateways` says otherwise.
    #[serde(default = "one")]
    pub gateways: usize,
    /// Gateway processes where every service shares one machine (the local
    /// and docker environments), each with the worker threads of the
    /// replicas it stands for (`gateway_threads` times `gateways`, shared
    /// out). A cluster spreads its replicas over nodes; on one machine a
    /// second process adds no redundancy, and one process on two workers
    /// wakes fewer threads per request than two on one each
    /// (ARCHITECTURE.md, "Runtimes").
    #[serde(default)]
    pub host_gateways: Option<usize>,
    /// q2o-agents processes: the replicas of the Kubernetes overlay, and the
    /// processes on one machine unless `host_agent_processes` says otherwise.
    #[serde(default = "one")]
    pub agent_processes: usize,
    /// q2o-agents processes where every service shares one machine (the local
    /// and docker environments), running the workers `agent_processes`
    /// would (`workers_per_type` each) between them. A cluster spreads its
    /// agents replicas over nodes for redundancy; on one machine a second
    /// process adds none, and one process batches its Redis calls and Kafka
    /// produces for all the workers (ARCHITECTURE.md, "Runtimes").
    #[serde(default)]
    pub host_agent_processes: Option<usize>,
    /// Workers per agent type in each agents process (the agents' default when absent).
    #[serde(default)]
    pub workers_per_type: Option<usize>,
    /// How the coder calls QA.
    #[serde(default)]
    pub inter_agent: InterAgent,
    /// Redis (sessions, rate limits, queues); required unless `monolith`.
    #[serde(default)]
    pub redis: bool,
    /// The Kafka-protocol broker and the event consumers.
    #[serde(default)]
    pub kafka: bool,
    /// q2o-search, fed from Kafka.
    #[serde(default)]
    pub search: bool,
    /// An nginx load balancer in front of the gateway replicas (REST and gRPC),
    /// with passive health checks; the users go through it.
    #[serde(default)]
    pub load_balancer: bool,
    /// Redis with its append-only file on (`appendfsync everysec`), so that a
    /// restart keeps sessions, queues and task states.
    #[serde(default)]
    pub redis_aof: bool,
    /// Docker environment: CPUs each q2o replica's container may use (like a
    /// pod's limit); unlimited when absent. The local environment ignores it.
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Docker environment: memory limit of each q2o replica's container, MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Requests per second each tenant may make (the gateway's token bucket,
    /// holding one second's worth); unthrottled when absent. A topology whose
    /// capacity is this quota, not the machine's, has a knee known in advance.
    #[serde(default)]
    pub tenant_rate_limit: Option<f64>,
    /// The tokio runtime of each q2o process: `"current"` (one thread), a
    /// worker count, or `"per-core"` (tokio's default). When absent, the
    /// services run `"current"`: a stack's processes share the machine, and a
    /// second worker per process only adds cross-thread wake-ups (measured
    /// with `just measure-cost`); the monolith, the one process of its
    /// stack, runs `"per-core"`.
    #[serde(default)]
    pub worker_threads: Option<Flavor>,
    /// The gateways' runtime, where it differs from `worker_threads`: one
    /// gateway on two workers, rather than two gateways on one each, wakes
    /// fewer processes per request (ARCHITECTURE.md's "Runtimes" has the
    /// figures).
    #[serde(default)]
    pub gateway_threads: Option<Flavor>,
    /// The gateways' admission control: `"adaptive"` (the gateway's default),
    /// `"off"` (every request is taken on: what a stack without it does
    /// under a surge), or a static limit of requests at once per gateway.
    #[serde(default)]
    pub admission: AdmissionControl,
    /// How the local processes share the CPU when the machine is busy:
    /// `"tiered"` (the default: the loadgen and the gateways first, the
    /// agents, the broker and Prometheus last; see [`crate::priority`]) or
    /// `"equal"`. Containers run at their engine's default either way.
    #[serde(default)]
    pub cpu_priorities: CpuPriorities,
}

fn one() -> usize {
    1
}

/// How the gateways limit the requests they take on at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdmissionControl {
    /// The limit follows the latency of admitted requests.
    #[default]
    Adaptive,
    /// Every request is admitted.
    Off,
    /// At most this many at once, per gateway.
    Static(usize),
}

impl<'de> Deserialize<'de> for AdmissionControl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Limit(usize),
            Mode(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Limit(0) => Err(serde::de::Error::custom("a static limit must be at least 1")),
            Raw::Limit(n) => Ok(AdmissionControl::Static(n)),
            Raw::Mode(mode) if mode == "adaptive" => Ok(AdmissionControl::Adaptive),
            Raw::Mode(mode) if mode == "off" => Ok(AdmissionControl::Off),
            Raw::Mode(other) => Err(serde::de::Error::custom(format!(
                "`{other}` is not an admission control: \"adaptive\", \"off\" or a limit (a number)"
            ))),
        }
    }
}

impl Serialize for AdmissionControl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AdmissionControl::Adaptive => serializer.serialize_str("adaptive"),
            AdmissionControl::Off => serializer.serialize_str("off"),
            AdmissionControl::Static(n) => serializer.serialize_u64(*n as u64),
        }
    }
}

/// How the coder agent calls the QA agent: the REST-versus-gRPC experiment.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InterAgent {
    /// JSON over HTTP/1.1.
    #[default]
    Rest,
    /// Protobuf over HTTP/2.
    Grpc,
}

impl InterAgent {
    /// `rest` or `grpc`, as the agents' config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            InterAgent::Rest => "rest",
            InterAgent::Grpc => "grpc",
        }
    }
}

impl Topology {
    /// Values that parse but make no sense, as (dotted key, reason).
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, reason: &str| Err((key.to_owned(), reason.to_owned()));
        if !self.monolith && !self.redis {
            return bad("topology.redis", "the services share state in Redis; only a monolith runs without");
        }
        if self.monolith && (self.redis || self.kafka || self.search || self.gateways != 1 || self.agent_processes != 1)
        {
            return bad("topology.monolith", "a monolith is one process: no redis, kafka, search or replicas");
        }
        if self.search && !self.kafka {
            return bad("topology.search", "the search index is fed from Kafka: set kafka = true");
        }
        if self.gateways == 0 || self.agent_processes == 0 {
            return bad("topology.gateways", "gateways and agent_processes must be at least 1");
        }
        if self.workers_per_type == Some(0) {
            return bad("topology.workers_per_type", "must be at least 1");
        }
        match self.host_agent_processes {
            Some(0) => return bad("topology.host_agent_processes", "must be at least 1"),
            Some(_) if self.workers_per_type.is_none() => {
                return bad("topology.host_agent_processes", "needs workers_per_type: the workers it spreads");
            }
            _ => {}
        }
        match self.host_gateways {
            Some(0) => return bad("topology.host_gateways", "must be at least 1"),
            Some(n) if n > self.gateways => {
                return bad("topology.host_gateways", "must be at most gateways: it packs replicas, it adds none");
            }
            _ => {}
        }
        if self.load_balancer && self.monolith {
            return bad("topology.load_balancer", "balances gateway replicas; a monolith has none");
        }
        if self.cpus.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return bad("topology.cpus", "must be a positive number of CPUs");
        }
        if self.memory_mib.is_some_and(|m| m < 16) {
            return bad("topology.memory_mib", "must be at least 16");
        }
        if self.tenant_rate_limit.is_some_and(|r| !(r.is_finite() && r >= 1.0)) {
            return bad("topology.tenant_rate_limit", "must be at least 1 request per second");
        }
        if self.redis_aof && !self.redis {
            return bad("topology.redis_aof", "needs redis = true");
        }
        Ok(())
    }

    /// The runtime of the q2o processes.
    pub fn runtime(&self) -> Flavor {
        match self.worker_threads {
            Some(flavor) => flavor,
            None if self.monolith => Flavor::PerCore,
            None => Flavor::CurrentThread,
        }
    }

    /// The runtime of the gateways.
    pub fn gateway_runtime(&self) -> Flavor {
        self.gateway_threads.unwrap_or_else(|| self.runtime())
    }

    /// The gateways on one machine: how many processes, and the runtime of
    /// each. Fewer processes than `gateways` run as many worker threads in
    /// all, rounded up; a per-core runtime stays per-core.
    pub fn host_gateways(&self) -> (usize, Flavor) {
        let runtime = self.gateway_runtime();
        let Some(processes) = self.host_gateways else {
            return (self.gateways, runtime);
        };
        let threads = match runtime {
            Flavor::CurrentThread => 1,
            Flavor::MultiThread(n) => n,
            Flavor::PerCore => return (processes, runtime),
        };
        match (threads * self.gateways).div_ceil(processes) {
            1 => (processes, Flavor::CurrentThread),
            n => (processes, Flavor::MultiThread(n)),
        }
    }

    /// The agents on one machine: how many processes, and the workers per
    /// type each runs (the agents' default when `None`). Fewer processes
    /// than `agent_processes` run as many workers in all, rounded up.
    pub fn host_agents(&self) -> (usize, Option<usize>) {
        match (self.host_agent_processes, self.workers_per_type) {
            (Some(processes), Some(workers)) => (processes, Some((workers * self.agent_processes).div_ceil(processes))),
            _ => (self.agent_processes, self.workers_per_type),
        }
    }

    /// The same topology at `n` gateway replicas, its agents processes scaled alike.
    pub fn at_replicas(&self, n: usize) -> Topology {
        let scaled = |processes: usize| ((processes as f64 / self.gateways as f64 * n as f64).round() as usize).max(1);
        Topology {
            agent_processes: scaled(self.agent_processes),
            host_agent_processes: self.host_agent_processes.map(scaled),
            host_gateways: self.host_gateways.map(scaled),
            gateways: n,
            ..self.clone()
        }
    }
}

/// What a fault does.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// SIGKILL the process (the container): it is restarted, as Kubernetes would.
    Kill,
    /// Freeze it (SIGSTOP; `docker pause`): it keeps its sockets and answers nothing.
    Pause,
    /// Thaw a paused service.
    Unpause,
    /// Stop it gracefully (SIGTERM; `docker stop`) and keep it down until `start`.
    Stop,
    /// Start a stopped service again.
    Start,
    /// Cut it off the network (docker only: `docker network disconnect`).
    Disconnect,
    /// Put it back on the network (docker only).
    Reconnect,
}

impl FaultAction {
    /// The name in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultAction::Kill => "kill",
            FaultAction::Pause => "pause",
            FaultAction::Unpause => "unpause",
            FaultAction::Stop => "stop",
            FaultAction::Start => "start",
            FaultAction::Disconnect => "disconnect",
            FaultAction::Reconnect => "reconnect",
        }
    }

    /// Network faults: only the docker environment has a network to cut.
    pub fn needs_docker(self) -> bool {
        matches!(self, FaultAction::Disconnect | FaultAction::Reconnect)
    }
}
