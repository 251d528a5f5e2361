/*!
The Q2O agents: workers for the roadmap's twelve agent types, consuming their
queues from the [`Store`], plus the agent services other agents call.

# Brief overview

* [`Config`] names the pools (agent type, concurrency, model), the simulated LLM
  models and the inter-agent transport.
* A pool claims tasks from its agent type's queue, runs them (simulated LLM call,
  template code generation, for the coder a QA review over REST or gRPC), records
  the result exactly once and acknowledges the queue entry. Entries of a dead
  worker are taken over after `reclaim_after`.
* The process serves `/health`, `/ready`, `/metrics` and the internal REST agent
  API on one port and the agents' gRPC services on another.

The LLM is a simulator ([`llm`]); everything else is real work.
*/

pub mod config;
pub mod consumers;
mod execution;
pub mod inter_agent;
mod lane;
pub mod llm;
pub mod metrics;
pub mod review;
mod server;
pub mod templates;
mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use q2o_common::kafka::{self, ConsumeError, EventConsumer, EventProducer, KafkaMetrics, Start};
use q2o_common::store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Config;

use crate::execution::Work;
use crate::inter_agent::{InterAgentError, QaClient};
use crate::lane::Lane;
use crate::llm::LlmSimulator;
use crate::metrics::AgentMetrics;
use crate::server::ServerState;
use crate::worker::Workers;

/// How long tasks in flight get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The agents process could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// `http` or `grpc`.
        what: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The queues could not be prepared.
    #[error("cannot prepare the task queues: {0}")]
    Queues(#[from] StoreError),
    /// The event log could not be set up.
    #[error("event log: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A consumer could not be started.
    #[error("event log: {0}")]
    Consume(#[from] ConsumeError),
    /// A command needs the event log, and none is configured.
    #[error("no [kafka] section in the configuration (or --kafka-bootstrap flag)")]
    NoKafka,
    /// The QA agent's address is unusable.
    #[error(transparent)]
    InterAgent(#[from] InterAgentError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(std::io::Error),
    /// The inter-agent lane's thread could not be started.
    #[error("cannot start the inter-agent lane: {0}")]
    Lane(std::io::Error),
}

/// An agents process with its listeners bound, ready to serve and work.
#[derive(Debug)]
pub struct Agents {
    http: TcpListener,
    grpc: TcpListener,
    config: Config,
    store: Arc<dyn Store>,
    registry: prometheus::Registry,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, AgentsError> {
    q2o_common::net::listen(addr).map_err(|source| AgentsError::Bind { what, addr, source })
}

impl Agents {
    /// Binds the listeners (port 0 picks a free port).
    pub async fn bind(
        config: Config,
        store: Arc<dyn Store>,
        registry: prometheus::Registry,
    ) -> Result<Agents, AgentsError> {
        Ok(Agents {
            http: bind("http", config.http_addr).await?,
            grpc: bind("grpc", config.grpc_addr).await?,
            config,
            store,
            registry,
        })
    }

    /// Where the internal REST API, probes and metrics listen.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("a bound listener has an address")
    }

    /// Where the agents' gRPC services listen.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().expect("a bound listener has an address")
    }

    /// Serves and works until `shutdown` resolves, then lets tasks in flight finish
    /// (up to ten seconds); unfinished ones are taken over by another process.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), AgentsError> {
        let config = &self.config;
        let qa_url = match config.inter_agent {
            config::InterAgentProtocol::Rest if config.qa_rest_url.is_empty() => format!("http://{}", self.http_addr()),
            config::InterAgentProtocol::Rest => config.qa_rest_url.clone(),
            config::InterAgentProtocol::Grpc if config.qa_grpc_url.is_empty() => format!("http://{}", self.grpc_addr()),
            config::InterAgentProtocol::Grpc => config.qa_grpc_url.clone(),
        };
        // Dropped last: the listeners and the QA client's connections run on it.
        let lane = Lane::start(config.inter_agent_nice).map_err(AgentsError::Lane)?;
        let metrics = AgentMetrics::new(&self.registry);
        let qa = {
            // The client's connection driver is spawned where it is made.
            let _lane = lane.handle().enter();
            QaClient::new(config.inter_agent, &qa_url, &config.service_key)?
        };
        let work = Arc::new(Work {
            store: Arc::clone(&self.store),
            llm: LlmSimulator::new(&config.models, &self.registry),
            qa,
            lane: lane.handle().clone(),
            metrics,
            research_ttl: config.research_cache_ttl,
            models: config.pools.iter().map(|p| (p.agent_type, p.model.clone())).collect::<HashMap<_, _>>(),
            fallback_model: config.models.first().map(|m| m.name.clone()).unwrap_or_default(),
        });
        let agent_types: Vec<_> = config.pools.iter().map(|p| p.agent_type).collect();
        self.store.ensure_queues(&agent_types).await?;
        let consumer = if config.consumer.is_empty() {
            format!("agents-{}-{:04x}", std::process::id(), rand::random::<u16>())
        } else {
            config.consumer.clone()
        };
        tracing::info!(%consumer, inter_agent = config.inter_agent.as_str(), %qa_url, pools = agent_types.len(), "agents starting");
        let (events, kafka_metrics) = match &config.kafka {
            Some(kafka) => {
                kafka::ensure_topic(kafka).await?;
                let metrics = KafkaMetrics::new(&self.registry);
                (Some(EventProducer::new(kafka, metrics.clone())?), Some(metrics))
            }
            None => (None, None),
        };
        let workers = Arc::new(Workers {
            work: Arc::clone(&work),
            consumer,
            claim_wait: config.claim_wait,
            reclaim_after: config.reclaim_after,
            reclaim_every: config.reclaim_every,
            events: events.clone(),
        });

        let (stop, stopped) = watch::channel(false);
        let signal = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let state =
            ServerState { work, registry: self.registry.clone(), service_keys: config.service_keys.clone().into() };
        // Both listeners serve on the lane: the QA agent answers there, over
        // gRPC or REST. Each is moved to the lane's reactor on the lane.
        let (http, grpc) =
            (self.http.into_std().map_err(AgentsError::Http)?, self.grpc.into_std().map_err(AgentsError::Http)?);
        let app = server::app(state.clone());
        let http_stop = signal(stopped.clone());
        let http = lane.handle().spawn(async move {
            let listener = TcpListener::from_std(http)?;
            axum::serve(q2o_common::net::http_listener(listener), app).with_graceful_shutdown(http_stop).await
        });
        let routes = server::grpc_routes(state);
        let grpc_stop = signal(stopped.clone());
        let grpc = lane.handle().spawn(async move {
            let listener = TcpListener::from_std(grpc)?;
            // A call is bounded by its caller's `grpc-timeout` alone.
            q2o_common::grpc_server::serve(listener, routes, None, grpc_stop).await;
            Ok::<_, std::io::Error>(())
        });
        // On the process's runtime a spawned server would outlive this call.
        let servers = [http.abort_handle(), grpc.abort_handle()];
        let pools = workers.run(config.pools.clone(), stopped.clone());
        let mut groups = Vec::new();
        if let (Some(kafka), Some(metrics)) = (&config.kafka, &kafka_metrics) {
            let ledger = consumers::LedgerMetrics::new(&self.registry);
            for &group in &config.consumer_groups {
                let consumer = EventConsumer::new(kafka, group.as_str(), Start::Group, metrics.clone())?;
                let handler = consumers::handler(group, Arc::clone(&self.store), &self.registry, ledger.clone());
                let stop = signal(stopped.clone());
                groups.push(async move { consumer.run(&*handler, stop).await });
            }
        }
        let groups = futures::future::join_all(groups);
        let everything = async {
            let (http, grpc, (), _) = tokio::join!(http, grpc, pools, groups);
            // A server cancelled with the lane ended with the process.
            for served in [http, grpc] {
                match served {
                    Ok(Err(err)) => return Err(AgentsError::Http(err)),
                    Err(ended) if ended.is_panic() => std::panic::resume_unwind(ended.into_panic()),
                    _ => {}
                }
            }
            Ok(())
        };
        let deadline = async move {
            shutdown.await;
            tracing::info!("shutting down; finishing tasks in flight");
            let _ = stop.send(true);
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!("tasks still running after {SHUTDOWN_GRACE:?}; another process will take them over");
        };
        let result = tokio::select! {
            result = everything => result,
            () = deadline => Ok(()),
        };
        servers.iter().for_each(tokio::task::AbortHandle::abort);
        if let Some(events) = events {
            events.flush(Duration::from_secs(5));
        }
        result
    }
}

/// Re-reads the activity log into consumer group `group`, counting every event
/// through the group's ledger, until it reaches the end the log had when the
/// replay started. `from_beginning` ignores the group's committed offsets.
pub async fn replay(
    config: &Config,
    store: Arc<dyn Store>,
    group: &str,
    from_beginning: bool,
    timeout: Duration,
) -> Result<consumers::ReplaySummary, AgentsError> {
    let kafka = config.kafka.as_ref().ok_or(AgentsError::NoKafka)?;
    let metrics = KafkaMetrics::new(&prometheus::Registry::new());
    let probe = EventConsumer::new(kafka, group, Start::Probe, metrics.clone())?;
    let partitions = probe.partition_count(Duration::from_secs(10))?;
    let targets = probe.high_watermarks(partitions, Duration::from_secs(10))?;
    tracing::info!(group, partitions, ?targets, "replaying up to the current end of the log");
    drop(probe);
    let start = if from_beginning { Start::Assigned { partitions, offsets: HashMap::new() } } else { Start::Group };
    let consumer = EventConsumer::new(kafka, group, start, metrics)?;
    let counter = consumers::ReplayCounter {
        group: group.to_owned(),
        store,
        summary: std::sync::Mutex::new(consumers::ReplaySummary { group: group.to_owned(), ..Default::default() }),
        last: std::sync::Mutex::new(HashMap::new()),
    };
    let started = std::time::Instant::now();
    let caught_up = async {
        loop {
            tokio::time::sleep(consumers::REPLAY_POLL).await;
            let last = counter.last.lock().expect("never poisoned").clone();
            let done = targets.iter().all(|(p, high)| *high == 0 || last.get(p).is_some_and(|o| o + 1 >= *high));
            if done || started.elapsed() > timeout {
                break;
            }
        }
    };
    consumer.run(&counter, caught_up).await;
    let mut summary = counter.summary.into_inner().expect("never poisoned");
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
