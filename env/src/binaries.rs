//! Where the programs of a run come from: the q2o binaries, the broker, and
//! the tools from `PATH`.

use std::path::{Path, PathBuf};

use crate::plan::{ServiceKind, plan};
use crate::topology::Topology;

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

/// A program that is not there.
#[derive(Debug, thiserror::Error)]
#[error("{} not found: run ./scripts/setup.sh and `just build` (or set Q2O_BIN_DIR / Q2O_TANSU)", .0.display())]
pub struct Missing(pub PathBuf);

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
            cache.join("tansu-0.6.0-q2o1/bin/tansu")
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

    /// One of our binaries (`q2o-loadgen`).
    pub fn q2o(&self, name: &str) -> PathBuf {
        self.q2o.join(name)
    }

    /// The program of a service of `kind`, locally.
    pub fn of(&self, kind: ServiceKind) -> PathBuf {
        match kind {
            ServiceKind::Redis => self.redis.clone(),
            ServiceKind::Broker => self.tansu.clone(),
            ServiceKind::Search => self.q2o("q2o-search"),
            ServiceKind::Agents => self.q2o("q2o-agents"),
            ServiceKind::Gateway => self.q2o("q2o-gateway"),
            ServiceKind::LoadBalancer => self.nginx.clone(),
            ServiceKind::Monolith => self.q2o("q2o-monolith"),
        }
    }

    /// The programs `topology` runs locally, in start order, each once.
    pub fn of_topology(&self, topology: &Topology) -> Vec<PathBuf> {
        let mut programs: Vec<PathBuf> = Vec::new();
        for service in plan(topology) {
            let program = self.of(service.kind);
            if !programs.contains(&program) {
                programs.push(program);
            }
        }
        programs
    }

    /// The first of `programs` that cannot be run.
    pub fn check<'a>(programs: impl IntoIterator<Item = &'a PathBuf>) -> Result<(), Missing> {
        match programs.into_iter().find(|p| !is_executable(p)) {
            Some(missing) => Err(Missing(missing.clone())),
            None => Ok(()),
        }
    }
}

/// Whether `program` (a path, or a name looked up on `PATH`) is there.
pub fn is_executable(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
