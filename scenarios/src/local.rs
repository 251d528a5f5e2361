//! The local environment: the scenario's topology as child processes on
//! 127.0.0.1 — redis-server, the Kafka-protocol broker (tansu), q2o-search,
//! q2o-agents and q2o-gateway replicas, or the phase0 monolith — on free
//! ports, with their logs and data under the run folder.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use crate::balancer::Balancer;
use crate::docker::Containers;
use crate::scenario::Scenario;
use crate::supervisor::{Readiness, Recovery, ServiceSpec, StartError, Supervisor};

/// Where the q2o binaries and the tools come from.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// Directory of q2o-gateway, q2o-agents, q2o-search, q2o-monolith, q2o-loadgen.
    pub q2o: PathBuf,
    /// The tansu broker.
    pub tansu: PathBuf,
    /// redis-server.
    pub redis: PathBuf,
    /// prometheus.
    pub prometheus: PathBuf,
    /// promtool, which runs the alerts' unit tests.
    pub promtool: PathBuf,
    /// nginx, the load balancer.
    pub nginx: PathBuf,
}

impl Binaries {
    /// The binaries next to this executable (`Q2O_BIN_DIR` overrides), tansu from
    /// the setup script's cache (`Q2O_TANSU` overrides), the rest from `PATH`.
    pub fn discover() -> Binaries {
        let q2o = std::env::var_os("Q2O_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
            std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_owned)).unwrap_or_default()
        });
        let tansu = std::env::var_os("Q2O_TANSU").map(PathBuf::from).unwrap_or_else(|| {
            let cache = std::env::var_os("Q2O_CACHE").map(PathBuf::from).unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/q2o-bench")
            });
            cache.join("tansu-0.6.0/bin/tansu")
        });
        Binaries {
            q2o,
            tansu,
            redis: "redis-server".into(),
            prometheus: "prometheus".into(),
            promtool: "promtool".into(),
            // Debian installs it in /usr/sbin, which a user's PATH may lack.
            nginx: if Path::new("/usr/sbin/nginx").is_file() { "/usr/sbin/nginx".into() } else { "nginx".into() },
        }
    }

    pub(crate) fn q2o(&self, name: &str) -> PathBuf {
        self.q2o.join(name)
    }

    /// Checks that every program this scenario needs exists, naming the first missing one.
    pub fn check(&self, scenario: &Scenario) -> Result<(), String> {
        let t = &scenario.topology;
        let mut needed: Vec<PathBuf> = vec![self.q2o("q2o-loadgen"), self.prometheus.clone()];
        if t.monolith {
            needed.push(self.q2o("q2o-monolith"));
        } else {
            needed.extend([self.q2o("q2o-gateway"), self.q2o("q2o-agents"), self.redis.clone()]);
        }
        if t.kafka {
            needed.push(self.tansu.clone());
        }
        if t.search {
            needed.push(self.q2o("q2o-search"));
        }
        if t.load_balancer {
            needed.push(self.nginx.clone());
        }
        if scenario.criteria.iter().any(|c| c.sli == crate::scenario::Sli::AlertTestCoverage) {
            needed.push(self.promtool.clone());
        }
        for program in needed {
            if !is_executable(&program) {
                return Err(format!(
                    "{} not found: run ./scripts/setup.sh and `just build` (or set Q2O_BIN_DIR / Q2O_TANSU)",
                    program.display()
                ));
            }
        }
        Ok(())
    }
}

pub(crate) fn is_executable(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A free port on 127.0.0.1 (the OS picks; nothing holds it afterwards).
pub fn free_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// A Prometheus scrape target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// The job label (`gateway`, `agents`, `search`, `monolith`, `loadgen`).
    pub job: String,
    /// host:port of `/metrics`.
    pub addr: SocketAddr,
}

/// Where the services run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvKind {
    /// Child processes on 127.0.0.1.
    Local,
    /// Containers on a network of the run's own ([`crate::docker`]).
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

/// The running topology.
#[derive(Debug)]
pub struct Environment {
    /// Every process: the services in the local environment; Prometheus and
    /// the loadgen in both.
    pub supervisor: Supervisor,
    /// The services, in the docker environment.
    pub containers: Option<Containers>,
    /// What Prometheus scrapes.
    pub targets: Vec<ScrapeTarget>,
    /// REST base URLs the users connect to: the load balancer's, or each gateway replica's.
    pub rest_urls: Vec<String>,
    /// gRPC URLs the users connect to, likewise (none for the monolith).
    pub grpc_urls: Vec<String>,
    /// Redis, which holds the tasks (none for the monolith).
    pub redis_url: Option<String>,
    /// Each agents process's (REST, gRPC) base URLs, in the local environment.
    pub agent_urls: Vec<(String, String)>,
}

fn spec(name: &str, program: PathBuf, args: Vec<String>, ready: Readiness) -> ServiceSpec {
    ServiceSpec { name: name.to_owned(), program, args, env: Vec::new(), cwd: None, ready, restart: true }
}

fn write(path: &Path, text: &str) -> Result<(), StartError> {
    std::fs::write(path, text).map_err(|source| StartError::Spawn {
        name: "config".into(),
        program: path.display().to_string(),
        source,
    })
}

impl Environment {
    /// Every death and restart of a service so far.
    pub fn recoveries(&self) -> Vec<Recovery> {
        let mut all = self.supervisor.recoveries();
        if let Some(containers) = &self.containers {
            all.extend(containers.recoveries());
        }
        all
    }

    /// The clock of [`Recovery::died_at`].
    pub fn clock(&self) -> f64 {
        self.containers.as_ref().map_or_else(|| self.supervisor.elapsed(), Containers::elapsed)
    }

    /// Stops every process and removes every container.
    pub async fn stop(&self) {
        self.supervisor.stop().await;
        if let Some(containers) = &self.containers {
            containers.remove_all().await;
        }
    }
}

/// No tenant may be throttled by the gateway's token bucket during a load test
/// (all users share one API key); the bucket's script still runs on every request.
pub(crate) const UNTHROTTLED: &str = "[rate_limit]\ncapacity = 100000000\nrefill_per_second = 100000000.0\n";

impl Environment {
    /// Starts the topology of `scenario` as `kind` says, with logs in
    /// `run/logs` and the local environment's data (configs, Redis, broker
    /// and index files) under `run/data`.
    pub async fn start(
        scenario: &Scenario,
        binaries: &Binaries,
        run: &Path,
        kind: EnvKind,
        run_id: &str,
    ) -> Result<Environment, StartError> {
        let dir = &run.join("data");
        let io = |source| StartError::Spawn { name: "environment".into(), program: dir.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let supervisor = Supervisor::new(run.join("logs")).map_err(io)?;
        let mut env = Environment {
            supervisor,
            containers: None,
            targets: Vec::new(),
            rest_urls: Vec::new(),
            grpc_urls: Vec::new(),
            redis_url: None,
            agent_urls: Vec::new(),
        };
        if kind == EnvKind::Docker {
            let containers = Containers::start(scenario, run, run_id, &mut env).await.map_err(StartError::Docker)?;
            env.containers = Some(containers);
            return Ok(env);
        }
        let t = &scenario.topology;
        let addr = || free_addr().map_err(io);
        if t.monolith {
            let (http, agents, grpc) = (addr()?, addr()?, addr()?);
            let config = dir.join("monolith.toml");
            write(
                &config,
                &format!(
                    "[gateway]\ngrpc_addr = \"{grpc}\"\n{}",
                    UNTHROTTLED.replace("[rate_limit]", "[gateway.rate_limit]")
                ),
            )?;
            let args = vec![
                "--config".into(),
                config.display().to_string(),
                "--http-addr".into(),
                http.to_string(),
                "--agents-http-addr".into(),
                agents.to_string(),
            ];
            env.supervisor
                .start(spec(
                    "monolith",
                    binaries.q2o("q2o-monolith"),
                    args,
                    Readiness::Http(format!("http://{http}/ready")),
                ))
                .await?;
            env.targets.push(ScrapeTarget { job: "gateway".into(), addr: http });
            env.targets.push(ScrapeTarget { job: "agents".into(), addr: agents });
            env.rest_urls.push(format!("http://{http}"));
            return Ok(env);
        }

        let redis = addr()?;
        let redis_dir = dir.join("redis");
        std::fs::create_dir_all(&redis_dir).map_err(io)?;
        let args = [
            "--port",
            &redis.port().to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            if t.redis_aof { "yes" } else { "no" },
            "--appendfsync",
            "everysec",
            "--dir",
            &redis_dir.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec();
        env.supervisor.start(spec("redis", binaries.redis.clone(), args, Readiness::Tcp(redis))).await?;
        let redis_url = format!("redis://{redis}");
        env.redis_url = Some(redis_url.clone());

        let mut kafka = None;
        if t.kafka {
            let broker = addr()?;
            let broker_dir = dir.join("broker");
            std::fs::create_dir_all(&broker_dir).map_err(io)?;
            let url = format!("tcp://{broker}");
            let args = [
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://broker.db",
            ]
            .map(str::to_owned)
            .to_vec();
            // tansu resolves the sqlite path against its working directory.
            let mut broker_spec = spec("broker", binaries.tansu.clone(), args, Readiness::LogLine("ready in"));
            broker_spec.cwd = Some(broker_dir);
            env.supervisor.start(broker_spec).await?;
            kafka = Some(broker.to_string());
        }

        let mut search_url = String::new();
        if t.search {
            let http = addr()?;
            let args = vec![
                "--http-addr".into(),
                http.to_string(),
                "--data-dir".into(),
                dir.join("search").display().to_string(),
                "--kafka-bootstrap".into(),
                kafka.clone().unwrap_or_default(),
            ];
            env.supervisor
                .start(spec(
                    "search",
                    binaries.q2o("q2o-search"),
                    args,
                    Readiness::Http(format!("http://{http}/ready")),
                ))
                .await?;
            env.targets.push(ScrapeTarget { job: "search".into(), addr: http });
            search_url = format!("http://{http}");
        }

        let agents_config = dir.join("agents.toml");
        write(&agents_config, &agents_toml(scenario, kafka.as_deref()))?;
        for i in 0..t.agent_processes {
            let (http, grpc) = (addr()?, addr()?);
            let args = vec![
                "--config".into(),
                agents_config.display().to_string(),
                "--http-addr".into(),
                http.to_string(),
                "--grpc-addr".into(),
                grpc.to_string(),
            ];
            let mut agents = spec(
                &format!("agents-{i}"),
                binaries.q2o("q2o-agents"),
                args,
                Readiness::Http(format!("http://{http}/ready")),
            );
            agents.env.push(("Q2O_REDIS_URL".into(), redis_url.clone()));
            env.supervisor.start(agents).await?;
            env.targets.push(ScrapeTarget { job: "agents".into(), addr: http });
            env.agent_urls.push((format!("http://{http}"), format!("http://{grpc}")));
        }

        let gateway_config = dir.join("gateway.toml");
        write(&gateway_config, UNTHROTTLED)?;
        for i in 0..t.gateways {
            let (http, grpc) = (addr()?, addr()?);
            let mut args = vec![
                "--config".into(),
                gateway_config.display().to_string(),
                "--http-addr".into(),
                http.to_string(),
                "--grpc-addr".into(),
                grpc.to_string(),
            ];
            if !search_url.is_empty() {
                args.extend(["--search-url".into(), search_url.clone()]);
            }
            let mut gateway = spec(
                &format!("gateway-{i}"),
                binaries.q2o("q2o-gateway"),
                args,
                Readiness::Http(format!("http://{http}/ready")),
            );
            gateway.env.push(("Q2O_REDIS_URL".into(), redis_url.clone()));
            env.supervisor.start(gateway).await?;
            env.targets.push(ScrapeTarget { job: "gateway".into(), addr: http });
            env.rest_urls.push(format!("http://{http}"));
            env.grpc_urls.push(format!("http://{grpc}"));
        }

        if t.load_balancer {
            let (rest, grpc) = (addr()?, addr()?);
            let work_dir = dir.join("load-balancer");
            std::fs::create_dir_all(&work_dir).map_err(io)?;
            let strip = |urls: &[String]| urls.iter().map(|u| u.trim_start_matches("http://").to_owned()).collect();
            let (rest_upstreams, grpc_upstreams): (Vec<String>, Vec<String>) =
                (strip(&env.rest_urls), strip(&env.grpc_urls));
            let config = work_dir.join("nginx.conf");
            let balancer = Balancer {
                rest,
                grpc,
                rest_upstreams: &rest_upstreams,
                grpc_upstreams: &grpc_upstreams,
                work_dir: &work_dir,
            };
            write(&config, &balancer.config())?;
            // `-e`: nginx opens its default error log before reading the config's.
            let args = ["-c", &config.display().to_string(), "-e", "stderr", "-p", &work_dir.display().to_string()]
                .map(str::to_owned)
                .to_vec();
            env.supervisor.start(spec("load-balancer", binaries.nginx.clone(), args, Readiness::Tcp(rest))).await?;
            env.rest_urls = vec![format!("http://{rest}")];
            env.grpc_urls = vec![format!("http://{grpc}")];
        }
        Ok(env)
    }
}

/// The agents' config: the scenario's inter-agent protocol and pool sizes,
/// and the broker with both consumer groups when Kafka is on.
pub(crate) fn agents_toml(scenario: &Scenario, kafka: Option<&str>) -> String {
    let t = &scenario.topology;
    let mut text = format!("inter_agent = \"{}\"\n", t.inter_agent);
    if let Some(bootstrap) = kafka {
        text.push_str("consumer_groups = [\"analytics\", \"audit\"]\n");
        text.push_str(&format!("[kafka]\nbootstrap_servers = \"{bootstrap}\"\n"));
    }
    if let Some(workers) = t.workers_per_type {
        for agent_type in q2o_common::domain::AgentType::ALL {
            let large = matches!(agent_type.as_str(), "coder" | "researcher" | "qa" | "security");
            text.push_str(&format!(
                "[[pools]]\nagent_type = \"{}\"\nworkers = {workers}\nmodel = \"{}\"\n",
                agent_type.as_str(),
                if large { "sim-large" } else { "sim-small" }
            ));
        }
    }
    text
}
