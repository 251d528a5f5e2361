//! What every kind of run shares: a started environment, optionally the
//! run's Prometheus scraping it, and the command's stop signal. A session
//! runs one body against them and stops everything afterwards, whether the
//! body finished, failed or was interrupted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use q2o_env::binaries::Binaries;
use q2o_env::endpoints::ScrapeTarget;
use q2o_env::topology::Topology;
use q2o_env::{EnvKind, Environment};
use tokio::sync::watch;

use crate::error::RunError;
use q2o_env::priority::Tier;
use q2o_env::prometheus::Prometheus;

/// The command's stop signal (Ctrl-C, SIGTERM), which any number of waits share.
#[derive(Clone, Debug)]
pub struct Interrupt(watch::Receiver<bool>);

impl Interrupt {
    /// Fires when `signal` resolves.
    pub fn new(signal: impl Future<Output = ()> + Send + 'static) -> Interrupt {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = tx.send(true);
        });
        Interrupt(rx)
    }

    /// Resolves once the signal came.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|fired| *fired).await.is_err() {
            // The signal's task is gone without firing: nothing will interrupt.
            std::future::pending::<()>().await;
        }
    }
}

/// Where a session's environment starts.
#[derive(Clone, Debug)]
pub struct SessionPlan<'a> {
    /// What runs.
    pub topology: &'a Topology,
    /// Processes or containers.
    pub kind: EnvKind,
    /// Programs.
    pub binaries: &'a Binaries,
    /// The folder of logs and data (a run folder, or a part of one).
    pub dir: &'a Path,
    /// The run's id (names the docker network).
    pub run_id: &'a str,
    /// The run's Prometheus, if it has one.
    pub prometheus: Option<PrometheusPlan>,
}

impl<'a> SessionPlan<'a> {
    /// Local processes without a Prometheus: a measurement that reads the
    /// loadgen's records and `/proc` only (capacity steps, comparisons, costs).
    pub fn local(topology: &'a Topology, binaries: &'a Binaries, dir: &'a Path, run_id: &'a str) -> SessionPlan<'a> {
        SessionPlan { topology, kind: EnvKind::Local, binaries, dir, run_id, prometheus: None }
    }
}

/// The run's Prometheus: what it scrapes beyond the services, what it evaluates, how it labels.
#[derive(Clone, Debug)]
pub struct PrometheusPlan {
    /// The harness's own targets (the loadgen processes), scraped like the services.
    pub extra_targets: Vec<ScrapeTarget>,
    /// Rule files it loads.
    pub rule_files: Vec<PathBuf>,
    /// Labels every series gets (`phase`, `run_id`).
    pub labels: Vec<(String, String)>,
}

/// A started environment and, if planned, its Prometheus.
#[derive(Debug)]
pub struct Session {
    /// The topology, running.
    pub env: Environment,
    /// The run's Prometheus, every service already scraped once.
    pub prometheus: Option<Prometheus>,
}

/// How long Prometheus gets to scrape every service once.
const TARGETS_UP: Duration = Duration::from_secs(30);

impl Session {
    /// Starts `plan`, runs `body` on it until it ends or `interrupt` fires,
    /// then stops everything the session started.
    pub async fn run<T>(
        plan: SessionPlan<'_>,
        interrupt: &Interrupt,
        body: impl AsyncFnOnce(&Session) -> Result<T, RunError>,
    ) -> Result<T, RunError> {
        let session = tokio::select! {
            started = Session::start(&plan) => started?,
            () = interrupt.wait() => return Err(RunError::Interrupted),
        };
        let result = tokio::select! {
            result = body(&session) => result,
            () = interrupt.wait() => Err(RunError::Interrupted),
        };
        session.env.stop().await;
        result
    }

    async fn start(plan: &SessionPlan<'_>) -> Result<Session, RunError> {
        let env = Environment::start(plan.topology, plan.kind, plan.binaries, plan.dir, plan.run_id).await?;
        let Some(setup) = &plan.prometheus else { return Ok(Session { env, prometheus: None }) };
        let started = async {
            let mut targets = env.endpoints.targets.clone();
            targets.extend(setup.extra_targets.iter().cloned());
            let labels: Vec<(&str, &str)> = setup.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let prometheus = Prometheus::start(
                &env.harness,
                &plan.binaries.prometheus,
                plan.dir,
                &targets,
                &setup.rule_files,
                &labels,
                env.priorities.nice(Tier::Background),
            )
            .await?;
            let services: Vec<_> = env.endpoints.targets.iter().map(|t| t.addr).collect();
            prometheus.wait_targets_up(&services, TARGETS_UP).await?;
            Ok::<_, RunError>(prometheus)
        };
        match started.await {
            Ok(prometheus) => Ok(Session { env, prometheus: Some(prometheus) }),
            Err(err) => {
                env.stop().await;
                Err(err)
            }
        }
    }

    /// The run's Prometheus; a session planned without one is a bug of the caller.
    pub fn prometheus(&self) -> &Prometheus {
        self.prometheus.as_ref().expect("this session was planned with a Prometheus")
    }
}
