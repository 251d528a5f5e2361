/*!
The Q2O search service: a tantivy index of projects and generated code, fed by
the `search_indexer` consumer group from the activity log, and a query API with
field boosts (name^3, objective^2, description, tags, code), one-typo fuzzy
matching, facets, autocomplete, highlights, pagination and per-tenant filtering.

# Brief overview

* [`query_plan::QueryPlan`] parses and validates the user's query text.
* [`index::SearchIndex`] owns the index: upserts, commits (with the log offsets
  they cover in the commit payload), searches.
* [`indexer::Indexer`] turns completion events into documents.
* [`Search`] binds the API, runs the indexer and commits on a short interval.

**Architecture Invariant:** knows nothing about Redis or the other services;
documents arrive only through the activity log.
*/

mod api;
pub mod config;
mod fuzzy;
pub mod index;
pub mod indexer;
pub mod metrics;
pub mod query_plan;
mod result_cache;

use std::net::SocketAddr;
use std::sync::Arc;

use q2o_common::kafka::{self, ConsumeError, EventConsumer, KafkaMetrics, Start};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Config;

use crate::index::{IndexError, SearchIndex};
use crate::indexer::Indexer;
use crate::metrics::SearchMetrics;

/// The search service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The index could not be opened or committed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The activity topic could not be set up.
    #[error("event log: {0}")]
    Kafka(#[from] kafka::KafkaError),
    /// The indexer could not start.
    #[error("event log: {0}")]
    Consume(#[from] ConsumeError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(std::io::Error),
}

/// A search service with its index open and its listener bound.
#[derive(Debug)]
pub struct Search {
    listener: TcpListener,
    index: Arc<SearchIndex>,
    config: Config,
    registry: prometheus::Registry,
}

impl Search {
    /// Opens the index and binds the API listener.
    pub async fn bind(config: Config, registry: prometheus::Registry) -> Result<Search, SearchError> {
        let index = Arc::new(SearchIndex::open(&config.data_dir, SearchMetrics::new(&registry))?);
        let listener = q2o_common::net::listen(config.http_addr)
            .map_err(|source| SearchError::Bind { addr: config.http_addr, source })?;
        Ok(Search { listener, index, config, registry })
    }

    /// Where the API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves queries and indexes the log until `shutdown`, then commits what it has.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), SearchError> {
        let (stop, stopped) = watch::channel(false);
        let signal = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let consumer = match &self.config.kafka {
            Some(kafka) => {
                kafka::ensure_topic(kafka).await?;
                let metrics = KafkaMetrics::new(&self.registry);
                let probe = EventConsumer::new(kafka, indexer::GROUP, Start::Probe, metrics.clone())?;
                let partitions = probe.partition_count(std::time::Duration::from_secs(10))?.max(kafka.partitions);
                drop(probe);
                // Assigned, not subscribed: every replica indexes every partition,
                // resuming from the offsets its own index on disk covers.
                let start = Start::Assigned { partitions, offsets: self.index.resume_offsets() };
                tracing::info!(?start, "indexing the activity log");
                Some(EventConsumer::new(kafka, indexer::GROUP, start, metrics)?)
            }
            None => None,
        };
        let state = api::ApiState {
            index: Arc::clone(&self.index),
            registry: self.registry.clone(),
            http: q2o_common::metrics::HttpMetrics::new(&self.registry),
            service_keys: self.config.service_keys.clone().into(),
        };
        let http = axum::serve(q2o_common::net::http_listener(self.listener), api::app(state))
            .with_graceful_shutdown(signal(stopped.clone()));
        let indexing = async {
            if let Some(consumer) = consumer {
                let indexer = Indexer { index: Arc::clone(&self.index) };
                consumer.run(&indexer, signal(stopped.clone())).await;
            }
        };
        let commits = {
            let index = Arc::clone(&self.index);
            let every = self.config.commit_every;
            let mut stopped = stopped.clone();
            async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        _ = stopped.wait_for(|s| *s) => break,
                    }
                    let index = Arc::clone(&index);
                    match tokio::task::spawn_blocking(move || index.commit()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(err)) => tracing::error!(%err, "commit failed"),
                        Err(err) => tracing::error!(%err, "commit task failed"),
                    }
                }
            }
        };
        let trigger = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let (http, (), (), ()) = tokio::join!(http, indexing, commits, trigger);
        let index = Arc::clone(&self.index);
        // The last commit keeps what was indexed since the previous one.
        match tokio::task::spawn_blocking(move || index.commit()).await {
            Ok(committed) => {
                committed?;
            }
            Err(err) => tracing::error!(%err, "final commit did not run"),
        }
        http.map_err(SearchError::Http)
    }
}
