//! The topology as data, before anything runs: which services start in
//! which order, with which arguments, config files, ports, readiness checks
//! and scrape jobs. Addresses are symbolic ([`PortKind`], [`PortRef`]): a
//! backend resolves them ([`Resolve`]) into free loopback ports for local
//! processes, or fixed container ports and container names in docker. So the
//! topology is walked once, here, and both backends start the same thing.

use std::net::SocketAddr;

use q2o_common::runtime::Flavor;

use crate::priority::Tier;
use crate::topology::{AdmissionControl, InterAgent, Topology};

/// What a service is: its program (locally) or image (in docker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// redis-server.
    Redis,
    /// The Kafka-protocol broker (tansu).
    Broker,
    /// q2o-search.
    Search,
    /// q2o-agents.
    Agents,
    /// q2o-gateway.
    Gateway,
    /// nginx in front of the gateway replicas.
    LoadBalancer,
    /// q2o-monolith (phase0).
    Monolith,
}

impl ServiceKind {
    /// The image's name, `q2o/<image>:local`.
    pub fn image(self) -> &'static str {
        match self {
            ServiceKind::Redis => "redis",
            ServiceKind::Broker => "broker",
            ServiceKind::Search => "search",
            ServiceKind::Agents => "agents",
            ServiceKind::Gateway => "gateway",
            ServiceKind::LoadBalancer => "load-balancer",
            ServiceKind::Monolith => "monolith",
        }
    }

    /// Where it ranks for the CPU on a busy machine.
    pub fn tier(self) -> Tier {
        match self {
            ServiceKind::Gateway | ServiceKind::LoadBalancer | ServiceKind::Monolith => Tier::Front,
            ServiceKind::Redis | ServiceKind::Search => Tier::Serving,
            // At 0 the agents met phase2's inter-agent target and cost every
            // saturated run availability (ARCHITECTURE, CPU priority tiers).
            ServiceKind::Agents | ServiceKind::Broker => Tier::Background,
        }
    }
}

/// A port a service listens on, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortKind {
    /// HTTP: the API, `/ready` and `/metrics`.
    Http,
    /// The monolith's second HTTP listener, its agents' `/metrics`.
    AgentsHttp,
    /// gRPC.
    Grpc,
    /// Redis's protocol.
    Redis,
    /// Kafka's protocol.
    Kafka,
}

impl PortKind {
    /// The port inside a container.
    pub fn container_port(self) -> u16 {
        match self {
            PortKind::Http => 8080,
            PortKind::AgentsHttp => 8081,
            PortKind::Grpc => 9090,
            PortKind::Redis => 6379,
            PortKind::Kafka => 9092,
        }
    }
}

/// Another service's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRef {
    /// The service (`broker`, `gateway-0`).
    pub service: String,
    /// Which of its ports.
    pub port: PortKind,
}

fn port(service: &str, port: PortKind) -> PortRef {
    PortRef { service: service.to_owned(), port }
}

/// How an address is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `host:port`.
    Bare,
    /// `http://host:port`.
    Http,
    /// `tcp://host:port`.
    Tcp,
    /// `redis://host:port`.
    Redis,
}

impl Scheme {
    fn write(self, address: &str) -> String {
        match self {
            Scheme::Bare => address.to_owned(),
            Scheme::Http => format!("http://{address}"),
            Scheme::Tcp => format!("tcp://{address}"),
            Scheme::Redis => format!("redis://{address}"),
        }
    }
}

/// One command-line argument or environment value, before addresses exist.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// As written.
    Text(String),
    /// The address this service listens on for a port.
    Listen(PortKind, Scheme),
    /// Only the port number of a listener (redis-server's `--port`).
    ListenPort(PortKind),
    /// Only the host of the listeners (redis-server's `--bind`).
    ListenHost,
    /// Where another service's port is reached from this one.
    Peer(PortRef, Scheme),
    /// The path of this service's config file.
    ConfigFile,
    /// A folder for this service's data (kept across its restarts).
    DataDir,
    /// A writable folder for temporary files.
    ScratchDir,
    /// The flag and the path of the Unix socket this service also listens
    /// on, where the backend gives it one (redis-server's `--unixsocket`);
    /// no argument at all where it does not.
    UnixSocket(&'static str),
    /// Where another service is reached: over its Unix socket where the
    /// backend gave it one (`unix:///path`), else at its port.
    PeerSocket(PortRef, Scheme),
}

fn text(values: &[&str]) -> Vec<Arg> {
    values.iter().map(|v| Arg::Text((*v).to_owned())).collect()
}

/// `--config <file> --http-addr <listen> --grpc-addr <listen>`: how our
/// gateway and agents are told where to listen.
fn config_http_grpc() -> Vec<Arg> {
    vec![
        Arg::Text("--config".into()),
        Arg::ConfigFile,
        Arg::Text("--http-addr".into()),
        Arg::Listen(PortKind::Http, Scheme::Bare),
        Arg::Text("--grpc-addr".into()),
        Arg::Listen(PortKind::Grpc, Scheme::Bare),
    ]
}

/// A service's config file, by what it holds; rendered once addresses exist.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigFile {
    /// The gateway's: each tenant's requests per second, unthrottled when `None`.
    Gateway {
        /// The topology's `tenant_rate_limit`.
        tenant_rate_limit: Option<f64>,
        /// The topology's `admission`.
        admission: AdmissionControl,
    },
    /// The monolith's: its gRPC listener and each tenant's requests per second.
    Monolith {
        /// The topology's `tenant_rate_limit`.
        tenant_rate_limit: Option<f64>,
        /// The topology's `admission`.
        admission: AdmissionControl,
    },
    /// The agents': the inter-agent protocol, pool sizes, the broker and consumer groups.
    Agents {
        /// How the coder calls QA.
        inter_agent: InterAgent,
        /// The broker, when the topology has one.
        kafka: Option<PortRef>,
        /// Workers per agent type.
        workers_per_type: Option<usize>,
        /// The nice value of the inter-agent lane, where it differs from the process's.
        inter_agent_nice: Option<i32>,
    },
    /// nginx's, in front of these gateway replicas.
    Balancer {
        /// The replicas' REST ports.
        rest: Vec<PortRef>,
        /// The replicas' gRPC ports.
        grpc: Vec<PortRef>,
    },
}

impl ConfigFile {
    /// Where the file goes in a container.
    pub fn container_path(&self) -> &'static str {
        match self {
            ConfigFile::Gateway { .. } => "/etc/q2o/gateway.toml",
            ConfigFile::Monolith { .. } => "/etc/q2o/monolith.toml",
            ConfigFile::Agents { .. } => "/etc/q2o/agents.toml",
            ConfigFile::Balancer { .. } => "/etc/nginx/nginx.conf",
        }
    }

    /// The file's name.
    pub fn file_name(&self) -> &'static str {
        let path = self.container_path();
        &path[path.rfind('/').map_or(0, |i| i + 1)..]
    }
}

/// How a backend tells that a service is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ready {
    /// `GET <path>` on a port answers 2xx.
    Http(PortKind, &'static str),
    /// A port accepts a TCP connection.
    Tcp(PortKind),
    /// The service's output contains this text (since its last start).
    LogLine(&'static str),
}

/// One service to start.
#[derive(Clone, Debug, PartialEq)]
pub struct ServicePlan {
    /// Its name in scenarios, logs and reports (`gateway-0`).
    pub name: String,
    /// What it is.
    pub kind: ServiceKind,
    /// Its arguments.
    pub args: Vec<Arg>,
    /// Extra environment variables.
    pub env: Vec<(&'static str, Arg)>,
    /// Its config file, if it has one.
    pub config: Option<ConfigFile>,
    /// The ports it listens on.
    pub ports: Vec<PortKind>,
    /// When it counts as started.
    pub ready: Ready,
    /// What Prometheus scrapes of it: (job, port of `/metrics`).
    pub scrape: Vec<(&'static str, PortKind)>,
    /// Whether the topology's CPU and memory limits apply to it (the q2o replicas).
    pub limited: bool,
    /// Whether it runs in its data folder (tansu resolves its sqlite path there).
    pub runs_in_data_dir: bool,
    /// Its nice value where it runs as a local process (the topology's
    /// `cpu_priorities` applied to its [`Tier`]).
    pub nice: i32,
}

impl ServicePlan {
    /// The tokio runtime it is told to run, for a q2o process.
    pub fn runtime(&self) -> Option<Flavor> {
        self.env.iter().find_map(|(key, value)| match value {
            Arg::Text(text) if *key == q2o_common::runtime::WORKER_THREADS_VAR => Flavor::parse(text).ok(),
            _ => None,
        })
    }

    fn new(name: impl Into<String>, kind: ServiceKind, ready: Ready) -> ServicePlan {
        ServicePlan {
            name: name.into(),
            kind,
            args: Vec::new(),
            env: Vec::new(),
            config: None,
            ports: Vec::new(),
            ready,
            scrape: Vec::new(),
            limited: false,
            runs_in_data_dir: false,
            nice: 0,
        }
    }
}

/// Every service of `topology`, in start order: each finds the ones before it ready.
pub fn plan(topology: &Topology) -> Vec<ServicePlan> {
    let mut plans = services(topology);
    for service in &mut plans {
        service.nice = topology.cpu_priorities.nice(service.kind.tier());
        if let Some(ConfigFile::Agents { inter_agent_nice, .. }) = &mut service.config {
            // The coder -> QA call is judged (inter-agent p95) and waited on by
            // a task, not queued work: it ranks with what requests wait on.
            let serving = topology.cpu_priorities.nice(Tier::Serving);
            *inter_agent_nice = (serving != service.nice).then_some(serving);
        }
    }
    plans
}

fn services(topology: &Topology) -> Vec<ServicePlan> {
    let t = topology;
    if t.monolith {
        let mut monolith = ServicePlan::new("monolith", ServiceKind::Monolith, Ready::Http(PortKind::Http, "/ready"));
        monolith.args = vec![
            Arg::Text("--config".into()),
            Arg::ConfigFile,
            Arg::Text("--http-addr".into()),
            Arg::Listen(PortKind::Http, Scheme::Bare),
            Arg::Text("--agents-http-addr".into()),
            Arg::Listen(PortKind::AgentsHttp, Scheme::Bare),
        ];
        monolith.config = Some(ConfigFile::Monolith { tenant_rate_limit: t.tenant_rate_limit, admission: t.admission });
        monolith.env = vec![worker_threads(t)];
        monolith.ports = vec![PortKind::Http, PortKind::AgentsHttp, PortKind::Grpc];
        monolith.scrape = vec![("gateway", PortKind::Http), ("agents", PortKind::AgentsHttp)];
        monolith.limited = true;
        return vec![monolith];
    }
    let mut plans = Vec::new();
    // The services reach Redis over its Unix socket where they share its
    // host: a loopback TCP round trip costs Redis and its client kernel time
    // in the TCP/IP stack (and netfilter) that a Unix socket does not. The
    // TCP port stays for everything else (the harness, redis-cli).
    let redis_url = Arg::PeerSocket(port("redis", PortKind::Redis), Scheme::Redis);

    let mut redis = ServicePlan::new("redis", ServiceKind::Redis, Ready::Tcp(PortKind::Redis));
    redis.args = vec![Arg::Text("--port".into()), Arg::ListenPort(PortKind::Redis)];
    redis.args.extend([Arg::Text("--bind".into()), Arg::ListenHost]);
    redis.args.push(Arg::UnixSocket("--unixsocket"));
    redis.args.extend(text(&["--protected-mode", "no", "--save", ""]));
    redis.args.extend(text(&["--appendonly", if t.redis_aof { "yes" } else { "no" }, "--appendfsync", "everysec"]));
    redis.args.extend([Arg::Text("--dir".into()), Arg::DataDir]);
    redis.ports = vec![PortKind::Redis];
    plans.push(redis);

    if t.kafka {
        let mut broker = ServicePlan::new("broker", ServiceKind::Broker, Ready::LogLine("ready in"));
        broker.args = vec![
            Arg::Text("broker".into()),
            Arg::Text("--listener-url".into()),
            Arg::Listen(PortKind::Kafka, Scheme::Tcp),
            Arg::Text("--advertised-listener-url".into()),
            Arg::Peer(port("broker", PortKind::Kafka), Scheme::Tcp),
        ];
        broker.args.extend(text(&["--storage-engine", "sqlite://broker.db"]));
        broker.ports = vec![PortKind::Kafka];
        broker.runs_in_data_dir = true;
        plans.push(broker);
    }
    let kafka = t.kafka.then(|| port("broker", PortKind::Kafka));

    if t.search {
        let mut search = ServicePlan::new("search", ServiceKind::Search, Ready::Http(PortKind::Http, "/ready"));
        search.args = vec![
            Arg::Text("--http-addr".into()),
            Arg::Listen(PortKind::Http, Scheme::Bare),
            Arg::Text("--data-dir".into()),
            Arg::DataDir,
            Arg::Text("--kafka-bootstrap".into()),
            Arg::Peer(port("broker", PortKind::Kafka), Scheme::Bare),
        ];
        search.env = vec![worker_threads(t)];
        search.ports = vec![PortKind::Http];
        search.scrape = vec![("search", PortKind::Http)];
        search.limited = true;
        plans.push(search);
    }

    let (agent_processes, workers_per_type) = t.host_agents();
    for i in 0..agent_processes {
        let mut agents =
            ServicePlan::new(format!("agents-{i}"), ServiceKind::Agents, Ready::Http(PortKind::Http, "/ready"));
        agents.args = config_http_grpc();
        agents.env = vec![("Q2O_REDIS_URL", redis_url.clone()), worker_threads(t)];
        agents.config = Some(ConfigFile::Agents {
            inter_agent: t.inter_agent,
            kafka: kafka.clone(),
            workers_per_type,
            inter_agent_nice: None,
        });
        agents.ports = vec![PortKind::Http, PortKind::Grpc];
        agents.scrape = vec![("agents", PortKind::Http)];
        agents.limited = true;
        plans.push(agents);
    }

    let (gateway_processes, gateway_runtime) = t.host_gateways();
    let gateways: Vec<String> = (0..gateway_processes).map(|i| format!("gateway-{i}")).collect();
    for name in &gateways {
        let mut gateway = ServicePlan::new(name.clone(), ServiceKind::Gateway, Ready::Http(PortKind::Http, "/ready"));
        gateway.args = config_http_grpc();
        if t.search {
            gateway.args.push(Arg::Text("--search-url".into()));
            gateway.args.push(Arg::Peer(port("search", PortKind::Http), Scheme::Http));
        }
        gateway.env = vec![("Q2O_REDIS_URL", redis_url.clone()), runtime_var(gateway_runtime)];
        gateway.config = Some(ConfigFile::Gateway { tenant_rate_limit: t.tenant_rate_limit, admission: t.admission });
        gateway.ports = vec![PortKind::Http, PortKind::Grpc];
        gateway.scrape = vec![("gateway", PortKind::Http)];
        gateway.limited = true;
        plans.push(gateway);
    }

    if t.load_balancer {
        // Ready once it answers a replica's `/ready` through itself.
        let ready = Ready::Http(PortKind::Http, "/ready");
        let mut balancer = ServicePlan::new("load-balancer", ServiceKind::LoadBalancer, ready);
        // `-e`: nginx opens its default error log before reading the config's.
        balancer.args = vec![Arg::Text("-c".into()), Arg::ConfigFile];
        balancer.args.extend(text(&["-e", "stderr", "-p"]));
        balancer.args.push(Arg::ScratchDir);
        balancer.config = Some(ConfigFile::Balancer {
            rest: gateways.iter().map(|g| port(g, PortKind::Http)).collect(),
            grpc: gateways.iter().map(|g| port(g, PortKind::Grpc)).collect(),
        });
        balancer.ports = vec![PortKind::Http, PortKind::Grpc];
        plans.push(balancer);
    }
    plans
}

/// The runtime a q2o process is told to run.
fn worker_threads(t: &Topology) -> (&'static str, Arg) {
    runtime_var(t.runtime())
}

/// The variable that tells a q2o process its runtime.
fn runtime_var(flavor: Flavor) -> (&'static str, Arg) {
    (q2o_common::runtime::WORKER_THREADS_VAR, Arg::Text(flavor.to_string()))
}

/// The services of `topology` by name, in start order (`redis`, `broker`, `gateway-0`, ...).
pub fn service_names(topology: &Topology) -> Vec<String> {
    plan(topology).into_iter().map(|s| s.name).collect()
}

/// What a backend knows of addresses and folders, for one service at a time.
pub trait Resolve {
    /// The address `service` listens on for `port`.
    fn listen(&self, service: &str, port: PortKind) -> SocketAddr;
    /// Where `to` is reached from another service (`host:port`).
    fn peer(&self, to: &PortRef) -> String;
    /// The path of `service`'s config file.
    fn config_path(&self, service: &ServicePlan) -> String;
    /// `service`'s data folder.
    fn data_dir(&self, service: &str) -> String;
    /// `service`'s scratch folder.
    fn scratch_dir(&self, service: &str) -> String;
    /// The Unix socket `service` listens on beside its ports, where its
    /// clients share its file system; `None` where they do not.
    fn unix_socket(&self, _service: &str) -> Option<String> {
        None
    }
}

/// `service`'s command line.
pub fn resolve_args(service: &ServicePlan, resolve: &dyn Resolve) -> Vec<String> {
    let mut args = Vec::with_capacity(service.args.len());
    for arg in &service.args {
        match arg {
            Arg::UnixSocket(flag) => {
                if let Some(path) = resolve.unix_socket(&service.name) {
                    args.extend([(*flag).to_owned(), path]);
                }
            }
            arg => args.push(arg.resolve(service, resolve)),
        }
    }
    args
}

impl Arg {
    /// The argument's text for `service` (an environment value, or one
    /// argument of [`resolve_args`]).
    pub fn resolve(&self, service: &ServicePlan, resolve: &dyn Resolve) -> String {
        match self {
            Arg::Text(text) => text.clone(),
            Arg::Listen(port, scheme) => scheme.write(&resolve.listen(&service.name, *port).to_string()),
            Arg::ListenPort(port) => resolve.listen(&service.name, *port).port().to_string(),
            Arg::ListenHost => {
                service.ports.first().map(|p| resolve.listen(&service.name, *p).ip().to_string()).unwrap_or_default()
            }
            Arg::Peer(to, scheme) => scheme.write(&resolve.peer(to)),
            Arg::ConfigFile => resolve.config_path(service),
            Arg::DataDir => resolve.data_dir(&service.name),
            Arg::ScratchDir => resolve.scratch_dir(&service.name),
            Arg::UnixSocket(_) => resolve.unix_socket(&service.name).unwrap_or_default(),
            Arg::PeerSocket(to, scheme) => match resolve.unix_socket(&to.service) {
                Some(path) => format!("unix://{path}"),
                None => scheme.write(&resolve.peer(to)),
            },
        }
    }
}

/// A resolver with fixed addresses and folders, for the crate's tests.
#[cfg(test)]
pub(crate) struct TestHost {
    /// Whether it gives the services Unix sockets (as the local backend does).
    pub(crate) sockets: bool,
}

#[cfg(test)]
impl Resolve for TestHost {
    fn listen(&self, _: &str, port: PortKind) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port.container_port()))
    }
    fn peer(&self, to: &PortRef) -> String {
        format!("{}:{}", to.service, to.port.container_port())
    }
    fn config_path(&self, s: &ServicePlan) -> String {
        format!("/cfg/{}", s.name)
    }
    fn data_dir(&self, s: &str) -> String {
        format!("/data/{s}")
    }
    fn scratch_dir(&self, s: &str) -> String {
        format!("/tmp/{s}")
    }
    fn unix_socket(&self, s: &str) -> Option<String> {
        self.sockets.then(|| format!("/data/{s}/{s}.sock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(text: &str) -> Topology {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn q2o_processes_run_one_thread_each_unless_the_topology_says_otherwise() {
        let runtime = |text: &str| -> Vec<(String, String)> {
            let env = |s: &ServicePlan| {
                s.env.iter().find(|(k, _)| *k == "Q2O_WORKER_THREADS").map(|(_, v)| match v {
                    Arg::Text(t) => t.clone(),
                    other => panic!("{other:?}"),
                })
            };
            plan(&topology(text)).iter().filter_map(|s| Some((s.name.clone(), env(s)?))).collect()
        };
        let shared = runtime("redis = true\nkafka = true\nsearch = true");
        let names: Vec<&str> = shared.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["search", "agents-0", "gateway-0"], "redis and the broker are not ours to configure");
        assert!(shared.iter().all(|(_, v)| v == "current"), "{shared:?}");
        assert_eq!(runtime("monolith = true"), [("monolith".to_owned(), "per-core".to_owned())]);
        assert!(runtime("redis = true\nworker_threads = 2").iter().all(|(_, v)| v == "2"));
        let gateway_apart = runtime("redis = true\nkafka = true\nsearch = true\ngateway_threads = 2");
        let threads: Vec<&str> = gateway_apart.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(threads, ["current", "current", "2"], "only the gateways: {gateway_apart:?}");
        let err = toml::from_str::<Topology>("redis = true\nworker_threads = \"lots\"").unwrap_err().to_string();
        assert!(err.contains("worker_threads") && err.contains("`lots`"), "{err}");
    }

    #[test]
    fn a_plan_names_the_runtime_its_core_limit_follows() {
        let plans = plan(&topology("redis = true\ngateway_threads = 2"));
        let runtime = |name: &str| plans.iter().find(|s| s.name == name).unwrap().runtime();
        assert_eq!(runtime("gateway-0"), Some(Flavor::MultiThread(2)));
        assert_eq!(runtime("agents-0"), Some(Flavor::CurrentThread));
        assert_eq!(runtime("redis"), None, "not a q2o process");
    }

    #[test]
    fn the_front_door_gets_the_cpu_before_queued_work_unless_priorities_are_equal() {
        let nice = |text: &str| -> Vec<(String, i32)> {
            plan(&topology(text)).into_iter().map(|s| (s.name, s.nice)).collect()
        };
        let stack = "redis = true\nkafka = true\nsearch = true\nload_balancer = true";
        let tiered = nice(stack);
        let of = |name: &str| tiered.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(of("gateway-0") < of("redis") && of("load-balancer") == of("gateway-0"), "{tiered:?}");
        assert_eq!(of("redis"), of("search"));
        assert!(of("redis") < of("agents-0") && of("agents-0") == of("broker"), "{tiered:?}");
        assert!(nice(&format!("{stack}\ncpu_priorities = \"equal\"")).iter().all(|(_, n)| *n == 0));
        assert!(nice("monolith = true")[0].1 < 0, "the monolith is its own front door");
        let err = toml::from_str::<Topology>("redis = true\ncpu_priorities = \"high\"").unwrap_err().to_string();
        assert!(err.contains("cpu_priorities"), "{err}");
    }

    #[test]
    fn services_reach_redis_over_its_unix_socket_where_the_backend_gives_it_one() {
        let plans = plan(&topology("redis = true\nkafka = true\nsearch = true"));
        let service = |name: &str| plans.iter().find(|s| s.name == name).unwrap();
        let redis_url = |name: &str, host: &TestHost| {
            let s = service(name);
            s.env.iter().find(|(k, _)| *k == "Q2O_REDIS_URL").unwrap().1.resolve(s, host)
        };
        let local = TestHost { sockets: true };
        let containers = TestHost { sockets: false };
        for name in ["gateway-0", "agents-0"] {
            assert_eq!(redis_url(name, &local), "unix:///data/redis/redis.sock");
            assert_eq!(redis_url(name, &containers), "redis://redis:6379");
        }
        let args = resolve_args(service("redis"), &local);
        assert!(args.windows(2).any(|w| w == ["--unixsocket", "/data/redis/redis.sock"]), "{args:?}");
        assert!(args.windows(2).any(|w| w == ["--port", "6379"]), "TCP stays for the harness: {args:?}");
        let args = resolve_args(service("redis"), &containers);
        assert!(!args.iter().any(|a| a.contains("unixsocket")), "{args:?}");
    }

    #[test]
    fn phase_topologies_start_their_dependencies_first() {
        let t = topology(
            "redis = true\nkafka = true\nsearch = true\ngateways = 2\nagent_processes = 2\nload_balancer = true",
        );
        let names: Vec<String> = plan(&t).into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["redis", "broker", "search", "agents-0", "agents-1", "gateway-0", "gateway-1", "load-balancer"]
        );
        let monolith = plan(&topology("monolith = true"));
        assert_eq!(monolith.len(), 1);
        assert_eq!(monolith[0].scrape, [("gateway", PortKind::Http), ("agents", PortKind::AgentsHttp)]);
    }

    #[test]
    fn on_one_machine_the_agents_replicas_can_share_fewer_processes_with_all_their_workers() {
        let workers = |t: &Topology| -> Vec<(String, Option<usize>)> {
            plan(t)
                .into_iter()
                .filter_map(|s| match s.config {
                    Some(ConfigFile::Agents { workers_per_type, .. }) => Some((s.name, workers_per_type)),
                    _ => None,
                })
                .collect()
        };
        let replicas = "redis = true\ngateways = 2\nagent_processes = 2\nworkers_per_type = 128";
        let apart = topology(replicas);
        assert_eq!(workers(&apart), [("agents-0".into(), Some(128)), ("agents-1".into(), Some(128))]);
        let shared = topology(&format!("{replicas}\nhost_agent_processes = 1"));
        assert_eq!(workers(&shared), [("agents-0".into(), Some(256))], "the replicas' 256 workers per type in one");
        let uneven = topology("redis = true\nagent_processes = 3\nworkers_per_type = 5\nhost_agent_processes = 2");
        assert_eq!(workers(&uneven), [("agents-0".into(), Some(8)), ("agents-1".into(), Some(8))], "rounded up");
        // Capacity's replica counts scale both alike.
        let four = shared.at_replicas(4);
        assert_eq!((four.agent_processes, four.host_agents()), (4, (2, Some(256))));

        let check = |text: &str| topology(text).check().unwrap_err();
        let (key, reason) = check("redis = true\nagent_processes = 2\nhost_agent_processes = 1");
        assert_eq!(key, "topology.host_agent_processes");
        assert!(reason.contains("workers_per_type"), "{reason}");
        assert_eq!(
            check("redis = true\nworkers_per_type = 2\nhost_agent_processes = 0").0,
            "topology.host_agent_processes"
        );
    }

    #[test]
    fn on_one_machine_the_gateway_replicas_can_share_fewer_processes_with_all_their_threads() {
        let gateways = |text: &str| -> Vec<(String, Option<Flavor>)> {
            plan(&topology(text))
                .into_iter()
                .filter(|s| s.kind == ServiceKind::Gateway)
                .map(|s| (s.name.clone(), s.runtime()))
                .collect()
        };
        let replicas = "redis = true\ngateways = 2";
        let apart = gateways(replicas);
        assert_eq!(
            apart,
            [("gateway-0".into(), Some(Flavor::CurrentThread)), ("gateway-1".into(), Some(Flavor::CurrentThread))]
        );
        let shared = gateways(&format!("{replicas}\nhost_gateways = 1"));
        assert_eq!(shared, [("gateway-0".into(), Some(Flavor::MultiThread(2)))], "both replicas' threads in one");
        let uneven = gateways("redis = true\ngateways = 3\ngateway_threads = 3\nhost_gateways = 2");
        assert_eq!(uneven.iter().map(|g| g.1).collect::<Vec<_>>(), [Some(Flavor::MultiThread(5)); 2], "rounded up");
        let per_core = gateways("redis = true\ngateways = 2\ngateway_threads = \"per-core\"\nhost_gateways = 1");
        assert_eq!(per_core, [("gateway-0".into(), Some(Flavor::PerCore))]);
        // Capacity's replica counts scale the processes alike.
        let four = topology(&format!("{replicas}\nhost_gateways = 1")).at_replicas(4);
        assert_eq!((four.gateways, four.host_gateways()), (4, (2, Flavor::MultiThread(2))));

        let check = |text: &str| topology(text).check().unwrap_err();
        assert_eq!(check("redis = true\nhost_gateways = 0").0, "topology.host_gateways");
        let (key, reason) = check("redis = true\ngateways = 2\nhost_gateways = 3");
        assert_eq!(key, "topology.host_gateways");
        assert!(reason.contains("at most gateways"), "{reason}");
    }

    #[test]
    fn every_peer_is_a_port_of_a_service_started_before() {
        let t = topology("redis = true\nkafka = true\nsearch = true\ngateways = 3\nload_balancer = true");
        let plans = plan(&t);
        for (i, service) in plans.iter().enumerate() {
            let mut peers: Vec<&PortRef> = service
                .args
                .iter()
                .chain(service.env.iter().map(|(_, a)| a))
                .filter_map(|a| match a {
                    Arg::Peer(to, _) | Arg::PeerSocket(to, _) => Some(to),
                    _ => None,
                })
                .collect();
            if let Some(ConfigFile::Balancer { rest, grpc }) = &service.config {
                peers.extend(rest.iter().chain(grpc));
            }
            for peer in peers {
                let target = plans[..=i].iter().find(|s| s.name == peer.service);
                let target = target.unwrap_or_else(|| panic!("{} needs {} before it", service.name, peer.service));
                assert!(target.ports.contains(&peer.port), "{}: {} has no {:?}", service.name, peer.service, peer.port);
            }
        }
    }
}
